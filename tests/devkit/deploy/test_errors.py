"""How deploy meets RunPod v2's refusals: one line each, the key never shown, 429 and 5xx retried."""

from __future__ import annotations

import os

import httpx

from devkit.deploy.api_models import CreateEndpointRequest
from devkit.deploy.standin import API_KEY


def _one_error_line(out: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith("deploy: ")]
    return line


def test_no_api_key_stops_before_any_call(runpod, demo, deploy, monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY")
    status, out = deploy("deploy")
    assert status == 1
    assert "RUNPOD_API_KEY is not set" in out
    assert runpod.requests == []


def test_a_401_is_one_line_with_the_servers_reason_and_never_the_key(runpod, demo, deploy, monkeypatch):
    wrong = "rp_wrong_key_fedcba9876543210"
    monkeypatch.setenv("RUNPOD_API_KEY", wrong)
    status, out = deploy("deploy")
    assert status == 1
    line = _one_error_line(out)
    assert "HTTP 401: invalid bearer token *** (check RUNPOD_API_KEY)" in line  # the echo is scrubbed
    assert wrong not in out and API_KEY not in out
    assert len(runpod.requests) == 1  # not retried


def test_a_field_v2_does_not_know_is_a_422_naming_it_in_one_line(runpod, demo, deploy, monkeypatch):
    # As if our schema copy had a field v2 dropped: the stand-in, like v2, refuses it by name.
    real_body = CreateEndpointRequest.body
    monkeypatch.setattr(CreateEndpointRequest, "body", lambda self: real_body(self) | {"templateName": "x"})
    status, out = deploy("deploy")
    assert status == 1
    line = _one_error_line(out)
    assert "POST" in line and "/v2/serverless: HTTP 422: Request validation failed." in line
    assert "$: additional properties 'templateName' not allowed" in line
    assert runpod.endpoints == {}


def test_the_standin_checks_paths_methods_and_bodies_against_v2s_schema(runpod):
    url = os.environ["RUNPOD_REST_URL"]
    headers = {"Authorization": f"Bearer {API_KEY}"}
    base = {"name": "x", "type": "QUEUE", "image": "i", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}
    answers = {
        "no gpu or cpu": httpx.post(f"{url}/serverless", json=base, headers=headers),
        "bad scaler": httpx.post(f"{url}/serverless", headers=headers, json=base | {
            "gpu": {"pools": ["ADA_24"]}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 0.1}}),
        "v1 field": httpx.post(f"{url}/serverless", headers=headers, json=base | {
            "gpu": {"pools": ["ADA_24"]}, "gpuTypeIds": ["NVIDIA GeForce RTX 4090"]}),
        "v1 path": httpx.get(f"{url}/endpoints", headers=headers),
        "wrong method": httpx.put(f"{url}/serverless", headers=headers, json={}),
    }
    assert {k: r.status_code for k, r in answers.items()} == {
        "no gpu or cpu": 422, "bad scaler": 422, "v1 field": 422, "v1 path": 404, "wrong method": 405}
    assert answers["bad scaler"].json()["errors"] == [
        "$.scaling.queueDelay: Input should be greater than or equal to 0.5"]
    assert answers["v1 field"].json()["errors"] == ["$: additional properties 'gpuTypeIds' not allowed"]
    assert answers["v1 path"].headers["content-type"] == "application/problem+json"


def test_a_404_from_v2_is_reported_with_what_v2_said(runpod, demo, deploy, monkeypatch):
    deploy("deploy")
    monkeypatch.setenv("TAG", "v2")
    runpod.fail_next(404, "endpoint not found", method="PATCH")
    status, out = deploy("deploy")
    assert status == 1
    assert "PATCH" in _one_error_line(out) and "HTTP 404: endpoint not found" in _one_error_line(out)


def test_a_429_is_retried_after_v2s_retry_after_then_succeeds(runpod, demo, deploy, sleeps):
    runpod.fail_next(429, "rate limit exceeded for the minute window", times=2)
    status, out = deploy("deploy")
    assert status == 0, out
    assert len(sleeps) == 2 and all(s >= 1 for s in sleeps)  # Retry-After: 1
    assert len(runpod.endpoints) == 1


def test_5xx_until_the_attempts_run_out_is_one_line_and_creates_nothing(runpod, demo, deploy, sleeps):
    runpod.fail_next(503, "upstream unavailable", times=10, method="POST")
    status, out = deploy("deploy")
    assert status == 1
    assert "POST" in _one_error_line(out) and "HTTP 503: upstream unavailable" in _one_error_line(out)
    assert [r.method for r in runpod.requests] == ["GET", "GET"] + ["POST"] * 4  # RetryPolicy(attempts=4)
    assert len(sleeps) == 3
    assert runpod.endpoints == {}
    assert API_KEY not in out
