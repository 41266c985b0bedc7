# Every worker image: `make build-all` (all four), `make build WORKER=<name>`, `make push`. See docs/images.md.
# The Makefile fills the model variables from workers/<name>/model.toml, the one place a model is named;
# a variable already set in the environment wins (to try another model or revision).

variable "REGISTRY" { default = "workers" }
variable "TAG" { default = "dev" }
variable "VCS_REF" { default = "" }
variable "SOURCE_URL" { default = "" }
# Build cache shared between CI runs, one scope per target: "" (none), "gha" or "registry".
variable "CACHE" { default = "" }

# Model of each worker (id, revision, optional variant), and an optional local folder of its weights,
# used instead of the Hub (offline builds, CI with the tiny fixture models).
variable "LLM_HF_MODEL_ID" { default = "" }
variable "LLM_HF_MODEL_REVISION" { default = "" }
variable "LLM_HF_MODEL_VARIANT" { default = "" }
variable "LLM_HF_MODEL_DIR" { default = "" }
variable "LLM_VLLM_MODEL_ID" { default = "" }
variable "LLM_VLLM_MODEL_REVISION" { default = "" }
variable "LLM_VLLM_MODEL_VARIANT" { default = "" }
variable "LLM_VLLM_MODEL_DIR" { default = "" }
variable "SDXL_MODEL_ID" { default = "" }
variable "SDXL_MODEL_REVISION" { default = "" }
variable "SDXL_MODEL_VARIANT" { default = "" }
variable "SDXL_MODEL_DIR" { default = "" }

function "tags" {
  params = [name]
  result = ["${REGISTRY}/${name}:${TAG}"]
}

function "cache_from" {
  params = [name]
  result = (CACHE == "gha" ? ["type=gha,scope=${name}"]
    : CACHE == "registry" ? ["type=registry,ref=${REGISTRY}/${name}:buildcache"] : [])
}

# mode=max also keeps the weights stage, so a cold runner does not download the model again.
function "cache_to" {
  params = [name]
  result = (CACHE == "gha" ? ["type=gha,scope=${name},mode=max"]
    : CACHE == "registry" ? ["type=registry,ref=${REGISTRY}/${name}:buildcache,mode=max,image-manifest=true"] : [])
}

function "model_context" {
  params = [dir]
  result = dir == "" ? {} : { model = dir }
}

group "default" {
  targets = ["progress-demo", "llm-hf", "llm-vllm", "sdxl"]
}

target "_common" {
  context   = "."
  platforms = ["linux/amd64"]
  # The Hub token reaches the weights stage as a secret mount only (never a build arg).
  secret = ["id=hf_token,env=HF_TOKEN"]
  args = {
    VCS_REF    = VCS_REF
    SOURCE_URL = SOURCE_URL
  }
}

target "progress-demo" {
  inherits   = ["_common"]
  dockerfile = "workers/progress-demo/Dockerfile"
  tags       = tags("progress-demo")
  cache-from = cache_from("progress-demo")
  cache-to   = cache_to("progress-demo")
}

target "llm-hf" {
  inherits   = ["_common"]
  dockerfile = "workers/llm-hf/Dockerfile"
  tags       = tags("llm-hf")
  contexts   = model_context(LLM_HF_MODEL_DIR)
  args = {
    MODEL_ID       = LLM_HF_MODEL_ID
    MODEL_REVISION = LLM_HF_MODEL_REVISION
    MODEL_VARIANT  = LLM_HF_MODEL_VARIANT
  }
  cache-from = cache_from("llm-hf")
  cache-to   = cache_to("llm-hf")
}

target "llm-vllm" {
  inherits   = ["_common"]
  dockerfile = "workers/llm-vllm/Dockerfile"
  tags       = tags("llm-vllm")
  contexts   = model_context(LLM_VLLM_MODEL_DIR)
  args = {
    MODEL_ID       = LLM_VLLM_MODEL_ID
    MODEL_REVISION = LLM_VLLM_MODEL_REVISION
    MODEL_VARIANT  = LLM_VLLM_MODEL_VARIANT
  }
  cache-from = cache_from("llm-vllm")
  cache-to   = cache_to("llm-vllm")
}

target "sdxl" {
  inherits   = ["_common"]
  dockerfile = "workers/sdxl/Dockerfile"
  tags       = tags("sdxl")
  contexts   = model_context(SDXL_MODEL_DIR)
  args = {
    MODEL_ID       = SDXL_MODEL_ID
    MODEL_REVISION = SDXL_MODEL_REVISION
    MODEL_VARIANT  = SDXL_MODEL_VARIANT
  }
  cache-from = cache_from("sdxl")
  cache-to   = cache_to("sdxl")
}
