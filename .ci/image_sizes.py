"""Size report of the built worker images (`make sizes`): the base image, the baked weights, what the worker adds.

    python .ci/image_sizes.py [-f docker-bake.hcl [-f more.hcl]] [worker ...]

Image names and base images come from `docker buildx bake --print` (the same files the build used):
each tagged target is an image, its base image is the BASE_IMAGE of its "<name>-base" target; the
weights are the image's layer copied from the weights stage (``COPY / /``: /model and each extra
model's folder); what the worker adds is its packages (the layer of shared/worker.Dockerfile's ``pip
install`` of its lock and ``shared``) and its code (the rest: its folder in /app and the bytecode compiled
at build). Reads local images only; prints a table to stdout.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, cwd=REPO).stdout


def bake_targets(files: list[str], workers: list[str]) -> dict[str, dict]:
    return json.loads(_docker("buildx", "bake", "--print", *files, *workers))["target"]


def dockerfile_default(dockerfile: Path, arg: str) -> str | None:
    match = re.search(rf"^ARG {arg}=(\S+)", dockerfile.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def image_size(ref: str) -> int | None:
    try:
        return int(_docker("image", "inspect", "--format", "{{.Size}}", ref))
    except subprocess.CalledProcessError:
        return None


def layer_sizes(ref: str) -> list[tuple[int, str]]:
    """(bytes, the instruction that made it) of each of the image's layers, newest first."""
    rows = _docker("history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", ref)
    return [(int(size), created_by) for size, created_by in (row.split("\t", 1) for row in rows.splitlines())]


def weights_size(layers: list[tuple[int, str]]) -> int:
    """Bytes of the layer copied from the weights stage (`COPY --link --from=weights / /`)."""
    return sum(size for size, created_by in layers if re.match(r"COPY / / ", created_by))


def packages_size(layers: list[tuple[int, str]]) -> int:
    """Bytes of the worker's locked packages and `shared` (shared/worker.Dockerfile's `pip install` step)."""
    return sum(size for size, created_by in layers if "pip install --require-hashes" in created_by)


def report(targets: dict[str, dict]) -> list[tuple[str, ...]]:
    rows = [("image", "total MB", "base MB", "weights MB", "packages MB", "code MB", "base image")]
    for name, target in sorted(targets.items()):
        if not target.get("tags"):
            continue  # a linked target (base, weights): part of an image, not one
        ref = target["tags"][0]
        total = image_size(ref)
        if total is None:
            rows.append((ref, "not built", "", "", "", "", ""))
            continue
        base_target = targets.get(f"{name}-base", target)
        base_ref = base_target.get("args", {}).get("BASE_IMAGE") or dockerfile_default(
            REPO / base_target["dockerfile"], "BASE_IMAGE")
        base = image_size(base_ref) if base_ref else None
        layers = layer_sizes(ref)
        weights, packages = weights_size(layers), packages_size(layers)
        # The rest the worker adds: its folder (/app) and its bytecode, compiled at build.
        code = total - weights - packages - (base or 0)
        rows.append((ref, _mb(total), _mb(base) if base is not None else "?", _mb(weights), _mb(packages),
                     _mb(code, 1) if base is not None else "?", base_ref or ""))
    return rows


def _mb(size: int, decimals: int = 0) -> str:
    return f"{size / 1e6:,.{decimals}f}"


def main(argv: list[str]) -> int:
    files, workers, it = [], [], iter(argv)
    for arg in it:
        if arg in ("-f", "--file"):
            files += ["-f", next(it)]
        else:
            workers.append(arg)
    rows = report(bake_targets(files, workers))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = enumerate(zip(row, widths, strict=True))
        print("  ".join(cell.rjust(w) if 0 < i < 6 else cell.ljust(w) for i, (cell, w) in cells).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
