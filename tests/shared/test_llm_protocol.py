"""The LLM contract shared by llm-hf and llm-vllm: native parsing, bounds, the context budget, native rendered
shapes, joined stream text, and worker-vllm's form. llm-hf's OpenAI routes: tests/workers/llm-hf."""

from __future__ import annotations

import asyncio

import pytest

from shared.errors import BadInput
from shared.llm.inputs import DEFAULT_MAX_TOKENS, MAX_STOP_SEQUENCES, GenerateInput, Sampling
from shared.llm.outputs import join_text_chunks, render
from shared.llm.requests import completion_budget, parse_native
from shared.llm.worker_vllm import WorkerVllmRequest, is_worker_vllm_form, parse_worker_vllm
from shared.validation import json_schema

SERVED = "org/model"


def problems(job_input) -> dict[str, str]:
    """The problems a native or worker-vllm-form input is refused with, by field."""
    with pytest.raises(BadInput) as info:
        parse_worker_vllm(job_input) if is_worker_vllm_form(job_input) else parse_native(job_input)
    return {p.field: p.reason for p in info.value.problems}

# --- native input ---------------------------------------------------------------------------------


def test_native_prompt_gets_documented_defaults():
    request = parse_native({"prompt": "hi"})
    assert request.api == "native" and request.prompt == "hi" and request.messages is None
    assert request.sampling == Sampling()
    assert (request.sampling.temperature, request.sampling.top_p, request.sampling.top_k) == (1.0, 1.0, 0)
    assert request.prompt_field == "prompt"


def test_native_messages_keep_their_order_and_text():
    request = parse_native({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]})
    assert request.chat() == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert request.prompt_field == "messages"


def test_a_single_stop_string_becomes_a_list():
    assert parse_native({"prompt": "x", "stop": "END"}).sampling.stop == ["END"]


@pytest.mark.parametrize("job_input", [{}, {"prompt": "x", "messages": [{"role": "user", "content": "y"}]}])
def test_exactly_one_of_prompt_or_messages(job_input):
    assert set(problems(job_input)) == {"prompt"}


def test_every_bad_field_is_reported_at_once():
    found = problems({
        "messages": [{"role": "user", "content": "ok"}, {"role": "bot", "content": "x"}],
        "temperature": -1, "top_p": 1.5, "top_k": -1, "max_tokens": 0, "seed": -5,
        "stop": ["s"] * (MAX_STOP_SEQUENCES + 1), "stream": "yes please", "extra": 1,
    })
    assert {"messages.1.role", "temperature", "top_p", "top_k", "max_tokens", "seed", "stop", "stream",
            "extra"} <= set(found)
    assert found["extra"] == "unknown field"


def test_min_tokens_over_max_tokens_is_refused():
    assert set(problems({"prompt": "x", "max_tokens": 3, "min_tokens": 4})) == {"min_tokens"}


def test_non_object_input_is_refused():
    assert set(problems(["prompt"])) == {"input"}


def test_input_schema_documents_bounds_and_defaults():
    schema = json_schema(GenerateInput)
    assert schema["properties"]["temperature"]["maximum"] == 2.0
    assert schema["properties"]["top_k"]["default"] == 0
    assert "description" in schema["properties"]["max_tokens"]


# --- context budget -------------------------------------------------------------------------------


def budget(job_input, prompt_tokens, context):
    return completion_budget(parse_native(job_input), prompt_tokens, context)

def test_default_budget_is_capped_by_the_context():
    assert budget({"prompt": "x"}, 10, 100_000) == DEFAULT_MAX_TOKENS
    assert budget({"prompt": "x"}, 90, 100) == 10


def test_explicit_budget_over_the_context_names_max_tokens():
    with pytest.raises(BadInput) as info:
        budget({"prompt": "x", "max_tokens": 11}, 90, 100)
    [problem] = info.value.problems
    assert (problem.field, problem.value) == ("max_tokens", 11)
    assert "at most 10" in problem.reason


# --- rendering ------------------------------------------------------------------------------------


@pytest.fixture
def rendered(drain):
    """``rendered(request, events, slowly=False)``: the native chunks a handler yields."""
    return lambda request, events, slowly=False: drain(render(request, events), slowly)

