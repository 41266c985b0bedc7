"""The worker-facing API: what the runpod SDK's production job loop calls (job take, results, stream, stop, ping).

URLs are the ones handed to each worker process in RUNPOD_WEBHOOK_* (see workers.WorkerPool._runpod_env);
the SDK appends its own query parameters (``job_in_progress``, ``batch_size``, ``isStream``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from devkit.endpoint.workers import WorkerPool

log = logging.getLogger(__name__)

#: How long a job take or a job-stop poll is held open while there is nothing to hand out
#: (below the SDK's own 90 s limit on both).
HOLD_S = 20.0

router = APIRouter(prefix="/_worker/{name}", include_in_schema=False)


def _pool(request: Request, name: str, worker_id: str) -> WorkerPool:
    pool = request.app.state.pools.get(name)
    if pool is None or pool.seen(worker_id) is None:
        # Only processes this endpoint started know their (random) worker id.
        raise HTTPException(status_code=404, detail="unknown worker")
    return pool


def _no_content() -> Response:
    return Response(status_code=204)


@router.get("/job-take/{worker_id}")
async def take_one(request: Request, name: str, worker_id: str) -> Response:
    pool = _pool(request, name, worker_id)
    jobs = await pool.queue.take_waiting(worker_id, 1, HOLD_S, lambda: pool.accepting(worker_id))
    return JSONResponse(jobs[0].wire()) if jobs else _no_content()


@router.get("/job-take-batch/{worker_id}")
async def take_batch(request: Request, name: str, worker_id: str, batch_size: int = 1) -> Response:
    pool = _pool(request, name, worker_id)
    jobs = await pool.queue.take_waiting(worker_id, max(1, batch_size), HOLD_S, lambda: pool.accepting(worker_id))
    return JSONResponse([job.wire() for job in jobs]) if jobs else _no_content()


@router.get("/job-stop/{worker_id}")
async def stop_signals(request: Request, name: str, worker_id: str) -> Response:
    pool = _pool(request, name, worker_id)
    stops = await pool.queue.stops_waiting(worker_id, HOLD_S, lambda: pool.accepting(worker_id))
    return JSONResponse({"jobsToStop": stops}) if stops else _no_content()


@router.post("/job-done/{worker_id}/{job_id}")
async def job_done(
    request: Request, name: str, worker_id: str, job_id: str, is_stream: str = Query("false", alias="isStream")
) -> Response:
    pool = _pool(request, name, worker_id)
    body = await _json_body(request)
    if body.get("status") == "IN_PROGRESS":  # progress_update(); may arrive after the result: then ignored
        pool.queue.set_progress(job_id, worker_id, body.get("output"))
    else:
        if not pool.queue.finish(job_id, worker_id, body, is_stream=is_stream == "true"):
            log.info("%s: dropped the result of job %s from %s (cancelled, timed out or reassigned)",
                     name, job_id, worker_id)
        if body.get("stopPod"):  # refresh_worker: the SDK stops after this job; RunPod replaces the worker
            pool.retire(worker_id)
    return JSONResponse({})


@router.post("/job-stream/{worker_id}/{job_id}")
async def job_stream(request: Request, name: str, worker_id: str, job_id: str) -> Response:
    pool = _pool(request, name, worker_id)
    body = await _json_body(request)
    pool.queue.add_chunk(job_id, worker_id, body.get("output"))
    return JSONResponse({})


@router.get("/ping/{worker_id}")
async def ping(request: Request, name: str, worker_id: str) -> Response:
    """The SDK's heartbeat (RUNPOD_WEBHOOK_PING): a worker that stops sending it is frozen (workers.PING_TIMEOUT_S)."""
    pool = request.app.state.pools.get(name)
    if pool is None or pool.pinged(worker_id) is None:
        raise HTTPException(status_code=404, detail="unknown worker")
    return JSONResponse({})


async def _json_body(request: Request) -> dict[str, Any]:
    # The SDK posts JSON text under a form-urlencoded Content-Type.
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HTTPException(status_code=400, detail="body must be a JSON object")
    return body
