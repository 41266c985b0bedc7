"""Running a worker behind the local endpoint for a benchmark: one warm worker, quiet logs, job calls."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from devkit import manifest

REPO = Path(__file__).resolve().parents[2]

#: Workers log at WARN during benchmarks so the table stays readable (the same for every variant).
QUIET = {"RUNPOD_LOG_LEVEL": "WARN", "LOG_LEVEL": "WARNING"}


def unavailable(worker: str) -> str | None:
    """Why ``worker`` cannot be benchmarked in this tree (its package or the local endpoint is missing)."""
    if worker not in manifest.worker_names():
        return f"workers/{worker} is not in the tree yet"
    if not (REPO / "workers" / worker / "endpoint.toml").is_file():
        return f"workers/{worker}/endpoint.toml is not in the tree yet (the local endpoint needs it)"
    try:
        import devkit.endpoint  # noqa: F401
    except ImportError as exc:
        return f"devkit.endpoint is not importable: {exc}"
    return None


def worker_env(worker: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the local endpoint gives ``worker``'s processes (endpoint.toml env, MODEL_PATH,
    PYTHONPATH) plus ``overrides``, for baselines that must run on the same model with the same settings."""
    import os

    from devkit.endpoint import WorkerSpec

    spec = WorkerSpec.from_repo(worker).with_overrides(env={**QUIET, **(overrides or {})})
    return spec.process_env(dict(os.environ), {})


@contextlib.contextmanager
def warm_worker(worker: str, env: dict[str, str] | None = None, ready_timeout: float = 300) -> Iterator[httpx.Client]:
    """A local endpoint with one started worker; yields a client for ``/v2/<worker>``."""
    from devkit.endpoint import LocalEndpoint

    scaling = {"min_workers": 1, "max_workers": 1, "idle_timeout": 3600}
    with LocalEndpoint(workers=[worker], env={worker: {**QUIET, **(env or {})}}, scaling={worker: scaling}) as ep:
        ep.wait_ready(worker, timeout=ready_timeout)
        with httpx.Client(base_url=f"{ep.base_url}/v2/{worker}", timeout=ready_timeout) as client:
            yield client


def runsync(client: httpx.Client, job_input: dict[str, Any]) -> Any:
    """The output of one job, or an error naming why it did not complete."""
    reply = client.post("/runsync", json={"input": job_input})
    reply.raise_for_status()
    body = reply.json()
    while body.get("status") in ("IN_QUEUE", "IN_PROGRESS"):  # /runsync answered before the job ended
        time.sleep(0.05)
        body = client.get(f"/status/{body['id']}").json()
    if body.get("status") != "COMPLETED":
        raise RuntimeError(f"job did not complete: {str(body)[:500]}")
    return body.get("output")


def concurrently(client: httpx.Client, inputs: list[dict[str, Any]]) -> tuple[list[Any], float]:
    """Outputs of all ``inputs`` sent at once (one thread each), and the wall time until the last."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
        outputs = list(pool.map(lambda job_input: runsync(client, job_input), inputs))
    return outputs, time.perf_counter() - started
