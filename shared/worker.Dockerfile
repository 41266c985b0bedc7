# The layers every worker image shares (docker-bake.hcl's target "<worker>"), on top of the worker's own
# base (workers/<worker>/Dockerfile: its CUDA or CPU base, start command and settings; target
# "<worker>-base", linked as the context `base`) and, for a model worker, with its baked weights
# (shared/weights.Dockerfile; target "<worker>-weights", linked as the context `weights`).
# `make build WORKER=<worker>` builds all three; see docs/images.md.

# Stand-ins for the linked targets: bake replaces both; `weights` stays empty for a worker with no model.
FROM scratch AS base
FROM scratch AS weights

FROM base
# The models load from the baked folders only: no Hub call at start, ever.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
ARG WORKER
# The worker's lock (`make lock`, .ci/locks.py): every package the image adds to its base, exact version
# and hash, installed without resolution, so two builds of one commit install the same set; what the base
# carries (torch, vLLM) is left out of the lock and stays the base's build. Then `shared`, without its
# dependencies (they are in the lock, or the base's, as pydantic in vLLM's image).
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=workers/${WORKER}/requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,source=shared,target=/tmp/shared,rw \
    pip install --require-hashes --no-deps -r /tmp/requirements.lock \
    && pip install --no-deps /tmp/shared \
    && python -c "import runpod, shared.serving"
# After the dependencies, so a new model reinstalls nothing. --link: the weights layer does not depend
# on the layers under it, so it is reused (and not pushed again) when the base or a dependency changes.
# The whole of `weights` on purpose: a scratch image of the baked model folders only (/model, /vae...).
# hadolint ignore=DL3067
COPY --link --from=weights / /
WORKDIR /app
# The worker's folder: its package, and its model.toml (the LLM workers serve the model under its id).
COPY workers/${WORKER}/ /app/
# Bytecode compiled at build time, not at every cold start.
RUN python -m compileall -q /app
