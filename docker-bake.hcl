# Every worker image: `make build-all` (every workers/*/worker.toml), `make build WORKER=<name>`,
# `make push`. See docs/images.md.
# The Makefile fills WORKERS and MODELS from the worker folders (.ci/bake_env.py): model.toml is the one
# place a model is named; <WORKER>_MODEL_REVISION and the like in the environment win (another revision).
#
# Each image is three targets: "<name>-base" (workers/<name>/Dockerfile: the worker's own base, start
# command and settings), "<name>-weights" for a worker with a model.toml (shared/weights.Dockerfile:
# every model it names, baked), and "<name>" (shared/worker.Dockerfile: the layers every worker shares,
# on top of the first two, linked as its named contexts `base` and `weights`). Only "<name>" is tagged
# and pushed.

variable "REGISTRY" { default = "workers" }
variable "TAG" { default = "dev" }
variable "VCS_REF" { default = "" }
variable "SOURCE_URL" { default = "" }
# Build cache shared between CI runs, one scope per target: "" (none), "gha" or "registry".
variable "CACHE" { default = "" }

# Derived from the worker folders by the Makefile (.ci/bake_env.py), never listed here: every worker
# (each workers/*/ with a worker.toml), and each model worker's models from its model.toml: main model
# (id, revision, variant, licence), extra models (its tables), LoRA adapters (its [adapters.<name>], baked
# into /adapters/<name>) and optional local folders used instead of the Hub (offline builds, CI: named
# contexts `model` and `extras`). `docker buildx bake` called
# directly needs them set as make sets them (`make -n build WORKER=<name>` prints the command).
variable "WORKERS" { default = "[]" }
variable "MODELS" { default = "{}" }

# Worker name -> its models. A worker that is not here bakes no weights.
function "models" {
  params = []
  result = jsondecode(MODELS)
}

function "tags" {
  params = [name]
  result = ["${REGISTRY}/${name}:${TAG}"]
}

function "cache_from" {
  params = [name]
  result = (CACHE == "gha" ? ["type=gha,scope=${name}"]
    : CACHE == "registry" ? ["type=registry,ref=${REGISTRY}/${name}:buildcache"] : [])
}

# mode=max keeps every intermediate step; the weights targets have a scope of their own, so a cold
# runner does not download the model again.
function "cache_to" {
  params = [name]
  result = (CACHE == "gha" ? ["type=gha,scope=${name},mode=max"]
    : CACHE == "registry" ? ["type=registry,ref=${REGISTRY}/${name}:buildcache,mode=max,image-manifest=true"] : [])
}

# Labels of a worker image: where it comes from, and each model it bakes with its licence (the images
# are pushed to registries; the licence files themselves are baked next to the weights).
function "labels" {
  params = [name]
  result = merge(
    { "org.opencontainers.image.title" = name, "org.opencontainers.image.source" = SOURCE_URL,
    "org.opencontainers.image.revision" = VCS_REF },
    contains(keys(models()), name) ? model_labels(models()[name]) : {})
}

function "model_labels" {
  params = [m]
  result = merge(
    { "workers.model.id" = m.id, "workers.model.revision" = m.revision, "workers.model.license" = m.license },
    concat(
      [for table, extra in m.extras : { "workers.${table}.id" = extra.id, "workers.${table}.revision" = extra.revision,
      "workers.${table}.license" = extra.license }],
      [for name, adapter in m.adapters : { "workers.adapters.${name}.id" = adapter.id,
      "workers.adapters.${name}.revision" = adapter.revision, "workers.adapters.${name}.license" = adapter.license }]
    )...)
}

group "default" {
  targets = ["worker"]
}

# The repository's licence (LICENSE) on every image; each baked model's own licence has its label above.
target "_common" {
  context   = "."
  platforms = ["linux/amd64"]
  labels    = { "org.opencontainers.image.licenses" = "Apache-2.0" }
}

target "worker" {
  name       = w
  matrix     = { w = jsondecode(WORKERS) }
  inherits   = ["_common"]
  dockerfile = "shared/worker.Dockerfile"
  contexts = merge({ base = "target:${w}-base" },
  contains(keys(models()), w) ? { weights = "target:${w}-weights" } : {})
  args       = { WORKER = w }
  labels     = labels(w)
  tags       = tags(w)
  cache-from = cache_from(w)
  cache-to   = cache_to(w)
}

target "base" {
  name       = "${w}-base"
  matrix     = { w = jsondecode(WORKERS) }
  inherits   = ["_common"]
  dockerfile = "workers/${w}/Dockerfile"
}

# The one weights stage, once per model worker. Its cache key is the build args below, weights.py and
# shared/requirements-weights.txt: code, dependency and base changes never download the weights again.
target "weights" {
  name       = "${w}-weights"
  matrix     = { w = keys(models()) }
  inherits   = ["_common"]
  dockerfile = "shared/weights.Dockerfile"
  # The Hub token reaches the weights stage as a secret mount only (never a build arg).
  secret   = ["id=hf_token,env=HF_TOKEN"]
  contexts = models()[w].contexts
  args = {
    MODEL_ID       = models()[w].id
    MODEL_REVISION = models()[w].revision
    MODEL_VARIANT  = models()[w].variant
    EXTRA_MODELS   = jsonencode(models()[w].extras)
    ADAPTERS       = jsonencode(models()[w].adapters)
  }
  cache-from = cache_from("${w}-weights")
  cache-to   = cache_to("${w}-weights")
}
