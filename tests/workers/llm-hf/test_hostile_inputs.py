"""Property: whatever the input (native or an OpenAI route, from the schema or hostile), an llm-hf job ends with
strict JSON, never INTERNAL, and the worker serves the next job (issue 19)."""

from __future__ import annotations

import pytest
from hypothesis import given

from shared.llm.inputs import GenerateInput
from shared.llm.openai import CHAT_ROUTE, COMPLETIONS_ROUTE
from shared.validation import json_schema
from worker_llm_hf.openai import ChatCompletionRequest, CompletionRequest

#: Bounds of the fields that cost generation time, so each example is a few tokens of the tiny model.
TOKEN_CAPS = {"max_tokens": {"maximum": 4}, "min_tokens": {"maximum": 4}}
OPENAI_MODELS = {CHAT_ROUTE: ChatCompletionRequest, COMPLETIONS_ROUTE: CompletionRequest}


def serves_the_next_job(run):
    [result] = run({"prompt": "still serving", "max_tokens": 2, "ignore_eos": True, "temperature": 0})
    assert result["usage"]["completion_tokens"] == 2


def test_native_jobs_end_with_a_strict_answer_never_internal(run, run_guarded, hostile, hostile_budget):
    schema = hostile.capped(json_schema(GenerateInput), TOKEN_CAPS, required=("max_tokens",))

    @hostile_budget
    @given(hostile.inputs(schema))
    def job_ends(job_input):
        hostile.check_answer(run_guarded(job_input))

    job_ends()
    serves_the_next_job(run)


@pytest.mark.parametrize("route", sorted(OPENAI_MODELS))
def test_openai_jobs_end_with_a_strict_answer_never_internal(run, run_guarded, served, hostile, hostile_budget,
                                                             route):
    caps = {**TOKEN_CAPS, "model": {"enum": [served]}}
    if route == CHAT_ROUTE:
        caps["max_completion_tokens"] = {"maximum": 4}
    schema = hostile.capped(json_schema(OPENAI_MODELS[route]), caps, required=("max_tokens",))

    @hostile_budget
    @given(hostile.openai_jobs(route, schema))
    def job_ends(job):
        hostile.check_answer(run_guarded(job))

    job_ends()
    serves_the_next_job(run)
