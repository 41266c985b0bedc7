"""OpenAI routes as RunPod forwards them: response and chunk shapes, checked against the openai library's types."""

from __future__ import annotations

import pytest
from openai.types import Completion, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MESSAGES = [{"role": "user", "content": "Hello!"}]


def openai_job(route, **body):
    return {"openai_route": route, "openai_input": body}


def strict(model_type, body):
    """Validate with the openai library's pydantic type, refusing fields it does not know."""
    parsed = model_type.model_validate(body, strict=False)
    assert set(body) <= set(model_type.model_fields), set(body) - set(model_type.model_fields)
    return parsed


def test_models_lists_the_served_model(run, served):
    [body] = run({"openai_route": "/v1/models", "openai_input": {}})
    assert body["object"] == "list"
    assert [strict(Model, card).id for card in body["data"]] == [served]


def test_chat_completion_has_the_openai_shape(run, served):
    [body] = run(openai_job(CHAT, model=served, messages=MESSAGES, max_tokens=7, temperature=0,
                            min_tokens=7))
    completion = strict(ChatCompletion, body)
    assert completion.object == "chat.completion"
    assert completion.model == served
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason == "length"
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 7


def test_chat_max_completion_tokens_wins_over_max_tokens(run, served):
    [body] = run(openai_job(CHAT, model=served, messages=MESSAGES, max_tokens=9, max_completion_tokens=3,
                            temperature=0, ignore_eos=True))
    assert body["usage"]["completion_tokens"] == 3


def test_chat_stream_is_role_then_content_then_finish_then_usage(run, served):
    chunks = run(openai_job(CHAT, model=served, messages=MESSAGES, max_tokens=10, temperature=0,
                            ignore_eos=True, stream=True, stream_options={"include_usage": True}))
    parsed = [strict(ChatCompletionChunk, chunk) for chunk in chunks]
    assert len({chunk.id for chunk in parsed}) == 1
    first, *content, last, usage = parsed
    assert first.choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.content and c.choices[0].finish_reason is None for c in content)
    assert last.choices[0].finish_reason == "length"
    assert usage.choices == [] and usage.usage.completion_tokens == 10
    [whole] = run(openai_job(CHAT, model=served, messages=MESSAGES, max_tokens=10, temperature=0, ignore_eos=True))
    assert "".join(c.choices[0].delta.content for c in content) == whole["choices"][0]["message"]["content"]


def test_chat_stream_without_include_usage_has_no_usage_chunk(run, served):
    chunks = run(openai_job(CHAT, model=served, messages=MESSAGES, max_tokens=4, temperature=0,
                            ignore_eos=True, stream=True))
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(chunk["usage"] is None for chunk in chunks)


def test_completion_has_the_openai_shape(run, served):
    [body] = run(openai_job(COMPLETIONS, model=served, prompt="Once upon a time", max_tokens=6, temperature=0,
                            ignore_eos=True, stop=["never-in-this-text-\u2603"]))
    completion = strict(Completion, body)
    assert completion.object == "text_completion"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 6


def test_completion_stream_chunks_join_to_the_whole_text(run, served):
    request = {"model": served, "prompt": ["Once upon a time"], "max_tokens": 12, "temperature": 0,
               "ignore_eos": True}
    [whole] = run(openai_job(COMPLETIONS, **request))
    chunks = run(openai_job(COMPLETIONS, **request, stream=True, stream_options={"include_usage": True}))
    *texts, last, usage = chunks
    # Text chunks carry finish_reason null, as OpenAI's and vLLM's do; the openai client builds stream
    # chunks without validation, and its Completion type only admits a finish_reason when it is set.
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in texts)
    assert all(set(chunk) == set(last) for chunk in texts)
    assert "".join(chunk["choices"][0]["text"] for chunk in texts) == whole["choices"][0]["text"]
    assert strict(Completion, last).choices[0].finish_reason == "length"
    assert strict(Completion, usage).usage.completion_tokens == 12


