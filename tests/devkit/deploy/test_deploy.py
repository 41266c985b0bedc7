"""`deploy` against the RunPod REST v2 stand-in: plan, apply, idempotency, rolling an image, drift."""

from __future__ import annotations

import subprocess
import sys

from devkit.endpoint_config import worker_names


def _endpoint(runpod) -> dict:
    [endpoint] = runpod.endpoints.values()
    return endpoint


def test_a_dry_run_from_nothing_plans_every_worker_of_the_repo_and_writes_nothing(runpod, deploy):
    status, out = deploy("deploy", "--dry-run")
    assert status == 0, out
    for name in worker_names():
        assert f"+ endpoint '{name}': create" in out
        assert f'image = "docker.io/acme/{name}:v1"' in out
    assert f"Dry run: {len(worker_names())} endpoint(s) would change; nothing was changed." in out
    assert runpod.writes() == [] and runpod.endpoints == {}


def test_apply_creates_one_v2_endpoint_with_the_container_settings_inline(runpod, demo, deploy):
    status, out = deploy("deploy")
    assert status == 0, out
    [create] = runpod.writes()
    assert (create.method, create.path) == ("POST", "/v2/serverless")
    endpoint = _endpoint(runpod)
    assert endpoint["name"] == "demo" and endpoint["type"] == "QUEUE"
    assert endpoint["image"] == "docker.io/acme/demo:v1"
    assert endpoint["disk"] == 12
    assert endpoint["env"] == {"LOG_LEVEL": "INFO", "HF_TOKEN": "{{ RUNPOD_SECRET_hf_token }}"}
    # The listed types' pools, minus the pools' other cards: workers land only on the listed types.
    assert endpoint["gpu"]["pools"] == ["ADA_24", "AMPERE_16"]
    assert endpoint["gpu"]["excludedTypes"] == ["NVIDIA RTX 4000 Ada Generation", "NVIDIA RTX A4500"]
    assert endpoint["gpu"]["minCudaVersion"] == "12.8"  # the Dockerfile's CUDA base
    assert endpoint["workers"] == {"min": 0, "max": 2, "idleTimeout": 30}  # development, then the override
    assert endpoint["timeout"] == 300_000 and endpoint["flashboot"] == "FLASHBOOT"
    assert endpoint["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": 4.0}
    assert f"demo: endpoint {endpoint['id']} created" in out


def test_a_second_run_changes_nothing(runpod, demo, deploy):
    assert deploy("deploy")[0] == 0
    writes = len(runpod.writes())
    status, out = deploy("deploy")
    assert status == 0
    assert "= endpoint 'demo'" in out and "No changes" in out
    assert len(runpod.writes()) == writes


def test_a_new_image_tag_rolls_the_endpoint_with_a_patch_of_the_image_alone(runpod, demo, deploy, monkeypatch):
    deploy("deploy")
    before = len(runpod.writes())
    monkeypatch.setenv("TAG", "v2")
    status, out = deploy("deploy")
    assert status == 0, out
    assert 'image: "docker.io/acme/demo:v1" -> "docker.io/acme/demo:v2"' in out
    [patch] = runpod.writes()[before:]
    assert patch.method == "PATCH" and patch.path == f"/v2/serverless/{_endpoint(runpod)['id']}"
    assert patch.body == {"image": "docker.io/acme/demo:v2"}
    assert _endpoint(runpod)["image"] == "docker.io/acme/demo:v2"
    assert "No changes" in deploy("deploy")[1]


def test_a_changed_profile_patches_workers_and_timeout_only(runpod, demo, deploy, demo_toml):
    deploy("deploy")
    demo("demo", demo_toml.replace('profile = "development"', 'profile = "latency-sensitive"')
         .replace("max_workers = 2", "max_workers = 4"))
    before = len(runpod.writes())
    status, out = deploy("deploy", "--dry-run")
    assert status == 0, out
    assert '"idleTimeout": 30, "max": 2, "min": 0} -> {"idleTimeout": 120, "max": 4, "min": 2}' in out
    assert "timeout: 300000 -> 60000" in out
    assert len(runpod.writes()) == before
    assert deploy("deploy")[0] == 0
    [patch] = runpod.writes()[before:]
    assert patch.body == {"workers": {"min": 2, "max": 4, "idleTimeout": 120}, "timeout": 60_000}


