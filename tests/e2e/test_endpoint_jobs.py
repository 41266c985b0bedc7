"""The local endpoint through the official runpod client, with real progress-demo worker processes."""

from __future__ import annotations

import json
import os
import signal

import pytest

pytestmark = pytest.mark.e2e

NAME = "progress-demo"


@pytest.fixture(scope="module")
def demo(endpoint_factory):
    """One warm progress-demo worker (concurrency 4)."""
    return endpoint_factory([NAME], scaling={NAME: {"min_workers": 1, "max_workers": 1}})


@pytest.fixture(scope="module")
def client(demo, runpod_endpoint):
    return runpod_endpoint(demo, NAME)


def test_run_then_status_reaches_completed_with_the_aggregated_output(client):
    job = client.run({"steps": 3, "step_seconds": 0.01})
    assert job.status() in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    output = job.output(timeout=30)
    assert job.status() == "COMPLETED"
    assert output[-1] == {"progress": 1.0, "done": True, "result": {"steps": 3, "sum_of_squares": 5}}
    assert [chunk["step"] for chunk in output[:-1]] == [0, 1, 2]


def test_runsync_answers_with_the_finished_job(client, demo, http):
    assert client.run_sync({"steps": 2, "step_seconds": 0.01}, timeout=30)[-1]["result"]["sum_of_squares"] == 1
    body = http.post(f"{demo.base_url}/v2/{NAME}/runsync", json={"input": {"steps": 1, "step_seconds": 0}}).json()
    assert body["status"] == "COMPLETED"
    assert {"id", "delayTime", "executionTime", "workerId", "output"} <= set(body)


def test_stream_hands_out_the_first_chunk_while_the_job_still_runs(client, demo, http):
    job = client.run({"steps": 10, "step_seconds": 0.4})
    chunks = job.stream()
    first = next(chunks)
    status_at_first_chunk = http.get(f"{demo.base_url}/v2/{NAME}/status/{job.job_id}").json()["status"]
    rest = list(chunks)
    assert first["step"] == 0
    assert status_at_first_chunk == "IN_PROGRESS"
    # Every chunk is handed out exactly once, in order.
    assert [c["step"] for c in [first, *rest[:-1]]] == list(range(10))
    assert rest[-1]["done"] is True


def test_stream_of_a_failed_job_carries_its_error(demo, http):
    job_id = http.post(f"{demo.base_url}/v2/{NAME}/run", json={"input": {"steps": 0}}).json()["id"]
    body = None
    for _ in range(50):
        body = http.get(f"{demo.base_url}/v2/{NAME}/stream/{job_id}").json()
        if body["status"] == "FAILED":
            break
    assert body["stream"] == []
    assert json.loads(body["error"])["code"] == "BAD_INPUT"


def test_bad_input_fails_with_the_typed_error_and_the_worker_keeps_serving(client, demo, await_status):
    job = client.run({"steps": 0, "colour": "red"})
    body = await_status(demo, NAME, job.job_id, "FAILED", "COMPLETED")
    assert body["status"] == "FAILED"
    error = json.loads(body["error"])
    assert error["code"] == "BAD_INPUT"
    assert {p["field"] for p in error["problems"]} == {"steps", "colour"}
    assert client.run_sync({"steps": 1, "step_seconds": 0}, timeout=30)[-1]["done"] is True


def test_cancel_mid_job_cancels_it_and_frees_the_worker(client, demo, await_status, http):
    job = client.run({"steps": 200, "step_seconds": 0.05})
    await_status(demo, NAME, job.job_id, "IN_PROGRESS")
    assert job.cancel()["status"] == "CANCELLED"
    assert job.status() == "CANCELLED"
    assert http.get(f"{demo.base_url}/v2/{NAME}/health").json()["jobs"]["inProgress"] == 0
    assert client.run_sync({"steps": 1, "step_seconds": 0}, timeout=30)[-1]["done"] is True


def test_status_of_a_running_job_names_its_worker_and_queue_delay(demo, http, await_status):
    job_id = http.post(f"{demo.base_url}/v2/{NAME}/run", json={"input": {"steps": 5, "step_seconds": 0.2}}).json()["id"]
    running = await_status(demo, NAME, job_id, "IN_PROGRESS")
    assert "workerId" in running and "delayTime" in running
    assert await_status(demo, NAME, job_id, "COMPLETED")["executionTime"] > 0


@pytest.fixture(scope="module")
def killable(endpoint_factory):
    """A progress-demo endpoint of its own: its worker gets killed."""
    return endpoint_factory([NAME], scaling={NAME: {"min_workers": 1, "max_workers": 2}},
                            env={NAME: {"MAX_CONCURRENCY": "1"}})


def test_a_job_whose_worker_is_killed_runs_again_in_another_process(killable, runpod_endpoint, await_status, http):
    client = runpod_endpoint(killable, NAME)
    job = client.run({"steps": 20, "step_seconds": 0.1})
    first = await_status(killable, NAME, job.job_id, "IN_PROGRESS")
    killed = killable.worker_pids(NAME)[first["workerId"]]
    os.kill(killed, signal.SIGKILL)
    output = job.output(timeout=90)
    final = http.get(f"{killable.base_url}/v2/{NAME}/status/{job.job_id}").json()
    assert final["status"] == "COMPLETED"
    # Another worker, or the same worker restarted in its container (RunPod restarts an exited container).
    assert killable.worker_pids(NAME).get(final["workerId"]) != killed
    assert output[-1]["result"] == {"steps": 20, "sum_of_squares": sum(i * i for i in range(20))}
    assert http.get(f"{killable.base_url}/v2/{NAME}/health").json()["jobs"]["retried"] >= 1
