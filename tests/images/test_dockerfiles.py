"""The Dockerfiles: each worker's own base (overridable base image, exec-form CMD, its baked folders' env),
the layers every worker shares, the one weights stage (secret-only token, --link), lint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib

import pytest

from devkit import manifest
from tests.images.conftest import REPO, WORKERS, Instruction, parse_dockerfile

#: Build args or env vars named like a credential: a value given that way stays in the image's history.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIAL|ACCESS_KEY", re.IGNORECASE)
HEX_COMMIT = re.compile(r"^[0-9a-f]{40}$")


SHARED_LAYERS = REPO / "shared" / "worker.Dockerfile"
WEIGHTS_STAGE = REPO / "shared" / "weights.Dockerfile"
ALL_DOCKERFILES = [*(f"workers/{w}/Dockerfile" for w in WORKERS), "shared/worker.Dockerfile",
                   "shared/weights.Dockerfile"]


def dockerfile(worker: str) -> list[Instruction]:
    return parse_dockerfile(REPO / "workers" / worker / "Dockerfile")


def bakes_weights(worker: str) -> bool:
    return (REPO / "workers" / worker / "model.toml").exists()


def final(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def test_the_four_workers_are_there():
    assert {"progress-demo", "llm-hf", "llm-vllm", "sdxl"} <= set(WORKERS)


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_has_dockerfile_requirements_and_test_input(worker):
    folder = REPO / "workers" / worker
    assert (folder / "Dockerfile").is_file()
    assert (folder / "requirements.txt").is_file()
    assert isinstance(json.loads((folder / "test_input.json").read_text())["input"], dict)


MODEL_TOMLS = sorted(REPO.glob("workers/*/model.toml"))


@pytest.mark.parametrize("path", MODEL_TOMLS, ids=lambda path: path.parent.name)
def test_every_model_of_a_model_toml_is_named_at_a_pinned_commit(path):
    model = tomllib.loads(path.read_text())
    tables = [(table, v) for table, v in model.items() if isinstance(v, dict) and table != "adapters"]
    adapters = [(f"adapters.{name}", v) for name, v in model.get("adapters", {}).items()]
    for name, entry in [("", model), *tables, *adapters]:
        assert re.match(r"^[\w.-]+/[\w.-]+$", entry["id"]), name
        assert HEX_COMMIT.match(entry["revision"]), f"{name or 'the model'}: revision must be a full commit hash"


@pytest.mark.parametrize("path", MODEL_TOMLS, ids=lambda path: path.parent.name)
def test_a_worker_with_a_model_declares_the_tiny_fixture_ci_bakes_instead(path):
    assert manifest.load(path.parent.name).fixture is not None


def test_every_worker_folder_declares_itself_in_worker_toml():
    assert manifest.worker_names() == WORKERS


@pytest.mark.parametrize("worker", WORKERS)
def test_base_image_is_an_overridable_arg_with_a_real_default(worker):
    instructions = dockerfile(worker)
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in instructions if i.keyword == "ARG"
            and i.stage == -1 and "=" in i.args}
    assert "/" in args["BASE_IMAGE"] or args["BASE_IMAGE"].startswith("python:")
    assert final(instructions)[0].args == "${BASE_IMAGE}"


@pytest.mark.parametrize("path", ALL_DOCKERFILES)
def test_no_syntax_directive_that_would_pull_a_frontend(path):
    assert not re.search(r"^#\s*syntax\s*=", (REPO / path).read_text(), re.MULTILINE)


@pytest.mark.parametrize("worker", WORKERS)
def test_cmd_is_exec_form_python_module_of_the_worker_package(worker):
    package = manifest.load(worker).package
    cmds = [i for i in dockerfile(worker) if i.keyword == "CMD"]
    assert json.loads(cmds[-1].args) == ["python", "-m", package]
    assert (REPO / "workers" / worker / package / "__main__.py").is_file()


@pytest.mark.parametrize("path", ALL_DOCKERFILES)
def test_no_arg_or_env_is_named_like_a_credential(path):
    for instruction in parse_dockerfile(REPO / path):
        if instruction.keyword in ("ARG", "ENV"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)", instruction.args)
            assert not [n for n in names if SECRET_NAME.search(n)], instruction


@pytest.mark.parametrize("path", ALL_DOCKERFILES)
def test_pip_leaves_no_cache_in_a_layer(path):
    for instruction in parse_dockerfile(REPO / path):
        if instruction.keyword == "RUN" and "pip install" in instruction.args:
            assert ("--mount=type=cache,target=/root/.cache/pip" in instruction.args
                    or "--no-cache-dir" in instruction.args), instruction


@pytest.mark.parametrize("worker", WORKERS)
def test_base_labels_its_base_image_the_bake_file_labels_the_rest(worker):
    labels = " ".join(i.args for i in final(dockerfile(worker)) if i.keyword == "LABEL")
    assert labels == 'org.opencontainers.image.base.name="${BASE_IMAGE}"'


def test_the_weights_stage_bakes_every_model_once_with_the_token_as_a_secret_mount_only():
    instructions = parse_dockerfile(WEIGHTS_STAGE)
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert froms[:2] == ["scratch AS model", "scratch AS extras"], "the local-folder build contexts need these"
    assert froms[-1] == "scratch", "the output holds the baked folders only"
    bake_step = next(i for i in instructions if i.keyword == "RUN" and "weights.py" in i.args)
    assert "--mount=type=secret,id=hf_token,required=false" in bake_step.args
    assert "--mount=type=bind,from=model,target=/src/model" in bake_step.args
    assert "--mount=type=bind,from=extras,target=/src/extras" in bake_step.args
    for arg in ("${MODEL_ID}", "${MODEL_REVISION}", "${MODEL_VARIANT}", '"${EXTRA_MODELS}"', "--out /weights",
                "--local /src/model --local-extras /src/extras"):
        assert arg in bake_step.args
    assert [i.args for i in final(instructions)] == ["scratch", "--from=bake /weights /"]


def test_the_shared_layers_copy_the_weights_with_link_after_the_dependencies_and_go_offline():
    instructions = parse_dockerfile(SHARED_LAYERS)
    last = final(instructions)
    assert last[0].args == "base"
    copies = [i for i in last if i.keyword == "COPY" and "--from=weights" in i.args]
    assert [i.args for i in copies] == ["--link --from=weights / /"]
    order = [i.keyword for i in last]
    pip = next(n for n, i in enumerate(last) if i.keyword == "RUN" and "pip install" in i.args)
    assert pip < last.index(copies[0]) < order.index("WORKDIR")
    env = " ".join(i.args for i in last if i.keyword == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "TRANSFORMERS_OFFLINE=1" in env


@pytest.mark.parametrize("worker", [w for w in WORKERS if bakes_weights(w)])
def test_every_baked_model_folder_is_where_its_env_variable_points(worker):
    model = tomllib.loads((REPO / "workers" / worker / "model.toml").read_text())
    env = " ".join(i.args for i in final(dockerfile(worker)) if i.keyword == "ENV")
    assert "MODEL_PATH=/model" in env.split()
    for table, extra in model.items():
        if isinstance(extra, dict) and table != "adapters":
            assert f"{extra['env']}=/{table}" in env.split(), (table, env)
    if "adapters" in model:  # LoRA adapters: /adapters/<name> (shared/shared/weights.py)
        assert "ADAPTERS_PATH=/adapters" in env.split(), env


@pytest.mark.parametrize("path", [*ALL_DOCKERFILES, ".ci/standin/Dockerfile", ".ci/secret-probe/Dockerfile"])
def test_dockerfile_is_hadolint_clean(path):
    hadolint = shutil.which("hadolint") or str(REPO / ".venv" / "bin" / "hadolint")
    result = subprocess.run([hadolint, "--format", "json", str(REPO / path)], capture_output=True, text=True)
    assert json.loads(result.stdout or "[]") == [] and result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_sends_only_shared_and_workers():
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[:3] == ["*", "!shared/", "!workers/"]


def test_shared_installs_every_subpackage_as_the_images_install_it(tmp_path):
    """Images install `shared` non-editable: a subpackage its pyproject misses is absent there only."""
    # A copy: an in-tree build would leave build/ in the repo.
    copy = shutil.copytree(REPO / "shared", tmp_path / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site"
    subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(copy)],
                   check=True, capture_output=True, cwd=tmp_path)
    source = REPO / "shared" / "shared"
    packages = {p.parent.relative_to(source) for p in source.rglob("__init__.py") if "__pycache__" not in p.parts}
    assert {p for p in packages if not (target / "shared" / p / "__init__.py").exists()} == set()


def test_images_carry_the_worker_folder_so_llm_workers_read_the_served_name_from_model_toml():
    copies = [i.args for i in final(parse_dockerfile(SHARED_LAYERS)) if i.keyword == "COPY"]
    assert "workers/${WORKER}/ /app/" in copies
    for worker in ("llm-hf", "llm-vllm"):
        assert (REPO / "workers" / worker / "model.toml").is_file()
