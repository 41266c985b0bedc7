""".ci/image_sizes.py (`make sizes`): each image split into its base, its weights, its packages and its code."""

from __future__ import annotations

import pytest

from tests.images.test_bake import load_ci_module

# `docker history` of a worker image as the engine prints it (sizes in bytes, newest layer first).
HISTORY = "\n".join([
    "39365\tRUN |1 WORKER=sdxl /bin/sh -c python -m compileall -q /app # buildkit",
    "316211\tCOPY workers/sdxl/ /app/ # buildkit",
    "0\tWORKDIR /app",
    "6267132\tCOPY / / # buildkit",
    "469922201\tRUN |1 WORKER=sdxl /bin/sh -c pip install --require-hashes --no-deps -r /tmp/requirements.lock"
    "     && pip install --no-deps /tmp/shared     && python -c \"import runpod, shared.serving\" # buildkit",
    "0\tCMD [\"python\" \"-m\" \"worker_sdxl\"]",
    "865351960\tRUN |1 TORCH_WHEEL=torch.whl /bin/sh -c pip install \"/wheels/${TORCH_WHEEL}\" # buildkit",
])
SIZES = {"workers/sdxl:ci": 1_532_875_000, "ci-local/pytorch:2.13.0-cpu": 1_056_330_000}


@pytest.fixture
def image_sizes(monkeypatch):
    module = load_ci_module("image_sizes")

    def docker(*args: str) -> str:
        if args[:2] == ("image", "inspect"):
            return str(SIZES[args[-1]])
        assert args[0] == "history"
        return HISTORY

    monkeypatch.setattr(module, "_docker", docker)
    return module


def test_an_image_is_split_into_base_weights_packages_and_code(image_sizes):
    targets = {"sdxl": {"tags": ["workers/sdxl:ci"], "dockerfile": "shared/worker.Dockerfile"},
               "sdxl-base": {"dockerfile": "workers/sdxl/Dockerfile",
                             "args": {"BASE_IMAGE": "ci-local/pytorch:2.13.0-cpu"}}}
    header, row = image_sizes.report(targets)
    assert header == ("image", "total MB", "base MB", "weights MB", "packages MB", "code MB", "base image")
    # 1,532.875 - 1,056.33 - 6.267 (COPY / /) - 469.922 (the lock's pip install) = 0.356: /app and its bytecode.
    assert row == ("workers/sdxl:ci", "1,533", "1,056", "6", "470", "0.4", "ci-local/pytorch:2.13.0-cpu")
