"""`make new-worker`: a worker scaffolded from each template, in a scratch copy of the repo, passes `make lint`,
its own tests and `docker buildx bake --print` with nothing edited outside its folders."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit import scaffold
from tests.conftest import REPO

#: New worker -> the template it is made from.
NEW = {"whisper": "progress-demo", "chat": "llm-hf", "img2": "sdxl"}
VENV = Path(sys.executable).parent.parent


def _tree_files() -> list[str]:
    """The working tree as git sees it: tracked and untracked files, nothing ignored."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    return [name for name in files if name and (REPO / name).is_file()]


def _scratch_copy(into: Path) -> Path:
    """A copy of the working tree, with the venv linked."""
    for name in _tree_files():
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, into / name)
    (into / ".venv").symlink_to(VENV)  # tests and make call .venv/bin/...
    return into


def _env(copy: Path) -> dict[str, str]:
    # The copy's own code, not the editable install's.
    return {**os.environ, "PYTHONPATH": f"{copy / 'shared'}{os.pathsep}{copy}"}


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """A scratch copy of the repo with one worker made from each template by `make new-worker`."""
    root = _scratch_copy(tmp_path_factory.mktemp("repo"))
    for name, template in NEW.items():
        subprocess.run(["make", "-s", "new-worker", f"NAME={name}", f"FROM={template}", f"PYTHON={sys.executable}"],
                       cwd=root, env=_env(root), check=True, capture_output=True)
    return root


def test_new_workers_change_nothing_outside_their_folders(copy):
    changed = {path.relative_to(copy).parts[:3] for path in copy.rglob("*") if path.is_file()
               and not (REPO / path.relative_to(copy)).exists()}
    assert {parts[:2] if parts[0] == "workers" else parts for parts in changed} == {
        *(("workers", name) for name in NEW), *(("tests", "workers", name) for name in NEW)}
    assert [name for name in _tree_files() if not filecmp.cmp(REPO / name, copy / name, shallow=False)] == []
    assert (copy / "workers" / "img2" / "worker_img2" / "__main__.py").is_file()
    assert not (copy / "workers" / "img2" / "worker_sdxl").exists()


def test_new_workers_pass_make_lint(copy):
    # `-o`: the linked venv is taken as it is (its stamp is older than the copied requirements).
    result = subprocess.run(["make", "-s", "lint", "-o", ".venv/.installed"], cwd=copy,
                            env=_env(copy), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_worker_passes_its_own_tests_and_the_image_checks(copy):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/workers/whisper",
                             "tests/images/test_dockerfiles.py", "tests/devkit/test_docs.py"],
                            cwd=copy, env=_env(copy), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_new_workers_are_images_docker_buildx_bake_resolves(copy):
    from tests.images.test_bake import _buildx

    if _buildx() is None:
        if os.environ.get("CI_REQUIRE_BUILDX"):
            pytest.fail("no docker buildx, and CI_REQUIRE_BUILDX is set (.ci/images.sh installed it)")
        pytest.skip("no buildx here; .ci/images.sh installs it and runs this test again after it")
    variables = subprocess.run([sys.executable, ".ci/bake_env.py"], cwd=copy, capture_output=True, text=True,
                               check=True).stdout
    env = {**_buildx(), **dict(line.split("=", 1) for line in variables.splitlines())}
    env = {key: value.strip("'") for key, value in env.items()}
    out = subprocess.run(["docker", "buildx", "bake", "--print", "-f", "docker-bake.hcl", "-f", ".ci/bake-ci.hcl"],
                         cwd=copy, env=env, capture_output=True, text=True, check=True).stdout
    targets = json.loads(out)["target"]
    assert {"whisper", "whisper-base", "chat-weights", "img2-weights"} <= set(targets)
    assert targets["img2-base"]["args"]["BASE_IMAGE"] == "ci-local/pytorch:2.13.0-cpu"
    assert targets["img2"]["labels"]["workers.vae.id"] == "madebyollin/sdxl-vae-fp16-fix"
    assert "weights" not in targets["whisper"]["contexts"]


@pytest.mark.parametrize(("name", "template", "why"), [
    ("Whisper", "progress-demo", "lower case"), ("whisper", "llm-vllm", "must be one of"),
    ("progress-demo", "progress-demo", "already exists"),
])
def test_a_bad_name_or_template_is_refused_with_the_reason(name, template, why):
    with pytest.raises(scaffold.ScaffoldError, match=why):
        scaffold.scaffold(name, template)


def test_make_new_worker_without_a_name_says_how_to_call_it():
    result = subprocess.run(["make", "--no-print-directory", "new-worker"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and "usage: make new-worker NAME=<name>" in result.stderr
