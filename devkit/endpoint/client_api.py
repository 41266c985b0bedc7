"""The client-facing RunPod API: /v2/<endpoint>/run, runsync, status, status-sync, stream, cancel, retry,
purge-queue, health.

Paths and query parameters are those of RunPod's docs ("Send API requests", "Operation reference") and
of its official clients: runpod-python (runner.py, asyncio_runner.py), runpod/js-sdk (``/runsync?wait=``,
``/status-sync/<id>?wait=``) and runpod/go-sdk (the same, plus ``/stream/<id>?wait=``, POST for status).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from devkit.endpoint import job_request
from devkit.endpoint.jobs import Job, JobQueue
from devkit.endpoint.workers import WorkerPool
from shared import json_limits

#: RunPod's request payload limits.
RUN_LIMIT_BYTES = 10 * 1024 * 1024
RUNSYNC_LIMIT_BYTES = 20 * 1024 * 1024
#: /runsync and /status-sync wait this long by default, then answer the job's current status for the
#: client to poll; ``?wait=<ms>`` sets it within RUNSYNC_MIN_WAIT_MS..RUNSYNC_MAX_WAIT_MS (RunPod docs,
#: "Operation reference", /runsync: "adjustable via ?wait=x parameter, 1000-300000 ms"; values outside
#: are clamped into it, as the JS SDK clamps its own).
RUNSYNC_DEFAULT_WAIT_MS = 90_000
RUNSYNC_MIN_WAIT_MS = 1_000
RUNSYNC_MAX_WAIT_MS = 300_000
#: /stream holds a call open this long while there is no new chunk, so polling clients get chunks promptly
#: (``?wait=<ms>``, which the Go SDK sends, holds it up to that long instead).
STREAM_HOLD_S = 2.0
MIN_EXECUTION_TIMEOUT_MS = job_request.MIN_EXECUTION_TIMEOUT_MS


class ApiError(HTTPException):
    """An HTTP error answered as RunPod does: ``{"error": "<message>"}``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code=status_code, detail=message)


def check_key(request: Request) -> None:
    """Bearer-key auth when the endpoint has a key: ``Authorization: Bearer <key>`` (the SDKs) or the bare
    key (RunPod's curl examples send ``authorization: $RUNPOD_API_KEY``)."""
    expected = request.app.state.api_key
    if expected is None:
        return
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
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
async def runsync(request: Request, name: str, wait: str | None = None) -> JSONResponse:
    pool = pool_of(request, name)
    wait_s = sync_wait_s(wait)
    job = submit(pool.queue, await read_body(request, RUNSYNC_LIMIT_BYTES, "/runsync"), sync=True)
    await wait_done(job, wait_s)
    return JSONResponse(view_of(job))


@router.api_route("/status/{job_id}", methods=["GET", "POST"])
async def status(request: Request, name: str, job_id: str, ttl: str | None = None,
                 wait: str | None = None) -> JSONResponse:
    """The job's status; ``?wait=<ms>`` first waits for it to end (as /status-sync), ``?ttl=<ms>`` then
    has it deleted that long from now (RunPod docs, "Operation reference", /status: "?ttl=6000 sets the
    TTL to 6 seconds")."""
    queue = pool_of(request, name).queue
    job = job_of(queue, job_id)
    ttl_s = None if ttl is None else ms_param("ttl", ttl, 1, job_request.MAX_POLICY_MS) / 1000
    if wait is not None:
        await wait_done(job, sync_wait_s(wait))
    body = view_of(job)
    if ttl_s is not None:
        queue.set_ttl(job_id, ttl_s)
    return JSONResponse(body)


@router.api_route("/status-sync/{job_id}", methods=["GET", "POST"])
async def status_sync(request: Request, name: str, job_id: str, wait: str | None = None) -> JSONResponse:
    """/status that first waits up to ``?wait=<ms>`` (default 90 s) for the job to end: what the JS and Go
    SDKs poll after a /runsync that answered before the job ended."""
    job = job_of(pool_of(request, name).queue, job_id)
    await wait_done(job, sync_wait_s(wait))
    return JSONResponse(view_of(job))


@router.api_route("/stream/{job_id}", methods=["GET", "POST"])
async def stream(request: Request, name: str, job_id: str, wait: str | None = None) -> JSONResponse:
    """The chunks yielded since the last /stream call (each chunk is handed out once)."""
    queue = pool_of(request, name).queue
    job = job_of(queue, job_id)
    hold = STREAM_HOLD_S if wait is None else min(ms_param("wait", wait, 0, 2**63), RUNSYNC_MAX_WAIT_MS) / 1000
    deadline = time.monotonic() + hold
    while (not job.done and not job.deleted and job.delivered == len(job.chunks)
           and (left := deadline - time.monotonic()) > 0):
        await job.changed.wait(left)
    view_of(job)  # deleted while held: 404
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


@router.post("/retry/{job_id}")
async def retry(request: Request, name: str, job_id: str) -> JSONResponse:
    """Queue a FAILED or TIMED_OUT job again, same id and input (RunPod docs, "Operation reference")."""
    queue = pool_of(request, name).queue
    job = job_of(queue, job_id)
    if queue.retry(job_id) is None:
        raise ApiError(400, f"job {job_id!r} is {job.status}: only FAILED or TIMED_OUT jobs can be retried")
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


def view_of(job: Job) -> dict[str, Any]:
    """The job's /status body, or the 404 of a job deleted (TTL, retention) while a request waited on it."""
    if job.deleted:
        raise ApiError(404, f"job {job.id!r} does not exist (unknown, or its result expired)")
    return job.view()


async def wait_done(job: Job, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not job.done and not job.deleted and (left := deadline - time.monotonic()) > 0:
        await job.changed.wait(left)


def ms_param(name: str, value: str, low: int, high: int) -> int:
    """A query parameter in whole milliseconds, refused with a 400 unless it is one."""
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"?{name}= must be a whole number of milliseconds, got {value[:40]!r}") from None
    if not low <= number <= high:
        raise ApiError(400, f"?{name}= must be within {low}..{high} ms, got {number}")
    return number


def sync_wait_s(wait: str | None) -> float:
    """Seconds a /runsync or /status-sync waits: ``?wait=<ms>`` clamped into RunPod's range, else 90 s."""
    if wait is None:
        return RUNSYNC_DEFAULT_WAIT_MS / 1000
    clamped = min(max(ms_param("wait", wait, 0, 2**63), RUNSYNC_MIN_WAIT_MS), RUNSYNC_MAX_WAIT_MS)
    return clamped / 1000


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
    try:
        parsed = job_request.parse(body)
    except job_request.BadRequest as exc:
        raise ApiError(400, str(exc)) from None
    return queue.submit(parsed.input, webhook=parsed.webhook, sync=sync,
                        execution_timeout=parsed.execution_timeout_s, ttl=parsed.ttl_s,
                        low_priority=parsed.low_priority, s3_config=parsed.s3Config)
