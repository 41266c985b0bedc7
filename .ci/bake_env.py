"""Print the bake variables of each worker's models (``LLM_HF_MODEL_ID=...``) read from workers/*/model.toml.

model.toml is the one place a model is named; the Makefile passes these to `docker buildx bake`:
``<WORKER>_MODEL_ID``, ``_MODEL_REVISION``, ``_MODEL_VARIANT`` and ``_MODEL_LICENSE`` from its top-level
keys, and ``<WORKER>_EXTRA_MODELS``, its tables (extra models such as sdxl's ``[vae]``) as one JSON
object for the weights stage (shared/weights.Dockerfile) and the image labels. Values are shell-quoted
(the Makefile hands them to `env`). A variable already set in the environment is left out, so it
overrides the file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

WORKERS = Path(__file__).resolve().parents[1] / "workers"
#: model.toml key -> bake variable suffix
KEYS = {"id": "MODEL_ID", "revision": "MODEL_REVISION", "variant": "MODEL_VARIANT", "license": "MODEL_LICENSE"}
#: What an extra model's table may hold; `env` names the variable the Dockerfile points at its folder.
EXTRA_KEYS = {"id", "revision", "variant", "license", "env", "from_base", "from_base_if_same"}
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def bake_variables(workers: Path = WORKERS) -> dict[str, str]:
    variables = {}
    for toml in sorted(workers.glob("*/model.toml")):
        model = tomllib.loads(toml.read_text())
        prefix = toml.parent.name.upper().replace("-", "_")
        for key, suffix in KEYS.items():
            variables[f"{prefix}_{suffix}"] = _word(toml, key, model.get(key, ""))
        extras = {name: _extra(toml, name, table) for name, table in model.items() if isinstance(table, dict)}
        variables[f"{prefix}_EXTRA_MODELS"] = json.dumps(extras, sort_keys=True, separators=(",", ":"))
    return variables


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


def main() -> int:
    for name, value in bake_variables().items():
        if name not in os.environ:
            print(f"{name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
