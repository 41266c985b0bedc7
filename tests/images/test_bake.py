"""docker-bake.hcl, its CI overlay and the make targets around it, checked without a Docker daemon."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.images.conftest import REPO, WORKERS, model_prefix, parse_bake

CI_DOCKER_CONFIG = Path(os.environ.get("CI_DOCKER_DIR", "/var/tmp/ci-docker")) / "config"


def load_ci_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_group_builds_every_worker(bake):
    assert sorted(bake["group"]["default"]["targets"]) == WORKERS


@pytest.mark.parametrize("worker", WORKERS)
def test_each_worker_target_inherits_common_and_builds_its_dockerfile(bake, worker):
    target = bake["target"][worker]
    assert target["inherits"] == ["_common"]
    assert target["dockerfile"] == f"workers/{worker}/Dockerfile"
    assert target["tags"] == f'${{tags("{worker}")}}'
    assert target["cache-from"] == f'${{cache_from("{worker}")}}'
    assert target["cache-to"] == f'${{cache_to("{worker}")}}'


def test_common_target_is_amd64_with_the_token_as_a_secret_only(bake):
    common = bake["target"]["_common"]
    assert common["platforms"] == ["linux/amd64"]
    assert common["secret"] == ["id=hf_token,env=HF_TOKEN"]
    for name, target in bake["target"].items():
        assert not [arg for arg in target.get("args", {}) if "TOKEN" in arg.upper()], name


def test_tags_are_registry_name_tag(bake):
    assert {"REGISTRY", "TAG"} <= set(bake["variable"])
    assert bake["function"]["tags"]["result"] == ["${REGISTRY}/${name}:${TAG}"]


@pytest.mark.parametrize("worker", [w for w in WORKERS if (REPO / "workers" / w / "model.toml").exists()])
def test_model_workers_get_model_args_and_a_local_folder_context(bake, worker):
    prefix = model_prefix(worker)
    target = bake["target"][worker]
    assert target["args"] == {"MODEL_ID": f"{prefix}_MODEL_ID", "MODEL_REVISION": f"{prefix}_MODEL_REVISION",
                              "MODEL_VARIANT": f"{prefix}_MODEL_VARIANT"}
    assert target["contexts"] == f"${{model_context({prefix}_MODEL_DIR)}}"
    for suffix in ("MODEL_ID", "MODEL_REVISION", "MODEL_VARIANT", "MODEL_DIR"):
        assert f"{prefix}_{suffix}" in bake["variable"]


def test_ci_overlay_only_swaps_bases_and_network_of_existing_targets(bake):
    overlay = parse_bake(REPO / ".ci" / "bake-ci.hcl")
    assert set(overlay) == {"target"}
    assert set(overlay["target"]) <= set(bake["target"])
    assert overlay["target"]["_common"]["network"] == "host"
    for name, target in overlay["target"].items():
        assert set(target) <= {"args", "network"}, name
        assert set(target.get("args", {})) <= {"BASE_IMAGE", "PYTHON_IMAGE"}, name


def test_bake_variables_come_from_model_toml_and_the_environment_wins(tmp_path, monkeypatch, capsys):
    bake_env = load_ci_module("bake_env")
    (tmp_path / "llm-x").mkdir()
    (tmp_path / "llm-x" / "model.toml").write_text('id = "org/m"\nrevision = "abc"\n')
    assert bake_env.bake_variables(tmp_path) == {"LLM_X_MODEL_ID": "org/m", "LLM_X_MODEL_REVISION": "abc",
                                                 "LLM_X_MODEL_VARIANT": ""}
    (tmp_path / "llm-x" / "model.toml").write_text('id = "org/m x"\nrevision = "abc"\n')
    with pytest.raises(SystemExit, match="without spaces"):
        bake_env.bake_variables(tmp_path)
    monkeypatch.setenv("SDXL_MODEL_REVISION", "override")
    bake_env.main()
    printed = capsys.readouterr().out
    assert "SDXL_MODEL_ID=" in printed and "SDXL_MODEL_REVISION" not in printed


def test_make_build_hands_model_toml_to_bake():
    plan = subprocess.run(["make", "--no-print-directory", "-n", "build", "WORKER=llm-hf"], cwd=REPO,
                          capture_output=True, text=True, check=True,
                          env={k: v for k, v in os.environ.items() if not k.endswith(("_MODEL_ID", "_MODEL_REVISION"))},
                          ).stdout
    model = tomllib.loads((REPO / "workers" / "llm-hf" / "model.toml").read_text())
    assert f"LLM_HF_MODEL_ID={model['id']}" in plan
    assert f"LLM_HF_MODEL_REVISION={model['revision']}" in plan
    assert "docker buildx bake -f docker-bake.hcl" in plan and plan.rstrip().endswith("llm-hf")


def test_make_build_without_worker_says_how_to_call_it():
    result = subprocess.run(["make", "--no-print-directory", "build"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and "usage: make build WORKER=<name>" in result.stderr


def test_container_worker_passes_env_by_name_never_by_value():
    container_worker = load_ci_module("container_worker")
    args = container_worker.docker_run_args({
        "RUNPOD_WEBHOOK_GET_JOB": "http://127.0.0.1:1/job-take/$ID", "RUNPOD_POD_ID": "w1", "LOG_LEVEL": "INFO",
        "CI_CONTAINER_ENV": "LOG_LEVEL,ABSENT", "CI_WORKER_IMAGE": "r/x@sha256:1", "HOME": "/root",
    })
    assert args[:5] == ["docker", "run", "--rm", "--network", "host"]
    assert args[args.index("--label") + 1] == container_worker.LABEL
    assert args[-1] == "r/x@sha256:1"
    passed = [args[i + 1] for i, a in enumerate(args) if a == "--env"]
    assert passed == ["RUNPOD_POD_ID", "RUNPOD_WEBHOOK_GET_JOB", "LOG_LEVEL"]


def _buildx() -> dict[str, str] | None:
    """Environment under which `docker buildx` runs: as installed, or as .ci/images.sh installs it."""
    if shutil.which("docker") is None:
        return None
    for env in ({}, {"DOCKER_CONFIG": str(CI_DOCKER_CONFIG)}):
        full = {**os.environ, **env}
        if subprocess.run(["docker", "buildx", "version"], env=full, capture_output=True).returncode == 0:
            return full
    return None


@pytest.mark.skipif(_buildx() is None, reason="no buildx here; .ci/images.sh installs it and runs the real bake")
def test_buildx_resolves_every_target_with_model_args_and_local_contexts():
    env = {**_buildx(), "LLM_HF_MODEL_DIR": "/tmp/tiny-llama", "REGISTRY": "r.example/team", "TAG": "t1"}
    env |= load_ci_module("bake_env").bake_variables()
    printed = subprocess.run(["docker", "buildx", "bake", "--print", "-f", "docker-bake.hcl", "-f", ".ci/bake-ci.hcl"],
                             cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    targets = json.loads(printed)["target"]
    assert sorted(targets) == WORKERS
    assert targets["llm-hf"]["contexts"] == {"model": "/tmp/tiny-llama"}
    assert targets["llm-hf"]["args"]["MODEL_ID"] == env["LLM_HF_MODEL_ID"]
    assert targets["sdxl"]["tags"] == ["r.example/team/sdxl:t1"]
    assert all(t["network"] == "host" and t["platforms"] == ["linux/amd64"] for t in targets.values())
    assert all(t["secret"] == [{"id": "hf_token", "env": "HF_TOKEN"}] for t in targets.values())
