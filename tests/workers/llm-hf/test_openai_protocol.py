"""llm-hf's OpenAI routes and its reading of worker-vllm's form: parsing into the shared request, refusing what
the transformers engine cannot do, and the OpenAI objects rendered for them (worker_llm_hf.openai,
worker_llm_hf.requests)."""

from __future__ import annotations

import json

import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from shared.errors import BadInput
from shared.llm.inputs import Sampling
from shared.llm.outputs import Finish, render
from shared.llm.requests import completion_budget
from shared.llm.worker_vllm import DEFAULT_COMPLETION_MAX_TOKENS
from worker_llm_hf.openai import ModelsRequest, shape_for
from worker_llm_hf.requests import parse_job

SERVED = "org/model"


def problems(job_input) -> dict[str, str]:
    with pytest.raises(BadInput) as info:
        parse_job(job_input, SERVED)
    return {p.field: p.reason for p in info.value.problems}


@pytest.fixture
def rendered(drain):
    """``rendered(request, events, slowly=False)``: the chunks llm-hf's handler yields, in the request's shape."""
    return lambda request, events, slowly=False: drain(render(request, events, shape_for(request, SERVED)), slowly)

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


def test_prompt_filling_the_context_names_the_prompt_field():
    with pytest.raises(BadInput) as info:
        budget(chat(messages=[{"role": "user", "content": "hi"}]), 100, 100)
    assert [p.field for p in info.value.problems] == ["openai_input.messages"]


def test_min_tokens_must_fit_what_the_context_leaves():
    with pytest.raises(BadInput) as info:
        budget(chat(messages=[{"role": "user", "content": "hi"}], min_tokens=20), 90, 100)
    assert [p.field for p in info.value.problems] == ["openai_input.min_tokens"]


# --- rendering ------------------------------------------------------------------------------------


def test_chat_whole_and_stream_shapes(rendered, engine_events):
    [whole] = rendered(parse_job(chat(messages=[{"role": "user", "content": "q"}]), SERVED), engine_events("a", "b"))
    assert ChatCompletion.model_validate(whole).choices[0].message.content == "ab"
    chunks = rendered(parse_job(chat(messages=[{"role": "user", "content": "q"}], stream=True,
                                     stream_options={"include_usage": True}), SERVED), engine_events("a", "b"))
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert [c.choices[0].delta.content for c in parsed[:3]] == ["", "a", "b"]
    assert chunks[1]["choices"][0]["delta"] == {"content": "a"}  # unset delta fields are left out, as OpenAI does
    assert parsed[3].choices[0].finish_reason == "stop"
    assert parsed[4].choices == [] and parsed[4].usage.total_tokens == 5


def test_completion_whole_shape(rendered, engine_events):
    request = parse_job({"openai_route": "/v1/completions", "openai_input": {"model": SERVED, "prompt": "p"}}, SERVED)
    [whole] = rendered(request, engine_events("a", finish=Finish("length", 1, 1)))
    completion = Completion.model_validate(whole)
    assert (completion.choices[0].text, completion.choices[0].finish_reason) == ("a", "length")


# --- streamed text joined while the consumer is busy -----------------------------------------------


def _chat_stream(**fields):
    return parse_job(chat(messages=[{"role": "user", "content": "q"}], stream=True, **fields), SERVED)


def test_a_slow_chat_consumer_gets_valid_chunks_then_finish_then_usage(rendered, engine_events):
    chunks = rendered(_chat_stream(stream_options={"include_usage": True}), engine_events("a", "b", "c"), slowly=True)
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed[:-1]) == "abc"
    assert len(parsed) < 1 + 3 + 2
    assert [c.choices[0].finish_reason for c in parsed[:-1]][-1] == "stop"
    assert parsed[-1].choices == [] and parsed[-1].usage.total_tokens == 5
    assert len({c.id for c in parsed}) == 1


def test_a_slow_completion_consumer_gets_valid_text_completion_chunks(rendered, engine_events):
    request = parse_job({"openai_route": "/v1/completions",
                         "openai_input": {"model": SERVED, "prompt": "p", "stream": True}}, SERVED)
    one_by_one = rendered(request, engine_events("a", "b", "c"))
    chunks = rendered(request, engine_events("a", "b", "c"), slowly=True)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "abc"
    assert len(chunks) < len(one_by_one) and chunks[-1] == {**one_by_one[-1], "id": chunks[-1]["id"],
                                                             "created": chunks[-1]["created"]}
    assert {(c["object"], *c, *c["choices"][0]) for c in chunks} == {(c["object"], *c, *c["choices"][0])
                                                                        for c in one_by_one}


# --- worker-vllm's native form -------------------------------------------------------------------


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


def test_a_worker_vllm_stream_renders_as_sse_text_ending_with_done(rendered, engine_events):
    request = parse_job({"prompt": "hi", "stream": True, "sampling_params": {}}, SERVED)
    pieces = rendered(request, engine_events("a", "b"))
    assert all(isinstance(piece, str) and piece.endswith("\n\n") for piece in pieces)
    assert pieces[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(piece.removeprefix("data: ")) for piece in pieces[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in chunks) == "ab"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_worker_vllm_stream_options_end_llm_hf_streams_with_a_usage_chunk(rendered, engine_events):
    request = parse_job({"prompt": "hi", "stream": True,
                         "sampling_params": {"stream_options": {"include_usage": True}}}, SERVED)
    assert request.include_usage
    pieces = rendered(request, engine_events("a"))
    last = json.loads(pieces[-2].removeprefix("data: "))
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 5


def test_native_input_is_read_as_the_shared_native_request():
    request = parse_job({"prompt": "hi"}, SERVED)
    assert (request.api, request.prompt, request.sampling) == ("native", "hi", Sampling())
