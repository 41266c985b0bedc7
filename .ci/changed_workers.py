"""Which worker images a push must rebuild: those whose folder changed; all of them when anything they
share changed (shared/, the bake file and what fills it, .dockerignore, the image workflow), on tags and
on new branches.

    python .ci/changed_workers.py BEFORE_SHA AFTER_SHA   ->  workers=["llm-hf","sdxl"]   (GitHub output line)

BEFORE_SHA may be empty or all zeros (a new branch or a tag): every worker is built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Paths every image is built from: a change to any of them rebuilds all workers. bake_env.py and
#: devkit/manifest.py derive the bake variables (WORKERS, MODELS) from the worker folders.
SHARED_INPUTS = ("shared/", "docker-bake.hcl", ".dockerignore", ".github/workflows/images.yml", ".ci/bake_env.py",
                 "devkit/manifest.py")


def all_workers(repo: Path = REPO) -> list[str]:
    return sorted(p.parent.name for p in (repo / "workers").glob("*/Dockerfile"))


def changed_workers(paths: Iterable[str], workers: list[str]) -> list[str]:
    paths = list(paths)
    if any(path.startswith(SHARED_INPUTS) for path in paths):
        return workers
    touched = {path.split("/")[1] for path in paths if path.startswith("workers/") and path.count("/") >= 2}
    return [worker for worker in workers if worker in touched]


def changed_paths(before: str, after: str) -> list[str] | None:
    """Paths changed between two commits; None when there is no usable base (build everything)."""
    if not before or set(before) == {"0"}:
        return None
    result = subprocess.run(["git", "diff", "--name-only", before, after], cwd=REPO, capture_output=True, text=True)
    return result.stdout.splitlines() if result.returncode == 0 else None


def main(argv: list[str]) -> int:
    before = argv[0] if argv else ""
    after = argv[1] if len(argv) > 1 else "HEAD"
    workers = all_workers()
    paths = changed_paths(before, after)
    print("workers=" + json.dumps(workers if paths is None else changed_workers(paths, workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
