"""`make new-worker`: a new worker folder copied from a template worker, renamed throughout (what `cog init` does).

    python -m devkit.scaffold <name> [--from progress-demo|llm-hf|sdxl]

Copies ``workers/<from>/`` to ``workers/<name>/`` and ``tests/workers/<from>/`` to ``tests/workers/<name>/``,
renames the package (``worker_<from>`` -> ``worker_<name>``) and rewrites what names the template: the
package in every file (imports, the Dockerfile's CMD, worker.toml), ``workers/<from>/`` paths, and the
name as a word of its own (endpoint.toml's ``name``, ``WORKER=<from>``, prose). Model ids that contain it
stay (``madebyollin/sdxl-vae-fp16-fix`` is a model's name). Nothing outside those two folders changes:
every list in the repo is derived from the folders (devkit/manifest.py).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from devkit import manifest

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = ("progress-demo", "llm-hf", "sdxl")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


class ScaffoldError(ValueError):
    """A name or template that cannot make a worker; the message says why."""


def scaffold(name: str, template: str = "progress-demo", repo: Path = REPO) -> list[Path]:
    """Create the worker; returns the folders written."""
    if not manifest.NAME_PATTERN.match(name):
        raise ScaffoldError(f"{name!r}: a worker name is lower case letters, digits and '-' (e.g. 'whisper')")
    if template not in TEMPLATES:
        raise ScaffoldError(f"--from must be one of {', '.join(TEMPLATES)}, got {template!r}")
    pairs = [(repo / "workers" / template, repo / "workers" / name),
             (repo / "tests" / "workers" / template, repo / "tests" / "workers" / name)]
    if taken := [dst for _, dst in pairs if dst.exists()]:
        raise ScaffoldError(f"{taken[0]} already exists")
    old, new = manifest.package_for(template), manifest.package_for(name)
    rewrites = [(re.compile(rf"\b{old}\b"), new), (re.compile(rf"workers/{re.escape(template)}/"), f"workers/{name}/"),
                # The name as a word of its own: not in a model id (madebyollin/sdxl-vae-fp16-fix), a module path
                # (devkit.fixtures.sdxl) or a file name (sdxl.py).
                (re.compile(rf"(?<![\w/.-]){re.escape(template)}(?![\w-]|\.py)"), name)]
    written = []
    for src, dst in pairs:
        if not src.is_dir():
            continue
        shutil.copytree(src, dst, ignore=_SKIP)
        if (dst / old).is_dir():
            (dst / old).rename(dst / new)
        for path in sorted(p for p in dst.rglob("*") if p.is_file()):
            _rewrite(path, rewrites)
        written.append(dst)
    return written


def _rewrite(path: Path, rewrites: list[tuple[re.Pattern[str], str]]) -> None:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return  # binary: nothing names the template in it
    for pattern, replacement in rewrites:
        text = pattern.sub(replacement, text)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.scaffold", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the new worker's folder name, e.g. whisper")
    parser.add_argument("--from", dest="template", default="progress-demo", choices=TEMPLATES)
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.name, args.template)
    except ScaffoldError as exc:
        print(f"new-worker: {exc}", file=sys.stderr)
        return 2
    package = manifest.package_for(args.name)
    print(*(f"created {path.relative_to(REPO)}/" for path in written), sep="\n")
    print(f"next: write workers/{args.name}/{package}/, its model in model.toml, its GPU in endpoint.toml, then "
          f"`make docs lint test` (README.md, 'Adding a worker')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
