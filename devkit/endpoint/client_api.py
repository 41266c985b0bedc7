"""The client-facing RunPod API: /v2/<endpoint>/run, runsync, status, stream, cancel, health, purge-queue."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from devkit.endpoint.jobs import Job, JobQueue
from devkit.endpoint.workers import WorkerPool
from shared import json_limits

#: RunPod's request payload limits.
RUN_LIMIT_BYTES = 10 * 1024 * 1024
RUNSYNC_LIMIT_BYTES = 20 * 1024 * 1024
#: /runsync waits this long by default (``?wait=<ms>`` changes it, up to RUNSYNC_MAX_WAIT_MS), then
#: answers with the job's current status for the client to poll, as RunPod does.
RUNSYNC_DEFAULT_WAIT_MS = 90_000
RUNSYNC_MAX_WAIT_MS = 300_000
#: /stream holds a call open this long while there is no new chunk, so polling clients get chunks promptly.
STREAM_HOLD_S = 2.0
#: Smallest per-request execution timeout (``policy.executionTimeout``), as on RunPod.
MIN_EXECUTION_TIMEOUT_MS = 5_000


class ApiError(HTTPException):
    """An HTTP error answered as RunPod does: ``{"error": "<message>"}``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code=status_code, detail=message)


def check_key(request: Request) -> None:
    """Bearer-key auth when the endpoint has a key (``Authorization: Bearer <key>``; a bare key also works)."""
    expected = request.app.state.api_key
    if expected is None:
        return
    given = request.headers.get("authorization", "")
    if given.removeprefix("Bearer ").strip() != expected:
        raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'")


def pool_of(request: Request, name: str) -> WorkerPool:
    pool = request.app.state.pools.get(name)
    if pool is None:
        known = ", ".join(sorted(request.app.state.pools)) or "none"
        raise ApiError(404, f"endpoint {name!r} does not exist here (endpoints: {known})")
    return pool


router = APIRouter(prefix="/v2/{name}", dependencies=[Depends(check_key)], tags=["RunPod API"])


@router.post("/run")
async def run(request: Request, name: str) -> JSONResponse:
    pool = pool_of(request, name)
    job = submit(pool.queue, await read_body(request, RUN_LIMIT_BYTES, "/run"))
    return JSONResponse({"id": job.id, "status": str(job.status)})


@router.post("/runsync")
async def runsync(request: Request, name: str, wait: int = RUNSYNC_DEFAULT_WAIT_MS) -> JSONResponse:
    pool = pool_of(request, name)
    job = submit(pool.queue, await read_body(request, RUNSYNC_LIMIT_BYTES, "/runsync"), sync=True)
    await wait_done(job, min(max(wait, 0), RUNSYNC_MAX_WAIT_MS) / 1000)
    return JSONResponse(job.view())


@router.api_route("/status/{job_id}", methods=["GET", "POST"])
async def status(request: Request, name: str, job_id: str) -> JSONResponse:
    return JSONResponse(job_of(pool_of(request, name).queue, job_id).view())


@router.api_route("/stream/{job_id}", methods=["GET", "POST"])
async def stream(request: Request, name: str, job_id: str) -> JSONResponse:
    """The chunks yielded since the last /stream call (each chunk is handed out once)."""
    queue = pool_of(request, name).queue
    job = job_of(queue, job_id)
    deadline = time.monotonic() + STREAM_HOLD_S
    while not job.done and job.delivered == len(job.chunks) and (left := deadline - time.monotonic()) > 0:
        await job.changed.wait(left)
    body: dict[str, Any] = {"id": job.id, "status": str(job.status),
                            "stream": [{"output": chunk} for chunk in queue.take_stream(job)]}
    if job.error is not None:
        body["error"] = job.error
    return JSONResponse(body)


@router.post("/cancel/{job_id}")
async def cancel(request: Request, name: str, job_id: str) -> JSONResponse:
    queue = pool_of(request, name).queue
    job = job_of(queue, job_id)
    queue.cancel(job_id)
    return JSONResponse({"id": job.id, "status": str(job.status)})


@router.get("/health")
async def health(request: Request, name: str) -> JSONResponse:
    return JSONResponse(pool_of(request, name).health())


@router.post("/purge-queue")
async def purge_queue(request: Request, name: str) -> JSONResponse:
    removed = pool_of(request, name).queue.purge()
    return JSONResponse({"removed": removed, "status": "completed"})


def job_of(queue: JobQueue, job_id: str) -> Job:
    job = queue.get(job_id)
    if job is None:
        raise ApiError(404, f"job {job_id!r} does not exist (unknown, or its result expired)")
    return job


async def wait_done(job: Job, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not job.done and (left := deadline - time.monotonic()) > 0:
        await job.changed.wait(left)


async def read_body(request: Request, limit: int, route: str) -> dict[str, Any]:
    """The JSON request body, refused with a clear 413 past the route's payload limit, and with a 400
    (RunPod's ``{"error": ...}``) when it is not strict JSON or its input breaks a shape limit
    (shared.json_limits, the rules the worker holds every job input to): such a body would otherwise
    be queued, fail the worker's job take, and hang until the execution timeout."""
    too_large = (f"request body over {route}'s limit of {limit // (1024 * 1024)} MB ({limit} bytes)"
                 "; send large files by URL" + (" or use /runsync (20 MB)" if limit == RUN_LIMIT_BYTES else ""))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"{too_large}: got {declared} bytes")
    raw = await request.body()
    if len(raw) > limit:
        raise ApiError(413, f"{too_large}: got {len(raw)} bytes")
    try:
        body = json_limits.loads(raw)
    except json_limits.InvalidJson as exc:
        raise ApiError(400, f"request body {exc}") from None
    if not isinstance(body, dict) or "input" not in body:
        raise ApiError(400, 'request body must be a JSON object with an "input" field: {"input": {...}}')
    # The input is measured as the worker measures it (its own root is level 1); the rest of the body too.
    problem = json_limits.first_problem(body["input"], "input") or json_limits.first_problem(
        {key: value for key, value in body.items() if key != "input"})
    if problem is not None:
        raise ApiError(400, f"request body: {problem.field('body')} {problem.reason}")
    return body


def submit(queue: JobQueue, body: dict[str, Any], *, sync: bool = False) -> Job:
    webhook = body.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
        raise ApiError(400, "webhook must be an http(s) URL")
    return queue.submit(body["input"], webhook=webhook, sync=sync,
                        execution_timeout=_execution_timeout(body.get("policy")))


def _execution_timeout(policy: Any) -> float | None:
    """``policy.executionTimeout`` (ms) of the request, overriding the endpoint's execution timeout."""
    if policy is None:
        return None
    value = policy.get("executionTimeout") if isinstance(policy, dict) else None
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < MIN_EXECUTION_TIMEOUT_MS:
        raise ApiError(400, f"policy.executionTimeout must be a whole number of ms >= {MIN_EXECUTION_TIMEOUT_MS}")
    return value / 1000
