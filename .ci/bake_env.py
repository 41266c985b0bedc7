"""Print the bake variables of each worker's model (``LLM_HF_MODEL_ID=...``) read from workers/*/model.toml.

model.toml is the one place a model is named; the Makefile passes these to `docker buildx bake`.
A variable already set in the environment is left out, so it overrides the file.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

WORKERS = Path(__file__).resolve().parents[1] / "workers"
#: model.toml key -> bake variable suffix
KEYS = {"id": "MODEL_ID", "revision": "MODEL_REVISION", "variant": "MODEL_VARIANT"}


def bake_variables(workers: Path = WORKERS) -> dict[str, str]:
    variables = {}
    for toml in sorted(workers.glob("*/model.toml")):
        model = tomllib.loads(toml.read_text())
        prefix = toml.parent.name.upper().replace("-", "_")
        for key, suffix in KEYS.items():
            value = model.get(key, "")
            if not isinstance(value, str) or any(c.isspace() for c in value):
                raise SystemExit(f"{toml}: `{key}` must be a string without spaces, got {value!r}")
            variables[f"{prefix}_{suffix}"] = value
    return variables


def main() -> int:
    for name, value in bake_variables().items():
        if name not in os.environ:
            print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
