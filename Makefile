# Every developer and CI task goes through these targets; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
WORKER ?=

.PHONY: help setup test lint docs

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV_STAMP) ## Create .venv with everything development and the tests need (from requirements-dev.lock)

# torch first and apart (the lock leaves it out: see requirements-dev.txt), its CPU build: PyTorch's CPU
# index when it answers within 5 s, else pip's configured sources (a machine's local wheel, or PyPI's
# build). x86_64 CPU wheels carry a `+cpu` label, aarch64 ones none. Then the lock, hash-checked, with no
# resolution, then the repo's two packages. Sizes are a first run's; pip's cache serves later ones.
TORCH_VERSION := $(shell sed -nE 's/^torch==([0-9.]+).*/\1/p' requirements-dev.txt)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_LABEL = $(if $(filter x86_64,$(shell uname -m)),+cpu)
PIP_INSTALL = $(PY) -m pip install --disable-pip-version-check --progress-bar off
# pip's own lines, cut to what is downloaded (with its size) and what comes from its cache.
PIP_PROGRESS = { grep --line-buffered -E '^ *(Downloading|Using cached) ' || true; } | sed -u -E 's/^ */  /'
$(VENV_STAMP): requirements-dev.lock pyproject.toml shared/pyproject.toml
	@echo "setup: $(VENV) with $$($(PYTHON) --version)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP_INSTALL) -q --upgrade pip
	@set -o pipefail; \
	if $(PY) -c "import importlib.metadata as m, sys; sys.exit(m.version('torch') != '$(TORCH_VERSION)$(TORCH_LABEL)')" 2>/dev/null; then \
	  echo "setup: torch $(TORCH_VERSION)$(TORCH_LABEL) already installed"; \
	elif $(PY) -c "import urllib.request; urllib.request.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=5)" 2>/dev/null; then \
	  echo "setup: torch $(TORCH_VERSION)$(TORCH_LABEL) (CPU build, ~200 MB) from $(TORCH_CPU_INDEX)"; \
	  $(PIP_INSTALL) --no-deps --index-url $(TORCH_CPU_INDEX) torch==$(TORCH_VERSION)$(TORCH_LABEL) | $(PIP_PROGRESS); \
	else \
	  echo "setup: $(TORCH_CPU_INDEX) did not answer; torch $(TORCH_VERSION)$(TORCH_LABEL) from pip's configured sources (pip config list)"; \
	  $(PIP_INSTALL) --no-deps torch==$(TORCH_VERSION)$(TORCH_LABEL) | $(PIP_PROGRESS); \
	fi
	@echo "setup: $$(grep -cE '^[a-zA-Z0-9]' requirements-dev.lock) locked packages from requirements-dev.lock, hash-checked (~560 MB on a first run; pip's cache serves later ones)"
	@set -o pipefail; $(PIP_INSTALL) --require-hashes --no-deps -r requirements-dev.lock | $(PIP_PROGRESS)
	@echo "setup: shared and devkit, editable"
	@$(PIP_INSTALL) -q --no-deps --no-build-isolation -e ./shared -e .
	touch $@

# Resolve every lock again from its inputs (needs PyPI): requirements-dev.lock and each worker's
# requirements.lock (.ci/locks.py). tests/images/test_locks.py fails while one is stale.
.PHONY: lock
lock: ## Refresh every hash-pinned lock (dev environment, each image) from its requirements
	@test -x $(VENV)/bin/uv || $(PIP_INSTALL) -q "$$(grep -E '^uv==' requirements-dev.txt | cut -d' ' -f1)"
	$(PY) .ci/locks.py write

test: setup ## Run the whole test suite (installs first if needed)
	$(PY) -m pytest

lint: setup ## Lint with ruff, and check that generated docs are current
	$(VENV)/bin/ruff check .
	$(PY) -m devkit.docs check

docs: setup ## Regenerate the generated tables: worker input tables, the README's error table
	$(PY) -m devkit.docs write

# README.md, "Adding a worker". Standard library only: no setup needed.
.PHONY: new-worker
new-worker: ## New worker from a template: make new-worker NAME=<name> [FROM=progress-demo|llm-hf|sdxl]
	@test -n "$(NAME)" || { echo "usage: make new-worker NAME=<name> [FROM=progress-demo|llm-hf|sdxl]" >&2; exit 2; }
	$(PYTHON) -m devkit.scaffold $(NAME) $(if $(FROM),--from $(FROM))

