"""Fixtures shared by every test: the runpod SDK's environment for tests, repo paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Read by the runpod SDK at import time: skip its fitness probes (a TCP connect to a public DNS
# server, GPU checks) that cannot pass on a machine with no internet and no GPU.
os.environ.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")
os.environ.setdefault("RUNPOD_SKIP_GPU_CHECK", "true")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> Path:
    """A tiny Llama (+ tokenizer with chat template) folder, built once per test session."""
    from devkit.fixtures.llm import build

    return build(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    """A tiny SDXL pipeline folder, built once per test session."""
    from devkit.fixtures.sdxl import build

    return build(tmp_path_factory.mktemp("tiny-sdxl"))
