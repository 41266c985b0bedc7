"""RunPod's queue API on the local endpoint, each operation and option through the official client and raw HTTP.

Operations and options as RunPod's docs ("Send API requests", "Operation reference") describe them and as
runpod-python, runpod/js-sdk and runpod/go-sdk call them: run, runsync?wait, status?ttl, status-sync?wait,
stream?wait, cancel, retry, purge-queue, health; policy (executionTimeout, ttl, lowPriority), s3Config,
webhook.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import runpod

pytestmark = pytest.mark.e2e

NAME = "shows-job"
S3_CONFIG = {"accessId": "id", "accessSecret": "secret", "bucketName": "b", "endpointUrl": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def endpoint(endpoint_factory, fixture_worker):
    """One warm shows-job worker taking one job at a time."""
    return endpoint_factory([fixture_worker("shows_job", min_workers=1, max_workers=1)])


@pytest.fixture(scope="module")
def client(endpoint, runpod_endpoint):
    return runpod_endpoint(endpoint, NAME)


@pytest.fixture(scope="module")
def api(endpoint):
    return f"{endpoint.base_url}/v2/{NAME}"


def wait_gone(http, url: str, timeout: float = 30) -> None:
    """Poll ``url`` until it answers 404 (the job was deleted)."""
    deadline = time.monotonic() + timeout
    while (response := http.get(url)).status_code != 404:
        assert response.status_code == 200, response.text
        assert time.monotonic() < deadline, f"{url} still answers {response.json()} after {timeout} s"
        time.sleep(0.1)


def test_the_runpod_client_runs_a_job_and_its_worker_gets_the_s3_config(client):
    job = client.run({"input": {"tag": "x"}, "s3Config": S3_CONFIG})
    output = job.output(timeout=60)
    assert job.status() == "COMPLETED"
    assert output["input"] == {"tag": "x"}
    assert output["s3Config"] == sorted(S3_CONFIG)  # handed to the worker in the job, as RunPod does


def test_status_never_shows_the_s3_config(client, api, http):
    job = client.run({"input": {}, "s3Config": S3_CONFIG})
    job.output(timeout=60)
    assert "secret" not in http.get(f"{api}/status/{job.job_id}").text


def test_runsync_waits_for_the_job_through_the_runpod_client(client):
    assert client.run_sync({"tag": "sync"}, timeout=60)["input"] == {"tag": "sync"}


def test_runsync_answers_after_its_wait_and_status_sync_waits_for_the_end(api, http):
    body = http.post(f"{api}/runsync?wait=1000", json={"input": {"sleep_s": 3}}).json()
    assert body["status"] in {"IN_QUEUE", "IN_PROGRESS"}  # answered after 1 s: the JS and Go SDKs then poll
    done = http.post(f"{api}/status-sync/{body['id']}?wait=60000", timeout=90).json()
    assert done["status"] == "COMPLETED" and done["output"]["input"] == {"sleep_s": 3}


def test_status_with_wait_waits_for_the_end_too(api, http):
    job_id = http.post(f"{api}/run", json={"input": {"sleep_s": 1}}).json()["id"]
    assert http.get(f"{api}/status/{job_id}?wait=60000", timeout=90).json()["status"] == "COMPLETED"


def test_stream_with_wait_holds_until_a_chunk_comes(api, http):
    job_id = http.post(f"{api}/run", json={"input": {"sleep_s": 1, "tag": "s"}}).json()["id"]
    body = http.post(f"{api}/stream/{job_id}?wait=60000", timeout=90).json()
    assert body["status"] == "COMPLETED"
    assert [chunk["output"]["input"]["tag"] for chunk in body["stream"]] == ["s"]


def test_a_status_ttl_deletes_the_result_early(client, api, http):
    job = client.run({"tag": "short-lived"})
    job.output(timeout=60)
    assert http.get(f"{api}/status/{job.job_id}?ttl=1").json()["status"] == "COMPLETED"
    wait_gone(http, f"{api}/status/{job.job_id}")


def test_a_policy_ttl_that_expires_deletes_a_running_job_and_frees_its_worker(client, api, http, await_status,
                                                                                endpoint):
    job = client.run({"input": {"sleep_s": 60}, "policy": {"ttl": 10_000}})
    await_status(endpoint, NAME, job.job_id, "IN_PROGRESS")
    wait_gone(http, f"{api}/status/{job.job_id}")
    assert http.post(f"{api}/cancel/{job.job_id}").status_code == 404
    # The worker was told to stop the job: it takes the next one.
    assert client.run_sync({"tag": "after-ttl"}, timeout=60)["input"] == {"tag": "after-ttl"}


def test_a_failed_job_is_retried_under_its_id_with_its_input(client, api, http, await_status, endpoint, tmp_path):
    marker = tmp_path / "ready"
    retried_before = client.health()["jobs"]["retried"]
    job = client.run({"fail_unless": str(marker), "tag": "retry-me"})
    failed = await_status(endpoint, NAME, job.job_id, "FAILED")
    assert "does not exist yet" in failed["error"]

    marker.touch()
    response = http.post(f"{api}/retry/{job.job_id}")
    assert response.status_code == 200
    assert response.json() == {"id": job.job_id, "status": "IN_QUEUE"}
    done = await_status(endpoint, NAME, job.job_id, "COMPLETED")
    assert done["output"]["input"] == {"fail_unless": str(marker), "tag": "retry-me"}
    assert "error" not in done
    assert client.health()["jobs"]["retried"] == retried_before + 1


def test_a_timed_out_job_is_retried_with_its_policy(client, api, http, await_status, endpoint):
    job = client.run({"input": {"sleep_s": 60}, "policy": {"executionTimeout": 5_000}})
    await_status(endpoint, NAME, job.job_id, "TIMED_OUT", timeout=60)
    assert http.post(f"{api}/retry/{job.job_id}").json()["status"] == "IN_QUEUE"
    await_status(endpoint, NAME, job.job_id, "IN_PROGRESS")
    again = await_status(endpoint, NAME, job.job_id, "TIMED_OUT", timeout=60)
    assert "TIMEOUT" in again["error"]


def test_only_failed_or_timed_out_jobs_can_be_retried(client, api, http):
    job = client.run({"tag": "fine"})
    job.output(timeout=60)
    response = http.post(f"{api}/retry/{job.job_id}")
    assert response.status_code == 400
    assert "COMPLETED" in response.json()["error"] and "FAILED or TIMED_OUT" in response.json()["error"]
    assert http.post(f"{api}/retry/no-such-job").status_code == 404


def test_low_priority_jobs_wait_for_normal_ones(client, api, http, await_status, endpoint):
    blocker = client.run({"sleep_s": 2})
    await_status(endpoint, NAME, blocker.job_id, "IN_PROGRESS")
    low = client.run({"input": {"tag": "low"}, "policy": {"lowPriority": True}})
    normal = client.run({"tag": "normal"})
    low_started = low.output(timeout=60)["started"]
    assert normal.output(timeout=60)["started"] < low_started


def test_a_cancelled_job_and_a_purged_queue_through_the_runpod_client(client, await_status, endpoint):
    blocker = client.run({"sleep_s": 2})
    await_status(endpoint, NAME, blocker.job_id, "IN_PROGRESS")
    waiting = [client.run({"tag": str(n)}) for n in range(2)]
    assert waiting[0].cancel()["status"] == "CANCELLED"
    assert client.purge_queue() == {"removed": 1, "status": "completed"}
    assert await_status(endpoint, NAME, waiting[1].job_id, "CANCELLED")["status"] == "CANCELLED"
    assert blocker.output(timeout=60)["input"] == {"sleep_s": 2}  # purge leaves running jobs


def test_health_counts_jobs_and_workers_as_runpod_does(client, await_status, endpoint):
    before = client.health()["jobs"]
    client.run_sync({"tag": "ok"}, timeout=60)
    failed = client.run({"fail_unless": "/nonexistent/path"})
    await_status(endpoint, NAME, failed.job_id, "FAILED")
    health = client.health()
    assert health["jobs"]["completed"] == before["completed"] + 1
    assert health["jobs"]["failed"] == before["failed"] + 1
    assert (health["jobs"]["inQueue"], health["jobs"]["inProgress"]) == (0, 0)
    assert {"idle", "running", "initializing", "ready", "throttled", "unhealthy"} <= set(health["workers"])
    assert health["workers"]["idle"] + health["workers"]["running"] == 1


def test_a_webhook_is_sent_again_until_it_answers_200(client, webhook_receiver, await_status, endpoint):
    webhook_receiver.answers = [500]  # RunPod retries 10 s later
    job = client.run({"input": {"tag": "hooked"}, "webhook": webhook_receiver.url})
    status = await_status(endpoint, NAME, job.job_id, "COMPLETED")
    first, second = webhook_receiver.wait_for(2, timeout=40)
    assert first == second
    assert {key: first[key] for key in ("id", "status", "output")} == {key: status[key] for key in
                                                                       ("id", "status", "output")}


def test_a_failed_jobs_webhook_carries_its_error(client, webhook_receiver, await_status, endpoint):
    job = client.run({"input": {"fail_unless": "/nonexistent/path"}, "webhook": webhook_receiver.url})
    await_status(endpoint, NAME, job.job_id, "FAILED")
    [body] = webhook_receiver.wait_for(1)
    assert (body["id"], body["status"]) == (job.job_id, "FAILED") and "does not exist yet" in body["error"]


@pytest.mark.parametrize(("path", "body", "status", "named"), [
    ("run", {"input": {}, "policy": {"ttl": 5}}, 400, "policy.ttl"),
    ("run", {"input": {}, "policy": {"lowPriority": "yes"}}, 400, "policy.lowPriority"),
    ("run", {"input": {}, "s3Config": "s3://bucket"}, 400, "s3Config"),
    ("runsync?wait=soon", {"input": {}}, 400, "wait"),
    ("run", {"policy": {}}, 400, "input"),
])
def test_bad_requests_are_400s_naming_the_field(api, http, path, body, status, named):
    response = http.post(f"{api}/{path}", json=body)
    assert response.status_code == status
    assert named in response.json()["error"]


def test_unknown_job_ids_are_404s_on_every_job_operation(api, http):
    for method, path in [("GET", "status"), ("POST", "status-sync"), ("GET", "stream"), ("POST", "cancel"),
                         ("POST", "retry")]:
        response = http.request(method, f"{api}/{path}/no-such-job")
        assert response.status_code == 404, path
        assert "no-such-job" in response.json()["error"]


def test_an_unknown_operation_or_method_answers_runpods_error_body(api, http):
    unknown = http.post(f"{api}/no-such-operation", json={"input": {}})
    assert unknown.status_code == 404 and "no-such-operation" in unknown.json()["error"]
    wrong_method = http.get(f"{api}/run")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.json()["error"]


def test_the_asyncio_runpod_client_runs_and_checks_health(endpoint):
    from runpod import AsyncioEndpoint
    from runpod.http_client import ClientSession

    async def scenario() -> tuple[dict, dict]:
        async with ClientSession() as session:
            client = AsyncioEndpoint(NAME, session)
            job = await client.run({"tag": "async"})
            output = await job.output(timeout=60)
            return output, await client.health()

    runpod.endpoint_url_base = f"{endpoint.base_url}/v2"
    output, health = asyncio.run(scenario())
    assert output["input"] == {"tag": "async"}
    assert "jobs" in health and "workers" in health
