# Merged over docker-bake.hcl by .ci/images.sh (`-f docker-bake.hcl -f .ci/bake-ci.hcl`), by target name:
# the stand-in CPU bases of .ci/standin/ replace the CUDA bases that cannot be pulled here (in each
# worker's "<name>-base" target: its worker.toml's `ci_base`, passed as CI_BASES by .ci/bake_env.py; and
# the weights stage's Python), and RUN steps use the host network (the CI engine runs with no bridge).
# Everything else is the real build.

variable "CI_BASES" { default = "{}" }

target "_common" {
  network = "host"
  args    = { PYTHON_IMAGE = "ci-local/python:3.11" }
}

target "base" {
  name   = "${w}-base"
  matrix = { w = jsondecode(WORKERS) }
  args   = { BASE_IMAGE = jsondecode(CI_BASES)[w] }
}