# Local RunPod endpoint (docs/local-endpoint.md): real worker processes on the tiny models; Ctrl-C stops it.
.PHONY: dev
dev: setup ## Local RunPod endpoint on tiny models, all workers or WORKER=name (PORT=8000); prints a curl line
	$(PY) -m devkit.endpoint $(if $(WORKER),--worker $(WORKER)) $(if $(PORT),--port $(PORT))

# Each figure against its baseline in the same run; table on stdout, JSON in .bench/, plots in docs/bench/.
# docs/benchmarks.md.
.PHONY: bench
bench: setup ## Benchmarks on the CPU with tiny models (a few minutes): BENCH="dispatch llm-hf" picks some
	$(PY) -m devkit.bench $(BENCH)
	$(PY) -m devkit.bench.plots

# RunPod REST API v2 (docs/deploy.md). Needs RUNPOD_API_KEY; the image is REGISTRY/<worker>:TAG unless
# endpoint.toml names one; RUNPOD_REST_URL points elsewhere (a stand-in: python -m devkit.deploy.standin).
DEPLOY_WORKERS = $(foreach w,$(WORKER),--worker $(w))
TRUE_VALUES := 1 true yes
.PHONY: deploy deploy-status undeploy
deploy: setup ## Create/update RunPod endpoints after a GPU-fit check (WORKER=name, DRY_RUN=1 plan only, FORCE=1 no fit check)
	$(PY) -m devkit.deploy deploy $(DEPLOY_WORKERS) $(if $(filter $(TRUE_VALUES),$(DRY_RUN)),--dry-run) $(if $(filter $(TRUE_VALUES),$(FORCE)),--force)

deploy-status: setup ## State of each RunPod endpoint: workers by state, unhealthy ones, job URLs, image, GPU (WORKER=name)
	$(PY) -m devkit.deploy status $(DEPLOY_WORKERS)

undeploy: setup ## Delete RunPod endpoints (WORKER=name, else all); asks first unless YES=1
	$(PY) -m devkit.deploy undeploy $(DEPLOY_WORKERS) $(if $(filter $(TRUE_VALUES),$(YES)),--yes)

# Images (docs/images.md): docker buildx bake over docker-bake.hcl; the workers (workers/*/worker.toml) and
# their models (workers/*/model.toml) are read by .ci/bake_env.py.
# REGISTRY, TAG and the bake variables can be set in the environment or on the command line;
# BAKE_FILES/BAKE_FLAGS add bake files and flags (CI: stand-in bases, host network).
VCS_REF ?= $(shell git rev-parse HEAD 2>/dev/null)
# The clone's remote, any credentials in its URL cut out: it becomes a label of every image.
SOURCE_URL ?= $(shell git config --get remote.origin.url 2>/dev/null | sed -E 's#://[^@/]*@#://#')
BAKE_FILES ?= -f docker-bake.hcl
BAKE_FLAGS ?=
IMAGE_ENV = $(if $(REGISTRY),REGISTRY=$(REGISTRY)) $(if $(TAG),TAG=$(TAG))
# What bake reads from the worker folders (WORKERS, MODELS, CI_BASES: .ci/bake_env.py), for every bake call.
BAKE_ENV = env $(shell $(PYTHON) .ci/bake_env.py) VCS_REF=$(VCS_REF) SOURCE_URL=$(SOURCE_URL) $(IMAGE_ENV)
BAKE = $(BAKE_ENV) docker buildx bake $(BAKE_FILES) $(BAKE_FLAGS)

.PHONY: build-all build push sizes
build-all: ## Build every worker image (weights baked; HF_TOKEN, if set, goes in as a build secret)
	$(BAKE)

build: ## Build one worker image: make build WORKER=llm-hf
	@test -n "$(WORKER)" || { echo "usage: make build WORKER=<name>" >&2; exit 2; }
	$(BAKE) $(WORKER)

push: ## Build and push every image (or WORKER=<name>) to REGISTRY=... with TAG=...
	$(BAKE) --push $(WORKER)

sizes: ## Size of each built image (or WORKER=<name>): base, weights, the rest
	$(BAKE_ENV) $(PYTHON) .ci/image_sizes.py $(BAKE_FILES) $(WORKER)
