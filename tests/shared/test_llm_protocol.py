"""The LLM contract shared by llm-hf and llm-vllm: parsing, bounds, the context budget, and rendered shapes."""

from __future__ import annotations

import asyncio
import json

import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from shared.errors import BadInput
from shared.llm.inputs import DEFAULT_MAX_TOKENS, MAX_STOP_SEQUENCES, GenerateInput, Sampling
from shared.llm.outputs import Finish, join_text_chunks, render
from shared.llm.requests import GenerationRequest, ModelsRequest, completion_budget, parse_job
from shared.llm.worker_vllm import DEFAULT_COMPLETION_MAX_TOKENS, WorkerVllmRequest, parse_worker_vllm
from shared.validation import json_schema

SERVED = "org/model"


def problems(job_input) -> dict[str, str]:
    with pytest.raises(BadInput) as info:
        parse_job(job_input, SERVED)
    return {p.field: p.reason for p in info.value.problems}


# --- native input ---------------------------------------------------------------------------------


def test_native_prompt_gets_documented_defaults():
    request = parse_job({"prompt": "hi"}, SERVED)
    assert request.api == "native" and request.prompt == "hi" and request.messages is None
    assert request.sampling == Sampling()
    assert (request.sampling.temperature, request.sampling.top_p, request.sampling.top_k) == (1.0, 1.0, 0)
    assert request.prompt_field == "prompt"


def test_native_messages_keep_their_order_and_text():
    request = parse_job({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}, SERVED)
    assert request.chat() == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert request.prompt_field == "messages"


def test_a_single_stop_string_becomes_a_list():
    assert parse_job({"prompt": "x", "stop": "END"}, SERVED).sampling.stop == ["END"]


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


# --- OpenAI input ---------------------------------------------------------------------------------


def chat(**body):
    return {"openai_route": "/v1/chat/completions", "openai_input": {"model": SERVED, **body}}


def test_models_route_needs_no_body():
    assert isinstance(parse_job({"openai_route": "/v1/models", "openai_input": {}}, SERVED), ModelsRequest)


def test_chat_request_maps_to_the_shared_sampling():
    request = parse_job(chat(messages=[{"role": "user", "content": "hi"}], max_tokens=9, temperature=0.5, top_k=4,
                             stop="x", seed=3, stream=True, stream_options={"include_usage": True}), SERVED)
    assert request.api == "chat" and request.stream and request.include_usage
    assert request.sampling == Sampling(max_tokens=9, temperature=0.5, top_k=4, stop=["x"], seed=3)
    assert request.max_tokens_field == "openai_input.max_tokens"


def test_chat_max_completion_tokens_takes_precedence():
    request = parse_job(chat(messages=[{"role": "user", "content": "hi"}], max_tokens=9, max_completion_tokens=2),
                        SERVED)
    assert request.sampling.max_tokens == 2
    assert request.max_tokens_field == "openai_input.max_completion_tokens"


def test_unsupported_openai_features_are_refused_not_ignored():
    found = problems(chat(messages=[{"role": "user", "content": "hi"}], n=3, frequency_penalty=1.0,
                          logprobs=True, tools=[{"type": "function"}]))
    assert set(found) == {"openai_input.n", "openai_input.frequency_penalty", "openai_input.logprobs",
                          "openai_input.tools"}


def test_completion_prompt_may_be_a_list_of_one():
    request = parse_job({"openai_route": "/v1/completions", "openai_input": {"model": SERVED, "prompt": ["p"]}},
                        SERVED)
    assert request.api == "completion" and request.prompt == "p"
    found = problems({"openai_route": "/v1/completions", "openai_input": {"model": SERVED, "prompt": ["a", "b"]}})
    assert set(found) == {"openai_input.prompt"}


def test_wrong_model_unknown_route_and_stray_fields_are_named():
    assert set(problems(chat(model="other", messages=[{"role": "user", "content": "hi"}]))) == {"openai_input.model"}
    assert set(problems({"openai_route": "/v1/embeddings", "openai_input": {}})) == {"openai_route"}
    assert set(problems({"openai_route": "/v1/models", "openai_input": {}, "x": 1})) == {"x"}
    assert set(problems({"openai_route": "/v1/chat/completions"})) == {"openai_input"}


# --- context budget -------------------------------------------------------------------------------


def budget(job_input, prompt_tokens, context):
    return completion_budget(parse_job(job_input, SERVED), prompt_tokens, context)


def test_default_budget_is_capped_by_the_context():
    assert budget({"prompt": "x"}, 10, 100_000) == DEFAULT_MAX_TOKENS
    assert budget({"prompt": "x"}, 90, 100) == 10


