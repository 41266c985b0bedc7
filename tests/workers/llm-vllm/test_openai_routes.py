"""llm-vllm OpenAI routes (as RunPod delivers them) on a real engine, through vLLM's own serving layer."""

from __future__ import annotations

import json

import pytest
from openai.types.chat import ChatCompletionChunk

pytestmark = pytest.mark.vllm

MODEL = "tiny-llama"
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def openai(route: str, body: dict | None = None) -> dict:
    return {"openai_route": route, "openai_input": body or {}}


def test_models_lists_the_served_model_with_its_context(run):
    [models] = run(openai("/v1/models"))
    assert models["object"] == "list"
    assert [(m["id"], m["max_model_len"]) for m in models["data"]] == [(MODEL, 512)]


def test_chat_completion_has_the_openai_shape_with_usage(run):
    [response] = run(openai(CHAT, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                                   "max_tokens": 6, "min_tokens": 6}))
    assert response["object"] == "chat.completion"
    [choice] = response["choices"]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] == "length"
    assert response["usage"]["completion_tokens"] == 6
    assert response["usage"]["total_tokens"] == response["usage"]["prompt_tokens"] + 6


def test_chat_stream_yields_chunks_ending_with_finish_reason_then_usage(run):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "min_tokens": 8,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    chunks = run(openai(CHAT, body))
    [whole] = run(openai(CHAT, {**body, "stream": False, "stream_options": None}))
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "length" and set(finishes[:-1]) == {None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 8


def test_completion_and_its_stream_agree_for_greedy_decoding(run):
    body = {"model": MODEL, "prompt": "Hello, world!", "max_tokens": 10, "min_tokens": 10, "temperature": 0}
    [whole] = run(openai(COMPLETIONS, body))
    chunks = run(openai(COMPLETIONS, {**body, "stream": True}))
    assert whole["object"] == "text_completion"
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_a_busy_consumer_gets_joined_vllm_chat_chunks_of_the_same_shape_and_text(run, run_with_busy_consumer):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 24, "min_tokens": 24,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    [whole] = run(openai(CHAT, {**body, "stream": False, "stream_options": None}))
    chunks = run_with_busy_consumer(openai(CHAT, body))
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks]
    assert len({chunk.id for chunk in parsed}) == 1 and parsed[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
    assert text == whole["choices"][0]["message"]["content"]
    assert len(parsed) < 24  # what vLLM produced while the consumer was busy came joined
    finishes = [c.choices[0].finish_reason for c in parsed if c.choices]
    assert finishes[-1] == "length" and set(finishes[:-1]) == {None}
    assert parsed[-1].choices == [] and parsed[-1].usage.completion_tokens == 24


def test_a_busy_consumer_gets_joined_vllm_completion_chunks(run, run_with_busy_consumer):
    body = {"model": MODEL, "prompt": "Hello, world!", "max_tokens": 24, "min_tokens": 24, "temperature": 0}
    [whole] = run(openai(COMPLETIONS, body))
    chunks = run_with_busy_consumer(openai(COMPLETIONS, {**body, "stream": True}))
    assert {chunk["object"] for chunk in chunks} == {"text_completion"} and len(chunks) < 24
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_logprobs_are_returned_as_vllm_computes_them(run):
    [response] = run(openai(CHAT, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                                   "max_tokens": 4, "min_tokens": 4, "logprobs": True, "top_logprobs": 3}))
    content = response["choices"][0]["logprobs"]["content"]
    assert len(content) == 4
    assert all(len(token["top_logprobs"]) == 3 and token["logprob"] <= 0 for token in content)


