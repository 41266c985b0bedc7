"""llm-vllm native input on a real vLLM engine: prompt, chat, stream, concurrency, cancel, bad input."""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.vllm


def test_prompt_returns_text_finish_reason_and_token_usage(run, tokenizer):
    prompt = "The quick brown fox"
    [result] = run({"prompt": prompt, "max_tokens": 7, "min_tokens": 7})
    assert isinstance(result["text"], str) and result["text"]
    assert result["finish_reason"] == "length"
    assert result["usage"] == {
        "prompt_tokens": len(tokenizer.encode(prompt)),
        "completion_tokens": 7,
        "total_tokens": len(tokenizer.encode(prompt)) + 7,
    }


def test_chat_messages_are_rendered_with_the_models_chat_template(run, tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, world!"}]
    [result] = run({"messages": messages, "max_tokens": 5, "min_tokens": 5})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|start|>assistant\n")
    assert result["usage"]["prompt_tokens"] == len(tokenizer.encode(rendered, add_special_tokens=False))
    assert result["usage"]["completion_tokens"] == 5


def test_stream_yields_per_token_deltas_that_join_to_the_non_streamed_greedy_text(run):
    request = {"prompt": "Streaming tokens one at a time", "max_tokens": 24, "min_tokens": 24, "temperature": 0}
    [whole] = run(request)
    chunks = run({**request, "stream": True})
    deltas, last = chunks[:-1], chunks[-1]
    assert len(deltas) > 1, "a stream of 24 tokens came as one chunk"
    assert all(set(chunk) == {"text"} and chunk["text"] for chunk in deltas)
    assert "".join(chunk["text"] for chunk in deltas) == whole["text"]
    assert last == {"text": "", "finish_reason": "length", "usage": whole["usage"]}


def test_stop_sequence_ends_generation_with_finish_reason_stop(run):
    [free] = run({"prompt": "Hello", "max_tokens": 40, "min_tokens": 40, "temperature": 0})
    assert len(free["text"]) >= 8
    stop = free["text"][5:8]  # generation must end at its first occurrence, wherever that is
    [stopped] = run({"prompt": "Hello", "max_tokens": 40, "temperature": 0, "stop": stop})
    assert stopped["finish_reason"] == "stop"
    assert stopped["text"] == free["text"][: free["text"].index(stop)]


def test_many_concurrent_greedy_jobs_match_their_solo_outputs(handler, run):
    requests = [{"prompt": f"Job number {i} says", "max_tokens": 32, "temperature": 0} for i in range(12)]
    alone = [run(request)[0] for request in requests]

    async def together():
        jobs = [_collect(handler, request, f"job-{i}") for i, request in enumerate(requests)]
        return await asyncio.gather(*jobs)

    results = [chunks[0] for chunks in asyncio.run(together())]
    assert results == alone


def test_cancelled_job_aborts_its_request_in_the_engine(handler, vllm_worker, monkeypatch):
    engine = vllm_worker.host.engine
    aborted: list[str] = []
    abort = engine.abort

    async def spy_abort(request_id, *args, **kwargs):
        aborted.extend([request_id] if isinstance(request_id, str) else request_id)
        return await abort(request_id, *args, **kwargs)

    monkeypatch.setattr(engine, "abort", spy_abort)

    async def cancel_after_first_chunk():
        chunks = []

        async def consume():
            async for chunk in handler({"id": "to-cancel", "input": {
                    "prompt": "Cancel me", "max_tokens": 480, "ignore_eos": True, "stream": True}}):
                chunks.append(chunk)

        task = asyncio.create_task(consume())
        while not chunks:
            await asyncio.sleep(0.01)
        task.cancel()  # what the SDK does when RunPod asks to stop the job
        with pytest.raises(asyncio.CancelledError):
            await task
        return chunks

    chunks = asyncio.run(cancel_after_first_chunk())
    assert all("finish_reason" not in chunk for chunk in chunks)
    assert any(request_id.startswith("to-cancel-") for request_id in aborted)
    deadline = time.monotonic() + 10
    while engine.output_processor.has_unfinished_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not engine.output_processor.has_unfinished_requests()


def test_bad_input_reports_every_offending_field_and_the_worker_keeps_serving(fail, run):
    error = fail({"prompt": "", "messages": [{"role": "robot", "content": "x"}], "max_tokens": 0,
                  "temperature": 3, "top_p": 0, "colour": "blue"})
    assert error["code"] == "BAD_INPUT"
    fields = {problem["field"] for problem in error["problems"]}
    assert {"prompt", "messages.0.role", "max_tokens", "temperature", "top_p", "colour"} <= fields
    [result] = run({"prompt": "still serving", "max_tokens": 2, "min_tokens": 2})
    assert result["usage"]["completion_tokens"] == 2


def test_prompt_plus_max_tokens_over_the_context_is_refused_before_generation(fail, tokenizer):
    from devkit.fixtures.llm import CONTEXT

    prompt = "Hello, world! " * 20
    prompt_tokens = len(tokenizer.encode(prompt))
    error = fail({"prompt": prompt, "max_tokens": CONTEXT - prompt_tokens + 1})
    assert error["code"] == "BAD_INPUT"
    [problem] = error["problems"]
    assert problem["field"] == "max_tokens"
    assert f"at most {CONTEXT - prompt_tokens} fit" in problem["reason"]

    error = fail({"prompt": "Hello, world! " * 200})
    assert [problem["field"] for problem in error["problems"]] == ["prompt"]


def test_default_max_tokens_is_what_the_context_leaves_when_less_than_the_default(run, tokenizer):
    from devkit.fixtures.llm import CONTEXT

    prompt = "Hello, world! " * 30
    room = CONTEXT - len(tokenizer.encode(prompt))
    [result] = run({"prompt": prompt, "ignore_eos": True})
    assert result["usage"]["completion_tokens"] == room
    assert result["finish_reason"] == "length"


async def _collect(handler, job_input, job_id):
    return [chunk async for chunk in handler({"id": job_id, "input": job_input})]


def test_a_busy_consumer_gets_the_same_stream_text_in_fewer_chunks(run, run_with_busy_consumer):
    request = {"prompt": "Streaming tokens one at a time", "max_tokens": 24, "min_tokens": 24, "temperature": 0}
    [whole] = run(request)
    *deltas, last = run_with_busy_consumer({**request, "stream": True})
    assert all(set(chunk) == {"text"} and chunk["text"] for chunk in deltas)
    assert "".join(chunk["text"] for chunk in deltas) == whole["text"]
    assert len(deltas) < 24  # what was generated while the consumer was busy came joined
    assert last == {"text": "", "finish_reason": "length", "usage": whole["usage"]}


def test_min_tokens_beyond_what_the_context_leaves_is_refused_as_llm_hf_refuses_it(fail, run):
    """Issue 19: min_tokens 131072 on a 512-token context completed 510 tokens, silently."""
    error = fail({"prompt": "Hi", "min_tokens": 131_072})
    assert error["code"] == "BAD_INPUT"
    [problem] = error["problems"]
    assert problem["field"] == "min_tokens"
    assert "what the context leaves" in problem["reason"]
    [result] = run({"prompt": "still serving", "max_tokens": 2, "min_tokens": 2})
    assert result["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize("value", ["true", 1, "yes"])
@pytest.mark.parametrize("field", ["stream", "ignore_eos"])
def test_native_booleans_accept_booleans_only(fail, field, value):
    error = fail({"prompt": "Hi", "max_tokens": 2, field: value})
    assert [problem["field"] for problem in error["problems"]] == [field]
