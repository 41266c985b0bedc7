"""worker-vllm's native request on llm-vllm, pinned from worker-vllm's docs (newest release, v2.25.2).

Its README, "Usage: Standard (Non-OpenAI)": "You may either use a `prompt` or a list of `messages` as input.
Under the hood, `prompt` is proxied to vLLM's `/v1/completions` and `messages` to `/v1/chat/completions`",
and `stream`: "If True, raw SSE chunks are streamed as they are generated". Its src/handler.py yields the
parsed JSON response once, or each SSE text chunk (``data: {...}``) as a string.
"""

from __future__ import annotations

import json

import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

pytestmark = pytest.mark.vllm


def sse_events(pieces: list) -> list[str]:
    """The data payloads of a stream of SSE text pieces (a client joins them and splits on blank lines)."""
    assert all(isinstance(piece, str) for piece in pieces), pieces
    events = [event for event in "".join(pieces).split("\n\n") if event]
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


def test_the_readme_prompt_example_answers_with_a_completions_response(run):
    """README "Text Input Formats": {"input": {"prompt": "why sky is blue?",
    "sampling_params": {"temperature": 0.7, "max_tokens": 100}}}"""
    [response] = run({"prompt": "why sky is blue?", "sampling_params": {"temperature": 0.7, "max_tokens": 100}})
    completion = Completion.model_validate(response)
    assert completion.object == "text_completion" and completion.model == "tiny-llama"
    assert completion.usage.completion_tokens <= 100 and completion.choices[0].finish_reason in ("stop", "length")


def test_the_readme_messages_example_answers_with_a_chat_completion(run):
    """README: {"input": {"messages": [{"role": "system", "content": "You are a helpful AI assistant ..."},
    {"role": "user", "content": "Can you explain ..."}, ...], "sampling_params": {"temperature": 0.7,
    "max_tokens": 100}}}"""
    messages = [{"role": "system", "content": "You are a helpful AI assistant."},
                {"role": "user", "content": "Can you explain the difference between supervised and unsupervised?"}]
    [response] = run({"messages": messages, "sampling_params": {"temperature": 0.7, "max_tokens": 100}})
    chat = ChatCompletion.model_validate(response)
    assert chat.object == "chat.completion" and chat.choices[0].message.role == "assistant"


def test_a_stream_is_sse_text_with_the_same_text_as_the_whole_answer(run):
    """README: "`stream` ... If True, raw SSE chunks are streamed as they are generated.\""""
    request = {"messages": [{"role": "user", "content": "Hi"}],
               "sampling_params": {"temperature": 0, "max_tokens": 8, "min_tokens": 8}}
    [whole] = run(request)
    events = sse_events(run({**request, "stream": True}))
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(event) for event in events[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) \
        == whole["choices"][0]["message"]["content"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_vllm_sampling_params_reach_the_engine(run):
    [response] = run({"prompt": "Hello", "sampling_params": {"n": 2, "max_tokens": 4, "min_tokens": 4,
                                                            "logprobs": 2, "seed": 1}})
    assert len(response["choices"]) == 2
    assert all(len(choice["logprobs"]["tokens"]) == 4 for choice in response["choices"])


def test_a_request_mixing_both_forms_is_refused_naming_the_fields(fail):
    error = fail({"prompt": "Hi", "max_tokens": 4, "sampling_params": {"max_tokens": 4}})
    assert error["code"] == "BAD_INPUT" and [p["field"] for p in error["problems"]] == ["max_tokens"]


def test_a_prompt_over_the_context_names_the_worker_vllm_field(fail):
    error = fail({"prompt": "Hi", "sampling_params": {"max_tokens": 100_000}})
    assert error["code"] == "BAD_INPUT"
    assert [p["field"] for p in error["problems"]] == ["sampling_params.max_tokens"], error


def test_a_choice_constraint_yields_one_of_the_choices(run):
    choices = ["red", "green", "blue"]
    [response] = run({"prompt": "Colour:", "sampling_params": {"structured_outputs": {"choice": choices},
                                                               "temperature": 1.0, "seed": 7}})
    assert response["choices"][0]["text"] in choices


def test_a_json_schema_constraint_yields_json_that_validates(run):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    [response] = run({"prompt": "JSON:", "sampling_params": {"structured_outputs": {"json": schema},
                                                             "max_tokens": 64, "seed": 3}})
    value = json.loads(response["choices"][0]["text"])
    assert set(value) == {"ok"} and isinstance(value["ok"], bool)


def test_an_invalid_json_schema_is_bad_input_naming_it(fail):
    error = fail({"prompt": "JSON:", "sampling_params": {"structured_outputs": {"json": {"type": "nonsense"}}}})
    assert error["code"] == "BAD_INPUT"
    assert [p["field"] for p in error["problems"]] == ["sampling_params.structured_outputs.json"], error


def test_stream_options_in_sampling_params_add_the_usage_chunk(run):
    request = {"prompt": "Hi", "stream": True,
               "sampling_params": {"max_tokens": 4, "min_tokens": 4, "stream_options": {"include_usage": True}}}
    events = sse_events(run(request))
    usage = json.loads(events[-2])
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 4
