"""Lay out a worker's tiny fixture models as its weights stage lays out the real ones (CI image builds).

    python .ci/weights_dir.py <worker> <folder>    # prints <folder>; nothing for a worker with no model

``<folder>/model`` is the worker's fixture model (devkit.fixtures.for_worker) and each table of its
model.toml gets ``<folder>/<table>``, built by the fixture module's ``EXTRA_BUILDERS``. .ci/images.sh
passes the folder to bake as ``<WORKER>_WEIGHTS_DIR``: the weights stage then bakes from it, with the
same selection it applies to the Hub (shared/shared/weights.py).
"""

from __future__ import annotations

import importlib
import shutil
import sys
import tomllib
from pathlib import Path

from devkit import fixtures

WORKERS = Path(__file__).resolve().parents[1] / "workers"


def lay_out(worker: str, out: Path) -> Path | None:
    main = fixtures.for_worker(worker)
    if main is None:
        return None
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(main, out / "model", ignore=shutil.ignore_patterns(".complete"))
    model = tomllib.loads((WORKERS / worker / "model.toml").read_text())
    builders = getattr(importlib.import_module(f"devkit.fixtures.{fixtures.BUILDERS[worker][0]}"), "EXTRA_BUILDERS", {})
    for table in [name for name, value in model.items() if isinstance(value, dict)]:
        if table not in builders:
            raise SystemExit(f"{worker}: model.toml's [{table}] has no tiny stand-in in devkit.fixtures "
                             f"(EXTRA_BUILDERS of {fixtures.BUILDERS[worker][0]}.py)")
        builders[table](out / table)
    return out


def main(argv: list[str]) -> int:
    worker, out = argv
    folder = lay_out(worker, Path(out))
    if folder is not None:
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
