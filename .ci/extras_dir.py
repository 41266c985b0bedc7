"""Lay out the tiny stand-ins of a worker's extra models as its weights stage reads local ones (CI builds).

    python .ci/extras_dir.py <worker> <folder>    # prints <folder>; nothing for a worker with no extras
    python .ci/extras_dir.py --adapters <worker>  # the <WORKER>_ADAPTERS bake override, JSON; nothing if none

Each table of the worker's model.toml (sdxl: ``[vae]``, ``[refiner]``) gets ``<folder>/<table>``, built
by the ``EXTRA_BUILDERS`` of the fixture module its worker.toml names (devkit/fixtures). .ci/images.sh
passes the folder to bake as ``<WORKER>_EXTRAS_DIR`` (the main model's is ``<WORKER>_MODEL_DIR``,
devkit.fixtures.for_worker): the weights stage then bakes from them with the selection it applies to the
Hub (shared/shared/weights.py).

A worker whose worker.toml names ``[fixture] adapters`` serves LoRA adapters: its tiny ones (the fixture
module's ``build_adapters``) are laid out in ``<folder>/adapters/<name>`` and, printed with
``--adapters``, replace model.toml's ``[adapters]`` in CI's bake (``<WORKER>_ADAPTERS``), so CI's images
bake and serve them whether or not model.toml names real ones.
"""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
from pathlib import Path

from devkit import fixtures, manifest

WORKERS = Path(__file__).resolve().parents[1] / "workers"


#: model.toml's table of LoRA adapters (not an extra model) and their folder in the weights stage's extras.
ADAPTERS = "adapters"


def lay_out(worker: str, out: Path, workers: Path = WORKERS) -> Path | None:
    toml = workers / worker / "model.toml"
    tables = [name for name, value in tomllib.loads(toml.read_text()).items()
              if isinstance(value, dict) and name != ADAPTERS] if toml.is_file() else []
    serves_adapters = toml.is_file() and _fixture_adapters(worker, workers)
    if not tables and not serves_adapters:
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
    if serves_adapters:
        module.build_adapters(out / ADAPTERS)
    return out


def adapters_override(worker: str, workers: Path = WORKERS) -> str | None:
    """The ``<WORKER>_ADAPTERS`` JSON of CI's bake: the fixture's adapters, each baked from its local folder."""
    if not (workers / worker / "model.toml").is_file() or not _fixture_adapters(worker, workers):
        return None
    names = fixtures.builder(worker).ADAPTER_BUILDERS
    return json.dumps({name: {"id": f"devkit-fixture/{name}", "revision": "local", "license": "mit"}
                       for name in names}, separators=(",", ":"))


def _fixture_adapters(worker: str, workers: Path) -> bool:
    fixture = manifest.load(worker, workers).fixture if (workers / worker / manifest.FILE).is_file() else None
    return fixture is not None and fixture.adapters is not None


def main(argv: list[str]) -> int:
    if argv[0] == "--adapters":
        printed = adapters_override(argv[1])
    else:
        worker, out = argv
        printed = lay_out(worker, Path(out))
    if printed is not None:
        print(printed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
