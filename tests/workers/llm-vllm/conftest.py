"""One real vLLM engine (CPU build, tiny Llama) shared by every in-process test of the llm-vllm worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.serving import runpod_config

#: Engine settings of the tests: vLLM's CPU backend needs an explicit KV cache size, eager mode
#: skips torch.compile (seconds of startup on 2 cores), float32 keeps greedy decoding batch-invariant.
ENGINE_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "ENFORCE_EAGER": "true",
    "DTYPE": "float32",
    "SERVED_MODEL_NAME": "tiny-llama",
    "ENABLE_AUTO_TOOL_CHOICE": "true",
    "TOOL_CALL_PARSER": "hermes",
    # Compact JSON under response_format: a random model would otherwise pad with whitespace forever.
    "STRUCTURED_OUTPUTS_CONFIG": '{"backend": "xgrammar", "disable_any_whitespace": true}',
}


@contextlib.contextmanager
def started_worker(model_dir: Path, env: dict[str, str]) -> Iterator[Any]:
    """The worker after setup() on ``model_dir`` with ``env``, exactly as `python -m worker_llm_vllm` builds it;
    stopped on exit."""
    from worker_llm_vllm.worker import VllmWorker

    deaths: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**env, "MODEL_PATH": str(model_dir)}.items():
            patch.setenv(name, value)
        worker = VllmWorker(on_engine_death=deaths.append)
        worker.setup()
    try:
        yield worker
    finally:
        worker.close()
    assert deaths == [], "the engine died during the tests"


@pytest.fixture(scope="session")
def vllm_worker(tiny_llm_dir):
    """The worker on the tiny Llama, shared by the session."""
    with started_worker(tiny_llm_dir, ENGINE_ENV) as worker:
        yield worker


@pytest.fixture(scope="session")
def engine_env() -> dict[str, str]:
    """The session worker's engine settings (ENGINE_ENV), for another worker on the tiny Llama."""
    return dict(ENGINE_ENV)


@pytest.fixture(scope="session")
def collect_job():
    """collect_job(handler, job_input, job_id) -> every chunk ``handler`` yields for one job (a coroutine)."""
    return collect


@pytest.fixture(scope="session")
def handler(vllm_worker):
    """The handler as the SDK gets it (wrapped by shared.guard.guard)."""
    return runpod_config(vllm_worker)["handler"]


@pytest.fixture(scope="session")
def tokenizer(vllm_worker):
    return vllm_worker.host.engine.get_tokenizer()


@pytest.fixture(scope="session")
def run(handler):
    """run(job_input, job_id="job") -> every chunk the handler yields for one job."""
    return job_runner(handler)


@pytest.fixture(scope="session")
def fail(run):
    """fail(job_input) -> the error envelope of a job that must fail (its last chunk)."""
    return failure_of(run)


def job_runner(handler) -> Callable[..., list[dict[str, Any]]]:
    """run(job_input, job_id="job") -> every chunk ``handler`` yields for one job."""

    def run_job(job_input: Any, job_id: str = "job") -> list[dict[str, Any]]:
        return asyncio.run(collect(handler, job_input, job_id))

    return run_job


def failure_of(run: Callable[..., list[dict[str, Any]]]) -> Callable[[Any], dict[str, Any]]:
    """fail(job_input) -> the error envelope of a job ``run`` must fail (its last chunk)."""

    def failed_job(job_input: Any) -> dict[str, Any]:
        chunks = run(job_input)
        assert "error" in chunks[-1], f"the job did not fail: {chunks}"
        return json.loads(chunks[-1]["error"])

    return failed_job


async def collect(handler, job_input: Any, job_id: str = "job") -> list[dict[str, Any]]:
    return [chunk async for chunk in handler({"id": job_id, "input": job_input})]


@pytest.fixture(scope="session")
def run_with_busy_consumer(handler, vllm_worker, busy_consumer_chunks):
    """Every chunk of one job whose consumer is busy while the engine generates (what the SDK's awaited
    posts do under load): the text produced meanwhile comes joined."""

    def busy() -> bool:
        return vllm_worker.host.engine.get_num_unfinished_requests() > 0

    return lambda job_input: asyncio.run(busy_consumer_chunks(handler, job_input, busy))


@pytest.fixture(scope="session")
def start_worker():
    """``with start_worker(model_dir, env) as worker``: another engine than the session's (`started_worker`)."""
    return started_worker


@pytest.fixture(scope="session")
def jobs_of():
    """``run, fail = jobs_of(worker)``: the `run` and `fail` helpers for another worker than the session's."""

    def jobs(worker: Any) -> tuple[Callable[..., list[dict[str, Any]]], Callable[[Any], dict[str, Any]]]:
        run = job_runner(runpod_config(worker)["handler"])
        return run, failure_of(run)

    return jobs
