"""make deploy against the RunPod REST stand-in: plan, apply, idempotency, drift, and every error path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devkit.client.retry import RetryPolicy
from devkit.deploy.__main__ import main

DEMO = """
name = "demo"
profile = "development"
[gpu]
types = ["NVIDIA RTX A4000", "NVIDIA GeForce RTX 4090"]
[container]
disk_gb = 12
[env]
LOG_LEVEL = "INFO"
HF_TOKEN = "{{ RUNPOD_SECRET_hf_token }}"
[scaling]
max_workers = 2
"""


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def deploy(capsys, sleeps):
    """Run the deploy CLI in-process; returns (exit status, stdout + stderr). Backoff sleeps are recorded."""

    def run(*argv: str) -> tuple[int, str]:
        status = main(list(argv), retry=RetryPolicy(attempts=4, sleep=sleeps.append))
        out = capsys.readouterr()
        return status, out.out + out.err

    return run


def test_dry_run_on_an_empty_account_plans_both_creations_and_writes_nothing(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    status, out = deploy("--dry-run")
    assert status == 0
    assert "+ template 'demo': create" in out
    assert "+ endpoint 'demo': create" in out
    assert 'imageName = "docker.io/acme/demo:v1"' in out
    assert "executionTimeoutMs = 600000" in out
    assert "Dry run: 1 worker(s) would change" in out
    assert runpod.writes() == []
    assert runpod.templates == {} and runpod.endpoints == {}


def test_apply_creates_the_template_then_the_endpoint_from_the_config(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    status, out = deploy()
    assert status == 0, out
    [template] = runpod.templates.values()
    assert template["name"] == "demo"
    assert template["imageName"] == "docker.io/acme/demo:v1"
    assert template["isServerless"] is True
    assert template["containerDiskInGb"] == 12
    assert template["env"] == {"LOG_LEVEL": "INFO", "HF_TOKEN": "{{ RUNPOD_SECRET_hf_token }}"}
    [endpoint] = runpod.endpoints.values()
    assert endpoint["templateId"] == template["id"]
    assert endpoint["gpuTypeIds"] == ["NVIDIA RTX A4000", "NVIDIA GeForce RTX 4090"]  # preference order kept
    assert (endpoint["workersMin"], endpoint["workersMax"]) == (0, 2)  # profile value, then the override
    assert endpoint["idleTimeout"] == 5
    assert endpoint["executionTimeoutMs"] == 600_000
    assert endpoint["flashboot"] is True
    assert [(r.method, r.path) for r in runpod.writes()] == [("POST", "/templates"), ("POST", "/endpoints")]
    assert f"endpoint {endpoint['id']} is up to date" in out


def test_a_second_run_changes_nothing(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    assert deploy()[0] == 0
    writes = len(runpod.writes())
    status, out = deploy()
    assert status == 0
    assert "No changes" in out
    assert "= template 'demo'" in out and "= endpoint 'demo'" in out
    assert len(runpod.writes()) == writes


def test_a_changed_profile_patches_only_the_fields_that_differ(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    deploy()
    workers_dir("demo", DEMO.replace('profile = "development"', 'profile = "latency-sensitive"'))
    before = len(runpod.writes())
    status, out = deploy("--dry-run")
    assert status == 0
    assert "~ endpoint 'demo'" in out
    assert "workersMin: 0 -> 1" in out and "idleTimeout: 5 -> 60" in out
    assert "executionTimeoutMs: 600000 -> 300000" in out
    assert "= template 'demo'" in out
    assert len(runpod.writes()) == before  # the dry run wrote nothing
    status, out = deploy()
    assert status == 0
    [patch] = runpod.writes()[before:]
    assert patch.method == "PATCH" and patch.path.startswith("/endpoints/")
    assert patch.body == {"workersMin": 1, "idleTimeout": 60, "executionTimeoutMs": 300_000}
    assert "No changes" in deploy()[1]


def test_a_new_image_tag_updates_the_template_only(runpod, workers_dir, deploy, monkeypatch):
    workers_dir("demo", DEMO)
    deploy()
    monkeypatch.setenv("TAG", "v2")
    before = len(runpod.writes())
    status, out = deploy()
    assert status == 0
    assert 'imageName: "docker.io/acme/demo:v1" -> "docker.io/acme/demo:v2"' in out
    [patch] = runpod.writes()[before:]
    assert patch.method == "PATCH" and patch.path.startswith("/templates/")
    assert patch.body == {"imageName": "docker.io/acme/demo:v2"}


def test_private_images_reference_the_registry_credential(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO.replace("disk_gb = 12", 'disk_gb = 12\nregistry_auth_id = "cred123"'))
    assert deploy()[0] == 0
    [template] = runpod.templates.values()
    assert template["containerRegistryAuthId"] == "cred123"


def test_drift_made_in_the_console_is_reverted(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    deploy()
    [endpoint] = runpod.endpoints.values()
    endpoint["workersMax"] = 9
    endpoint["gpuTypeIds"] = ["NVIDIA GeForce RTX 4090"]
    status, out = deploy()
    assert status == 0
    assert "workersMax: 9 -> 2" in out
    assert endpoint["workersMax"] == 2
    assert endpoint["gpuTypeIds"] == ["NVIDIA RTX A4000", "NVIDIA GeForce RTX 4090"]


def test_a_template_deleted_in_the_console_is_recreated_and_the_endpoint_repointed(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    deploy()
    runpod.templates.clear()
    status, out = deploy("--dry-run")
    assert '+ template \'demo\': create' in out and 'templateId: "tpl' in out and '-> "(new template)"' in out
    status, out = deploy()
    assert status == 0, out
    [template] = runpod.templates.values()
    [endpoint] = runpod.endpoints.values()
    assert endpoint["templateId"] == template["id"]
    assert "No changes" in deploy()[1]


def test_an_endpoint_with_the_flashboot_suffix_is_matched_not_duplicated(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    deploy()
    [endpoint] = runpod.endpoints.values()
    endpoint["name"] = "demo -fb"
    status, out = deploy()
    assert status == 0
    assert "No changes" in out
    assert len(runpod.endpoints) == 1


def test_flashboot_not_reported_by_the_api_is_noted_and_not_a_perpetual_diff(runpod, workers_dir, deploy):
    runpod.report_flashboot = False
    workers_dir("demo", DEMO)
    assert deploy()[0] == 0
    _, out = deploy()
    assert "No changes" in out
    assert "flashboot is not reported by the API" in out


def test_only_the_named_worker_is_deployed(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    workers_dir("other", DEMO.replace('name = "demo"', 'name = "other"'))
    assert deploy("--worker", "other")[0] == 0
    assert [t["name"] for t in runpod.templates.values()] == ["other"]


def test_a_bad_api_key_is_a_clear_401_and_the_key_is_never_shown(runpod, workers_dir, deploy, monkeypatch, caplog):
    workers_dir("demo", DEMO)
    wrong = "rp_wrong_secret_key_987654"
    monkeypatch.setenv("RUNPOD_API_KEY", wrong)
    status, out = deploy()
    assert status == 1
    assert "HTTP 401" in out and "RUNPOD_API_KEY" in out
    assert wrong not in out and wrong not in caplog.text
    assert len(runpod.requests) == 1  # a refused key is not retried


def test_a_missing_api_key_says_where_to_set_it(runpod, workers_dir, deploy, monkeypatch):
    workers_dir("demo", DEMO)
    monkeypatch.delenv("RUNPOD_API_KEY")
    status, out = deploy("--dry-run")
    assert status == 1
    assert "RUNPOD_API_KEY is not set" in out
    assert runpod.requests == []


@pytest.mark.parametrize("status_code", [400, 422])
def test_a_validation_error_shows_the_server_message_and_is_not_retried(
    runpod, workers_dir, deploy, sleeps, status_code
):
    workers_dir("demo", DEMO)
    runpod.fail_next(status_code, {"error": "gpuTypeIds: NVIDIA RTX A4000 is not available in EU-RO-1"},
                     method="POST")
    status, out = deploy()
    assert status == 1
    assert f"HTTP {status_code}" in out
    assert "NVIDIA RTX A4000 is not available in EU-RO-1" in out
    assert [r.method for r in runpod.requests] == ["GET", "GET", "POST"]
    assert sleeps == []


def test_an_invalid_body_is_refused_by_the_stand_in_with_its_reason(runpod, monkeypatch):
    # Guards the stand-in itself: it really checks bodies against the OpenAPI-derived models.
    import httpx

    response = httpx.post(f"{runpod.url}/endpoints", json={"templateId": "t", "workersMax": -1, "bogus": 1},
                          headers={"Authorization": f"Bearer {runpod.api_key}"})
    assert response.status_code == 400
    assert "workersMax" in response.json()["error"] and "bogus" in response.json()["error"]


def test_transient_503s_and_429s_are_retried_with_backoff(runpod, workers_dir, deploy, sleeps):
    workers_dir("demo", DEMO)
    runpod.fail_next(503, times=2)
    runpod.fail_next(429)
    status, out = deploy()
    assert status == 0, out
    assert len(sleeps) == 3
    assert len(runpod.endpoints) == 1


def test_a_server_that_stays_down_fails_after_the_last_attempt(runpod, workers_dir, deploy, sleeps):
    workers_dir("demo", DEMO)
    runpod.fail_next(500, {"error": "internal"}, times=4)
    status, out = deploy("--dry-run")
    assert status == 1
    assert "HTTP 500" in out
    assert len(runpod.requests) == 4 and len(sleeps) == 3


def test_duplicate_endpoint_names_stop_the_plan(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    deploy()
    [endpoint] = runpod.endpoints.values()
    runpod.endpoints["ep999999"] = endpoint | {"id": "ep999999"}
    status, out = deploy()
    assert status == 2
    assert "2 endpoints are named 'demo'" in out


def test_a_pod_template_with_the_same_name_stops_the_plan(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO)
    runpod.templates["tplpod"] = {"id": "tplpod", "name": "demo", "imageName": "x", "isServerless": False}
    status, out = deploy()
    assert status == 2
    assert "is a Pod template" in out
    assert runpod.writes() == []


def test_an_unknown_gpu_type_fails_at_plan_time(runpod, workers_dir, deploy):
    workers_dir("demo", DEMO.replace("NVIDIA RTX A4000", "NVIDIA RTX A4000X"))
    status, out = deploy("--dry-run")
    assert status == 2
    assert "unknown RunPod GPU type id(s): NVIDIA RTX A4000X" in out


def test_the_command_line_entry_point_runs_the_real_worker_configs(runpod):
    # Every committed endpoint.toml must plan cleanly (REGISTRY/TAG come from the runpod fixture).
    result = subprocess.run([sys.executable, "-m", "devkit.deploy", "--dry-run"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "+ endpoint 'progress-demo': create" in result.stdout
    assert runpod.api_key not in result.stdout + result.stderr
