"""How a finished job maps to an OpenAI error response (status and body)."""

from __future__ import annotations

import json

import pytest

from devkit.endpoint.jobs import JobQueue, Status
from devkit.endpoint.openai_api import ERROR_STATUS, _error_body
from shared.errors import CODES, BadInput, FieldProblem, GpuOutOfMemory


def failed_job(error: str):
    queue = JobQueue(execution_timeout=60)
    job = queue.submit({})
    queue.take("w1", 1)
    queue.finish(job.id, "w1", {"error": error}, is_stream=True)
    return job


def test_param_names_the_request_body_field_without_the_openai_input_prefix():
    error = BadInput([FieldProblem("openai_input.temperature", "must be <= 2", 9)])
    status, body = _error_body(failed_job(error.to_job_error()))
    assert status == 400
    assert body["error"]["param"] == "temperature"
    assert body["error"]["problems"][0]["field"] == "openai_input.temperature"


def test_every_error_code_has_an_http_status():
    assert set(CODES) <= set(ERROR_STATUS)


def test_bad_input_is_a_400_naming_the_first_field_and_keeping_all_problems():
    error = BadInput([FieldProblem("messages", "must not be empty"), FieldProblem("n", "too big")])
    status, body = _error_body(failed_job(error.to_job_error()))
    assert status == 400
    assert body["error"]["code"] == "BAD_INPUT"
    assert body["error"]["param"] == "messages"
    assert body["error"]["type"] == "invalid_request_error"
    assert [p["field"] for p in body["error"]["problems"]] == ["messages", "n"]


def test_a_server_side_code_is_a_5xx_server_error():
    status, body = _error_body(failed_job(GpuOutOfMemory("out of memory").to_job_error()))
    assert status == 503
    assert body["error"] == {"message": "out of memory", "type": "server_error", "param": None,
                             "code": "GPU_OUT_OF_MEMORY"}


@pytest.mark.parametrize("error", ["plain text", json.dumps({"error_type": "ValueError", "error_message": "x"})])
def test_an_error_that_is_not_an_envelope_is_an_internal_500_with_its_text(error):
    status, body = _error_body(failed_job(error))
    assert status == 500
    assert body["error"]["code"] == "INTERNAL"
    assert body["error"]["message"] == error


def test_a_timed_out_job_is_a_504_and_a_cancelled_one_a_409():
    queue = JobQueue(execution_timeout=0)
    timed_out, cancelled = queue.submit({}), queue.submit({})
    queue.take("w1", 1)
    queue.time_out_overdue()
    queue.cancel(cancelled.id)
    assert timed_out.status is Status.TIMED_OUT
    assert _error_body(timed_out)[0] == 504
    assert _error_body(cancelled)[0] == 409
