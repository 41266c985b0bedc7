"""Print the bake variables derived from the worker folders: ``WORKERS``, ``MODELS`` and ``CI_BASES``.

Nothing in docker-bake.hcl names a worker: the Makefile passes these to `docker buildx bake` (values
shell-quoted, for `env`):

- ``WORKERS``: JSON list of every worker, each folder of workers/ with a worker.toml (devkit/manifest.py):
  the matrices of the bake file.
- ``MODELS``: JSON object, worker -> its models from its model.toml (the one place a model is named):
  ``id``, ``revision``, ``variant``, ``license`` from the top-level keys, ``extras`` from its tables
  (extra models such as sdxl's ``[vae]``, each without its ``env``), ``adapters`` from its
  ``[adapters.<name>]`` tables (LoRA adapters: ``id``, ``revision``, ``license``), and ``contexts``, the
  local folders used instead of the Hub (offline builds, CI): ``model`` and ``extras``. Each can be
  overridden from the environment per worker, ``<WORKER>_MODEL_ID``, ``_MODEL_REVISION``,
  ``_MODEL_VARIANT``, ``_MODEL_LICENSE``, ``_EXTRA_MODELS`` (JSON), ``_ADAPTERS`` (JSON), ``_MODEL_DIR``
  and ``_EXTRAS_DIR`` (``<WORKER>`` is the folder name in upper case, ``-`` as ``_``): to try another
  revision without editing the file.
- ``CI_BASES``: JSON object, worker -> the CPU stand-in of its base (worker.toml ``ci_base``), read only by
  .ci/bake-ci.hcl.

Standard library only (run by the system Python before any virtualenv exists).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devkit import manifest  # noqa: E402  (the repo root is not on sys.path of a script in .ci/)

WORKERS = REPO / "workers"
#: model.toml key -> environment variable suffix that overrides it
KEYS = {"id": "MODEL_ID", "revision": "MODEL_REVISION", "variant": "MODEL_VARIANT", "license": "MODEL_LICENSE"}
#: What an extra model's table may hold; `env` names the variable the Dockerfile points at its folder.
EXTRA_KEYS = {"id", "revision", "variant", "license", "env", "from_base", "from_base_if_same"}
#: model.toml's table of LoRA adapters, ``[adapters.<served name>]``, and what each may hold.
ADAPTERS = "adapters"
ADAPTER_KEYS = {"id", "revision", "license"}
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def env_prefix(worker: str) -> str:
    return worker.upper().replace("-", "_")


def bake_variables(workers: Path = WORKERS, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    manifests = manifest.all_manifests(workers)
    models = {toml.parent.name: _models(toml, env_prefix(toml.parent.name), environ)
              for toml in sorted(workers.glob("*/model.toml"))}
    return {
        "WORKERS": json.dumps([m.name for m in manifests], separators=(",", ":")),
        "MODELS": json.dumps(models, sort_keys=True, separators=(",", ":")),
        "CI_BASES": json.dumps({m.name: m.ci_base for m in manifests}, sort_keys=True, separators=(",", ":")),
    }


def _models(toml: Path, prefix: str, environ: Mapping[str, str]) -> dict:
    model = tomllib.loads(toml.read_text())
    entry = {key: environ.get(f"{prefix}_{suffix}", _word(toml, key, model.get(key, "")))
             for key, suffix in KEYS.items()}
    extras = {name: _extra(toml, name, table) for name, table in model.items()
              if isinstance(table, dict) and name != ADAPTERS}
    entry["extras"] = json.loads(environ[f"{prefix}_EXTRA_MODELS"]) if f"{prefix}_EXTRA_MODELS" in environ else extras
    adapters = {name: _adapter(toml, name, table) for name, table in model.get(ADAPTERS, {}).items()}
    entry["adapters"] = json.loads(environ[f"{prefix}_ADAPTERS"]) if f"{prefix}_ADAPTERS" in environ else adapters
    folders = {"model": environ.get(f"{prefix}_MODEL_DIR", ""), "extras": environ.get(f"{prefix}_EXTRAS_DIR", "")}
    entry["contexts"] = {name: folder for name, folder in folders.items() if folder}
    return entry


def _word(toml: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise SystemExit(f"{toml}: `{key}` must be a string without spaces, got {value!r}")
    return value


def _extra(toml: Path, name: str, table: dict) -> dict:
    unknown = set(table) - EXTRA_KEYS
    if unknown:
        raise SystemExit(f"{toml}: [{name}] has unknown keys {sorted(unknown)}; known: {sorted(EXTRA_KEYS)}")
    for key in ("id", "revision", "license"):
        _word(toml, f"{name}.{key}", table.get(key))
    if not _ENV_NAME.match(table.get("env", "")):
        raise SystemExit(f"{toml}: [{name}] needs `env`, the variable that names its folder in the image")
    return {key: value for key, value in table.items() if key != "env"}


def _adapter(toml: Path, name: str, table: object) -> dict:
    if not isinstance(table, dict):
        raise SystemExit(f"{toml}: [{ADAPTERS}.{name}] must be a table of {sorted(ADAPTER_KEYS)}")
    unknown = set(table) - ADAPTER_KEYS
    if unknown:
        raise SystemExit(f"{toml}: [{ADAPTERS}.{name}] has unknown keys {sorted(unknown)}; known: "
                         f"{sorted(ADAPTER_KEYS)}")
    for key in sorted(ADAPTER_KEYS):
        _word(toml, f"{ADAPTERS}.{name}.{key}", table.get(key))
    return dict(table)


def main() -> int:
    for name, value in bake_variables().items():
        print(f"{name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