def test_native_whole_result(rendered, engine_events):
    [body] = rendered(parse_native({"prompt": "x"}), engine_events("He", "llo"))
    assert body == {"text": "Hello", "finish_reason": "stop",
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_native_stream_skips_empty_deltas_and_ends_with_usage(rendered, engine_events):
    chunks = rendered(parse_native({"prompt": "x", "stream": True}), engine_events("He", "", "llo"))
    assert chunks == [{"text": "He"}, {"text": "llo"},
                      {"text": "", "finish_reason": "stop",
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}]


def test_closing_the_rendered_stream_closes_the_engine_events(engine_events):
    closed: list[bool] = []

    async def take_one():
        chunks = render(parse_native({"prompt": "x", "stream": True}), engine_events("a", "b", closed=closed))
        first = await anext(chunks)
        await chunks.aclose()  # what happens to a cancelled job's generator
        return first

    assert asyncio.run(take_one()) == {"text": "a"}
    assert closed == [True]


def test_an_engine_that_ends_without_finish_is_an_error(rendered, engine_events):
    with pytest.raises(RuntimeError, match="without a Finish"):
        rendered(parse_native({"prompt": "x"}), engine_events("a", finish=False))


# --- streamed text joined while the consumer is busy -----------------------------------------------


def test_a_slow_native_consumer_gets_the_same_text_in_fewer_chunks(rendered, engine_events):
    deltas = ("He", "l", "lo", " wo", "rld")
    chunks = rendered(parse_native({"prompt": "x", "stream": True}), engine_events(*deltas), slowly=True)
    *texts, last = chunks
    assert "".join(chunk["text"] for chunk in texts) == "Hello world"
    assert all(set(chunk) == {"text"} for chunk in texts) and len(texts) < len(deltas)
    assert last == {"text": "", "finish_reason": "stop",
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


VLLM_CHAT_DELTA = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None}]}


def _with(chunk: dict, **choice_fields) -> dict:
    return {**chunk, "choices": [{**chunk["choices"][0], **choice_fields}]}


def test_text_deltas_of_one_stream_join_into_one_chunk_of_the_same_shape():
    later = _with(VLLM_CHAT_DELTA, delta={"content": "y"})
    assert join_text_chunks(VLLM_CHAT_DELTA, later) == _with(VLLM_CHAT_DELTA, delta={"content": "xy"})
    assert join_text_chunks({"text": "a"}, {"text": "b"}) == {"text": "ab"}
    completion = {"id": "cmpl-1", "object": "text_completion", "created": 7, "model": "m",
                  "choices": [{"index": 0, "text": "a", "logprobs": None, "finish_reason": None,
                               "stop_reason": None}]}
    assert join_text_chunks(completion, _with(completion, text="b")) == _with(completion, text="ab")


