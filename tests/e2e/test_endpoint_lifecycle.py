"""Worker lifecycle behind the local endpoint: concurrency, timeouts, crashes, startup failures, frozen and noisy
workers, all on RunPod's rules (devkit.endpoint.workers, shared.serving)."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from floods_its_log import LONG_LINE_BYTES
from setup_fails import REASON
from setup_hits_device_error import ERROR

from devkit.endpoint import StartupFailed

pytestmark = pytest.mark.e2e


def read_records(path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(event, job_id, int(pid)) for event, job_id, pid in (line.split() for line in lines)]


def wait_for_record(path, event: str, job_id: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (event, job_id) not in {(e, j) for e, j, _ in read_records(path)}:
        assert time.monotonic() < deadline, f"no '{event} {job_id}' in {path}: {read_records(path)}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def record_file(tmp_path_factory):
    return tmp_path_factory.mktemp("records") / "runs.log"


@pytest.fixture(scope="module")
def recorder(endpoint_factory, fixture_worker, record_file, http):
    """Two warm records-runs workers, two jobs at a time each."""
    spec = fixture_worker("records_runs", env={"RECORD_FILE": str(record_file)}, min_workers=2, max_workers=2)
    endpoint = endpoint_factory([spec])
    deadline = time.monotonic() + 60
    # wait_ready waits for one worker; the second one follows.
    while http.get(f"{endpoint.base_url}/v2/{spec.name}/health").json()["workers"]["ready"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return endpoint


def test_concurrent_jobs_over_several_workers_each_run_exactly_once(recorder, runpod_endpoint, record_file):
    client = runpod_endpoint(recorder, "records-runs")
    with ThreadPoolExecutor(max_workers=5) as pool:
        jobs = list(pool.map(lambda _: client.run({"steps": 4, "step_seconds": 0.1}), range(10)))
    outputs = [job.output(timeout=60) for job in jobs]
    assert all(output == [{"step": s} for s in range(4)] for output in outputs)
    ids = {job.job_id for job in jobs}
    records = [r for r in read_records(record_file) if r[1] in ids]
    assert Counter(event for event, _, _ in records) == {"start": 10, "end": 10}
    assert Counter(job_id for event, job_id, _ in records if event == "start") == dict.fromkeys(ids, 1)
    # Ready workers long-poll for jobs and hold at most two each: ten jobs spread over both.
    assert len({pid for _, _, pid in records}) == 2


def test_cancel_stops_the_job_inside_the_worker(recorder, runpod_endpoint, await_status, record_file):
    job = runpod_endpoint(recorder, "records-runs").run({"steps": 100, "step_seconds": 0.1})
    await_status(recorder, "records-runs", job.job_id, "IN_PROGRESS")
    job.cancel()
    wait_for_record(record_file, "cancelled", job.job_id)
    assert job.status() == "CANCELLED"


def test_execution_timeout_times_the_job_out_and_stops_it(recorder, http, await_status, record_file):
    job_id = http.post(f"{recorder.base_url}/v2/records-runs/run", json={
        "input": {"steps": 200, "step_seconds": 0.1}, "policy": {"executionTimeout": 5000},
    }).json()["id"]
    body = await_status(recorder, "records-runs", job_id, "TIMED_OUT", "COMPLETED", timeout=30)
    assert body["status"] == "TIMED_OUT"
    assert json.loads(body["error"])["code"] == "TIMEOUT"
    wait_for_record(record_file, "cancelled", job_id)


def test_purge_queue_cancels_waiting_jobs_and_leaves_running_ones(recorder, http, await_status):
    url = f"{recorder.base_url}/v2/records-runs"
    ids = [http.post(f"{url}/run", json={"input": {"steps": 20, "step_seconds": 0.1}}).json()["id"] for _ in range(6)]
    await_status(recorder, "records-runs", ids[0], "IN_PROGRESS")
    removed = http.post(f"{url}/purge-queue").json()["removed"]
    statuses = [http.get(f"{url}/status/{job_id}").json()["status"] for job_id in ids]
    assert removed == statuses.count("CANCELLED") >= 1
    running = [job_id for job_id, status in zip(ids, statuses, strict=True) if status != "CANCELLED"]
    for job_id in running:
        assert await_status(recorder, "records-runs", job_id, "COMPLETED", timeout=30)


def test_a_worker_that_dies_on_every_attempt_fails_the_job_with_the_reason(endpoint_factory, fixture_worker,
                                                                           runpod_endpoint, await_status):
    endpoint = endpoint_factory([fixture_worker("crashes_mid_job", min_workers=1, max_workers=1)])
    job = runpod_endpoint(endpoint, "crashes-mid-job").run({"anything": 1})
    body = await_status(endpoint, "crashes-mid-job", job.job_id, "FAILED", "COMPLETED", timeout=90)
    assert body["status"] == "FAILED"
    error = json.loads(body["error"])
    assert error["code"] == "INTERNAL"
    assert "exit code 17" in error["message"] and "2 attempts" in error["message"]


def health_of(http, endpoint, name: str) -> dict:
    return http.get(f"{endpoint.base_url}/v2/{name}/health").json()


def wait_for_health(http, endpoint, name: str, ok, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not ok(health := health_of(http, endpoint, name)):
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    return health


def test_a_worker_that_cannot_start_fails_each_job_at_once_with_not_ready_its_cause_and_fix(
        endpoint_factory, fixture_worker, runpod_endpoint, await_status, http):
    endpoint = endpoint_factory([fixture_worker("setup_fails")], ready=False)
    client = runpod_endpoint(endpoint, "setup-fails")
    for job in (client.run({"x": 1}), client.run({"x": 2})):
        body = await_status(endpoint, "setup-fails", job.job_id, "FAILED", timeout=60)
        assert json.loads(body["error"]) == {"code": "NOT_READY", "message": REASON, "retryable": False}
        assert body["executionTime"] < 1000  # failed as soon as it was taken, by the endpoint's own clock
    health = health_of(http, endpoint, "setup-fails")
    assert health["startupFailure"] == REASON
    assert health["workers"]["unhealthy"] == 0  # up and answering: RunPod sees a ready worker
    assert health["jobs"]["failed"] >= 2 and health["jobs"]["retried"] == 0


def test_a_startup_failure_a_restart_may_fix_exits_then_the_restarted_worker_answers_jobs(
        endpoint_factory, fixture_worker, runpod_endpoint, await_status, http, tmp_path_factory):
    starts = tmp_path_factory.mktemp("device-error") / "starts.log"
    endpoint = endpoint_factory([fixture_worker("setup_hits_device_error", env={"RECORD_FILE": str(starts)})],
                                ready=False)
    job = runpod_endpoint(endpoint, "setup-hits-device-error").run({"x": 1})
    body = await_status(endpoint, "setup-hits-device-error", job.job_id, "FAILED", timeout=60)
    error = json.loads(body["error"])
    assert error["code"] == "NOT_READY" and error["retryable"] is False
    assert "setup failed again after the platform restarted this worker" in error["message"]
    assert f"DeviceError: {ERROR}" in error["message"]
    assert body["executionTime"] < 1000
    # The first process exited for a restart; the second, in the same container, answered the job.
    assert len(set(starts.read_text().split())) == 2
    assert ERROR in health_of(http, endpoint, "setup-hits-device-error")["startupFailure"]


def test_a_worker_that_keeps_exiting_is_marked_unhealthy_and_its_job_stays_in_queue(
        endpoint_factory, fixture_worker, runpod_endpoint, http):
    endpoint = endpoint_factory([fixture_worker("exits_at_start")], ready=False)
    job = runpod_endpoint(endpoint, "exits-at-start").run({"x": 1})
    try:
        health = wait_for_health(http, endpoint, "exits-at-start", lambda h: h["workers"]["unhealthy"] >= 1)
        assert "exited 3 times in a row" in health["startupFailure"]
        assert "loading the native library" in health["startupFailure"]
        assert job.status() == "IN_QUEUE"  # as on RunPod: nothing fails it, nothing runs it
        assert health["jobs"]["failed"] == 0
    finally:
        job.cancel()  # no demand left: no more replacements


def test_wait_ready_raises_when_workers_keep_exiting(endpoint_factory, fixture_worker):
    endpoint = endpoint_factory([fixture_worker("exits_at_start", min_workers=1)], ready=False)
    with pytest.raises(StartupFailed, match="exited 3 times in a row"):
        endpoint.wait_ready("exits-at-start", timeout=60)


def test_a_frozen_worker_is_marked_unhealthy_and_its_job_served_by_a_replacement(
        endpoint_factory, fixture_worker, runpod_endpoint, await_status, http, tmp_path_factory):
    flag = tmp_path_factory.mktemp("freeze") / "frozen.pid"
    endpoint = endpoint_factory([fixture_worker("freezes_once", env={"FREEZE_FLAG": str(flag)})])
    job = runpod_endpoint(endpoint, "freezes-once").run({"x": 1})
    body = await_status(endpoint, "freezes-once", job.job_id, "COMPLETED", "FAILED", timeout=90)
    assert body["status"] == "COMPLETED"
    frozen_pid = int(flag.read_text())
    assert body["output"]["pid"] != frozen_pid
    health = health_of(http, endpoint, "freezes-once")
    assert health["workers"]["unhealthy"] == 1 and health["jobs"]["retried"] == 1
    assert frozen_pid not in endpoint.worker_pids("freezes-once").values()  # killed, not left stopped


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period(endpoint_factory, fixture_worker,
                                                                       runpod_endpoint, caplog):
    endpoint = endpoint_factory([fixture_worker("ignores_sigterm")])
    pid = runpod_endpoint(endpoint, "ignores-sigterm").run_sync({}, timeout=60)["pid"]
    # Idle past the development profile's idle_timeout it gets SIGTERM, which it never sees.
    deadline = time.monotonic() + 60
    while pid in endpoint.worker_pids("ignores-sigterm").values():
        assert time.monotonic() < deadline, "the worker was not killed"
        time.sleep(0.2)
    assert any("still running 10 s after SIGTERM, killing it" in r.getMessage() for r in caplog.records)


def test_a_worker_flooding_its_log_keeps_serving_and_stops_when_told(endpoint_factory, fixture_worker,
                                                                    runpod_endpoint):
    endpoint = endpoint_factory([fixture_worker("floods_its_log")])
    client = runpod_endpoint(endpoint, "floods-its-log")
    outputs = [client.run_sync({"n": n}, timeout=60) for n in range(3)]
    assert all(output is not None and output["printed"] > 2 * LONG_LINE_BYTES for output in outputs)
    assert len({output["pid"] for output in outputs}) == 1
    # Idle past the development profile's idle_timeout: told to stop (SIGTERM), it exits.
    deadline = time.monotonic() + 60
    while outputs[0]["pid"] in endpoint.worker_pids("floods-its-log").values():
        assert time.monotonic() < deadline, "the worker did not stop"
        time.sleep(0.2)


def test_wait_ready_raises_the_startup_failure(endpoint_factory, fixture_worker):
    endpoint = endpoint_factory([fixture_worker("setup_fails")], ready=False)
    with pytest.raises(StartupFailed, match=REASON):
        endpoint.wait_ready("setup-fails", timeout=60)


def test_progress_updates_show_in_status_while_a_returning_handler_runs(endpoint_factory, fixture_worker,
                                                                       runpod_endpoint, await_status, http):
    endpoint = endpoint_factory([fixture_worker("reports_progress", min_workers=1, max_workers=1)])
    job = runpod_endpoint(endpoint, "reports-progress").run({"steps": 6, "step_seconds": 0.3})
    seen = []
    while (body := http.get(f"{endpoint.base_url}/v2/reports-progress/status/{job.job_id}").json())["status"] in {
        "IN_QUEUE", "IN_PROGRESS"
    }:
        if "output" in body:
            seen.append(body["output"])
        time.sleep(0.1)
    assert body["status"] == "COMPLETED" and body["output"] == {"steps": 6}
    assert seen and all(set(progress) == {"done", "of"} for progress in seen)
    # A returning handler's output is its one /stream chunk.
    assert list(job.stream()) == [{"steps": 6}]


def test_a_worker_asking_to_be_replaced_fails_its_job_and_is_replaced(endpoint_factory, fixture_worker,
                                                                      runpod_endpoint, await_status, http):
    endpoint = endpoint_factory([fixture_worker("asks_replacement", min_workers=1, max_workers=1)])
    client = runpod_endpoint(endpoint, "asks-replacement")
    before = client.run_sync({"break": False}, timeout=60)["pid"]
    job = client.run({"break": True})
    body = await_status(endpoint, "asks-replacement", job.job_id, "FAILED", "COMPLETED")
    assert json.loads(body["error"])["code"] == "DEVICE_FAILURE"
    after = client.run_sync({"break": False}, timeout=60)["pid"]
    assert after != before
    assert http.get(f"{endpoint.base_url}/v2/asks-replacement/health").json()["jobs"]["retried"] == 0


def test_a_warm_worker_that_cannot_start_shows_in_health_without_any_job(endpoint_factory, fixture_worker, http):
    endpoint = endpoint_factory([fixture_worker("setup_fails", min_workers=1)], ready=False)
    health = wait_for_health(http, endpoint, "setup-fails", lambda h: h["startupFailure"] is not None)
    assert health["startupFailure"] == REASON
    # In its job loop, answering jobs with the reason: no crash loop, and nothing unhealthy.
    assert health["workers"] == {"idle": 1, "initializing": 0, "ready": 1, "running": 0, "throttled": 0,
                                 "unhealthy": 0}
    assert len(endpoint.worker_pids("setup-fails")) == 1
