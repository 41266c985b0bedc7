"""devkit.client against a scripted endpoint: outcomes, error envelopes, retries and what is never retried."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from devkit.client import (
    Client,
    JobCancelled,
    JobFailed,
    JobTimedOut,
    RequestRejected,
    RetryPolicy,
    ServerUnavailable,
    Unauthorized,
    Unreachable,
    WaitTimeout,
)
from shared.errors import MAX_LISTED_PROBLEMS, BadInput, FieldProblem, UploadFailed

ENVELOPE = json.dumps({
    "code": "BAD_INPUT", "message": "1 invalid input field(s): steps: must be <= 1000", "retryable": False,
    "problems": [{"field": "steps", "reason": "Input should be less than or equal to 1000", "value": 5000}],
})


def done(output, job_id="j1"):
    return {"id": job_id, "status": "COMPLETED", "output": output, "delayTime": 3, "executionTime": 40}


def test_runsync_returns_the_output_of_a_completed_job(client, endpoint):
    endpoint.reply("POST /runsync", done({"answer": 42}))
    assert client.runsync({"x": 1}) == {"answer": 42}
    [call] = endpoint.calls
    assert json.loads(call.content) == {"input": {"x": 1}}
    assert call.headers["authorization"].startswith("Bearer ")


def test_no_authorization_header_is_sent_without_a_key(endpoint, monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    endpoint.reply("POST /runsync", done(1))
    with Client("ep1", base_url="https://api.runpod.test/v2", transport=httpx.MockTransport(endpoint.handle)) as c:
        c.runsync({})
    assert "authorization" not in endpoint.calls[0].headers


def test_a_failed_job_raises_the_workers_code_and_field_problems_without_retrying(client, endpoint, sleeps):
    endpoint.reply("POST /runsync", {"id": "j1", "status": "FAILED", "error": ENVELOPE})
    with pytest.raises(JobFailed) as caught:
        client.runsync({"steps": 5000})
    error = caught.value
    assert (error.job_id, error.code, error.retryable) == ("j1", "BAD_INPUT", False)
    assert [(p.field, p.value) for p in error.problems] == [("steps", 5000)]
    assert "less than or equal to 1000" in error.problems[0].reason
    assert len(endpoint.calls) == 1 and sleeps == []


def test_the_client_reads_exactly_what_a_worker_writes(client, endpoint):
    problems = [FieldProblem(f"messages.{i}.role", "unknown role", "robot") for i in range(MAX_LISTED_PROBLEMS + 2)]
    endpoint.reply("POST /runsync", {"id": "j1", "status": "FAILED", "error": BadInput(problems).to_job_error()})
    with pytest.raises(JobFailed) as caught:
        client.runsync({})
    error = caught.value
    assert (error.code, error.retryable, error.more_problems) == ("BAD_INPUT", False, 2)
    assert error.problems == tuple(problems[:MAX_LISTED_PROBLEMS])


def test_an_upload_failure_is_a_retryable_job_failure(client, endpoint):
    failed = {"id": "j1", "status": "FAILED", "error": UploadFailed("bucket down").to_job_error()}
    endpoint.reply("POST /runsync", failed)
    with pytest.raises(JobFailed) as caught:
        client.runsync({})
    assert (caught.value.code, caught.value.retryable) == ("UPLOAD_FAILED", True)


def test_the_sdks_own_exception_report_is_read_without_an_envelope(client, endpoint):
    sdk_error = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "boom",
                            "error_traceback": "Traceback ...", "hostname": "w1"})
    endpoint.reply("POST /runsync", {"id": "j1", "status": "FAILED", "error": sdk_error})
    with pytest.raises(JobFailed) as caught:
        client.runsync({})
    assert caught.value.code is None
    assert caught.value.message == "<class 'ValueError'>: boom"
    assert caught.value.problems == ()


@pytest.mark.parametrize("error", ["plain text from some worker", "", None, {"detail": "a dict"}])
def test_any_other_error_value_still_raises_job_failed_with_a_message(client, endpoint, error):
    endpoint.reply("POST /runsync", {"id": "j1", "status": "FAILED", "error": error})
    with pytest.raises(JobFailed) as caught:
        client.runsync({})
    assert caught.value.code is None
    assert caught.value.message


@pytest.mark.parametrize(("status", "kind"), [("TIMED_OUT", JobTimedOut), ("CANCELLED", JobCancelled)])
def test_timed_out_and_cancelled_jobs_raise_their_own_types(client, endpoint, status, kind):
    endpoint.reply("POST /runsync", {"id": "j9", "status": status})
    with pytest.raises(kind) as caught:
        client.runsync({})
    assert caught.value.job_id == "j9" and caught.value.status == status


def test_runsync_keeps_polling_when_runpod_returns_before_the_job_ends(client, endpoint):
    endpoint.reply("POST /runsync", {"id": "j1", "status": "IN_QUEUE"})
    endpoint.reply("GET /status/j1", {"id": "j1", "status": "IN_PROGRESS"}, done("ok"))
    seen = []
    assert client.runsync({}, on_progress=lambda job: seen.append(job.status)) == "ok"
    assert seen == ["IN_PROGRESS", "COMPLETED"]
    assert endpoint.calls[0].url.params["wait"] == "90000"


def test_run_then_wait_reports_each_change_of_status_or_output(client, endpoint):
    endpoint.reply("POST /run", {"id": "j1", "status": "IN_QUEUE"})
    endpoint.reply("GET /status/j1", {"id": "j1", "status": "IN_QUEUE"}, {"id": "j1", "status": "IN_QUEUE"},
                   {"id": "j1", "status": "IN_PROGRESS", "output": {"progress": 0.5}},
                   {"id": "j1", "status": "IN_PROGRESS", "output": {"progress": 0.9}}, done([1, 2]))
    job = client.run({"steps": 2})
    seen = []
    assert client.wait(job.id, on_progress=seen.append) == [1, 2]
    assert [(j.status, j.output) for j in seen] == [
        ("IN_QUEUE", None), ("IN_PROGRESS", {"progress": 0.5}), ("IN_PROGRESS", {"progress": 0.9}),
        ("COMPLETED", [1, 2]),
    ]


def test_waiting_past_the_deadline_raises_wait_timeout_with_the_job_id(endpoint, sleeps):
    endpoint.reply("GET /status/j1", {"id": "j1", "status": "IN_PROGRESS"})
    with Client("ep1", base_url="https://x/v2", poll_interval_s=0.01,
                transport=httpx.MockTransport(endpoint.handle)) as client, pytest.raises(WaitTimeout) as caught:
        client.wait("j1", timeout=0.05)
    assert caught.value.job_id == "j1" and caught.value.last_status == "IN_PROGRESS"


def test_stream_yields_chunks_as_they_arrive_and_stops_when_the_job_ends(client, endpoint):
    endpoint.reply("GET /stream/j1",
                   {"status": "IN_PROGRESS", "stream": [{"output": {"step": 0}}]},
                   {"status": "IN_PROGRESS", "stream": []},
                   {"status": "IN_PROGRESS", "stream": [{"output": {"step": 1}}, {"output": {"step": 2}}]},
                   {"status": "COMPLETED", "stream": []})
    stream = client.stream("j1")
    assert next(stream) == {"step": 0}
    assert len(endpoint.calls) == 1  # the first chunk came before any further poll
    assert list(stream) == [{"step": 1}, {"step": 2}]


def test_a_stream_whose_job_fails_raises_the_envelope_from_status(client, endpoint):
    endpoint.reply("GET /stream/j1", {"status": "IN_PROGRESS", "stream": [{"output": 1}]},
                   {"status": "FAILED", "stream": []})
    endpoint.reply("GET /status/j1", {"id": "j1", "status": "FAILED", "error": ENVELOPE})
    chunks = []
    with pytest.raises(JobFailed) as caught:
        chunks.extend(client.stream("j1"))
    assert chunks == [1]
    assert caught.value.code == "BAD_INPUT"


def test_cancel_and_health(client, endpoint):
    endpoint.reply("POST /cancel/j1", {"id": "j1", "status": "CANCELLED"})
    endpoint.reply("GET /health", {"jobs": {"inQueue": 0}, "workers": {"idle": 1}})
    assert client.cancel("j1").status == "CANCELLED"
    assert client.health()["workers"] == {"idle": 1}


@pytest.mark.parametrize("transient", [503, 502, 500, 429])
def test_transient_statuses_are_retried_with_backoff(client, endpoint, sleeps, transient):
    endpoint.reply("POST /runsync", (transient, {"error": "busy"}), (transient, {"error": "busy"}), done("ok"))
    assert client.runsync({}) == "ok"
    assert endpoint.routes() == ["POST /runsync"] * 3
    assert len(sleeps) == 2


def test_retry_after_is_honoured(client, endpoint, sleeps):
    endpoint.reply("GET /status/j1", (429, {"error": "slow down", "_headers": {"Retry-After": "3"}}), done(1))
    client.wait("j1")
    assert sleeps[0] >= 3


def test_a_server_that_stays_unavailable_raises_after_the_last_attempt(client, endpoint, sleeps):
    endpoint.reply("GET /health", (503, {"error": "no workers"}))
    with pytest.raises(ServerUnavailable) as caught:
        client.health()
    assert caught.value.status == 503 and "no workers" in str(caught.value)
    assert len(endpoint.calls) == 4 and len(sleeps) == 3


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_bad_request_is_never_retried(client, endpoint, sleeps, status):
    endpoint.reply("POST /run", (status, {"error": "input: must be an object"}))
    with pytest.raises(RequestRejected) as caught:
        client.run("not an object")
    assert caught.value.status == status and "must be an object" in caught.value.message
    assert len(endpoint.calls) == 1 and sleeps == []


def test_a_refused_key_is_unauthorized_and_the_key_is_scrubbed(client, endpoint, api_key):
    endpoint.reply("POST /run", (401, {"error": f"bad key {api_key}"}))
    with pytest.raises(Unauthorized) as caught:
        client.run({})
    assert api_key not in str(caught.value) and api_key not in repr(client)
    assert "RUNPOD_API_KEY" in str(caught.value)


def test_network_errors_on_reads_are_retried(client, endpoint, sleeps):
    endpoint.reply("GET /status/j1", httpx.ReadTimeout, httpx.RemoteProtocolError, done(7))
    assert client.wait("j1") == 7
    assert len(sleeps) == 2


def test_a_submission_is_resent_only_if_it_never_left(client, endpoint, sleeps):
    endpoint.reply("POST /run", httpx.ConnectError, {"id": "j1", "status": "IN_QUEUE"})
    assert client.run({}).id == "j1"
    assert len(endpoint.calls) == 2

    endpoint.reply("POST /runsync", httpx.ReadTimeout, done("would be a duplicate"))
    with pytest.raises(Unreachable):
        client.runsync({})
    assert endpoint.routes().count("POST /runsync") == 1  # the job may be queued: not sent twice


def test_backoff_is_exponential_capped_and_fully_jittered():
    policy = RetryPolicy(base_s=1, cap_s=5, rng=random.Random(0))
    for retry, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        delays = [policy.delay(retry) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # spread over the whole window, not a fixed wait
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