@pytest.mark.parametrize("later", [
    _with(VLLM_CHAT_DELTA, finish_reason="stop"),
    _with(VLLM_CHAT_DELTA, logprobs={"content": []}),
    _with(VLLM_CHAT_DELTA, index=1),
    _with(VLLM_CHAT_DELTA, delta={"role": "assistant", "content": ""}),
    _with(VLLM_CHAT_DELTA, delta={"content": "y", "reasoning_content": "r"}),
    _with(VLLM_CHAT_DELTA, delta={"tool_calls": [{"index": 0}]}),
    {**VLLM_CHAT_DELTA, "id": "chatcmpl-2"},
    {**VLLM_CHAT_DELTA, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
    {**VLLM_CHAT_DELTA, "choices": [VLLM_CHAT_DELTA["choices"][0]] * 2},
    {"text": "", "finish_reason": "stop"},
    {"error": "x"},
], ids=["finish", "logprobs", "other-choice", "role", "reasoning", "tool-calls", "other-stream", "usage",
        "two-choices", "native-finish", "not-a-chunk"])
def test_chunks_carrying_more_than_text_are_never_joined(later):
    earlier = {"text": "a"} if "object" not in later else VLLM_CHAT_DELTA
    assert join_text_chunks(earlier, later) is None
    assert join_text_chunks(later, earlier) is None


# --- worker-vllm's native form -------------------------------------------------------------------


def test_worker_vllm_prompt_form_stands_for_a_completions_body_with_its_sampling_params():
    """worker-vllm README, "Text Input Formats":
    {"input": {"prompt": "why sky is blue?", "sampling_params": {"temperature": 0.7, "max_tokens": 100}}}
    and its src/handler.py: body = {**sampling_params, "stream": ...} plus the prompt, to /v1/completions."""
    request = parse_worker_vllm({"prompt": "why sky is blue?", "sampling_params": {"temperature": 0.7,
                                                                                     "max_tokens": 100}})
    assert request.route == "/v1/completions"
    assert request.openai_body(SERVED) == {"model": SERVED, "prompt": "why sky is blue?", "stream": False,
                                           "temperature": 0.7, "max_tokens": 100}


def test_worker_vllm_messages_form_stands_for_a_chat_body():
    """worker-vllm README: "`messages` ... is proxied to /v1/chat/completions" with the chat template applied."""
    messages = [{"role": "system", "content": "You are a helpful AI assistant."},
                {"role": "user", "content": "Can you explain supervised learning?"}]
    request = parse_worker_vllm({"messages": messages, "sampling_params": {"max_tokens": 100}, "stream": True})
    assert request.route == "/v1/chat/completions"
    assert request.openai_body(SERVED) == {"model": SERVED, "messages": messages, "stream": True, "max_tokens": 100}


def test_worker_vllm_prompt_with_apply_chat_template_is_one_user_message():
    request = parse_worker_vllm({"prompt": "hi", "apply_chat_template": True, "sampling_params": {}})
    assert request.route == "/v1/chat/completions"
    assert request.openai_body(SERVED)["messages"] == [{"role": "user", "content": "hi"}]


def test_a_request_mixing_both_forms_is_refused_naming_each_native_field():
    found = problems({"prompt": "hi", "max_tokens": 5, "temperature": 0, "sampling_params": {"max_tokens": 5}})
    assert set(found) == {"max_tokens", "temperature"}
    assert "sampling_params.max_tokens" in found["max_tokens"]


def test_worker_vllm_sampling_params_are_bounded_and_unknown_ones_named():
    found = problems({"prompt": "hi", "sampling_params": {"n": 0, "top_p": 1.5, "best_of": 2, "stop": [""]}})
    assert set(found) == {"sampling_params.n", "sampling_params.top_p", "sampling_params.best_of",
                          "sampling_params.stop"}


def test_worker_vllm_structured_outputs_take_exactly_one_constraint():
    found = problems({"prompt": "hi", "sampling_params": {"structured_outputs": {"regex": "a+", "choice": ["a"]}}})
    assert list(found) == ["sampling_params.structured_outputs"]
    assert "exactly one of json, regex, choice" in found["sampling_params.structured_outputs"]
    assert problems({"prompt": "hi", "sampling_params": {"structured_outputs": {"json": "not a schema"}}}) \
        == {"sampling_params.structured_outputs.json": "Input should be a valid dictionary"}


def test_the_worker_vllm_form_has_a_json_schema():
    schema = json_schema(WorkerVllmRequest)
    assert schema["properties"]["stream"]["default"] is False
    assert "structured_outputs" in schema["$defs"]["VllmSamplingParams"]["properties"]


def test_native_structured_outputs_are_parsed_into_the_request():
    request = parse_native({"prompt": "x", "structured_outputs": {"json": {"type": "object"}}})
    assert request.structured_outputs.vllm_params() == {"json": {"type": "object"}}
    assert set(problems({"prompt": "x", "structured_outputs": {}})) == {"structured_outputs"}
    assert set(problems({"prompt": "x", "structured_outputs": {"choice": []}})) == {"structured_outputs.choice"}


def test_worker_vllm_stream_options_ask_for_a_last_usage_chunk():
    body = {"prompt": "hi", "stream": True, "sampling_params": {"stream_options": {"include_usage": True}}}
    assert parse_worker_vllm(body).openai_body(SERVED)["stream_options"] == {"include_usage": True}


def test_native_lora_names_an_adapter_and_is_bounded():
    assert parse_native({"prompt": "x", "lora": "my-adapter"}).lora == "my-adapter"
    assert parse_native({"prompt": "x"}).lora is None
    assert set(problems({"prompt": "x", "lora": ""})) == {"lora"}
    assert set(problems({"prompt": "x", "lora": "a" * 129})) == {"lora"}


def test_worker_vllm_sampling_params_model_is_the_bodys_model_as_worker_vllm_merges_it():
    """worker-vllm's src/handler.py: body = {**sampling_params, "stream", ...}; a model given there is kept."""
    request = parse_worker_vllm({"prompt": "hi", "sampling_params": {"model": "my-adapter"}})
    assert request.openai_body(SERVED)["model"] == "my-adapter"
    assert parse_worker_vllm({"prompt": "hi"}).openai_body(SERVED)["model"] == SERVED
