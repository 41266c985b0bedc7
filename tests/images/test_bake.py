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


MODEL_WORKERS = [w for w in WORKERS if (REPO / "workers" / w / "model.toml").exists()]


def test_default_group_builds_every_worker_on_its_own_base_from_the_derived_list(bake):
    assert bake["group"]["default"]["targets"] == ["worker"]
    assert bake["target"]["worker"]["matrix"]["w"] == "${jsondecode(WORKERS)}"
    assert bake["target"]["base"]["matrix"] == bake["target"]["worker"]["matrix"]
    assert json.loads(load_ci_module("bake_env").bake_variables()["WORKERS"]) == WORKERS


def test_the_bake_files_name_no_worker(bake):
    for path in ("docker-bake.hcl", ".ci/bake-ci.hcl"):
        text = (REPO / path).read_text()
        assert not [w for w in WORKERS if f'"{w}' in text or f"{model_prefix(w)}_" in text], path


def test_every_image_is_the_shared_layers_on_the_workers_own_dockerfile(bake):
    worker, base = bake["target"]["worker"], bake["target"]["base"]
    assert (worker["name"], base["name"]) == ("w", "${w}-base")
    assert worker["inherits"] == base["inherits"] == ["_common"]
    assert worker["dockerfile"] == "shared/worker.Dockerfile"
    assert base["dockerfile"] == "workers/${w}/Dockerfile"
    assert 'base = \"target:${w}-base\"' in worker["contexts"] and "target:${w}-weights" in worker["contexts"]
    assert worker["args"] == {"WORKER": "w"}
    assert (worker["tags"], worker["cache-from"], worker["cache-to"]) == ("${tags(w)}", "${cache_from(w)}",
                                                                           "${cache_to(w)}")
    assert "tags" not in base, "only the image itself is tagged and pushed"


def test_the_one_weights_target_is_the_only_one_the_token_reaches_and_only_as_a_secret(bake):
    weights = bake["target"]["weights"]
    assert weights["dockerfile"] == "shared/weights.Dockerfile" and weights["name"] == "${w}-weights"
    assert weights["secret"] == ["id=hf_token,env=HF_TOKEN"]
    assert [name for name, target in bake["target"].items() if "secret" in target] == ["weights"]
    for name, target in bake["target"].items():
        assert not [arg for arg in target.get("args", {}) if "TOKEN" in arg.upper()], name
    assert bake["target"]["_common"]["platforms"] == ["linux/amd64"]


def test_tags_are_registry_name_tag(bake):
    assert {"REGISTRY", "TAG"} <= set(bake["variable"])
    assert bake["function"]["tags"]["result"] == ["${REGISTRY}/${name}:${TAG}"]


def test_model_workers_are_every_model_toml_with_their_local_folders_from_the_environment():
    env = {"SDXL_MODEL_DIR": "/m", "SDXL_EXTRAS_DIR": "/e", "LLM_HF_MODEL_DIR": "/l"}
    models = json.loads(load_ci_module("bake_env").bake_variables(environ=env)["MODELS"])
    assert sorted(models) == MODEL_WORKERS
    assert models["sdxl"]["contexts"] == {"model": "/m", "extras": "/e"}
    assert models["llm-hf"]["contexts"] == {"model": "/l"} and models["llm-vllm"]["contexts"] == {}


def test_weights_target_passes_the_models_and_the_local_folders(bake):
    weights = bake["target"]["weights"]
    assert weights["args"] == {"MODEL_ID": "${models()[w].id}", "MODEL_REVISION": "${models()[w].revision}",
                               "MODEL_VARIANT": "${models()[w].variant}",
                               "EXTRA_MODELS": "${jsonencode(models()[w].extras)}",
                               "ADAPTERS": "${jsonencode(models()[w].adapters)}"}
    assert weights["contexts"] == "${models()[w].contexts}"
    assert weights["cache-to"] == '${cache_to("${w}-weights")}'


def test_ci_overlay_only_swaps_bases_and_network_and_gives_every_worker_a_standin_base(bake):
    overlay = parse_bake(REPO / ".ci" / "bake-ci.hcl")
    assert set(overlay) == {"target", "variable"}
    assert set(overlay["target"]) == {"_common", "base"}
    assert overlay["target"]["_common"]["network"] == "host"
    assert overlay["target"]["base"]["matrix"] == bake["target"]["base"]["matrix"]
    assert overlay["target"]["base"]["args"] == {"BASE_IMAGE": "${jsondecode(CI_BASES)[w]}"}
    for name, target in overlay["target"].items():
        assert set(target) <= {"args", "network", "name", "matrix"}, name
        assert set(target.get("args", {})) <= {"BASE_IMAGE", "PYTHON_IMAGE"}, name
    bases = json.loads(load_ci_module("bake_env").bake_variables()["CI_BASES"])
    assert sorted(bases) == WORKERS and all(base.startswith("ci-local/") for base in bases.values())


