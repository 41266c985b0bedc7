"""The sdxl worker: loads SDXL once in setup(), then one job = inputs -> pipeline -> payload-checked result."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from shared import settings
from shared.errors import BadInput, NotReady
from shared.payload import Bucket, deliver, response_limit
from shared.validation import parse
from worker_sdxl import inputs, outputs
from worker_sdxl.progress import DEFAULT_INTERVAL_S, StepProgress, runpod_progress_update

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised from the step callback of a cancelled job: unwinds the pipeline; nobody awaits the result."""


class SdxlWorker:
    #: One job at a time: a diffusion step already fills the GPU, and two jobs would need twice the memory.
    max_concurrency = 1

    #: Read into the page cache while setup() imports (shared.prefetch).
    weight_folders = ("MODEL_PATH", "VAE_PATH", "REFINER_PATH")

    def __init__(self, send_progress=runpod_progress_update):
        self.send_progress = send_progress
        self.pipelines = None

    def setup(self) -> None:
        """Read settings (a bad one is a StartupError, answered to every job), then load the model onto the GPU
        and warm it up."""
        model_path = settings.folder("MODEL_PATH", holds="model_index.json")
        vae_path = settings.folder("VAE_PATH", required=False, holds="config.json")
        refiner_path = settings.folder("REFINER_PATH", required=False, holds="model_index.json")
        self.response_limit = response_limit()
        self.bucket = Bucket.from_env()
        self.progress_interval_s = settings.number(
            "PROGRESS_INTERVAL_S", DEFAULT_INTERVAL_S, minimum=0.0, maximum=3600.0, kind=float
        )
        from worker_sdxl import pipeline  # torch + diffusers: imported by setup, never at import time

        self.pipelines = pipeline.load(model_path, vae_path=vae_path, refiner_path=refiner_path)
        self._warm_up()
        log.info("response limit %d bytes; bucket uploads %s", self.response_limit,
                 "on" if self.bucket else "off (OUTPUT_TOO_LARGE over the limit)")

    def _warm_up(self) -> None:
        """One small step so the first job does not pay for CUDA kernel selection and allocator growth."""
        started = time.perf_counter()
        job = inputs.resolve(inputs.Input(prompt="warm-up", width=256, height=256, num_inference_steps=1, seed=0))
        self.pipelines.generate(job, on_step=lambda *_: None)
        log.info("warm-up took %.2f s", time.perf_counter() - started)

    async def handler(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run the job in a thread (the event loop keeps serving the SDK); when RunPod cancels the job,
        the pipeline stops at its next step instead of holding the GPU until it would have finished."""
        if self.pipelines is None:
            raise NotReady("the model is not loaded")
        cancelled = threading.Event()
        try:
            return await asyncio.to_thread(self._run, job, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _run(self, job: dict[str, Any], cancelled: threading.Event) -> dict[str, Any]:
        started = time.perf_counter()
        request = parse(inputs.Input, job.get("input"))
        bucket = Bucket.from_job(job) or self.bucket  # the request's s3Config over the endpoint's bucket
        if request.refine and self.pipelines.refiner is None:
            raise BadInput.field("refine", "this endpoint has no refiner baked in (REFINER_PATH)", True)
        resolved = inputs.resolve(request)
        prepared = time.perf_counter()
        progress = StepProgress(job, self.send_progress, self.progress_interval_s)

        def on_step(stage: str, step: int, steps: int) -> None:
            if cancelled.is_set():
                raise Cancelled(f"job {job.get('id')} was cancelled at {stage} step {step}/{steps}")
            progress(stage, step, steps)

        images = self.pipelines.generate(resolved, on_step)
        generated = time.perf_counter()
        files = outputs.encode(images, resolved)
        encoded = time.perf_counter()
        timings = {
            "prepare_s": prepared - started,
            "inference_s": generated - prepared,
            "encode_s": encoded - generated,
            "total_s": encoded - started,
        }
        return deliver(
            str(job.get("id", "job")), files, outputs.renderer(resolved, timings),
            data_uri=request.data_uri, limit=self.response_limit, bucket=bucket,
        )