def test_explicit_budget_over_the_context_names_max_tokens():
    with pytest.raises(BadInput) as info:
        budget({"prompt": "x", "max_tokens": 11}, 90, 100)
    [problem] = info.value.problems
    assert (problem.field, problem.value) == ("max_tokens", 11)
    assert "at most 10" in problem.reason


def test_prompt_filling_the_context_names_the_prompt_field():
    with pytest.raises(BadInput) as info:
        budget(chat(messages=[{"role": "user", "content": "hi"}]), 100, 100)
    assert [p.field for p in info.value.problems] == ["openai_input.messages"]


def test_min_tokens_must_fit_what_the_context_leaves():
    with pytest.raises(BadInput) as info:
        budget(chat(messages=[{"role": "user", "content": "hi"}], min_tokens=20), 90, 100)
    assert [p.field for p in info.value.problems] == ["openai_input.min_tokens"]


# --- rendering ------------------------------------------------------------------------------------


STOPPED = Finish("stop", 3, 2)


async def _events(*deltas, finish=STOPPED, closed=None):
    """An engine that produces one delta per step: a consumer that keeps up gets each one on its own."""
    try:
        for delta in deltas:
            yield delta
            await asyncio.sleep(0)
        if finish:
            yield finish
    finally:
        if closed is not None:
            closed.append(True)


def rendered(request: GenerationRequest, events) -> list[dict]:
    async def collect():
        return [chunk async for chunk in render(request, events, SERVED)]

    return asyncio.run(collect())