def test_bake_variables_come_from_model_toml_and_the_environment_wins(tmp_path, monkeypatch, capsys):
    bake_env = load_ci_module("bake_env")
    (tmp_path / "llm-x").mkdir()
    (tmp_path / "llm-x" / "model.toml").write_text('id = "org/m"\nrevision = "abc"\nlicense = "mit"\n')
    models = json.loads(bake_env.bake_variables(tmp_path, environ={})["MODELS"])
    assert models == {"llm-x": {"id": "org/m", "revision": "abc", "variant": "", "license": "mit", "extras": {},
                                "adapters": {}, "contexts": {}}}
    overridden = json.loads(bake_env.bake_variables(tmp_path, environ={"LLM_X_MODEL_REVISION": "def"})["MODELS"])
    assert overridden["llm-x"]["revision"] == "def"
    (tmp_path / "llm-x" / "model.toml").write_text('id = "org/m x"\nrevision = "abc"\nlicense = "mit"\n')
    with pytest.raises(SystemExit, match="without spaces"):
        bake_env.bake_variables(tmp_path)
    monkeypatch.setenv("SDXL_MODEL_REVISION", "override")
    bake_env.main()
    printed = capsys.readouterr().out
    assert '"revision":"override"' in printed and printed.startswith("WORKERS=")


def test_extra_models_go_to_bake_as_one_json_object_without_their_env(tmp_path):
    bake_env = load_ci_module("bake_env")
    (tmp_path / "img").mkdir()
    toml = 'id = "o/base"\nrevision = "r1"\nlicense = "openrail++"\n[vae]\nid = "o/vae"\nrevision = "r2"\n'
    (tmp_path / "img" / "model.toml").write_text(toml + 'license = "mit"\nenv = "VAE_PATH"\n')
    extras = json.loads(bake_env.bake_variables(tmp_path)["MODELS"])["img"]["extras"]
    assert extras == {"vae": {"id": "o/vae", "revision": "r2", "license": "mit"}}
    (tmp_path / "img" / "model.toml").write_text(toml + 'license = "mit"\n')
    with pytest.raises(SystemExit, match="needs `env`"):
        bake_env.bake_variables(tmp_path)
    (tmp_path / "img" / "model.toml").write_text(toml + 'env = "VAE_PATH"\n')
    with pytest.raises(SystemExit, match=r"vae\.license"):
        bake_env.bake_variables(tmp_path)


def test_lora_adapters_go_to_bake_as_one_json_object_apart_from_the_extra_models(tmp_path):
    bake_env = load_ci_module("bake_env")
    (tmp_path / "llm").mkdir()
    toml = 'id = "o/base"\nrevision = "r1"\nlicense = "mit"\n[adapters.sql-lora]\nid = "o/lora"\nrevision = "r2"\n'
    (tmp_path / "llm" / "model.toml").write_text(toml + 'license = "apache-2.0"\n')
    models = json.loads(bake_env.bake_variables(tmp_path, environ={})["MODELS"])["llm"]
    assert (models["extras"], models["adapters"]) == ({}, {"sql-lora": {"id": "o/lora", "revision": "r2",
                                                                        "license": "apache-2.0"}})
    overridden = json.loads(bake_env.bake_variables(tmp_path, environ={"LLM_ADAPTERS": "{}"})["MODELS"])["llm"]
    assert overridden["adapters"] == {}
    (tmp_path / "llm" / "model.toml").write_text(toml)
    with pytest.raises(SystemExit, match=r"adapters\.sql-lora\.license"):
        bake_env.bake_variables(tmp_path)
    (tmp_path / "llm" / "model.toml").write_text(toml + 'license = "mit"\nenv = "X"\n')
    with pytest.raises(SystemExit, match=r"\[adapters\.sql-lora\] has unknown keys \['env'\]"):
        bake_env.bake_variables(tmp_path)


@pytest.mark.parametrize("worker", MODEL_WORKERS)
def test_every_model_of_every_model_toml_names_its_licence(worker):
    model = tomllib.loads((REPO / "workers" / worker / "model.toml").read_text())
    tables = {name: table for name, table in model.items() if isinstance(table, dict) and name != "adapters"}
    for entry in [model, *tables.values(), *model.get("adapters", {}).values()]:
        assert isinstance(entry.get("license"), str) and entry["license"], entry.get("id")


def test_printed_variables_survive_the_shell_the_makefile_hands_them_to(capsys, monkeypatch):
    bake_env = load_ci_module("bake_env")
    bake_env.main()
    printed = capsys.readouterr().out.split("\n")
    echoed = subprocess.run(["env", "-i", "sh", "-c", f"env {' '.join(printed)} env"], capture_output=True,
                            text=True, check=True).stdout
    for name, value in bake_env.bake_variables().items():
        assert f"{name}={value}" in echoed.splitlines()


