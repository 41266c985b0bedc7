"""The llm-hf worker loaded once per session from the tiny Llama, and helpers to run jobs in-process."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.guard import guard
from worker_llm_hf.worker import LlmHf


@pytest.fixture(scope="session")
def worker(tiny_llm_dir) -> LlmHf:
    """setup() with the production load call, MODEL_PATH pointing at the tiny model."""
    previous = os.environ.get("MODEL_PATH")
    os.environ["MODEL_PATH"] = str(tiny_llm_dir)
    try:
        llm = LlmHf()
        llm.setup()
    finally:
        if previous is None:
            del os.environ["MODEL_PATH"]
        else:
            os.environ["MODEL_PATH"] = previous
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def served(worker) -> str:
    return worker.loaded.served_name


async def chunks_of(handler: Callable, job_input: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in handler({"id": "job", "input": job_input})]


@pytest.fixture(scope="session")
def job_chunks(worker) -> Callable[[Any], Any]:
    """A coroutine collecting one job's chunks, for tests that run jobs side by side on one event loop."""
    return lambda job_input: chunks_of(worker.handler, job_input)


@pytest.fixture(scope="session")
def run(worker) -> Callable[[Any], list[dict[str, Any]]]:
    """Every chunk the handler yields for one job (exceptions propagate, as without the guard)."""
    return lambda job_input: asyncio.run(chunks_of(worker.handler, job_input))


@pytest.fixture(scope="session")
def run_guarded(worker) -> Callable[[Any], list[dict[str, Any]]]:
    """Every chunk the client would see: failures become one ``{"error": <envelope JSON>}`` chunk."""
    return lambda job_input: asyncio.run(chunks_of(guard(worker.handler), job_input))


def _envelope(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(chunks) == 1 and set(chunks[0]) == {"error"}, chunks
    return json.loads(chunks[0]["error"])


@pytest.fixture(scope="session")
def envelope() -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """The error envelope of a failed job's only chunk."""
    return _envelope


def _greedy(**fields: Any) -> dict[str, Any]:
    return {"temperature": 0, "ignore_eos": True, **fields}


@pytest.fixture(scope="session")
def greedy() -> Callable[..., dict[str, Any]]:
    """A deterministic request that generates exactly max_tokens tokens (random weights emit EOS anywhere)."""
    return _greedy


def _eventually(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture(scope="session")
def eventually() -> Callable[..., None]:
    """Wait for a condition the engine thread makes true a moment after the job's last chunk."""
    return _eventually


class _HoldFirstForward:
    """The model, made to wait at its first call until ``others`` more jobs are queued, so that jobs started
    together really share the batch however slowly the machine submits them."""

    def __init__(self, engine, others: int):
        self.engine, self.model, self.others = engine, engine.model, others

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, *args, **kwargs):
        if self.others:
            _eventually(lambda: self.engine.queued >= self.others)
            self.others = 0
        return self.model(*args, **kwargs)


@pytest.fixture
def hold_until_queued(worker, monkeypatch) -> Callable[[int], None]:
    """``hold_until_queued(k)``: the next k jobs are all queued before the first one is prefilled."""
    return lambda jobs: monkeypatch.setattr(worker.engine, "model", _HoldFirstForward(worker.engine, jobs - 1))


@pytest.fixture(scope="session")
def run_with_busy_consumer(worker, busy_consumer_chunks) -> Callable[[Any], list[dict[str, Any]]]:
    """Every chunk of one job whose consumer is busy while the engine generates (what the SDK's awaited
    posts do under load): the text produced meanwhile comes joined."""

    def busy() -> bool:
        return worker.engine.active > 0 or worker.engine.queued > 0

    return lambda job_input: asyncio.run(busy_consumer_chunks(worker.handler, job_input, busy))
