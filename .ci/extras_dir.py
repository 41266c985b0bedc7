"""Lay out the tiny stand-ins of a worker's extra models as its weights stage reads local ones (CI builds).

    python .ci/extras_dir.py <worker> <folder>    # prints <folder>; nothing for a worker with no extras

Each table of the worker's model.toml (sdxl: ``[vae]``, ``[refiner]``) gets ``<folder>/<table>``, built
by the ``EXTRA_BUILDERS`` of the fixture module its worker.toml names (devkit/fixtures). .ci/images.sh
passes the folder to bake as ``<WORKER>_EXTRAS_DIR`` (the main model's is ``<WORKER>_MODEL_DIR``,
devkit.fixtures.for_worker): the weights stage then bakes from them with the selection it applies to the
Hub (shared/shared/weights.py).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

from devkit import fixtures

WORKERS = Path(__file__).resolve().parents[1] / "workers"


def lay_out(worker: str, out: Path, workers: Path = WORKERS) -> Path | None:
    toml = workers / worker / "model.toml"
    tables = [name for name, value in tomllib.loads(toml.read_text()).items()
              if isinstance(value, dict)] if toml.is_file() else []
    if not tables:
        return None
    module = fixtures.builder(worker)
    builders = getattr(module, "EXTRA_BUILDERS", {}) if module else {}
    missing = [table for table in tables if table not in builders]
    if missing:
        raise SystemExit(f"{worker}: model.toml's {missing} have no tiny stand-in (EXTRA_BUILDERS of the "
                         f"[fixture] builder in workers/{worker}/worker.toml)")
    shutil.rmtree(out, ignore_errors=True)
    for table in tables:
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
