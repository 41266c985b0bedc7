"""Property: whatever the input (native or an OpenAI route, from the schema or hostile), an llm-vllm job ends
with strict JSON, never INTERNAL, and the worker serves the next job (issue 19). The OpenAI bodies come from the
schema of the request models llm-vllm validates them with (vLLM's own, `worker_llm_vllm.openai_routes`), over the
fields of an OpenAI request (the official client's parameters and the shared sampling extras); the fields that
cost generation time are capped so examples stay a few tokens of the tiny model (vLLM leaves ``n`` unbounded)."""

from __future__ import annotations

import pytest
from hypothesis import given

from shared.llm.inputs import GenerateInput
from shared.llm.openai import CHAT_ROUTE, COMPLETIONS_ROUTE
from shared.validation import json_schema
from worker_llm_vllm.openai_routes import _request_model as vllm_request_model

pytestmark = pytest.mark.vllm

#: Bounds of the fields that cost generation time, so each example is a few tokens of the tiny model.
TOKEN_CAPS = {"max_tokens": {"maximum": 4}, "min_tokens": {"maximum": 4}}
OPENAI_ROUTES = (CHAT_ROUTE, COMPLETIONS_ROUTE)
MODEL = "tiny-llama"


def serves_the_next_job(run):
    [result] = run({"prompt": "still serving", "max_tokens": 2, "ignore_eos": True, "temperature": 0})
    assert result["usage"]["completion_tokens"] == 2


def test_native_jobs_end_with_a_strict_answer_never_internal(run, hostile, hostile_budget):
    schema = hostile.capped(json_schema(GenerateInput), TOKEN_CAPS, required=("max_tokens",))

    @hostile_budget
    @given(hostile.inputs(schema))
    def job_ends(job_input):
        hostile.check_answer(run(job_input))

    job_ends()
    serves_the_next_job(run)


@pytest.mark.parametrize("route", OPENAI_ROUTES)
def test_openai_jobs_end_with_a_strict_answer_never_internal(run, hostile, hostile_budget, route):
    caps = {**TOKEN_CAPS, "model": {"enum": [MODEL]}, "n": {"maximum": 2}}
    if route == CHAT_ROUTE:
        caps["max_completion_tokens"] = {"maximum": 4}
    schema = hostile.restricted(json_schema(vllm_request_model(route)), hostile.openai_request_fields(route))
    schema = hostile.capped(schema, caps, required=("max_tokens",))

    @hostile_budget
    @given(hostile.openai_jobs(route, schema))
    def job_ends(job):
        hostile.check_answer(run(job))

    job_ends()
    serves_the_next_job(run)
