"""Dispatch: trivial progress-demo jobs, one worker at concurrency 1, a sequential client, both job loops.

The job (1 step of 0 s) does next to nothing, so a job's round trip through the local endpoint is the
per-job overhead: the client's /runsync, the worker's job take, the streamed chunks and the result post,
and however long the job loop idles between jobs. Baseline: the runpod SDK's stock loop
(``WORKER_JOB_LOOP=sdk``), in the same run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from devkit.bench.results import BenchResult, Figure, Target, faster
from devkit.bench.through_endpoint import QUIET

WORKER = "progress-demo"
JOB = {"input": {"steps": 1, "step_seconds": 0}}
#: The issue's bar for the per-job overhead of the event-driven loop.
OVERHEAD_TARGET_MS = 20.0


def measure(loop: str, jobs: int, warmup: int = 2) -> dict[str, Any]:
    """Round trips of ``jobs`` sequential trivial jobs through a fresh endpoint whose worker runs ``loop``."""
    from devkit.endpoint import LocalEndpoint
    from shared.job_loop import LOOP_ENV  # imports runpod: only where a benchmark needs it

    scaling = {"min_workers": 1, "max_workers": 1, "idle_timeout": 600}
    with LocalEndpoint(workers=[WORKER], env={WORKER: {"MAX_CONCURRENCY": "1", LOOP_ENV: loop, **QUIET}},
                       scaling={WORKER: scaling}) as endpoint:
        endpoint.wait_ready(WORKER, timeout=120)
        with httpx.Client(base_url=f"{endpoint.base_url}/v2/{WORKER}", timeout=60) as client:
            for _ in range(warmup):
                _run_one(client)
            started = time.perf_counter()
            trips = [_run_one(client) for _ in range(jobs)]
            total = time.perf_counter() - started
    return {
        "loop": loop,
        "jobs": jobs,
        "jobs_per_s": jobs / total,
        "median_ms": statistics.median(trips) * 1000,
        "p90_ms": _quantile(trips, 0.9) * 1000,
        "max_ms": max(trips) * 1000,
    }


def _run_one(client: httpx.Client) -> float:
    started = time.perf_counter()
    reply = client.post("/runsync", json=JOB)
    elapsed = time.perf_counter() - started
    reply.raise_for_status()
    body = reply.json()
    if body.get("status") != "COMPLETED":
        raise RuntimeError(f"a dispatch job did not complete: {body}")
    return elapsed


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def unavailable() -> str | None:
    return None


def run(quick: bool = False) -> BenchResult:
    sdk = measure("sdk", jobs=5 if quick else 10)
    event = measure("event", jobs=20 if quick else 100)
    result = BenchResult("dispatch", details={"sdk": sdk, "event": event, "job": JOB})
    result.figures = [
        Figure("per-job overhead, median", event["median_ms"], "ms", sdk["median_ms"], "SDK loop",
               sdk["median_ms"] / event["median_ms"], "baseline / value",
               Target("value", "<", OVERHEAD_TARGET_MS)),
        Figure("per-job overhead, p90", event["p90_ms"], "ms", sdk["p90_ms"], "SDK loop",
               sdk["p90_ms"] / event["p90_ms"], "baseline / value"),
        faster("jobs/s, 1 worker, sequential", event["jobs_per_s"], "jobs/s", sdk["jobs_per_s"], "SDK loop"),
    ]
    return result
