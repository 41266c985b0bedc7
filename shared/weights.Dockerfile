# The one weights stage of every model worker (docker-bake.hcl's target "<worker>-weights"): bakes every
# model the worker's model.toml names with shared/shared/weights.py into an image of those folders only
# (model/, one per extra model such as sdxl's vae/ and refiner/, adapters/<name> per LoRA adapter), which
# the worker's image copies at its root (shared/worker.Dockerfile). See docs/images.md.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Empty unless local folders are given as the build contexts `model` (`<WORKER>_MODEL_DIR`: the main
# model) and `extras` (`<WORKER>_EXTRAS_DIR`: a folder per table of model.toml): that is how CI and
# offline users build. Otherwise weights.py downloads.
FROM scratch AS model
FROM scratch AS extras

# Cache key: the models' and adapters' ids, revisions, variants (the build args, from model.toml), weights.py
# and its pinned requirements only. The token is a BuildKit secret (never an ARG or ENV): it is mounted for
# this one step and is in no layer or history.
FROM ${PYTHON_IMAGE} AS bake
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=shared/requirements-weights.txt,target=/tmp/requirements-weights.txt \
    pip install --disable-pip-version-check -r /tmp/requirements-weights.txt
ARG MODEL_ID
ARG MODEL_REVISION
ARG MODEL_VARIANT=""
ARG EXTRA_MODELS="{}"
ARG ADAPTERS="{}"
RUN --mount=type=secret,id=hf_token,required=false \
    --mount=type=bind,from=model,target=/src/model \
    --mount=type=bind,from=extras,target=/src/extras \
    --mount=type=bind,source=shared/shared/weights.py,target=/opt/weights.py \
    python /opt/weights.py --id "${MODEL_ID}" --revision "${MODEL_REVISION}" --variant "${MODEL_VARIANT}" \
        --extras "${EXTRA_MODELS}" --adapters "${ADAPTERS}" --local /src/model --local-extras /src/extras \
        --token-file /run/secrets/hf_token --out /weights

FROM scratch
COPY --from=bake /weights /