def test_a_busy_consumer_gets_joined_chat_chunks_of_the_same_shape_and_text(run, run_with_busy_consumer, served):
    request = openai_job(CHAT, model=served, messages=MESSAGES, max_tokens=30, temperature=0, ignore_eos=True,
                         stream=True, stream_options={"include_usage": True})
    one_by_one = run(request)
    chunks = run_with_busy_consumer(request)
    parsed = [strict(ChatCompletionChunk, chunk) for chunk in chunks]
    first, *content, last, usage = parsed
    assert first.choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.content and c.choices[0].finish_reason is None for c in content)
    assert "".join(c.choices[0].delta.content for c in content) == "".join(
        c["choices"][0]["delta"].get("content") or "" for c in one_by_one if c["choices"])
    assert len(content) < 30
    assert last.choices[0].finish_reason == "length" and usage.usage.completion_tokens == 30


def test_a_busy_consumer_gets_joined_completion_chunks_of_the_same_shape_and_text(run, run_with_busy_consumer,
                                                                                   served):
    request = {"model": served, "prompt": "Once upon a time", "max_tokens": 30, "temperature": 0, "ignore_eos": True}
    [whole] = run(openai_job(COMPLETIONS, **request))
    *texts, last = run_with_busy_consumer(openai_job(COMPLETIONS, **request, stream=True))
    assert all(chunk["choices"][0]["finish_reason"] is None and set(chunk) == set(last) for chunk in texts)
    assert "".join(chunk["choices"][0]["text"] for chunk in texts) == whole["choices"][0]["text"]
    assert len(texts) < 30 and strict(Completion, last).choices[0].finish_reason == "length"


def test_openai_bad_fields_are_named_under_openai_input(run_guarded, envelope, served):
    body = envelope(run_guarded(openai_job(CHAT, model="gpt-4", messages=MESSAGES, n=2, temperature=3,
                                           presence_penalty=0.5, logprobs=True, tools=[])))
    assert body["code"] == "BAD_INPUT"
    assert {p["field"] for p in body["problems"]} == {
        "openai_input.n", "openai_input.temperature", "openai_input.presence_penalty", "openai_input.logprobs",
        "openai_input.tools",
    }


def test_openai_wrong_model_is_refused(run_guarded, envelope):
    body = envelope(run_guarded(openai_job(COMPLETIONS, model="gpt-4", prompt="hi")))
    assert [p["field"] for p in body["problems"]] == ["openai_input.model"]


def test_openai_unknown_route_is_refused(run_guarded, envelope):
    body = envelope(run_guarded({"openai_route": "/v1/embeddings", "openai_input": {}}))
    assert [p["field"] for p in body["problems"]] == ["openai_route"]


def test_openai_context_overflow_names_the_clients_field(run_guarded, envelope, served):
    body = envelope(run_guarded(openai_job(CHAT, model=served, messages=MESSAGES, max_completion_tokens=100_000)))
    assert [p["field"] for p in body["problems"]] == ["openai_input.max_completion_tokens"]


@pytest.mark.parametrize("value", ["true", 1, "yes"])
@pytest.mark.parametrize("route", [CHAT, COMPLETIONS])
def test_openai_stream_accepts_booleans_only(run_guarded, envelope, served, route, value):
    """Issue 19: "stream": "true" was read as a stream and answered with a JSON array of chunks."""
    prompt = {"messages": MESSAGES} if route == CHAT else {"prompt": "hi"}
    body = envelope(run_guarded(openai_job(route, model=served, stream=value, **prompt)))
    assert [p["field"] for p in body["problems"]] == ["openai_input.stream"]


def test_openai_stream_options_include_usage_accepts_booleans_only(run_guarded, envelope, served):
    body = envelope(run_guarded(openai_job(CHAT, model=served, messages=MESSAGES, stream=True,
                                           stream_options={"include_usage": "yes"})))
    assert [p["field"] for p in body["problems"]] == ["openai_input.stream_options.include_usage"]
