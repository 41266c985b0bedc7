"""llm-hf end to end: a real worker process (runpod job loop, tiny Llama) behind the local endpoint, driven by
the unmodified openai client and by the runpod client."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e

NAME = "llm-hf"
#: Random weights: EOS may come at any step, so every request pins its length with ignore_eos (vLLM's
#: extension, sent through extra_body) and tests assert counts and shapes, never content.
FIXED_LENGTH = {"ignore_eos": True}
MESSAGES = [{"role": "user", "content": "Say hello in three languages."}]


@pytest.fixture(scope="module")
def endpoint(endpoint_factory):
    return endpoint_factory([NAME], env={NAME: {"MAX_CONCURRENCY": "4"}},
                            scaling={NAME: {"min_workers": 1, "max_workers": 1}})


@pytest.fixture(scope="module")
def client(endpoint) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{endpoint.base_url}/v2/{NAME}/openai/v1", api_key="local", max_retries=0)


@pytest.fixture(scope="module")
def model(client) -> str:
    return client.models.list().data[0].id


def test_models_lists_one_served_model(client):
    models = client.models.list().data
    assert len(models) == 1
    assert models[0].object == "model"


def test_chat_completion(client, model):
    reply = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=8, temperature=0,
                                           extra_body=FIXED_LENGTH)
    assert reply.object == "chat.completion"
    assert reply.model == model
    assert reply.choices[0].message.role == "assistant"
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 8


def test_streamed_chat_completion_joins_to_the_whole_reply(client, model):
    request = {"model": model, "messages": MESSAGES, "max_tokens": 16, "temperature": 0, "extra_body": FIXED_LENGTH}
    whole = client.chat.completions.create(**request)
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert content == whole.choices[0].message.content
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 16


def test_completion(client, model):
    reply = client.completions.create(model=model, prompt="Once upon a time", max_tokens=5, temperature=0,
                                      extra_body=FIXED_LENGTH)
    assert reply.object == "text_completion"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 5


def test_streamed_completion_joins_to_the_whole_text(client, model):
    request = {"model": model, "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0,
               "extra_body": FIXED_LENGTH}
    whole = client.completions.create(**request)
    chunks = list(client.completions.create(**request, stream=True))
    assert "".join(chunk.choices[0].text for chunk in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stop_sequence_through_the_client(client, model):
    whole = client.completions.create(model=model, prompt="Hello", max_tokens=30, temperature=0,
                                      extra_body=FIXED_LENGTH).choices[0].text
    stop = whole[len(whole) // 2:len(whole) // 2 + 2]
    assert stop.strip()
    cut = client.completions.create(model=model, prompt="Hello", max_tokens=30, temperature=0, stop=[stop],
                                    extra_body=FIXED_LENGTH).choices[0]
    assert cut.text == whole[:whole.index(stop)]
    assert cut.finish_reason == "stop"


def test_concurrent_requests_get_their_alone_replies(client, model):
    prompts = ["a", "Hello there", "日本語のテキスト", "The quick brown fox jumps"]

    def complete(prompt):
        return client.completions.create(model=model, prompt=prompt, max_tokens=24, temperature=0,
                                         extra_body=FIXED_LENGTH).choices[0].text

    alone = [complete(p) for p in prompts]
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(complete, prompts))
    assert together == alone


def test_bad_request_is_a_400_naming_the_field(client, model):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=MESSAGES, temperature=5)
    assert caught.value.body["code"] == "BAD_INPUT"
    # Workers name fields by their path in the job input ({"openai_route", "openai_input": <body>}).
    assert caught.value.body["param"] == "temperature"


def test_context_overflow_is_a_400_before_generation(client, model):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=100_000)
    assert caught.value.body["param"] == "max_tokens"


def test_native_input_through_the_runpod_client(endpoint, runpod_endpoint):
    runner = runpod_endpoint(endpoint, NAME)
    [result] = runner.run_sync({"prompt": "Hi", "max_tokens": 6, "temperature": 0, "ignore_eos": True}, timeout=60)
    assert result["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 6
    job = runner.run({"prompt": "Hi", "max_tokens": 6, "temperature": 0, "ignore_eos": True, "stream": True})
    chunks = list(job.stream())
    assert "".join(chunk["text"] for chunk in chunks) == result["text"]
    assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_a_cancelled_job_ends_cancelled_and_the_worker_keeps_serving(endpoint, runpod_endpoint, await_status):
    runner = runpod_endpoint(endpoint, NAME)
    [worker_pid] = endpoint.worker_pids(NAME).values()
    # The idle worker holds a job take open; stopped (SIGSTOP), it is handed the job but cannot finish it
    # before the cancel, which a quiet machine's tiny model otherwise could. Resumed, it must obey the stop.
    os.kill(worker_pid, signal.SIGSTOP)
    try:
        job = runner.run({"prompt": "go", "max_tokens": 480, "ignore_eos": True, "stream": True})
        await_status(endpoint, NAME, job.job_id, "IN_PROGRESS", timeout=60)
        job.cancel()
    finally:
        os.kill(worker_pid, signal.SIGCONT)
    await_status(endpoint, NAME, job.job_id, "CANCELLED", timeout=30)
    [result] = runner.run_sync({"prompt": "next", "max_tokens": 3, "ignore_eos": True}, timeout=60)
    assert result["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("stream", ["true", 1, "yes"])
def test_a_stream_that_is_not_a_boolean_is_a_400_naming_it(endpoint, model, stream):
    """Issue 19: "stream": "true" was answered 200 with a JSON array of stream chunks."""
    response = httpx.post(f"{endpoint.base_url}/v2/{NAME}/openai/v1/chat/completions", timeout=60,
                          json={"model": model, "messages": MESSAGES, "max_tokens": 2, "stream": stream})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stream"


@pytest.mark.parametrize(
    "body",
    ['{"model": "m", "messages": [], "temperature": NaN}', '{"model": "m", "messages": [], "user": "\\ud800"}',
     "[" * 10_000 + "]" * 10_000],
    ids=["NaN", "lone-surrogate", "nested-10000-deep"],
)
def test_a_body_that_is_not_strict_json_is_a_400_json_answer_and_nothing_hangs(endpoint, client, model, body):
    """Issue 19: such bodies were queued, failed every job take and hung until the execution timeout (or, nested
    10,000 deep, were a plain-text 500)."""
    response = httpx.post(f"{endpoint.base_url}/v2/{NAME}/openai/v1/chat/completions", content=body, timeout=60,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_INPUT"
    reply = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=2, extra_body=FIXED_LENGTH)
    assert reply.usage.completion_tokens == 2


def test_worker_vllm_native_request_through_the_runpod_client(endpoint, runpod_endpoint):
    """worker-vllm README "Text Input Formats": {"input": {"prompt": "why sky is blue?", "sampling_params":
    {"temperature": 0.7, "max_tokens": 100}}}; streamed, its handler yields the SSE text as strings."""
    runner = runpod_endpoint(endpoint, NAME)
    request = {"prompt": "why sky is blue?", "sampling_params": {"temperature": 0, "max_tokens": 6, "ignore_eos": True}}
    [result] = runner.run_sync(request, timeout=60)
    assert result["object"] == "text_completion" and result["usage"]["completion_tokens"] == 6
    pieces = list(runner.run({**request, "stream": True}).stream())
    assert all(isinstance(piece, str) for piece in pieces) and pieces[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(p.removeprefix("data: ")) for p in "".join(pieces[:-1]).split("\n\n") if p]
    assert "".join(chunk["choices"][0]["text"] for chunk in chunks) == result["choices"][0]["text"]
