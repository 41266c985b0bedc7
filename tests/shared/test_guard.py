"""shared.guard: every handler kind, every failure into the envelope, the worker kept serving."""

from __future__ import annotations

import asyncio
import json
import logging
import signal

import torch

from shared import guard as guard_module
from shared.errors import BadInput, DeviceFailure, NotReady
from shared.guard import guard

JOB = {"id": "job-1", "input": {}}


def run(handler, job=JOB):
    """Drive a guarded handler the way the runpod SDK does: await it, or collect its chunks."""

    async def drive():
        result = handler(job)
        if hasattr(result, "__aiter__"):
            return [chunk async for chunk in result]
        return await result

    return asyncio.run(drive())


def envelope(result: dict) -> dict:
    assert isinstance(result["error"], str), "runpod-python 299: a non-string error can show as COMPLETED"
    return json.loads(result["error"])


def test_guard_asks_the_engine_mapper():
    def handler(job):
        raise LookupError("engine-specific")

    result = run(guard(handler, lambda exc: NotReady("engine busy") if isinstance(exc, LookupError) else None))
    assert envelope(result)["code"] == "NOT_READY"


def test_sync_handler_failure_is_a_failed_job_with_a_string_error():
    def handler(job):
        raise BadInput.field("steps", "must be positive", -1)

    body = envelope(run(guard(handler)))
    assert body["code"] == "BAD_INPUT"
    assert body["problems"][0] == {"field": "steps", "reason": "must be positive", "value": -1}


def test_sync_handler_success_passes_through():
    assert run(guard(lambda job: {"ok": job["id"]})) == {"ok": "job-1"}


def test_async_handler_failure_is_a_failed_job():
    async def handler(job):
        raise NotReady("model not loaded")

    assert envelope(run(guard(handler)))["code"] == "NOT_READY"


def test_async_handler_success_passes_through():
    async def handler(job):
        return 42

    assert run(guard(handler)) == 42


def test_device_failure_sets_refresh_worker_for_sync_and_async_handlers():
    def handler(job):
        raise DeviceFailure("gone")

    result = run(guard(handler))
    assert result["refresh_worker"] is True
    assert envelope(result)["code"] == "DEVICE_FAILURE"


def test_generator_failing_midway_yields_its_chunks_then_the_error():
    def handler(job):
        yield {"step": 0}
        yield {"step": 1}
        raise ValueError("boom")

    chunks = run(guard(handler))
    assert chunks[:2] == [{"step": 0}, {"step": 1}]
    assert envelope(chunks[2])["code"] == "INTERNAL"
    assert len(chunks) == 3


def test_async_generator_failing_midway_yields_the_error_last():
    async def handler(job):
        yield {"step": 0}
        raise BadInput.field("x", "bad")

    chunks = run(guard(handler))
    assert chunks[0] == {"step": 0}
    assert envelope(chunks[1])["code"] == "BAD_INPUT"


def test_guard_keeps_the_handler_kind_the_sdk_dispatches_on():
    import inspect

    def sync_gen(job):
        yield 1

    async def async_gen(job):
        yield 1

    async def coro(job):
        return 1

    assert inspect.isasyncgenfunction(guard(sync_gen))
    assert inspect.isasyncgenfunction(guard(async_gen))
    assert inspect.iscoroutinefunction(guard(coro))
    assert inspect.iscoroutinefunction(guard(lambda job: 1))


def test_generator_device_failure_stops_the_worker_after_posting_the_error(monkeypatch):
    kills = []
    monkeypatch.setattr(guard_module, "_REPLACE_DELAY_S", 0.0)
    monkeypatch.setattr(guard_module.os, "kill", lambda pid, sig: kills.append(sig))

    async def handler(job):
        yield {"step": 0}
        raise torch.AcceleratorError("illegal memory access")

    chunks = run(guard(handler))
    assert envelope(chunks[-1])["code"] == "DEVICE_FAILURE"
    for _ in range(100):
        if kills:
            break
        asyncio.run(asyncio.sleep(0.01))
    assert kills == [signal.SIGTERM]


def test_unexpected_exception_traceback_goes_to_the_log_not_the_client(caplog):
    def handler(job):
        raise RuntimeError("internal detail 1234")

    with caplog.at_level(logging.ERROR, logger="shared.guard"):
        body = envelope(run(guard(handler)))
    assert "1234" not in json.dumps(body)
    assert "internal detail 1234" in caplog.text
    assert "Traceback" in caplog.text


def test_sync_handlers_run_off_the_event_loop():
    """A long sync job must not block the SDK's loop (heartbeats, job-stop polling, other jobs)."""
    import threading

    loop_thread = threading.get_ident()
    seen = []
    result = run(guard(lambda job: seen.append(threading.get_ident()) or "done"))
    assert result == "done"
    assert seen and seen[0] != loop_thread


def test_cancelled_sync_generator_job_stops_pulling_steps():
    pulled = []

    def handler(job):
        for i in range(1000):
            pulled.append(i)
            yield i

    async def drive():
        agen = guard(handler)(JOB)
        await agen.__anext__()
        await agen.aclose()

    asyncio.run(drive())
    assert len(pulled) < 5


# --- bounded refusals (issue 19) --------------------------------------------------------------------------
