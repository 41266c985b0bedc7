# Merged over docker-bake.hcl by .ci/images.sh (`-f docker-bake.hcl -f .ci/bake-ci.hcl`), by target name:
# the stand-in CPU bases of .ci/standin/ replace the CUDA bases that cannot be pulled here (in each
# worker's "<name>-base" target, and the weights stage's Python), and RUN steps use the host network
# (the CI engine runs with no bridge). Everything else is the real build.

target "_common" {
  network = "host"
  args    = { PYTHON_IMAGE = "ci-local/python:3.11" }
}

target "progress-demo-base" {
  args = { BASE_IMAGE = "ci-local/python:3.11" }
}

target "llm-hf-base" {
  args = { BASE_IMAGE = "ci-local/pytorch:2.13.0-cpu" }
}

target "llm-vllm-base" {
  args = { BASE_IMAGE = "ci-local/vllm:0.32.0-cpu" }
}

target "sdxl-base" {
  args = { BASE_IMAGE = "ci-local/pytorch:2.13.0-cpu" }
}
