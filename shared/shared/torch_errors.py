"""torch's failures as worker errors (transformers and diffusers raise torch's types), and the one GPU-memory release.

Never imports torch itself: it reads the module the worker already imported, so a worker that does not
use torch never loads it through here.
"""

from __future__ import annotations

import gc
import logging
import sys

from shared.errors import DeviceFailure, GpuOutOfMemory, WorkerError

log = logging.getLogger(__name__)


def torch_error(exc: BaseException) -> WorkerError | None:
    """GPU_OUT_OF_MEMORY (memory released first) for CUDA's OOM, DEVICE_FAILURE for an accelerator error
    (a device-side assert: the CUDA context is unusable), None for anything else."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        # The traceback's frames hold the failed step's tensors: drop them so the memory can be freed now.
        exc.with_traceback(None)
        release_gpu_memory()
        return GpuOutOfMemory("the GPU ran out of memory for this job; try a smaller request")
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        return DeviceFailure("the GPU reported an unrecoverable error; this worker will be replaced")
    return None


def release_gpu_memory() -> None:
    """Collect the garbage a failed job left (its tensors) and hand torch's cached GPU blocks back to the
    driver, so the next job finds the memory. A no-op for what torch has not initialised."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        torch.cuda.empty_cache()
    except Exception:  # a broken device must not hide the failure that is being reported
        log.exception("could not free the GPU cache")