def test_native_whole_result():
    [body] = rendered(parse_job({"prompt": "x"}, SERVED), _events("He", "llo"))
    assert body == {"text": "Hello", "finish_reason": "stop",
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_native_stream_skips_empty_deltas_and_ends_with_usage():
    chunks = rendered(parse_job({"prompt": "x", "stream": True}, SERVED), _events("He", "", "llo"))
    assert chunks == [{"text": "He"}, {"text": "llo"},
                      {"text": "", "finish_reason": "stop",
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}]


def test_chat_whole_and_stream_shapes():
    [whole] = rendered(parse_job(chat(messages=[{"role": "user", "content": "q"}]), SERVED), _events("a", "b"))
    assert ChatCompletion.model_validate(whole).choices[0].message.content == "ab"
    chunks = rendered(parse_job(chat(messages=[{"role": "user", "content": "q"}], stream=True,
                                     stream_options={"include_usage": True}), SERVED), _events("a", "b"))
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert [c.choices[0].delta.content for c in parsed[:3]] == ["", "a", "b"]
    assert chunks[1]["choices"][0]["delta"] == {"content": "a"}  # unset delta fields are left out, as OpenAI does
    assert parsed[3].choices[0].finish_reason == "stop"
    assert parsed[4].choices == [] and parsed[4].usage.total_tokens == 5


def test_completion_whole_shape():
    request = parse_job({"openai_route": "/v1/completions", "openai_input": {"model": SERVED, "prompt": "p"}}, SERVED)
    [whole] = rendered(request, _events("a", finish=Finish("length", 1, 1)))
    completion = Completion.model_validate(whole)
    assert (completion.choices[0].text, completion.choices[0].finish_reason) == ("a", "length")


def test_closing_the_rendered_stream_closes_the_engine_events():
    closed: list[bool] = []

    async def take_one():
        chunks = render(parse_job({"prompt": "x", "stream": True}, SERVED), _events("a", "b", closed=closed), SERVED)
        first = await anext(chunks)
        await chunks.aclose()  # what happens to a cancelled job's generator
        return first

    assert asyncio.run(take_one()) == {"text": "a"}
    assert closed == [True]


def test_an_engine_that_ends_without_finish_is_an_error():
    with pytest.raises(RuntimeError, match="without a Finish"):
        rendered(parse_job({"prompt": "x"}, SERVED), _events("a", finish=None))


# --- streamed text joined while the consumer is busy -----------------------------------------------


def rendered_slowly(request: GenerationRequest, events) -> list[dict]:
    """The chunks a consumer gets that is busy (posting) until the engine has produced everything."""

    async def collect():
        chunks = render(request, events, SERVED)
        got = [await anext(chunks)]
        for _ in range(20):  # let the engine run ahead while the first chunk is being posted
            await asyncio.sleep(0)
        return got + [chunk async for chunk in chunks]

    return asyncio.run(collect())


def _chat_stream(**fields):
    return parse_job(chat(messages=[{"role": "user", "content": "q"}], stream=True, **fields), SERVED)


def test_a_slow_native_consumer_gets_the_same_text_in_fewer_chunks():
    deltas = ("He", "l", "lo", " wo", "rld")
    chunks = rendered_slowly(parse_job({"prompt": "x", "stream": True}, SERVED), _events(*deltas))
    *texts, last = chunks
    assert "".join(chunk["text"] for chunk in texts) == "Hello world"
    assert all(set(chunk) == {"text"} for chunk in texts) and len(texts) < len(deltas)
    assert last == {"text": "", "finish_reason": "stop",
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_a_slow_chat_consumer_gets_valid_chunks_then_finish_then_usage():
    chunks = rendered_slowly(_chat_stream(stream_options={"include_usage": True}), _events("a", "b", "c"))
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed[:-1]) == "abc"
    assert len(parsed) < 1 + 3 + 2
    assert [c.choices[0].finish_reason for c in parsed[:-1]][-1] == "stop"
    assert parsed[-1].choices == [] and parsed[-1].usage.total_tokens == 5
    assert len({c.id for c in parsed}) == 1


def test_a_slow_completion_consumer_gets_valid_text_completion_chunks():
    request = parse_job({"openai_route": "/v1/completions",
                         "openai_input": {"model": SERVED, "prompt": "p", "stream": True}}, SERVED)
    one_by_one = rendered(request, _events("a", "b", "c"))
    chunks = rendered_slowly(request, _events("a", "b", "c"))
    assert "".join(c["choices"][0]["text"] for c in chunks) == "abc"
    assert len(chunks) < len(one_by_one) and chunks[-1] == {**one_by_one[-1], "id": chunks[-1]["id"],
                                                             "created": chunks[-1]["created"]}
    assert {(c["object"], *c, *c["choices"][0]) for c in chunks} == {(c["object"], *c, *c["choices"][0])
                                                                        for c in one_by_one}


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


def test_the_transformers_engine_refuses_per_field_what_it_cannot_do():
    found = problems({"prompt": "hi", "sampling_params": {
        "n": 2, "logprobs": 1, "presence_penalty": 0.5, "structured_outputs": {"choice": ["a"]},
        "stop_token_ids": [1], "temperature": 0.5}})
    assert set(found) == {"sampling_params.n", "sampling_params.logprobs", "sampling_params.presence_penalty",
                          "sampling_params.structured_outputs", "sampling_params.stop_token_ids"}
    assert all("llm-vllm" in reason for reason in found.values())


def test_the_transformers_engine_takes_vllm_names_at_their_defaults_and_maps_the_rest():
    request = parse_job({"prompt": "hi", "sampling_params": {"n": 1, "top_k": -1, "presence_penalty": 0,
                                                             "temperature": 0, "stop": "x", "seed": 3}}, SERVED)
    assert (request.api, request.sse, request.prefix) == ("completion", True, "sampling_params")
    assert request.sampling == Sampling(max_tokens=DEFAULT_COMPLETION_MAX_TOKENS, temperature=0, top_k=0,
                                        stop=["x"], seed=3)
    chat = parse_job({"messages": [{"role": "user", "content": "hi"}], "sampling_params": {}}, SERVED)
    assert chat.api == "chat" and chat.sampling.max_tokens is None  # what the context leaves, as vLLM's chat


def test_a_worker_vllm_stream_renders_as_sse_text_ending_with_done():
    request = parse_job({"prompt": "hi", "stream": True, "sampling_params": {}}, SERVED)
    pieces = rendered(request, _events("a", "b"))
    assert all(isinstance(piece, str) and piece.endswith("\n\n") for piece in pieces)
    assert pieces[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(piece.removeprefix("data: ")) for piece in pieces[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in chunks) == "ab"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_the_worker_vllm_form_has_a_json_schema():
    schema = json_schema(WorkerVllmRequest)
    assert schema["properties"]["stream"]["default"] is False
    assert "structured_outputs" in schema["$defs"]["VllmSamplingParams"]["properties"]


def test_native_structured_outputs_are_parsed_into_the_request():
    request = parse_job({"prompt": "x", "structured_outputs": {"json": {"type": "object"}}}, SERVED)
    assert request.structured_outputs.vllm_params() == {"json": {"type": "object"}}
    assert set(problems({"prompt": "x", "structured_outputs": {}})) == {"structured_outputs"}
    assert set(problems({"prompt": "x", "structured_outputs": {"choice": []}})) == {"structured_outputs.choice"}


def test_worker_vllm_stream_options_ask_for_a_last_usage_chunk_on_both_workers():
    body = {"prompt": "hi", "stream": True, "sampling_params": {"stream_options": {"include_usage": True}}}
    assert parse_worker_vllm(body).openai_body(SERVED)["stream_options"] == {"include_usage": True}
    request = parse_job(body, SERVED)
    assert request.include_usage
    pieces = rendered(request, _events("a"))
    last = json.loads(pieces[-2].removeprefix("data: "))
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 5
