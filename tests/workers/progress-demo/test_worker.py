"""progress-demo handler: progress chunks, the final result, bounds, and cancellation."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared.errors import BadInput
from shared.guard import guard
from shared.validation import json_schema
from worker_progress_demo.worker import MAX_STEPS, Input, ProgressDemo


@pytest.fixture
def worker() -> ProgressDemo:
    demo = ProgressDemo()
    demo.setup()
    return demo


def collect(handler, job_input):
    async def drive():
        return [chunk async for chunk in handler({"id": "j", "input": job_input})]

    return asyncio.run(drive())


def test_yields_one_progress_chunk_per_step_then_the_result(worker):
    chunks = collect(worker.handler, {"steps": 4, "step_seconds": 0})
    steps, final = chunks[:-1], chunks[-1]
    assert [c["step"] for c in steps] == [0, 1, 2, 3]
    assert [c["progress"] for c in steps] == [0.25, 0.5, 0.75, 1.0]
    assert [c["partial_result"] for c in steps] == [0, 1, 5, 14]
    assert final == {"progress": 1.0, "done": True, "result": {"steps": 4, "sum_of_squares": 14}}


def test_defaults_apply_when_input_is_empty(worker):
    chunks = collect(worker.handler, {"step_seconds": 0})
    assert chunks[-1]["result"]["steps"] == Input().steps


@pytest.mark.parametrize(
    ("job_input", "fields"),
    [
        ({"steps": 0}, {"steps"}),
        ({"steps": MAX_STEPS + 1, "step_seconds": 99}, {"steps", "step_seconds"}),
        ({"steps": "many", "colour": "red"}, {"steps", "colour"}),
    ],
)
def test_bad_inputs_report_every_field(worker, job_input, fields):
    with pytest.raises(BadInput) as info:
        collect(worker.handler, job_input)
    assert {p.field for p in info.value.problems} == fields


def test_bad_input_through_the_guard_is_one_error_chunk(worker):
    chunks = collect(guard(worker.handler), {"steps": -1})
    assert len(chunks) == 1
    assert json.loads(chunks[0]["error"])["code"] == "BAD_INPUT"


def test_cancelled_job_stops_at_the_current_step(worker):
    seen = []

    async def drive():
        async def consume():
            async for chunk in worker.handler({"id": "j", "input": {"steps": 100, "step_seconds": 0.01}}):
                seen.append(chunk)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(drive())
    assert 0 < len(seen) < 100


def test_input_schema_is_exported_with_bounds():
    schema = json_schema(Input)
    assert schema["properties"]["steps"]["maximum"] == MAX_STEPS
    assert schema["additionalProperties"] is False


def test_test_input_json_is_valid_for_the_worker(repo):
    payload = json.loads((repo / "workers/progress-demo/test_input.json").read_text())
    Input.model_validate(payload["input"])
