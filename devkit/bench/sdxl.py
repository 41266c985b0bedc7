"""sdxl: seconds per image through the worker (local endpoint, job loop, encoding) against the seed's
handler (devkit.bench.seed.SeedSdxl) on the same pipeline folder, same size, steps and guidance.

The worker's handler is also timed in-process (no job loop, progress updates dropped), which splits a
difference between the pipeline as the worker runs it and the serving path around it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from devkit.bench import through_endpoint
from devkit.bench.jobs import IMAGE_PROMPT
from devkit.bench.results import BenchResult, faster
from devkit.bench.seed import SeedSdxl
from devkit.bench.timing import interleaved

WORKER = "sdxl"


def request(size: int, steps: int) -> dict[str, Any]:
    return {"prompt": IMAGE_PROMPT, "width": size, "height": size, "num_inference_steps": steps, "guidance_scale": 5.0,
            "seed": 1, "format": "png"}


def seed_round(size: int, steps: int):
    from devkit.fixtures import for_worker

    handler = SeedSdxl(for_worker(WORKER)).handler
    job = {"input": {"prompt": IMAGE_PROMPT, "width": size, "height": size, "steps": steps}}

    def one_image() -> None:
        handler(job)

    return one_image


def in_process_round(size: int, steps: int):
    from devkit.fixtures import for_worker

    folder = str(through_endpoint.REPO / "workers" / WORKER)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from worker_sdxl.worker import SdxlWorker  # the worker's package, not this module

    os.environ["MODEL_PATH"] = str(for_worker(WORKER))
    worker = SdxlWorker(send_progress=lambda job, update: None)
    worker.setup()
    job = {"id": "bench", "input": request(size, steps)}

    def one_image() -> None:
        asyncio.run(worker.handler(job))

    return one_image


def unavailable() -> str | None:
    return through_endpoint.unavailable(WORKER)


def run(quick: bool = False) -> BenchResult:
    size, steps, rounds = (64, 2, 1) if quick else (256, 8, 3)
    variants = {"seed": seed_round(size, steps), "worker_handler_in_process": in_process_round(size, steps)}
    with through_endpoint.warm_worker(WORKER, env={"MAX_CONCURRENCY": "1"}) as client:

        def one_image() -> None:
            through_endpoint.runsync(client, request(size, steps))

        variants["worker"] = one_image
        measured = interleaved(variants, rounds)
    result = BenchResult("sdxl", details={"size": size, "steps": steps, **measured,
                                          "model": "tiny-sdxl fixture (fp32, CPU)"})
    seed_s = measured["seed"]["seconds"]
    result.figures = [
        faster(f"{size}x{size}, {steps} steps, through the worker", measured["worker"]["seconds"], "s/image",
               seed_s, "seed handler", higher_is_better=False),
        faster(f"{size}x{size}, {steps} steps, worker handler in-process",
               measured["worker_handler_in_process"]["seconds"], "s/image", seed_s, "seed handler",
               higher_is_better=False),
    ]
    return result
