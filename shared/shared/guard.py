"""The runtime around every handler: each failure into the envelope, the input held to the JSON limits first.

`guard` wraps a handler of any kind (sync, async, generator, async generator) so that every failure
reaches the client as a FAILED job carrying the shared.errors envelope, including a generator that fails
midway (runpod-python issue 397), and so that every line logged while a job runs carries its id
(``shared.logs.job_context``). It first holds the job's input to strict JSON and the shape limits of
shared.json_limits. shared.serving wraps each worker's handler with it; a worker never calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from shared import json_limits
from shared.errors import BadInput, EngineErrorMapper, WorkerError, classify, failure_result
from shared.logs import job_context

log = logging.getLogger(__name__)

#: Seconds a streaming worker waits, after yielding a device failure, before it stops itself, so the
#: SDK can post the error first.
_REPLACE_DELAY_S = 2.0


def _report(exc: BaseException, job: Any, engine_error: EngineErrorMapper | None) -> WorkerError:
    error = classify(exc, engine_error)
    job_id = job.get("id") if isinstance(job, dict) else None
    if error is exc:
        log.warning("job %s failed: %s %s", job_id, error.code, error.message)
    else:
        # The client gets a safe message; the traceback stays here, in the worker log.
        log.error("job %s failed with an unexpected %s", job_id, type(exc).__name__, exc_info=exc)
    return error


def _stop_self_later() -> None:
    """Generators cannot pass ``refresh_worker``: stop gracefully once the error is posted."""
    timer = threading.Timer(_REPLACE_DELAY_S, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()


def guard(handler: Callable, engine_error: EngineErrorMapper | None = None) -> Callable:
    """Wrap a handler so that every failure reaches the client as a FAILED job with the envelope.

    ``engine_error`` maps the exceptions of the worker's engine (see `classify`). Sync handlers and sync
    generators run in a thread, so a long job never blocks the SDK's event loop (its heartbeats, job-stop
    polling and other concurrent jobs keep going).
    """
    if inspect.isasyncgenfunction(handler):
        return _guard_async_gen(handler, engine_error)
    if inspect.isgeneratorfunction(handler):
        return _guard_async_gen(_threaded_gen(handler), engine_error)
    if inspect.iscoroutinefunction(handler):
        return _guard_async(handler, engine_error)
    return _guard_async(_threaded(handler), engine_error)


def refuse_hostile_input(job: Any) -> None:
    """BadInput naming the rule when the job's input is not strict JSON or breaks a shape limit
    (shared.json_limits), checked before the handler sees it: a job can reach a worker however it was sent."""
    problem = json_limits.first_problem(job.get("input") if isinstance(job, dict) else None)
    if problem is not None:
        raise BadInput.field(problem.field(), problem.reason)


def _guard_async(handler: Callable, engine_error: EngineErrorMapper | None) -> Callable:
    @functools.wraps(handler)
    async def guarded(job: dict) -> Any:
        with job_context(job):
            try:
                refuse_hostile_input(job)
                return await handler(job)
            except Exception as exc:
                return failure_result(_report(exc, job, engine_error))

    return guarded


def _guard_async_gen(handler: Callable, engine_error: EngineErrorMapper | None) -> Callable:
    @functools.wraps(handler)
    async def guarded(job: dict):
        with job_context(job):
            try:
                refuse_hostile_input(job)
                async for chunk in handler(job):
                    yield chunk
            except Exception as exc:
                error = _report(exc, job, engine_error)
                if error.replace_worker:
                    _stop_self_later()
                yield {"error": error.to_job_error()}

    return guarded


def _threaded(handler: Callable) -> Callable:
    @functools.wraps(handler)
    async def in_thread(job: dict) -> Any:
        return await asyncio.to_thread(handler, job)

    return in_thread


_EXHAUSTED = object()


def _threaded_gen(handler: Callable) -> Callable:
    @functools.wraps(handler)
    async def in_thread(job: dict):
        iterator = handler(job)
        try:
            while (chunk := await asyncio.to_thread(next, iterator, _EXHAUSTED)) is not _EXHAUSTED:
                yield chunk
        finally:
            # A cancelled job leaves its generator paused: no thread calls next() on it again.
            # close() fails while a step is still running in its thread, and that step ends alone.
            with contextlib.suppress(ValueError):
                iterator.close()

    return in_thread