def test_console_drift_is_reverted_and_a_gpu_change_restates_the_whole_selection(runpod, demo, deploy):
    deploy("deploy")
    endpoint = _endpoint(runpod)
    endpoint["workers"]["max"] = 9
    endpoint["gpu"]["pools"] = ["ADA_24"]
    endpoint["gpu"].pop("excludedTypes")
    before = len(runpod.writes())
    status, out = deploy("deploy")
    assert status == 0, out
    [patch] = runpod.writes()[before:]
    # pools without excludedTypes would clear them (v2 UpdateEndpointGpuConfig): the block goes whole.
    assert patch.body["gpu"] == {"pools": ["ADA_24", "AMPERE_16"], "count": 1,
                                 "excludedTypes": ["NVIDIA RTX 4000 Ada Generation", "NVIDIA RTX A4500"],
                                 "allowedCudaVersions": [], "minCudaVersion": "12.8"}
    assert endpoint["workers"]["max"] == 2 and endpoint["gpu"]["pools"] == ["ADA_24", "AMPERE_16"]
    assert "No changes" in deploy("deploy")[1]


def test_an_exact_cuda_set_replaces_the_floor_the_endpoint_had(runpod, demo, deploy, demo_toml):
    deploy("deploy")
    demo("demo", demo_toml.replace("[container]", 'allowed_cuda_versions = ["12.9", "12.8"]\n[container]'))
    assert deploy("deploy")[0] == 0
    gpu = _endpoint(runpod)["gpu"]
    assert gpu["allowedCudaVersions"] == ["12.8", "12.9"] and gpu["minCudaVersion"] is None
    assert runpod.writes()[-1].body["gpu"]["minCudaVersion"] == ""  # v2's way to clear the floor


def test_a_request_count_scaler_sends_no_idle_timeout(runpod, demo, deploy, demo_toml):
    demo("demo", demo_toml + '[scaler]\ntype = "REQUEST_COUNT"\nvalue = 3\n')
    status, out = deploy("deploy")
    assert status == 0, out
    assert runpod.writes()[0].body["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 3}
    assert "idleTimeout" not in runpod.writes()[0].body["workers"]
    assert "No changes" in deploy("deploy")[1]


def test_placement_network_volumes_and_registry_credential_are_sent(runpod, demo, deploy, demo_toml):
    demo("demo", demo_toml.replace("disk_gb = 12", 'disk_gb = 12\nregistry_auth_id = "cred123"')
         + '[placement]\ndata_centers = ["EU-RO-1"]\nnetwork_volumes = ["vol42"]\n')
    assert deploy("deploy")[0] == 0
    endpoint = _endpoint(runpod)
    assert endpoint["registry"] == "cred123"
    assert endpoint["dataCenterIds"] == ["EU-RO-1"] and endpoint["networkVolumes"] == ["vol42"]


def test_an_endpoint_with_the_flashboot_suffix_is_matched_not_duplicated(runpod, demo, deploy):
    deploy("deploy")
    _endpoint(runpod)["name"] = "demo -fb"
    status, out = deploy("deploy")
    assert status == 0 and "No changes" in out
    assert len(runpod.endpoints) == 1


def test_two_endpoints_with_the_name_stop_the_plan(runpod, demo, deploy):
    deploy("deploy")
    first = _endpoint(runpod)
    runpod.endpoints["ep999999"] = dict(first, id="ep999999")
    before = len(runpod.writes())
    status, out = deploy("deploy")
    assert status == 2
    assert "2 endpoints are named 'demo'" in out and "ep999999" in out
    assert len(runpod.writes()) == before


def test_a_gpu_type_outside_the_catalog_or_serverless_is_refused_naming_file_and_field(runpod, demo, deploy, demo_toml):
    demo("demo", demo_toml.replace('"NVIDIA RTX A4000"', '"NVIDIA RTX A4001"'))
    status, out = deploy("deploy")
    assert status == 2
    assert "demo/endpoint.toml: gpu.types: not in RunPod's GPU catalog: NVIDIA RTX A4001" in out
    demo("demo", demo_toml.replace('"NVIDIA RTX A4000"', '"NVIDIA GeForce RTX 3080"'))
    status, out = deploy("deploy")
    assert status == 2 and "not offered on serverless" in out
    assert runpod.writes() == []


def test_every_subcommand_has_help():
    for command in ("deploy", "status", "undeploy"):
        result = subprocess.run([sys.executable, "-m", "devkit.deploy", command, "--help"],
                                capture_output=True, text=True, check=True)
        assert "--worker" in result.stdout and "--api-url" in result.stdout
