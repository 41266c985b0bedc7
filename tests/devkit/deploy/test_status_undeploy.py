"""`status` (state, workers by state, job URLs, image and GPU) and `undeploy` (asks, then deletes)."""

from __future__ import annotations

import sys


def _deployed(runpod, deploy) -> dict:
    assert deploy("deploy")[0] == 0
    [endpoint] = runpod.endpoints.values()
    return endpoint


def test_status_names_the_unhealthy_workers_and_shows_urls_image_and_gpu(runpod, demo, deploy):
    endpoint = _deployed(runpod, deploy)
    runpod.add_worker(endpoint["id"], "RUNNING")
    runpod.add_worker(endpoint["id"], "IDLE", gpu_type="NVIDIA RTX A4000")
    sick = runpod.add_worker(endpoint["id"], "UNHEALTHY")
    status, out = deploy("status")
    assert status == 0, out
    assert f"demo ({endpoint['id']}): deployed, matches endpoint.toml" in out
    assert "image: docker.io/acme/demo:v1" in out
    assert "gpu: 1 x pools ADA_24, AMPERE_16 (NVIDIA GeForce RTX 4090, NVIDIA RTX A4000), CUDA >= 12.8" in out
    assert "gpu in use: NVIDIA GeForce RTX 4090 x 2, NVIDIA RTX A4000 x 1" in out
    assert "workers: 3 (1 running, 1 idle, 0 initializing, 0 throttled, 1 unhealthy); min 0, max 2" in out
    assert f"unhealthy: {sick}" in out
    assert f"run: https://api.runpod.ai/v2/{endpoint['id']}/run" in out
    assert f"runSync: https://api.runpod.ai/v2/{endpoint['id']}/runsync" in out
    assert f"health: https://api.runpod.ai/v2/{endpoint['id']}/health" in out
    assert [r.path for r in runpod.requests[-3:]] == [
        "/v2/catalog/gpus", "/v2/serverless", f"/v2/serverless/{endpoint['id']}/workers"]


def test_status_after_an_image_change_shows_the_drift_then_the_rollout(runpod, demo, deploy, monkeypatch):
    endpoint = _deployed(runpod, deploy)
    old = runpod.add_worker(endpoint["id"], "RUNNING")
    monkeypatch.setenv("TAG", "v2")
    assert "differs from endpoint.toml in image (run make deploy)" in deploy("status")[1]
    deploy("deploy")
    out = deploy("status")[1]
    assert "deployed, matches endpoint.toml" in out and "image: docker.io/acme/demo:v2" in out
    assert f"on an older release (rolling out): {old}" in out


def test_status_of_a_worker_without_an_endpoint_says_so(runpod, demo, deploy, monkeypatch):
    status, out = deploy("status")
    assert status == 0 and "demo: not deployed (make deploy WORKER=demo)" in out


def test_undeploy_with_yes_deletes_the_endpoint(runpod, demo, deploy):
    endpoint = _deployed(runpod, deploy)
    status, out = deploy("undeploy", "--yes")
    assert status == 0, out
    assert f"demo: endpoint {endpoint['id']} deleted" in out
    assert runpod.endpoints == {}
    assert runpod.writes()[-1].method == "DELETE" and runpod.writes()[-1].path == f"/v2/serverless/{endpoint['id']}"
    status, out = deploy("undeploy", "--yes")
    assert status == 0 and "demo: no endpoint, nothing to delete" in out


def test_undeploy_asks_and_deletes_nothing_unless_the_answer_is_yes(runpod, demo, deploy):
    _deployed(runpod, deploy)
    status, out = deploy("undeploy", answer="n")
    assert status == 2 and "not confirmed: nothing was deleted" in out
    assert len(runpod.endpoints) == 1
    assert deploy("undeploy", answer="yes")[0] == 0
    assert runpod.endpoints == {}


def test_undeploy_without_a_terminal_or_yes_refuses(runpod, demo, deploy, monkeypatch):
    _deployed(runpod, deploy)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    from devkit.deploy.__main__ import main

    assert main(["undeploy"]) == 2
    assert len(runpod.endpoints) == 1