def test_make_build_hands_model_toml_to_bake():
    plan = subprocess.run(["make", "--no-print-directory", "-n", "build", "WORKER=llm-hf"], cwd=REPO,
                          capture_output=True, text=True, check=True,
                          env={k: v for k, v in os.environ.items() if not k.endswith(("_MODEL_ID", "_MODEL_REVISION"))},
                          ).stdout
    model = tomllib.loads((REPO / "workers" / "llm-hf" / "model.toml").read_text())
    assert f'"id":"{model["id"]}"' in plan and f'"revision":"{model["revision"]}"' in plan
    assert "WORKERS=" in plan
    assert "docker buildx bake -f docker-bake.hcl" in plan and plan.rstrip().endswith("llm-hf")


def test_make_sizes_hands_bake_the_worker_folders_too():
    # image_sizes.py asks `bake --print` for the targets: without WORKERS the bake file names no image.
    plan = subprocess.run(["make", "--no-print-directory", "-n", "sizes"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout
    assert "WORKERS=" in plan and "MODELS=" in plan and ".ci/image_sizes.py" in plan


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


@pytest.fixture(scope="module")
def printed() -> dict:
    """`docker buildx bake --print` of every image, as CI builds them (overlay, tiny-model folders)."""
    if _buildx() is None:
        pytest.skip("no buildx here; .ci/images.sh installs it and runs the real bake")
    folders = {"SDXL_MODEL_DIR": "/tmp/tiny-sdxl", "SDXL_EXTRAS_DIR": "/tmp/tiny-sdxl-extras",
               "LLM_HF_MODEL_DIR": "/tmp/tiny-llama"}
    env = {**_buildx(), "REGISTRY": "r.example/team", "TAG": "t1", "VCS_REF": "abc123"}
    env |= load_ci_module("bake_env").bake_variables(environ=folders)
    out = subprocess.run(["docker", "buildx", "bake", "--print", "-f", "docker-bake.hcl", "-f", ".ci/bake-ci.hcl"],
                         cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_buildx_resolves_an_image_a_base_and_for_model_workers_a_weights_target_each(printed):
    targets = printed["target"]
    assert sorted(printed["group"]["worker"]["targets"]) == WORKERS
    linked = [*(f"{w}-base" for w in WORKERS), *(f"{w}-weights" for w in MODEL_WORKERS)]
    assert sorted(targets) == sorted([*WORKERS, *linked])
    for worker in WORKERS:
        expected = {"base": f"target:{worker}-base"} | ({"weights": f"target:{worker}-weights"}
                                                         if worker in MODEL_WORKERS else {})
        assert targets[worker]["contexts"] == expected
        assert targets[worker]["args"]["WORKER"] == worker
        assert targets[f"{worker}-base"]["args"]["BASE_IMAGE"].startswith("ci-local/")
    assert targets["sdxl"]["tags"] == ["r.example/team/sdxl:t1"]
    assert all(t["network"] == "host" and t["platforms"] == ["linux/amd64"] for t in targets.values())


def test_buildx_gives_the_weights_target_the_models_and_only_it_the_secret(printed):
    targets, models = printed["target"], json.loads(load_ci_module("bake_env").bake_variables(environ={})["MODELS"])
    weights = targets["sdxl-weights"]
    assert weights["contexts"] == {"model": "/tmp/tiny-sdxl", "extras": "/tmp/tiny-sdxl-extras"}
    assert weights["args"]["MODEL_ID"] == models["sdxl"]["id"]
    assert json.loads(weights["args"]["EXTRA_MODELS"]) == models["sdxl"]["extras"]
    assert targets["llm-hf-weights"]["contexts"] == {"model": "/tmp/tiny-llama"}
    assert "contexts" not in targets["llm-vllm-weights"]
    assert [name for name, t in targets.items() if t.get("secret")] == [f"{w}-weights" for w in MODEL_WORKERS]
    assert all(t["secret"] == [{"id": "hf_token", "env": "HF_TOKEN"}] for name, t in targets.items() if t.get("secret"))


def test_buildx_labels_each_image_with_its_source_and_each_baked_model_with_its_licence(printed):
    labels = printed["target"]["sdxl"]["labels"]
    model = tomllib.loads((REPO / "workers" / "sdxl" / "model.toml").read_text())
    assert labels["org.opencontainers.image.revision"] == "abc123"
    assert labels["org.opencontainers.image.title"] == "sdxl"
    assert (labels["workers.model.id"], labels["workers.model.license"]) == (model["id"], model["license"])
    for table in ("vae", "refiner"):
        assert labels[f"workers.{table}.id"] == model[table]["id"]
        assert labels[f"workers.{table}.revision"] == model[table]["revision"]
        assert labels[f"workers.{table}.license"] == model[table]["license"]
    assert printed["target"]["llm-hf"]["labels"]["workers.model.license"] == "llama3.2"
    assert not [k for k in printed["target"]["progress-demo"]["labels"] if k.startswith("workers.")]
    assert {t["labels"]["org.opencontainers.image.licenses"] for t in printed["target"].values()} == {"Apache-2.0"}
