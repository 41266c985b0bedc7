"""The image workflow: when it runs, what it builds, where it pushes, and how the token travels."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.images.conftest import REPO, WORKERS
from tests.images.test_bake import load_ci_module

WORKFLOW = REPO / ".github" / "workflows" / "images.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def changed():
    return load_ci_module("changed_workers")


def test_pushes_on_main_and_tags_and_builds_without_pushing_on_pull_requests_touching_the_images(workflow):
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert {"workers/**", "shared/**", "docker-bake.hcl"} <= set(triggers["pull_request"]["paths"])
    steps = {step.get("name", step.get("uses")): step for step in workflow["jobs"]["bake"]["steps"]}
    for pushing in ("Bake and push", "docker/login-action@v4", "Summary"):
        assert steps[pushing]["if"] == "github.event_name != 'pull_request'", pushing
    assert steps["Bake (pull request, not pushed)"]["run"].startswith('make build WORKER="$WORKER"')
    assert "--load" in steps["Bake (pull request, not pushed)"]["run"]
    assert ".ci/image_packages.py" in steps["The image holds its lock's package versions"]["run"]
    before = workflow["jobs"]["changes"]["steps"][1]["env"]["BEFORE"]
    assert "github.event.pull_request.base.sha" in before


def test_bakes_one_matrix_job_per_changed_worker_through_make_push(workflow):
    bake = workflow["jobs"]["bake"]
    assert bake["strategy"]["matrix"]["worker"] == "${{ fromJSON(needs.changes.outputs.workers) }}"
    steps = {step.get("name", step.get("uses")): step for step in bake["steps"]}
    assert steps["Bake and push"]["run"].startswith('make push WORKER="$WORKER"')
    assert steps["Bake and push"]["env"]["CACHE"].endswith("'registry' }}")
    assert "docker/setup-buildx-action@v4" in steps and "docker/login-action@v4" in steps
    assert next(iter(steps)) == "Free runner disk"


def test_registry_defaults_to_ghcr_and_a_variable_can_change_it():
    text = WORKFLOW.read_text()
    assert 'registry="${IMAGE_REGISTRY:-ghcr.io/${OWNER}}"' in text
    assert "IMAGE_REGISTRY: ${{ vars.IMAGE_REGISTRY }}" in text


def test_the_token_is_only_ever_the_bake_secrets_environment(workflow):
    text = WORKFLOW.read_text()
    assert re.findall(r"^\s*HF_TOKEN: (.+)$", text, re.MULTILINE) == ["${{ secrets.HF_TOKEN }}"]
    assert not re.search(r"build-args|--build-arg|--set[= ][^\n]*args", text)
    bake_step = next(s for s in workflow["jobs"]["bake"]["steps"] if s.get("name") == "Bake and push")
    assert "HF_TOKEN" in bake_step["env"] and "HF_TOKEN" not in bake_step["run"]


def test_a_worker_folder_change_builds_that_worker_only(changed):
    assert changed.changed_workers(["workers/sdxl/worker_sdxl/worker.py", "README.md"], WORKERS) == ["sdxl"]
    assert changed.changed_workers(["workers/llm-hf/model.toml", "workers/llm-vllm/Dockerfile"], WORKERS) == [
        "llm-hf", "llm-vllm"]
    assert changed.changed_workers(["docs/deploy.md", "tests/images/test_bake.py"], WORKERS) == []


@pytest.mark.parametrize("path", ["shared/shared/errors.py", "docker-bake.hcl", ".dockerignore",
                                  ".github/workflows/images.yml", ".ci/bake_env.py", "devkit/manifest.py"])
def test_a_change_to_what_every_image_shares_builds_all(changed, path):
    assert changed.changed_workers([path], WORKERS) == WORKERS


def test_no_base_commit_builds_all(changed):
    assert changed.changed_paths("", "HEAD") is None
    assert changed.changed_paths("0" * 40, "HEAD") is None
    assert changed.all_workers() == [w for w in WORKERS if (REPO / "workers" / w / "Dockerfile").exists()]
