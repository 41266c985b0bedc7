"""The llm-vllm worker as a process (real vLLM CPU engine, tiny Llama) behind the local endpoint: the
`openai` client on its OpenAI routes, the runpod SDK on its native input."""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal

import openai
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]

NAME = "llm-vllm"
#: The served name: model.toml's id, whatever folder the worker loads (here the tiny fixture).
MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
#: Over endpoint.toml and the tiny model's CPU settings (its worker.toml [fixture] env): float32 keeps greedy
#: decoding batch-invariant, and GPU-only settings are unset (a blank value unsets a setting).
TEST_ENV = {"DTYPE": "float32", "GPU_MEMORY_UTILIZATION": "", "MAX_CONCURRENCY": "16"}


@pytest.fixture(scope="module")
def endpoint(endpoint_factory):
    # One worker, kept by its idle timeout rather than min_workers, so that the endpoint does not start
    # a replacement after the engine-death test (the session would stop it mid-startup).
    return endpoint_factory([NAME], env={NAME: TEST_ENV},
                            scaling={NAME: {"min_workers": 0, "max_workers": 1, "idle_timeout": 900}}, timeout=300)


@pytest.fixture(scope="module")
def client(endpoint):
    return openai.OpenAI(base_url=f"{endpoint.base_url}/v2/{NAME}/openai/v1", api_key="local", max_retries=0,
                         timeout=120)


@pytest.fixture(scope="module")
def runpod_client(endpoint, runpod_endpoint):
    return runpod_endpoint(endpoint, NAME)


def test_models_lists_the_served_model_then_the_tiny_adapters_make_dev_serves(client):
    from devkit.fixtures.llm import ADAPTER_BUILDERS

    assert [model.id for model in client.models.list()] == [MODEL, *sorted(ADAPTER_BUILDERS)]


def test_an_adapter_picked_by_model_through_the_openai_client_changes_the_greedy_text(client):
    request = {"prompt": "The quick brown fox", "max_tokens": 12, "temperature": 0,
               "extra_body": {"ignore_eos": True}}
    base = client.completions.create(model=MODEL, **request)
    adapted = client.completions.create(model="tiny-lora", **request)
    assert adapted.model == "tiny-lora" and adapted.usage.completion_tokens == 12
    assert adapted.choices[0].text != base.choices[0].text


def test_chat_completion_through_the_openai_client(client):
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}],
                                           max_tokens=6, extra_body={"min_tokens": 6})
    assert reply.object == "chat.completion"
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 6


def test_streamed_chat_equals_the_whole_greedy_reply_and_ends_with_usage(client):
    request = {"model": MODEL, "messages": [{"role": "user", "content": "Count"}], "max_tokens": 12,
               "temperature": 0, "extra_body": {"min_tokens": 12}}
    whole = client.chat.completions.create(**request)
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 12


def test_completions_with_logprobs_through_the_openai_client(client):
    reply = client.completions.create(model=MODEL, prompt="Hello, world!", max_tokens=4, logprobs=2,
                                      extra_body={"min_tokens": 4})
    assert reply.object == "text_completion"
    assert len(reply.choices[0].logprobs.tokens) == 4
    # vLLM lists the top 2 and, when it is not among them, the sampled token too
    assert all(2 <= len(top) <= 3 for top in reply.choices[0].logprobs.top_logprobs)
    streamed = list(client.completions.create(model=MODEL, prompt="Hello, world!", max_tokens=4, stream=True,
                                              extra_body={"min_tokens": 4}))
    assert streamed[-1].choices[0].finish_reason == "length"


def test_bad_openai_request_is_a_400_naming_the_field(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="not-served", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.body["code"] == "BAD_INPUT"
    assert caught.value.body["param"] == "model"


def test_native_job_through_the_runpod_sdk(runpod_client):
    output = runpod_client.run_sync({"prompt": "Hello", "max_tokens": 5, "min_tokens": 5}, timeout=120)
    [result] = output  # a generator worker's aggregated output: the one result chunk
    assert result["finish_reason"] == "length" and result["usage"]["completion_tokens"] == 5


def test_many_concurrent_jobs_are_served_by_one_worker(runpod_client):
    jobs = [runpod_client.run({"prompt": f"Job {i}", "max_tokens": 16, "min_tokens": 16}) for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        outputs = list(pool.map(lambda job: job.output(timeout=180), jobs))
    assert [output[0]["usage"]["completion_tokens"] for output in outputs] == [16] * 12


@contextlib.contextmanager
def frozen_engine_core(endpoint):
    """The worker's vLLM engine core process, stopped (SIGSTOP) for the block: a job stays in flight."""
    import psutil

    [worker_pid] = endpoint.worker_pids(NAME).values()
    [engine_core] = [p for p in psutil.Process(worker_pid).children(recursive=True) if "EngineCore" in p.name()]
    engine_core.send_signal(signal.SIGSTOP)
    try:
        yield engine_core
    finally:
        if engine_core.is_running():
            engine_core.send_signal(signal.SIGCONT)


def test_cancelled_job_is_cancelled_and_the_worker_keeps_serving(endpoint, runpod_client, await_status):
    # The engine is frozen while the job is cancelled: on a quiet machine the tiny model would otherwise
    # finish 480 tokens before the cancel arrives.
    with frozen_engine_core(endpoint):
        job = runpod_client.run({"prompt": "Long", "max_tokens": 480, "ignore_eos": True, "stream": True})
        await_status(endpoint, NAME, job.job_id, "IN_PROGRESS", timeout=60)
        job.cancel()
        assert job.status() == "CANCELLED"
    output = runpod_client.run_sync({"prompt": "Next", "max_tokens": 3, "min_tokens": 3}, timeout=120)
    assert output[0]["usage"]["completion_tokens"] == 3


def test_engine_death_fails_the_job_in_flight_and_ends_the_worker_with_the_reason(endpoint, runpod_client, await_status,
                                                                        caplog):
    # Last in this module: it kills the worker's engine (the endpoint then starts a new worker, which is
    # the endpoint's business, tested with its own tests).
    import logging

    import psutil

    [worker_pid] = endpoint.worker_pids(NAME).values()
    worker = psutil.Process(worker_pid)
    with frozen_engine_core(endpoint) as engine_core:  # frozen: the job below stays in flight until the kill
        job = runpod_client.run({"prompt": "Long", "max_tokens": 480, "ignore_eos": True, "stream": True})
        await_status(endpoint, NAME, job.job_id, "IN_PROGRESS", timeout=60)
        with caplog.at_level(logging.INFO, logger="devkit.endpoint.worker_output"):
            engine_core.send_signal(signal.SIGKILL)
            failed = await_status(endpoint, NAME, job.job_id, "FAILED", timeout=60)
            psutil.wait_procs([worker], timeout=30)
    assert "DEVICE_FAILURE" in str(failed["error"])
    assert "llm-vllm: exiting with status 4: the vLLM engine core stopped" in caplog.text
    assert not worker.is_running()
