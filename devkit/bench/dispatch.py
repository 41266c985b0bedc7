"""Dispatch: trivial progress-demo jobs, one worker at concurrency 1, a sequential client, both job loops.

The job (1 step of 0 s) does next to nothing, so a job's round trip through the local endpoint is the
per-job overhead: the client's /runsync, the worker's job take, the streamed chunks and the result post,
and however long the job loop idles between jobs. Baseline: the runpod SDK's stock loop
(``WORKER_JOB_LOOP=sdk``), in the same run. Jobs of 100 steps then give the cost of one streamed chunk
(the SDK posts each chunk and waits for the answer before the handler goes on).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from devkit.bench import through_endpoint
from devkit.bench.results import BenchResult, Figure, Target, faster

WORKER = "progress-demo"
JOB = {"input": {"steps": 1, "step_seconds": 0}}
#: Chunks (steps) of the jobs that price one streamed chunk.
CHUNKS = 100
#: The issue's bar for the per-job overhead of the event-driven loop.
OVERHEAD_TARGET_MS = 20.0


def measure(loop: str, jobs: int, warmup: int = 2, chunk_jobs: int = 0) -> dict[str, Any]:
    """Round trips of ``jobs`` sequential trivial jobs through a fresh endpoint whose worker runs ``loop``;
    with ``chunk_jobs``, also that many jobs of CHUNKS chunks each, to price one streamed chunk."""
    from shared.job_loop import LOOP_ENV  # imports runpod: only where a benchmark needs it

    with through_endpoint.warm_worker(WORKER, env={"MAX_CONCURRENCY": "1", LOOP_ENV: loop}) as client:
        for _ in range(warmup):
            _run_one(client, JOB)
        started = time.perf_counter()
        trips = [_run_one(client, JOB) for _ in range(jobs)]
        total = time.perf_counter() - started
        chunked = [_run_one(client, {"input": {"steps": CHUNKS, "step_seconds": 0}}) for _ in range(chunk_jobs)]
    measured = {
        "loop": loop,
        "jobs": jobs,
        "jobs_per_s": jobs / total,
        "median_ms": statistics.median(trips) * 1000,
        "p90_ms": _quantile(trips, 0.9) * 1000,
        "max_ms": max(trips) * 1000,
    }
    if chunked:
        measured["per_chunk_ms"] = (statistics.median(chunked) - statistics.median(trips)) * 1000 / (CHUNKS - 1)
    return measured


def _run_one(client: httpx.Client, job: dict[str, Any]) -> float:
    started = time.perf_counter()
    reply = client.post("/runsync", json=job)
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
    return through_endpoint.unavailable(WORKER)


def run(quick: bool = False) -> BenchResult:
    sdk = measure("sdk", jobs=5 if quick else 10)
    event = measure("event", jobs=20 if quick else 100, chunk_jobs=2 if quick else 10)
    result = BenchResult("dispatch", details={"sdk": sdk, "event": event, "job": JOB})
    result.figures = [
        Figure("per-job overhead, median", event["median_ms"], "ms", sdk["median_ms"], "SDK loop",
               sdk["median_ms"] / event["median_ms"], "baseline / value",
               Target("value", "<", OVERHEAD_TARGET_MS)),
        Figure("per-job overhead, p90", event["p90_ms"], "ms", sdk["p90_ms"], "SDK loop",
               sdk["p90_ms"] / event["p90_ms"], "baseline / value"),
        faster("jobs/s, 1 worker, sequential", event["jobs_per_s"], "jobs/s", sdk["jobs_per_s"], "SDK loop"),
        Figure("per streamed chunk", event["per_chunk_ms"], "ms"),
    ]
    return result
