"""devkit.client (library and CLI) against the local endpoint running real worker processes.

Every job state a client can meet: COMPLETED, FAILED with the worker's typed error, CANCELLED,
TIMED_OUT, incremental streaming, a worker that never starts, one that dies mid-job; plus retries
on injected 503s and no retry on bad input, over real HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from setup_fails import REASON

from devkit.client import (
    Client,
    JobCancelled,
    JobFailed,
    JobTimedOut,
    RequestRejected,
    RetryPolicy,
    WaitTimeout,
)

pytestmark = pytest.mark.e2e

#: Short enough for a job of ~10 s to time out within the test, long enough for every other job here.
EXECUTION_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def local(endpoint_factory, fixture_worker):
    return endpoint_factory(
        ["progress-demo", fixture_worker("crashes_mid_job"), fixture_worker("setup_fails")],
        scaling={"progress-demo": {"min_workers": 1, "execution_timeout": EXECUTION_TIMEOUT_S}},
        ready=False,
    )


@pytest.fixture(scope="module")
def demo(local):
    local.wait_ready("progress-demo", timeout=180)
    with Client("progress-demo", base_url=f"{local.base_url}/v2", poll_interval_s=0.1) as client:
        yield client


class Flaky503(httpx.BaseTransport):
    """Answers 503 to the first ``failures`` requests, then passes every request to real HTTP."""

    def __init__(self, failures: int):
        self.failures = failures
        self.sent: list[str] = []
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        if self.failures > 0:
            self.failures -= 1
            return httpx.Response(503, json={"error": "injected: no capacity"})
        return self._real.handle_request(request)


def test_runsync_returns_the_completed_output(demo):
    output = demo.runsync({"steps": 3, "step_seconds": 0.01}, timeout=60)
    assert [chunk["step"] for chunk in output[:-1]] == [0, 1, 2]
    assert output[-1] == {"progress": 1.0, "done": True, "result": {"steps": 3, "sum_of_squares": 5}}


def test_bad_input_fails_with_the_workers_code_and_every_field(demo):
    with pytest.raises(JobFailed) as caught:
        demo.runsync({"steps": 5000, "step_seconds": -1, "colour": "red"}, timeout=60)
    error = caught.value
    assert error.code == "BAD_INPUT" and error.retryable is False
    assert {p.field: p.reason for p in error.problems}.keys() == {"steps", "step_seconds", "colour"}
    assert next(p for p in error.problems if p.field == "colour").reason == "unknown field"
    assert next(p for p in error.problems if p.field == "steps").value == 5000


def test_run_and_wait_reports_progress_until_completed(demo):
    job = demo.run({"steps": 4, "step_seconds": 0.2})
    seen = []
    output = demo.wait(job.id, timeout=60, on_progress=seen.append)
    assert output[-1]["done"] is True
    assert seen[-1].status == "COMPLETED"
    assert {j.status for j in seen[:-1]} <= {"IN_QUEUE", "IN_PROGRESS"}


def test_stream_hands_out_chunks_while_the_job_still_runs(demo):
    job = demo.run({"steps": 6, "step_seconds": 0.3})
    chunks = demo.stream(job.id, timeout=60)
    first = next(chunks)
    assert first["step"] == 0
    assert demo.status(job.id).status == "IN_PROGRESS"  # ~1.5 s of steps are still to come
    rest = list(chunks)
    assert [c["step"] for c in rest[:-1]] == [1, 2, 3, 4, 5]
    assert rest[-1]["done"] is True


def test_a_cancelled_job_raises_job_cancelled(demo):
    job = demo.run({"steps": 40, "step_seconds": 0.1})
    for _ in demo.stream(job.id, timeout=30):
        break  # it is running
    assert demo.cancel(job.id).status == "CANCELLED"
    with pytest.raises(JobCancelled) as caught:
        demo.wait(job.id, timeout=30)
    assert caught.value.job_id == job.id


def test_a_job_past_the_execution_timeout_raises_job_timed_out(demo):
    job = demo.run({"steps": 100, "step_seconds": 0.1})  # ~10 s, twice the endpoint's limit
    with pytest.raises(JobTimedOut) as caught:
        demo.wait(job.id, timeout=60)
    assert f"{EXECUTION_TIMEOUT_S} s" in caught.value.message


def test_giving_up_waiting_leaves_the_job_to_cancel(demo):
    with pytest.raises(WaitTimeout) as caught:
        demo.runsync({"steps": 30, "step_seconds": 0.1}, timeout=0.5)
    assert demo.cancel(caught.value.job_id).status in {"CANCELLED", "COMPLETED"}


def test_a_worker_that_cannot_start_fails_its_jobs_with_not_ready(local):
    with Client("setup-fails", base_url=f"{local.base_url}/v2", poll_interval_s=0.2) as client, \
            pytest.raises(JobFailed) as caught:
        client.runsync({}, timeout=120)
    # Not retryable: the same worker answers the same until the endpoint is fixed and redeployed.
    assert caught.value.code == "NOT_READY" and caught.value.retryable is False
    assert caught.value.message == REASON


def test_a_worker_that_dies_mid_job_fails_it_with_internal(local):
    with Client("crashes-mid-job", base_url=f"{local.base_url}/v2", poll_interval_s=0.2) as client, \
            pytest.raises(JobFailed) as caught:
        client.runsync({}, timeout=150)
    assert caught.value.code == "INTERNAL"
    assert "exited" in caught.value.message


def test_injected_503s_are_retried_over_real_http(local, demo):
    flaky = Flaky503(failures=2)
    sleeps: list[float] = []
    with Client("progress-demo", base_url=f"{local.base_url}/v2", transport=flaky,
                retry=RetryPolicy(sleep=sleeps.append)) as client:
        output = client.runsync({"steps": 1, "step_seconds": 0}, timeout=60)
    assert output[-1]["done"] is True
    assert flaky.sent == ["POST /v2/progress-demo/runsync"] * 3
    assert len(sleeps) == 2


def test_a_refused_request_is_not_retried_over_real_http(local, demo):
    flaky = Flaky503(failures=0)
    with Client("progress-demo", base_url=f"{local.base_url}/v2", transport=flaky) as client, \
            pytest.raises(RequestRejected) as caught:
        client.status("no-such-job")
    assert caught.value.status == 404 and "does not exist" in caught.value.message
    assert len(flaky.sent) == 1


def test_health_reports_workers_and_jobs(demo):
    health = demo.health()
    assert set(health) >= {"jobs", "workers"}


def cli(local, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devkit.client", "progress-demo", "--base-url",
                           f"{local.base_url}/v2", *args], capture_output=True, text=True, timeout=120)


def test_cli_prints_the_output_and_exits_zero(local, demo):
    result = cli(local, "--input", '{"steps": 2, "step_seconds": 0}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[-1]["result"] == {"steps": 2, "sum_of_squares": 1}


def test_cli_stream_prints_one_chunk_per_line(local, demo):
    result = cli(local, "--stream", "--input", '{"steps": 3, "step_seconds": 0.05}')
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("step") for line in lines] == [0, 1, 2, None]


def test_cli_async_shows_progress_on_stderr(local, demo):
    result = cli(local, "--async", "--input", '{"steps": 3, "step_seconds": 0.2}')
    assert result.returncode == 0, result.stderr
    assert "queued" in result.stderr and "COMPLETED" in result.stderr


def test_cli_reports_a_failed_job_with_its_code_and_fields(local, demo):
    result = cli(local, "--input", '{"steps": 0}')
    assert result.returncode == 1
    assert "BAD_INPUT" in result.stderr and "  steps:" in result.stderr
    assert result.stdout == ""
