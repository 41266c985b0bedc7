"""A worker's log lines as the local endpoint (standing in for RunPod's log collector) reads them: the SDK's
JSON shape with the job's requestId, the SDK's lines and ours alike, one traceback for a failed job."""

from __future__ import annotations

import json
import logging
import time

import pytest

from shared import logs

OUTPUT_LOGGER = "devkit.endpoint.worker_output"


@pytest.fixture(scope="module")
def endpoint(endpoint_factory, fixture_worker):
    spec = fixture_worker("logs_and_fails", env={"LOG_LEVEL": "INFO"}, min_workers=1)
    return endpoint_factory([spec], scaling={"logs-and-fails": {"min_workers": 1}})


def worker_lines(caplog) -> list[str]:
    """The worker's output lines, without the ``[worker id]`` the endpoint puts before each."""
    return [r.getMessage().split("] ", 1)[1] for r in caplog.records if r.name == OUTPUT_LOGGER]


def test_a_failed_jobs_lines_carry_its_request_id_and_its_traceback_once(endpoint, http, await_status, caplog):
    caplog.set_level(logging.INFO, logger=OUTPUT_LOGGER)
    job_id = http.post(f"{endpoint.base_url}/v2/logs-and-fails/run", json={"input": {"what": "x"}}).json()["id"]
    failed = await_status(endpoint, "logs-and-fails", job_id, "FAILED", "COMPLETED")
    assert json.loads(failed["error"])["code"] == "INTERNAL"
    # The endpoint reads the worker's output apart from its result post: wait for the failure's line.
    deadline = time.monotonic() + 30
    while not any(job_id in line and "Traceback" in line for line in worker_lines(caplog)):
        assert time.monotonic() < deadline, f"no failure line for {job_id}: {worker_lines(caplog)[-5:]}"
        time.sleep(0.05)
    lines = worker_lines(caplog)
    structured = [json.loads(line) for line in lines if line.startswith("{")]
    assert all(set(record) == {"requestId", "message", "level"} for record in structured)
    of_job = [record for record in structured if record["requestId"] == job_id]
    ours = [record for record in of_job if record["message"] == "working on x"]
    assert ours == [{"requestId": job_id, "message": "working on x", "level": "INFO"}]
    assert any(record["message"] == "Started." for record in of_job)  # the SDK's own line, same shape
    [failure] = [record for record in of_job if "Traceback" in record["message"]]
    assert failure["level"] == "ERROR" and "an unexpected bug" in failure["message"]
    assert sum(line.count("Traceback (most recent call last)") for line in lines) == 1


def test_a_huge_log_line_reaches_the_endpoint_cut_to_the_bound(endpoint, http, await_status, caplog):
    caplog.set_level(logging.INFO, logger=OUTPUT_LOGGER)
    huge = "w" * 200_000
    job_id = http.post(f"{endpoint.base_url}/v2/logs-and-fails/run", json={"input": {"what": huge}}).json()["id"]
    await_status(endpoint, "logs-and-fails", job_id, "FAILED", "COMPLETED")
    deadline = time.monotonic() + 30
    while not (mine := [line for line in worker_lines(caplog) if job_id in line and "working on" in line]):
        assert time.monotonic() < deadline, f"no line for {job_id}"
        time.sleep(0.05)
    [line] = mine
    assert len(line.encode()) <= logs.MAX_LINE_BYTES
    assert "characters cut]... " in json.loads(line)["message"]
