"""The hash-pinned locks: each image's and the dev environment's Python packages, resolved by uv from their inputs.

    python .ci/locks.py write   # `make lock`: resolve every lock again (needs PyPI)
    python .ci/locks.py check   # offline, instant: a lock whose inputs changed since it was made is stale

A lock holds every package its environment installs, exact version and every published file's sha256, for
any platform and Python >= 3.11 (uv's universal resolution, markers where they differ); the images and
`make setup` install it with ``pip install --require-hashes --no-deps``, so nothing outside it goes in.
What an image's base already carries (torch in pytorch/pytorch, vLLM and its web stack in vllm/vllm-openai)
is left out: reinstalling it would replace the base's CUDA builds. Each lock's header records the sha256 of
everything it was made from (input files, exclusions, overrides); `check` recomputes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"  # the oldest Python of the bases (python:3.11-slim, the dev environment)
DIGEST_LINE = "# inputs-sha256: "
#: torch and what is built against one torch build: left to whoever provides torch.
TORCH_FAMILY = ("torch", "torchvision", "torchaudio", "torchcodec", "triton")
#: Base image repository (a worker Dockerfile's `ARG BASE_IMAGE` default) -> packages it provides.
PROVIDED_BY_BASE: dict[str, tuple[str, ...]] = {
    "python": (),
    "pytorch/pytorch": TORCH_FAMILY,
    # vLLM pins its web stack (fastapi<0.137, which runpod's dev server would raise) and pydantic.
    "vllm/vllm-openai": ("vllm", *TORCH_FAMILY, "fastapi", "pydantic"),
}
#: What every image installs next to its own requirements.txt: runpod's pinned run-time dependencies and
#: `shared`'s (its pyproject; the package itself goes in from the repo, without dependencies).
IMAGE_INPUTS = ("shared/requirements-runpod.txt", "shared/pyproject.toml")


@dataclass(frozen=True)
class Lock:
    path: str
    inputs: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()

    def digest(self) -> str:
        """sha256 of what the lock is made from: its input files, exclusions, overrides, target Python."""
        made_from = {"python": PYTHON_VERSION, "excludes": sorted(self.excludes), "overrides": sorted(self.overrides),
                     "inputs": {name: (REPO / name).read_text() for name in self.inputs}}
        return hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()

    def recorded_digest(self) -> str | None:
        path = REPO / self.path
        if not path.exists():
            return None
        return next((line[len(DIGEST_LINE):].strip() for line in path.read_text().splitlines()
                     if line.startswith(DIGEST_LINE)), None)


def base_image(worker: str) -> str:
    """Repository of the worker's base image: its Dockerfile's `ARG BASE_IMAGE=` default, tag cut off."""
    text = (REPO / "workers" / worker / "Dockerfile").read_text()
    match = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.MULTILINE)
    if not match:
        raise SystemExit(f"workers/{worker}/Dockerfile: no `ARG BASE_IMAGE=` default")
    return match.group(1).split("@")[0].rsplit(":", 1)[0]


def image_lock(worker: str) -> Lock:
    base = base_image(worker)
    if base not in PROVIDED_BY_BASE:
        raise SystemExit(f"workers/{worker}: base {base} is not in .ci/locks.py's PROVIDED_BY_BASE: "
                         "say which packages it carries (none: ())")
    return Lock(f"workers/{worker}/requirements.lock", (f"workers/{worker}/requirements.txt", *IMAGE_INPUTS),
                excludes=PROVIDED_BY_BASE[base])


def all_locks() -> list[Lock]:
    """The dev environment's lock, then one per worker folder (each is one image)."""
    dev = Lock("requirements-dev.lock", ("requirements-dev.txt", "shared/requirements-runpod.txt"),
               excludes=TORCH_FAMILY, overrides=("fastapi[standard]==0.136.3",))
    workers = sorted(p.parent.name for p in (REPO / "workers").glob("*/requirements.txt"))
    return [dev, *(image_lock(w) for w in workers)]


def write(lock: Lock, uv: list[str], tmp: Path) -> None:
    """Resolve the lock with uv (PyPI) and write it with its header."""
    excludes, overrides = tmp / "excludes.txt", tmp / "overrides.txt"
    excludes.write_text("".join(f"{name}\n" for name in lock.excludes))
    overrides.write_text("".join(f"{req}\n" for req in lock.overrides))
    command = [*uv, "pip", "compile", "--quiet", "--no-config", "--universal", "--python-version", PYTHON_VERSION,
               "--generate-hashes", "--no-header", "--excludes", str(excludes), "--overrides", str(overrides),
               *lock.inputs]
    resolved = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True).stdout
    header = [f"# Made by `make lock` (.ci/locks.py, uv) from {' '.join(lock.inputs)}; do not edit.",
              "# Install: pip install --require-hashes --no-deps -r " + lock.path]
    if lock.excludes:
        header.append(f"# Left out (provided apart): {' '.join(lock.excludes)}")
    if lock.overrides:
        header.append(f"# Overrides: {' '.join(lock.overrides)}")
    (REPO / lock.path).write_text("\n".join([*header, DIGEST_LINE + lock.digest(), resolved]))


def stale(locks: list[Lock]) -> list[str]:
    """Locks whose recorded inputs digest differs from their inputs now (or that are missing)."""
    return [lock.path for lock in locks if lock.recorded_digest() != lock.digest()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["write", "check"])
    parser.add_argument("--uv", default=str(Path(sys.executable).parent / "uv"), help="uv binary (default: the venv's)")
    args = parser.parse_args(argv)
    locks = all_locks()
    if args.action == "check":
        if bad := stale(locks):
            print("stale locks (run `make lock`): " + " ".join(bad), file=sys.stderr)
            return 1
        print(f"{len(locks)} locks current")
        return 0
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for lock in locks:
            print(f"lock: {lock.path} <- {' '.join(lock.inputs)}", flush=True)
            write(lock, [args.uv], Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
