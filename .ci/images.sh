#!/usr/bin/env bash
# The image part of CI (called by .ci/run after the tests): the real `make build-all` and `make push`
# on a private Docker engine, against stand-in CPU bases and with the tiny fixture models as weights;
# then every pushed image answers its test_input.json through the runpod SDK's job loop, a token given
# as the build secret is looked for in every layer and in the history, each image's cold start is
# measured per phase (recorded, never asserted), and the sizes are reported.
# Stops every process it started (engine, registry, containers), also on failure. docs/images.md.
set -euo pipefail
cd "$(dirname "$0")/.."

export CI_DOCKER_DIR=${CI_DOCKER_DIR:-/var/tmp/ci-docker}
REGISTRY=127.0.0.1:5000/workers
TAG=ci
PY=.venv/bin/python
LOGS=$CI_DOCKER_DIR/logs
mapfile -t WORKERS < <(for f in workers/*/worker.toml; do basename "$(dirname "$f")"; done)
MAKE_IMAGES=(BAKE_FILES="-f docker-bake.hcl -f .ci/bake-ci.hcl" BAKE_FLAGS="--allow=network.host --progress=plain"
    REGISTRY=$REGISTRY TAG=$TAG)

T0=$SECONDS
TIMES=()
phase() { printf '\n== images: %s\n' "$1"; PHASE_START=$SECONDS; }
done_phase() { TIMES+=("$(printf '%-28s %4d s' "$1" $((SECONDS - PHASE_START)))"); }

cleanup() {
    local rc=$?
    if [ -n "${DOCKER_HOST:-}" ] && docker version >/dev/null 2>&1; then
        docker ps -aq --filter label=ci.worker-smoke=1 | xargs -r docker rm -f >/dev/null 2>&1 || true
    fi
    bash .ci/docker-engine.sh stop || true
    if [ "$rc" -ne 0 ]; then
        echo "images: FAILED (rc $rc); logs in $LOGS" >&2
        tail -n 60 "$LOGS"/*.log 2>/dev/null >&2 || true
    fi
}
trap cleanup EXIT
mkdir -p "$LOGS"

phase "engine (docker.io, buildx + dockerd from Debian testing, local registry)"
bash .ci/docker-engine.sh install
bash .ci/docker-engine.sh start
eval "$(bash .ci/docker-engine.sh env)"
done_phase engine

phase "bake --print: every image, and workers made by make new-worker from each template"
# `make test` ran before buildx was installed: these need it, and here they may not skip.
CI_REQUIRE_BUILDX=1 $PY -m pytest -q -p no:cacheprovider tests/images/test_bake.py tests/devkit/test_scaffold.py \
    -k "buildx or bake" 2>&1 | tail -n 5 | sed 's/^/  /'
done_phase "bake --print"

phase "stand-in CPU bases"
bash .ci/standin-bases.sh
done_phase "stand-in bases"

phase "tiny fixture models as the weights (named build contexts 'model' and 'extras')"
for name in "${WORKERS[@]}"; do
    prefix="$(echo "$name" | tr 'a-z-' 'A-Z_')"
    dir=$($PY -c "import sys; from devkit.fixtures import for_worker; print(for_worker(sys.argv[1]) or '')" "$name")
    # Inside the repo (.models/, git-ignored): bake reads folders outside it only with --allow=fs.read.
    extras=$(PYTHONPATH=. $PY .ci/extras_dir.py "$name" "$PWD/.models/extras/$name")
    # A worker serving LoRA adapters ([fixture] adapters) bakes the tiny ones from the extras folder.
    adapters=$(PYTHONPATH=. $PY .ci/extras_dir.py --adapters "$name")
    for pair in "MODEL_DIR=$dir" "EXTRAS_DIR=$extras" "ADAPTERS=$adapters"; do
        if [ -n "${pair#*=}" ]; then
            export "${prefix}_$pair"
            echo "${prefix}_$pair"
        fi
    done
done
done_phase "fixture models"

# A made-up token, passed exactly as a real one is (bake's secret from HF_TOKEN): it must reach the
# weights stage and appear in no layer, no history and no config. Fixed, not random: layers reused from
# the build cache were built with this same value, so the check covers them too.
export HF_TOKEN="hf_ci_canary_not_a_real_token_4e1b9c0d27a5"

phase "BuildKit's Dockerfile checks (bake --call check)"
# Each worker's own Dockerfile and the weights stage through bake (the `base` and `weights` matrices);
# the shared layers once on their own: `--call check` cannot resolve a context linked to another
# target ("unsupported context source target"), and their Dockerfile is the same for every worker.
{ make -s build WORKER="base weights" "${MAKE_IMAGES[@]}" BAKE_FLAGS="--allow=network.host --call check" \
    && docker buildx build --call check -f shared/worker.Dockerfile . ; } 2>&1 \
    | { grep -vE '^(#|\s*$)' || true; } | sed 's/^/  /'
done_phase "bake --call check"

phase "make build-all (${WORKERS[*]})"
make build-all "${MAKE_IMAGES[@]}" >"$LOGS/build.log" 2>&1 || { tail -n 80 "$LOGS/build.log" >&2; exit 1; }
grep -E 'a Hub token was given' "$LOGS/build.log" | sed 's/^/  /' || true
done_phase "make build-all"

phase "make push (to the local registry)"
make push "${MAKE_IMAGES[@]}" >"$LOGS/push.log" 2>&1 || { tail -n 60 "$LOGS/push.log" >&2; exit 1; }
done_phase "make push"

phase "the build secret is in no layer, history or config"
# Positive control first: the same secret, deliberately written into a layer, must be found (no cache:
# a cached layer would hold an earlier run's token, as secrets are not part of the cache key).
docker buildx build -q --no-cache --network none --secret id=hf_token,env=HF_TOKEN \
    --build-arg BASE_IMAGE=ci-local/debian:bookworm \
    -t ci-local/secret-probe .ci/secret-probe >/dev/null
# grep -c reads the whole stream (grep -q would stop early, and pipefail would then report docker's SIGPIPE).
found() { grep -acF "$HF_TOKEN" || true; }
[ "$(docker save ci-local/secret-probe | found)" -gt 0 ] \
    || { echo "the secret probe image does not hold the token: the check below would prove nothing" >&2; exit 1; }
docker image rm -f ci-local/secret-probe >/dev/null
for name in "${WORKERS[@]}"; do
    ref=$REGISTRY/$name:$TAG
    hits=$(( $(docker save "$ref" | found) + $(docker history --no-trunc "$ref" | found)
        + $(docker image inspect "$ref" | found) ))
    if [ "$hits" -ne 0 ]; then
        echo "LEAK: the build secret is in $ref" >&2
        exit 1
    fi
    echo "  $ref: no trace of the token"
done
# The registry's own copies: manifests and configs are stored as plain JSON.
if grep -rlF "$HF_TOKEN" "$CI_DOCKER_DIR/registry" >&2; then
    echo "LEAK: the build secret is in the registry's storage" >&2
    exit 1
fi
done_phase "secret check"

phase "each image holds exactly its lock's package versions (two builds of one commit: the same set)"
$PY .ci/image_packages.py --registry "$REGISTRY" --tag "$TAG" "${WORKERS[@]}"
done_phase "package set vs locks"

phase "each pushed image answers its test_input.json (and a job per extra model) through the job loop"
PYTHONPATH=. $PY .ci/smoke_images.py --registry "$REGISTRY" --tag "$TAG" "${WORKERS[@]}" 2>"$LOGS/smoke.log" \
    || { tail -n 80 "$LOGS/smoke.log" >&2; exit 1; }
done_phase "smoke (job loop)"

phase "cold start in each pushed image, per phase, against its floor in the same image (recorded, not asserted)"
# docs/benchmarks.md, "Cold start in the images": figures into .bench/results.json (cold-start-image).
# ./shared first: the bench splits a start at shared.serving's log lines, as built into these images.
PYTHONPATH=.:shared $PY -m devkit.bench.cold_start_image --profiled-only --registry "$REGISTRY" --tag "$TAG" "${WORKERS[@]}" \
    2>"$LOGS/cold-start.log" | sed 's/^/  /' \
    || { tail -n 20 "$LOGS/cold-start.log" >&2; echo "  cold-start bench failed: no figures this run (not a gate)"; }
done_phase "cold start (images)"

phase "sizes"
make -s sizes "${MAKE_IMAGES[@]}"
# Keep the stand-ins and the build cache for the next run on this machine, not superseded images.
docker image prune -f >/dev/null
docker builder prune -f --filter until=168h >/dev/null

printf '\n== images: timings (%d s in all)\n' $((SECONDS - T0))
printf '  %s\n' "${TIMES[@]}"
