"""Where vLLM keeps its compile cache: on the endpoint's network volume when one is attached and can take it.

vLLM's start compiles the model (torch.compile, CUDA graphs) into VLLM_CACHE_ROOT (default
``~/.cache/vllm``, in the container's disk, which lives only as long as the worker: RunPod docs,
"Storage options"). A network volume is mounted at ``/runpod-volume`` on every worker of the endpoint
(RunPod docs, "Network volumes": "mounted at /runpod-volume" in Serverless), so a cache kept there is
found by the next cold start, which then loads the compiled graphs instead of compiling again.
runpod-workers/worker-vllm does the same (its image sets VLLM_CACHE_ROOT under its volume base path and
src/compile_cache.py falls back to vLLM's default root when the volume cannot take the writes, since
vLLM does not handle most compile-cache write errors). Here: a VLLM_CACHE_ROOT the endpoint sets is kept
as it is; otherwise the volume is used only when a synced write of `PROBE_BYTES` succeeds there and it
has `MIN_FREE_BYTES` free, else vLLM's default stays, and the log says which and why.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

log = logging.getLogger(__name__)

#: Where RunPod mounts an endpoint's network volume on a Serverless worker.
VOLUME = Path("/runpod-volume")

#: The folder under the volume holding vLLM's cache (one per volume: vLLM keys its entries by model,
#: settings and vLLM version, so workers of other endpoints sharing the volume do not collide).
CACHE_FOLDER = "vllm-cache"

#: Env var vLLM reads for its cache root (vllm/envs.py).
CACHE_ENV = "VLLM_CACHE_ROOT"

#: Free space the volume must have before vLLM compiles onto it (a compiled model is tens to hundreds of MiB).
MIN_FREE_BYTES = 1 << 30

#: One block written and synced: a full volume or an exhausted quota refuses it where an empty file fits.
PROBE_BYTES = 64 * 1024


def place(env: MutableMapping[str, str] | None = None, volume: Path = VOLUME) -> str | None:
    """Set ``VLLM_CACHE_ROOT`` to the volume's cache folder when it can take it; the root chosen, or None
    when vLLM keeps the endpoint's setting or its own default. Call before vLLM is imported."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV, "").strip():
        log.info("vLLM compile cache: %s=%s (set by the endpoint)", CACHE_ENV, env[CACHE_ENV])
        return None
    if not volume.is_dir():
        log.info("vLLM compile cache: vLLM's default (no network volume at %s)", volume)
        return None
    root = volume / CACHE_FOLDER
    problem = _unusable(root)
    if problem:
        log.warning("vLLM compile cache: vLLM's default, not %s (%s)", root, problem)
        return None
    env[CACHE_ENV] = str(root)
    log.info("vLLM compile cache: %s on the network volume (kept across cold starts)", root)
    return str(root)


def _unusable(root: Path) -> str | None:
    """Why vLLM could not write its cache under ``root``, or None."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-") as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
        free = shutil.disk_usage(root).free
    except OSError as error:
        return f"not writable: {error.strerror or error}"
    if free < MIN_FREE_BYTES:
        return f"nearly full: {free >> 20} MiB free, {MIN_FREE_BYTES >> 20} MiB needed"
    return None
