"""OpenAI compatibility: /v2/<endpoint>/openai/v1/... becomes a job ``{"openai_route", "openai_input"}``.

The worker convention (what a worker serving OpenAI routes must do):

- Its handler gets ``job["input"] == {"openai_route": "/v1/chat/completions", "openai_input": <request body>}``
  (``openai_input`` is ``{}`` for a GET such as ``/v1/models``).
- ``"stream": true`` in the request: the handler is a generator that yields OpenAI chunk objects
  (a dict, e.g. one ``chat.completion.chunk``, or a list of them when it batches tokens). The endpoint
  writes ``data: <json>\\n\\n`` for each, in order, and ``data: [DONE]\\n\\n`` at the end.
- Otherwise the job's output is the HTTP response body. A generator handler yields exactly one chunk,
  the whole response object; its aggregated output ``[response]`` is unwrapped to ``response``.
- A failed job (shared.errors envelope) becomes an OpenAI error body, ``{"error": {"message", "type",
  "param", "code"}}``, with the HTTP status of its code (ERROR_STATUS). If a stream fails after its
  first chunk, the error object is sent as the last event before ``[DONE]``.
- A client that disconnects mid-request cancels its job, so the worker stops generating.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from devkit.endpoint.client_api import RUNSYNC_LIMIT_BYTES, check_key, pool_of
from devkit.endpoint.jobs import Job, JobQueue, Status
from shared import json_limits
from shared.errors import HTTP_STATUS, FieldProblem, WorkerError, read_envelope

#: HTTP status of each shared.errors code: each error type carries its own.
ERROR_STATUS = HTTP_STATUS
#: Waits never end on their own: the execution timeout ends every job.
_POLL_S = 30.0

router = APIRouter(prefix="/v2/{name}/openai", dependencies=[Depends(check_key)], tags=["OpenAI API"])


@router.api_route("/v1/{path:path}", methods=["GET", "POST"])
async def forward(request: Request, name: str, path: str) -> Response:
    queue = pool_of(request, name).queue
    body: Any = {}
    if request.method == "POST":
        raw = await request.body()
        if len(raw) > RUNSYNC_LIMIT_BYTES:
            return _error(413, f"request body over the limit of {RUNSYNC_LIMIT_BYTES} bytes", "INPUT_TOO_LARGE")
        try:
            body = json_limits.loads(raw) if raw else {}
        except json_limits.InvalidJson as exc:
            return _error(400, f"request body {exc}", "BAD_INPUT")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "BAD_INPUT")
    job_input = {"openai_route": f"/v1/{path}", "openai_input": body}
    refusal = _refusal(job_input)
    if refusal is not None:
        return refusal
    streaming = body.get("stream") is True
    job = queue.submit(job_input, sync=not streaming)
    try:
        while not job.done and not (streaming and job.chunks):
            await job.changed.wait(_POLL_S)
    except asyncio.CancelledError:  # the client went away: free the worker
        queue.cancel(job.id)
        raise
    if streaming and job.chunks:
        return StreamingResponse(_events(queue, job), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    if job.status is not Status.COMPLETED:
        return _job_error(job)
    output = job.output
    if isinstance(output, list) and len(output) == 1:  # a generator's aggregated single response
        output = output[0]
    return JSONResponse(output)


async def _events(queue: JobQueue, job: Job) -> AsyncIterator[str]:
    sent = 0
    try:
        while True:
            while sent < len(job.chunks):
                chunk = job.chunks[sent]
                for payload in chunk if isinstance(chunk, list) else [chunk]:
                    yield f"data: {json.dumps(payload)}\n\n"
                sent += 1
            if job.done:
                break
            await job.changed.wait(_POLL_S)
        if job.status is not Status.COMPLETED:
            yield f"data: {json.dumps(_error_body(job)[1])}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        if not job.done:  # the client went away: free the worker
            queue.cancel(job.id)


def _job_error(job: Job) -> JSONResponse:
    status, body = _error_body(job)
    return JSONResponse(body, status_code=status)


def _error_body(job: Job) -> tuple[int, dict[str, Any]]:
    if job.status is Status.CANCELLED:
        return _error_parts(409, "the request was cancelled", "CANCELLED")
    envelope = read_envelope(job.error)
    if envelope is None:
        # Not a shared.errors envelope (the SDK's own exception format, or plain text).
        return _error_parts(WorkerError.http_status, (job.error or "the job failed")[:2000], WorkerError.code)
    problems = [_problem_body(problem) for problem in envelope.problems]
    status, body = _error_parts(ERROR_STATUS.get(envelope.code, WorkerError.http_status), envelope.message,
                                envelope.code, param=_openai_param(problems[0]["field"]) if problems else None)
    if problems:
        body["error"]["problems"] = problems
    return status, body


def _problem_body(problem: FieldProblem) -> dict[str, Any]:
    body = {"field": problem.field, "reason": problem.reason}
    if problem.value is not None:
        body["value"] = problem.value
    return body


def _refusal(job_input: dict[str, Any]) -> JSONResponse | None:
    """A 400 for a body the worker would refuse before reading it: not strict JSON, or past a shape limit
    (shared.json_limits), measured on the job input exactly as the worker measures it. (A ``stream`` that is
    not a boolean is the worker's to refuse, as any other field: it answers BAD_INPUT, here a 400.)"""
    problem = json_limits.first_problem(job_input)
    if problem is not None:
        field = problem.field()
        return _error(400, f"{_openai_param(field)} {problem.reason}", "BAD_INPUT", param=_openai_param(field))
    return None


def _openai_param(field: str | None) -> str | None:
    """The request body's own field name: the client sent ``temperature``, the worker saw
    ``openai_input.temperature``."""
    return field.removeprefix("openai_input.") if field else field


def _error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    status, body = _error_parts(status, message, code, param=param)
    return JSONResponse(body, status_code=status)


def _error_parts(status: int, message: str, code: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
    kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}
