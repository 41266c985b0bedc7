"""Property: whatever the input (from the schema or hostile), an sdxl job ends with strict JSON, never INTERNAL,
and the worker serves the next job (issue 19)."""

from __future__ import annotations

from hypothesis import given

from shared.validation import json_schema
from worker_sdxl.inputs import Input

#: Bounds of the fields that cost time, so each example is a tiny image of a step or two.
COST_CAPS = {
    "width": {"maximum": 72}, "height": {"maximum": 72}, "num_inference_steps": {"maximum": 2},
    "num_images": {"maximum": 2},
}


def test_jobs_end_with_a_strict_answer_never_internal(check, run_job, hostile, hostile_budget):
    schema = hostile.capped(json_schema(Input), COST_CAPS, required=("width", "height", "num_inference_steps"))

    @hostile_budget
    @given(hostile.inputs(schema))
    def job_ends(job_input):
        hostile.check_answer(run_job(job_input))

    job_ends()
    assert check.decode(run_job({"prompt": "still serving", **check.SMALL})["images"][0]).size == (64, 64)
