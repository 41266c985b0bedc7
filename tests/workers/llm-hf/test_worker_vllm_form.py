"""worker-vllm's native request on llm-hf, pinned from worker-vllm's docs (newest release, v2.25.2): the same
shapes as on worker-vllm, and a per-field refusal of what the transformers engine cannot do.

worker-vllm README, "Usage: Standard (Non-OpenAI)": "You may either use a `prompt` or a list of `messages`
as input. Under the hood, `prompt` is proxied to vLLM's `/v1/completions` and `messages` to
`/v1/chat/completions`"; `stream`: "If True, raw SSE chunks are streamed as they are generated".
"""

from __future__ import annotations

import json

from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk


def test_the_readme_prompt_example_answers_with_a_completions_response(run, served):
    """README "Text Input Formats": {"input": {"prompt": "why sky is blue?",
    "sampling_params": {"temperature": 0.7, "max_tokens": 100}}}"""
    [response] = run({"prompt": "why sky is blue?", "sampling_params": {"temperature": 0.7, "max_tokens": 100}})
    completion = Completion.model_validate(response)
    assert completion.object == "text_completion" and completion.model == served
    assert completion.usage.completion_tokens <= 100


def test_without_max_tokens_a_prompt_gets_vllms_default_of_16(run):
    [response] = run({"prompt": "Hi", "sampling_params": {"temperature": 0, "ignore_eos": True}})
    assert response["usage"]["completion_tokens"] == 16


def test_the_readme_messages_example_streams_sse_text_with_the_whole_answers_text(run):
    """README: {"input": {"messages": [{"role": "system", ...}, {"role": "user", ...}], "sampling_params":
    {"temperature": 0.7, "max_tokens": 100}}}, here greedy so the stream and the whole answer agree."""
    request = {"messages": [{"role": "system", "content": "You are a helpful AI assistant."},
                            {"role": "user", "content": "Can you explain supervised learning?"}],
               "sampling_params": {"temperature": 0, "max_tokens": 8, "ignore_eos": True}}
    [whole] = run(request)
    assert ChatCompletion.model_validate(whole).choices[0].finish_reason == "length"
    pieces = run({**request, "stream": True})
    assert all(isinstance(piece, str) for piece in pieces)
    events = [event.removeprefix("data: ") for event in "".join(pieces).split("\n\n") if event]
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(event)) for event in events[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole["choices"][0]["message"]["content"]


def test_what_the_transformers_engine_cannot_do_is_refused_per_field(run_guarded, envelope):
    error = envelope(run_guarded({"prompt": "Hi", "sampling_params": {
        "n": 2, "logprobs": 3, "use_beam_search": True, "structured_outputs": {"regex": "a+"}, "max_tokens": 4}}))
    assert error["code"] == "BAD_INPUT"
    assert [p["field"] for p in error["problems"]] == [
        "sampling_params.logprobs", "sampling_params.n", "sampling_params.structured_outputs",
        "sampling_params.use_beam_search"]


def test_a_request_mixing_both_forms_is_refused_naming_the_fields(run_guarded, envelope):
    error = envelope(run_guarded({"prompt": "Hi", "temperature": 0, "stop": ["x"], "sampling_params": {}}))
    assert error["code"] == "BAD_INPUT"
    assert [p["field"] for p in error["problems"]] == ["temperature", "stop"]


def test_a_prompt_over_the_context_names_sampling_params_max_tokens(run_guarded, envelope):
    error = envelope(run_guarded({"prompt": "Hi", "sampling_params": {"max_tokens": 100_000}}))
    assert [p["field"] for p in error["problems"]] == ["sampling_params.max_tokens"]


def test_sampling_params_model_may_name_the_served_model_and_refuses_an_adapter(run, run_guarded, envelope, served):
    """worker-vllm merges sampling_params into the OpenAI body, where `model` picks the model or a LoRA adapter."""
    [response] = run({"prompt": "Hi", "sampling_params": {"model": served, "max_tokens": 2}})
    assert response["model"] == served
    error = envelope(run_guarded({"prompt": "Hi", "sampling_params": {"model": "my-adapter", "max_tokens": 2}}))
    [problem] = error["problems"]
    assert (problem["field"], problem["value"]) == ("sampling_params.model", "my-adapter")
    assert f"known model: {served}" in problem["reason"]
