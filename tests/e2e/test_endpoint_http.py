"""The local endpoint's HTTP contract: payload limits, auth, unknown ids, webhooks."""

from __future__ import annotations

import json

import pytest

from devkit.endpoint.client_api import RUN_LIMIT_BYTES, RUNSYNC_LIMIT_BYTES

pytestmark = pytest.mark.e2e

NAME = "progress-demo"
KEY = "s3cret"


@pytest.fixture(scope="module")
def demo(endpoint_factory):
    return endpoint_factory([NAME], scaling={NAME: {"min_workers": 1, "max_workers": 1}})


@pytest.fixture(scope="module")
def locked(endpoint_factory):
    """No worker starts until a job comes (min_workers 0): the API checks run without one."""
    return endpoint_factory([NAME], api_key=KEY, ready=False)


def padded(size: int) -> bytes:
    body = json.dumps({"input": {"steps": 1, "pad": ""}}).encode()
    return body[:-3] + b"x" * (size - len(body)) + body[-3:]


@pytest.mark.parametrize(("route", "limit"), [("run", RUN_LIMIT_BYTES), ("runsync", RUNSYNC_LIMIT_BYTES)])
def test_a_body_over_runpods_payload_limit_is_refused_with_413(demo, http, route, limit):
    response = http.post(f"{demo.base_url}/v2/{NAME}/{route}", content=padded(limit + 1),
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert f"{limit} bytes" in response.json()["error"]


def test_a_body_just_under_the_run_limit_is_accepted(demo, http):
    response = http.post(f"{demo.base_url}/v2/{NAME}/run", content=padded(RUN_LIMIT_BYTES),
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    job_id = response.json()["id"]
    # Accepted by the endpoint; the worker refuses the unknown field with its typed error.
    body = http.post(f"{demo.base_url}/v2/{NAME}/status/{job_id}").json()
    assert body["status"] in {"IN_QUEUE", "IN_PROGRESS", "FAILED"}


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"inputs": {}}'])
def test_a_body_without_an_input_object_is_a_400(demo, http, body):
    response = http.post(f"{demo.base_url}/v2/{NAME}/run", content=body)
    assert response.status_code == 400
    assert "input" in response.json()["error"] or "JSON" in response.json()["error"]


def test_unknown_endpoints_and_jobs_are_404s(demo, http):
    assert http.post(f"{demo.base_url}/v2/nope/run", json={"input": {}}).status_code == 404
    response = http.get(f"{demo.base_url}/v2/{NAME}/status/no-such-job")
    assert response.status_code == 404
    assert "no-such-job" in response.json()["error"]


def test_a_too_short_execution_timeout_policy_is_a_400(demo, http):
    response = http.post(f"{demo.base_url}/v2/{NAME}/run", json={"input": {}, "policy": {"executionTimeout": 10}})
    assert response.status_code == 400
    assert "executionTimeout" in response.json()["error"]


def test_with_a_key_requests_need_the_bearer_key(locked, http, runpod_endpoint):
    url = f"{locked.base_url}/v2/{NAME}/health"
    assert http.get(url).status_code == 401
    assert http.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert http.get(url, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert "jobs" in runpod_endpoint(locked, NAME).health()


def test_the_runpod_client_purges_the_queue(locked, runpod_endpoint):
    client = runpod_endpoint(locked, NAME)
    client.purge_queue()  # empty the queue of other tests' jobs
    assert client.purge_queue() == {"removed": 0, "status": "completed"}


def test_a_finished_job_is_posted_to_its_webhook(demo, http, webhook_receiver, await_status):
    job_id = http.post(f"{demo.base_url}/v2/{NAME}/run",
                       json={"input": {"steps": 1, "step_seconds": 0}, "webhook": webhook_receiver.url}).json()["id"]
    await_status(demo, NAME, job_id, "COMPLETED")
    [body] = webhook_receiver.wait_for(1)
    assert body["id"] == job_id
    assert body["status"] == "COMPLETED"
    assert body["output"][-1]["done"] is True
