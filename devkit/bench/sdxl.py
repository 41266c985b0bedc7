"""sdxl: seconds per image through the worker (local endpoint, job loop, encoding) against the seed's
handler (devkit.bench.seed.SeedSdxl) on the same pipeline folder, same size, steps and guidance."""

from __future__ import annotations

import time
from typing import Any

from devkit.bench import through_endpoint
from devkit.bench.results import BenchResult, faster
from devkit.bench.seed import SeedSdxl

WORKER = "sdxl"
PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def request(size: int, steps: int) -> dict[str, Any]:
    return {"prompt": PROMPT, "width": size, "height": size, "num_inference_steps": steps, "guidance_scale": 5.0,
            "seed": 1, "format": "png"}


def seconds_per_image(one_image, rounds: int) -> dict[str, Any]:
    one_image()  # warm-up
    measured = []
    for _ in range(rounds):
        started = time.perf_counter()
        one_image()
        measured.append(time.perf_counter() - started)
    return {"seconds": min(measured), "rounds_s": [round(s, 3) for s in measured]}


def seed(size: int, steps: int, rounds: int) -> dict[str, Any]:
    from devkit.fixtures import for_worker

    handler = SeedSdxl(for_worker(WORKER)).handler
    job = {"input": {"prompt": PROMPT, "width": size, "height": size, "steps": steps}}
    return seconds_per_image(lambda: handler(job), rounds)


def through_worker(size: int, steps: int, rounds: int) -> dict[str, Any]:
    with through_endpoint.warm_worker(WORKER, env={"MAX_CONCURRENCY": "1"}) as client:
        return seconds_per_image(lambda: through_endpoint.runsync(client, request(size, steps)), rounds)


def unavailable() -> str | None:
    return through_endpoint.unavailable(WORKER)


def run(quick: bool = False) -> BenchResult:
    size, steps, rounds = (64, 2, 1) if quick else (256, 8, 3)
    baseline = seed(size, steps, rounds)
    worker = through_worker(size, steps, rounds)
    result = BenchResult("sdxl", details={"size": size, "steps": steps, "seed": baseline, "worker": worker,
                                          "model": "tiny-sdxl fixture (fp32, CPU)"})
    result.figures = [faster(f"{size}x{size}, {steps} steps", worker["seconds"], "s/image", baseline["seconds"],
                             "seed handler", higher_is_better=False)]
    return result
