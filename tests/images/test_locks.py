"""The hash-pinned locks (.ci/locks.py): current with their inputs, complete, and what images and setup install."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.images.conftest import REPO, WORKERS, parse_dockerfile

SHARED_LAYERS = REPO / "shared" / "worker.Dockerfile"


def _load(name: str):
    """A .ci script as a module (registered, so its dataclasses resolve their module)."""
    spec = importlib.util.spec_from_file_location(f"ci_{name}", REPO / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def locks():
    return _load("locks")


def entries(path: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Lock file -> {package: [(version, markers)]}; a package may appear once per marker set."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    for line in path.read_text().splitlines():
        if line and line[0].isalnum():
            req = Requirement(line.rstrip(" \\"))
            found.setdefault(req.name.lower(), []).append((next(iter(req.specifier)).version,
                                                           str(req.marker) if req.marker else None))
    return found


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file (its -r includes not followed)."""
    found = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line):
            found[Requirement(match.group(1)).name.lower().replace("_", "-")] = match.group(2)
    return found


def test_every_lock_is_current_with_its_inputs(locks):
    assert locks.stale(locks.all_locks()) == [], "run `make lock`"


def test_there_is_a_lock_for_the_dev_environment_and_each_worker(locks):
    assert [lock.path for lock in locks.all_locks()] == [
        "requirements-dev.lock", *(f"workers/{w}/requirements.lock" for w in WORKERS)]


def test_a_lock_goes_stale_when_an_input_or_an_exclusion_changes(locks, tmp_path, monkeypatch):
    lock = locks.image_lock("llm-hf")
    for name in (*lock.inputs, lock.path):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.setattr(locks, "REPO", tmp_path)
    assert locks.stale([lock]) == []
    assert locks.stale([locks.Lock(lock.path, lock.inputs, excludes=("torch",))]) == [lock.path]
    requirements = tmp_path / "workers" / "llm-hf" / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("jinja2==3.1.6", "jinja2==3.1.5"))
    assert locks.stale([lock]) == [lock.path]


@pytest.mark.parametrize("path", ["requirements-dev.lock", *(f"workers/{w}/requirements.lock" for w in WORKERS)])
def test_every_locked_package_has_an_exact_version_and_hashes(path):
    lines = (REPO / path).read_text().splitlines()
    requirements = [n for n, line in enumerate(lines) if line and line[0].isalnum()]
    assert requirements
    for n in requirements:
        assert "==" in lines[n] and lines[n].endswith(" \\"), lines[n]
        assert lines[n + 1].strip().startswith("--hash=sha256:"), lines[n]


@pytest.mark.parametrize("worker", WORKERS)
def test_an_image_lock_leaves_out_what_its_base_carries_and_holds_every_other_pin(locks, worker):
    lock = locks.image_lock(worker)
    locked = entries(REPO / lock.path)
    assert not set(lock.excludes) & set(locked)
    for name, version in pins(REPO / "workers" / worker / "requirements.txt").items():
        if name not in lock.excludes:
            assert {v for v, _ in locked[name]} == {version}, name
    assert {v for v, _ in locked["runpod"]} == {pins(REPO / "workers" / worker / "requirements.txt")["runpod"]}


def test_the_llm_vllm_lock_keeps_vllms_web_stack_and_pydantic_the_bases():
    locked = entries(REPO / "workers" / "llm-vllm" / "requirements.lock")
    assert not {"vllm", "torch", "fastapi", "uvicorn", "starlette", "pydantic"} & set(locked)


def test_the_dev_lock_holds_every_dev_pin_but_torch_and_torchs_own_dependencies():
    locked = entries(REPO / "requirements-dev.lock")
    dev_pins = pins(REPO / "requirements-dev.txt") | pins(REPO / "shared" / "requirements-runpod.txt")
    unlocked = {name for name, version in dev_pins.items() if {v for v, _ in locked.get(name, [])} != {version}}
    assert unlocked == {"torch"}
    # Installed apart with --no-deps (Makefile): what it needs at run time must come from the lock.
    needs = {Requirement(r).name.lower() for r in importlib.metadata.requires("torch") if "extra ==" not in r}
    assert needs and needs <= set(locked), needs - set(locked)


def test_images_install_their_lock_hash_checked_without_resolution():
    runs = [i.args for i in parse_dockerfile(SHARED_LAYERS) if i.keyword == "RUN" and "pip install" in i.args]
    assert len(runs) == 1
    assert "--mount=type=bind,source=workers/${WORKER}/requirements.lock,target=/tmp/requirements.lock" in runs[0]
    assert "pip install --require-hashes --no-deps -r /tmp/requirements.lock" in runs[0]
    assert "pip install --no-deps /tmp/shared" in runs[0]
    for worker in WORKERS:
        assert not [i for i in parse_dockerfile(REPO / "workers" / worker / "Dockerfile")
                    if i.keyword == "RUN" and "pip" in i.args], f"{worker} installs packages outside its lock"


def test_make_setup_installs_the_dev_lock_hash_checked_and_torch_apart():
    plan = subprocess.run(["make", "-n", "-B", "setup", "PYTHON=python3"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout
    assert "--progress-bar off --require-hashes --no-deps -r requirements-dev.lock" in plan
    assert "--no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in plan
    assert "timeout=5" in plan, "the CPU index is probed with a short timeout, never waited on"
    assert plan.index("torch==2.13.0") < plan.index("-r requirements-dev.lock")


def test_the_image_package_check_reports_exactly_the_packages_that_differ_from_the_lock(tmp_path):
    check = _load("image_packages")
    pytest_version = importlib.metadata.version("pytest")
    lock = tmp_path / "requirements.lock"
    lock.write_text("\n".join([
        f"pytest=={pytest_version} \\", "    --hash=sha256:00",
        "packaging==0.0.1 \\", "    --hash=sha256:00",
        "no-such-package-here==1.0 \\", "    --hash=sha256:00",
        "pywin32==312 ; sys_platform == 'win32' \\", "    --hash=sha256:00",
        "    # via something", ""]))
    result = subprocess.run([sys.executable, "-c", check.CHECK], input="\n".join(check.locked(lock)),
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [f"packaging 0.0.1 {importlib.metadata.version('packaging')}",
                                          "no-such-package-here 1.0 missing"]
    assert result.stderr.strip() == "checked 3"