def test_response_format_json_schema_constrains_the_output(run):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
              "required": ["answer"], "additionalProperties": False}
    [response] = run(openai(CHAT, {
        "model": MODEL, "messages": [{"role": "user", "content": "Yes or no, as JSON"}], "max_tokens": 50,
        "temperature": 0, "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    }))
    [choice] = response["choices"]
    assert choice["finish_reason"] == "stop"
    assert json.loads(choice["message"]["content"]) in ({"answer": "yes"}, {"answer": "no"})


def test_tools_are_accepted_and_passed_to_the_chat_template(run):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    [response] = run(openai(CHAT, {"model": MODEL, "messages": [{"role": "user", "content": "Weather?"}],
                                   "tools": tools, "tool_choice": "auto", "max_tokens": 4}))
    assert response["object"] == "chat.completion"
    assert response["choices"][0]["finish_reason"] in {"stop", "length", "tool_calls"}


def test_unknown_model_is_a_bad_input_on_the_model_field(fail):
    error = fail(openai(CHAT, {"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}))
    assert error["code"] == "BAD_INPUT"
    assert [problem["field"] for problem in error["problems"]] == ["openai_input.model"]


def test_prompt_over_the_context_is_a_bad_input_on_the_prompt(fail):
    error = fail(openai(COMPLETIONS, {"model": MODEL, "prompt": "Hello, world! " * 200, "max_tokens": 4}))
    assert error["code"] == "BAD_INPUT"
    assert [problem["field"] for problem in error["problems"]] == ["openai_input.prompt"]


def test_invalid_request_reports_every_bad_field(fail):
    error = fail(openai(CHAT, {"model": MODEL, "messages": "Hi", "temperature": "hot", "n": "two"}))
    assert error["code"] == "BAD_INPUT"
    fields = {problem["field"] for problem in error["problems"]}
    assert fields == {"openai_input.messages", "openai_input.temperature", "openai_input.n"}


def test_n_over_the_native_requests_bound_is_a_bad_input_on_n(fail):
    from shared.llm.worker_vllm import MAX_N

    error = fail(openai(COMPLETIONS, {"model": MODEL, "prompt": "Hi", "max_tokens": 1, "n": MAX_N + 1}))
    assert error["code"] == "BAD_INPUT"
    assert [(problem["field"], problem["value"]) for problem in error["problems"]] == [("openai_input.n", MAX_N + 1)]


def test_vllms_own_request_checks_name_the_field(fail):
    error = fail(openai(CHAT, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "logprobs": True,
                               "top_logprobs": "x"}))
    assert error["code"] == "BAD_INPUT"
    assert [problem["field"] for problem in error["problems"]] == ["openai_input.top_logprobs"]


def test_unknown_route_and_extra_fields_are_bad_input(fail):
    error = fail({"openai_route": "/v1/embeddings", "openai_input": {}, "extra": 1})
    assert {problem["field"] for problem in error["problems"]} == {"openai_route", "extra"}


@pytest.mark.parametrize("value", ["true", 1, "yes"])
@pytest.mark.parametrize("route", [CHAT, COMPLETIONS])
def test_stream_accepts_booleans_only(fail, route, value):
    """Issue 19: vLLM's models read "stream": "true" as a stream, answered as a JSON array of chunks."""
    prompt = {"messages": [{"role": "user", "content": "Hi"}]} if route == CHAT else {"prompt": "Hi"}
    error = fail(openai(route, {"model": MODEL, "max_tokens": 2, "stream": value, **prompt}))
    assert error["code"] == "BAD_INPUT"
    assert [problem["field"] for problem in error["problems"]] == ["openai_input.stream"]


def test_nested_and_other_booleans_accept_booleans_only(fail):
    error = fail(openai(CHAT, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True,
                               "stream_options": {"include_usage": "yes"}, "ignore_eos": 0, "logprobs": None}))
    assert {problem["field"] for problem in error["problems"]} == {
        "openai_input.stream_options.include_usage", "openai_input.ignore_eos"}


@pytest.mark.parametrize("route", [CHAT, COMPLETIONS])
def test_min_tokens_beyond_the_context_is_bad_input(fail, route):
    prompt = {"messages": [{"role": "user", "content": "Hi"}]} if route == CHAT else {"prompt": "Hi"}
    error = fail(openai(route, {"model": MODEL, "min_tokens": 131_072, **prompt}))
    assert error["code"] == "BAD_INPUT"
    assert "min_tokens" in json.dumps(error)
