"""Property: whatever the input (from the schema or hostile), a progress-demo job ends with strict JSON, never
INTERNAL, and the worker serves the next job (issue 19)."""

from __future__ import annotations

import asyncio

from hypothesis import given

from shared.guard import guard
from shared.validation import json_schema
from worker_progress_demo.worker import Input, ProgressDemo

#: Bounds of the fields that cost time: a few instant steps per example.
COST_CAPS = {"steps": {"maximum": 5}, "step_seconds": {"maximum": 0}}


def run_guarded(handler, job_input):
    async def drive():
        return [chunk async for chunk in handler({"id": "j", "input": job_input})]

    return asyncio.run(drive())


def test_jobs_end_with_a_strict_answer_never_internal(hostile, hostile_budget):
    demo = ProgressDemo()
    demo.setup()
    handler = guard(demo.handler)
    schema = hostile.capped(json_schema(Input), COST_CAPS, required=("step_seconds",))

    @hostile_budget
    @given(hostile.inputs(schema))
    def job_ends(job_input):
        hostile.check_answer(run_guarded(handler, job_input))

    job_ends()
    assert run_guarded(handler, {"steps": 2, "step_seconds": 0})[-1]["result"]["steps"] == 2
