"""Bad inputs: BAD_INPUT naming every offending field, context overflow refused before generating, worker unharmed."""

from __future__ import annotations

import pytest

from devkit.fixtures.llm import CONTEXT


def fields(body) -> set[str]:
    return {problem["field"] for problem in body["problems"]}


def test_several_bad_fields_are_reported_together(run_guarded, envelope):
    body = envelope(run_guarded({
        "prompt": "hi", "messages": [{"role": "robot", "content": "x"}], "temperature": 9, "top_p": 0,
        "max_tokens": 0, "stop": ["a"] * 9, "seed": -1, "colour": "red",
    }))
    assert body["code"] == "BAD_INPUT"
    assert body["retryable"] is False
    assert {"prompt", "messages.0.role", "temperature", "top_p", "max_tokens", "stop", "seed", "colour"} <= fields(body)


@pytest.mark.parametrize(
    ("job_input", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"messages": []}, "messages"),
        ({"prompt": "x", "stop": [""]}, "stop.0"),
        ({"prompt": "x", "min_tokens": 5, "max_tokens": 2}, "min_tokens"),
        ({"prompt": "x", "repetition_penalty": 0}, "repetition_penalty"),
        ({"prompt": "x", "stream": "true"}, "stream"),
        ({"prompt": "x", "stream": 1}, "stream"),
        ({"prompt": "x", "ignore_eos": "yes"}, "ignore_eos"),
        ("just a string", "input"),
    ],
)
def test_each_bad_input_names_its_field(run_guarded, envelope, job_input, field):
    body = envelope(run_guarded(job_input))
    assert body["code"] == "BAD_INPUT"
    assert field in fields(body)


@pytest.fixture
def no_generation(worker, monkeypatch):
    """Fails the test if a job reaches the engine."""

    def refuse(*args, **kwargs):
        raise AssertionError("generation started for a request that should have been refused")

    monkeypatch.setattr(worker.engine, "generate", refuse)


def test_prompt_longer_than_the_context_is_refused_before_generation(run_guarded, envelope, no_generation):
    body = envelope(run_guarded({"prompt": "word " * (CONTEXT + 10)}))
    assert body["code"] == "BAD_INPUT"
    assert fields(body) == {"prompt"}


def test_prompt_plus_max_tokens_over_the_context_names_max_tokens(worker, run_guarded, envelope, no_generation):
    prompt = "word " * 100
    room = CONTEXT - len(worker.loaded.tokenizer(prompt).input_ids)
    body = envelope(run_guarded({"prompt": prompt, "max_tokens": room + 1}))
    assert fields(body) == {"max_tokens"}
    assert body["problems"][0]["value"] == room + 1
    assert str(room) in body["problems"][0]["reason"]


def test_chat_over_the_context_names_messages(run_guarded, envelope, no_generation):
    body = envelope(run_guarded({"messages": [{"role": "user", "content": "word " * CONTEXT}]}))
    assert fields(body) == {"messages"}


def test_min_tokens_over_what_the_context_leaves_is_refused(run_guarded, envelope, no_generation):
    body = envelope(run_guarded({"prompt": "word " * 200, "min_tokens": CONTEXT}))
    assert fields(body) == {"min_tokens"}


def test_model_without_chat_template_refuses_messages(worker, monkeypatch, run_guarded, envelope):
    monkeypatch.setattr(worker.loaded.tokenizer, "chat_template", None)
    body = envelope(run_guarded({"messages": [{"role": "user", "content": "hi"}]}))
    assert fields(body) == {"messages"}
    assert "chat template" in body["problems"][0]["reason"]


def test_template_errors_are_bad_input(worker, monkeypatch, run_guarded, envelope):
    template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('must start with user') }}{% endif %}"
    monkeypatch.setattr(worker.loaded.tokenizer, "chat_template", template)
    body = envelope(run_guarded({"messages": [{"role": "assistant", "content": "hi"}]}))
    assert fields(body) == {"messages"}
    assert "must start with user" in body["problems"][0]["reason"]


def test_worker_keeps_serving_after_bad_inputs(run_guarded, run, greedy, envelope):
    envelope(run_guarded({"prompt": "x", "temperature": -1}))
    [result] = run(greedy(prompt="still here", max_tokens=3))
    assert result["usage"]["completion_tokens"] == 3


def test_prompt_with_no_tokens_is_refused(worker, monkeypatch, run_guarded, envelope, no_generation):
    monkeypatch.setattr(worker.prompts, "_text_ids", lambda prompt: [])
    body = envelope(run_guarded({"prompt": "\u200b"}))
    assert fields(body) == {"prompt"}


@pytest.mark.parametrize("unknown", [900, 5_000])
def test_thousands_of_unknown_fields_are_a_bounded_refusal(run_guarded, envelope, unknown):
    """Issue 19: a BAD_INPUT naming 5,000 unknown fields made a log line and a job error the size of the input.
    Past MAX_OBJECT_KEYS the object is refused as a whole; below it, the first problems are listed and counted."""
    from shared.errors import MAX_ENVELOPE_CHARS, MAX_LISTED_PROBLEMS
    from shared.json_limits import MAX_OBJECT_KEYS

    [chunk] = run_guarded({"prompt": "x", **{f"unknown_{i}": i for i in range(unknown)}})
    assert len(chunk["error"]) <= MAX_ENVELOPE_CHARS
    body = envelope([chunk])
    if unknown > MAX_OBJECT_KEYS:
        assert "MAX_OBJECT_KEYS" in body["problems"][0]["reason"]
        return
    assert len(body["problems"]) == MAX_LISTED_PROBLEMS
    assert body["more_problems"] == unknown - MAX_LISTED_PROBLEMS


def test_a_70_kb_field_name_is_refused_by_the_key_length_limit(run_guarded, envelope):
    body = envelope(run_guarded({"prompt": "x", "k" * 70_000: 1}))
    [problem] = body["problems"]
    assert "MAX_KEY_CHARS" in problem["reason"] and len(problem["field"]) < 100


def test_a_1_mb_openai_model_name_is_echoed_cut(run_guarded, envelope):
    from shared.errors import MAX_ECHO_CHARS

    body = envelope(run_guarded({"openai_route": "/v1/completions",
                                 "openai_input": {"model": "m" * 1_000_000, "prompt": "x"}}))
    [problem] = body["problems"]
    assert problem["field"] == "openai_input.model"
    assert len(problem["value"]) == MAX_ECHO_CHARS + 3


def test_structured_outputs_are_refused_naming_the_field(run_guarded, envelope, no_generation):
    error = envelope(run_guarded({"prompt": "JSON:", "structured_outputs": {"choice": ["a", "b"]}}))
    assert error["code"] == "BAD_INPUT"
    assert [p["field"] for p in error["problems"]] == ["structured_outputs"]
    assert "llm-vllm" in error["problems"][0]["reason"]


def test_a_lora_adapter_is_refused_naming_the_field_and_the_one_known_model(run_guarded, envelope, no_generation,
                                                                              served):
    error = envelope(run_guarded({"prompt": "Hi", "lora": "my-adapter"}))
    assert error["code"] == "BAD_INPUT"
    [problem] = error["problems"]
    assert (problem["field"], problem["value"]) == ("lora", "my-adapter")
    assert f"known model: {served}" in problem["reason"] and "llm-vllm" in problem["reason"]
