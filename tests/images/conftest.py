"""Static views of the image build files (Dockerfiles, docker-bake.hcl) for tests that need no Docker daemon."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
#: Every worker folder (each is one image).
WORKERS = sorted(p.name for p in (REPO / "workers").iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ARG...
    args: str  # continuation lines joined
    stage: int  # index of the FROM it belongs to (-1: before the first FROM)


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile, continuation lines joined, comments dropped."""
    instructions, pending, stage = [], "", -1
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), " ".join(args.split()), stage))
    return instructions


def unquote(value):
    """python-hcl2 keeps HCL string quotes: strip them, recursively."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


def parse_bake(path: Path) -> dict[str, dict[str, dict]]:
    """{"target": {name: attributes}, "variable": {...}, "group": {...}, "function": {...}} of a bake file."""
    raw = hcl2.loads(path.read_text())
    return {kind: {unquote(name): unquote(body) for block in blocks for name, body in block.items()}
            for kind, blocks in raw.items() if isinstance(blocks, list) and not kind.startswith("__")}


def model_prefix(worker: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", worker.upper())


@pytest.fixture(scope="session")
def bake() -> dict[str, dict[str, dict]]:
    return parse_bake(REPO / "docker-bake.hcl")
