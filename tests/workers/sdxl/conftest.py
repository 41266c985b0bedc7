"""Fixtures of the sdxl worker tests: one worker loaded from the tiny SDXL fixture, jobs run as the SDK runs them."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import types
from pathlib import Path
from typing import Any

import pytest

from shared.guard import guard


class ProgressLog:
    """Stands in for runpod's progress_update: records (job id, update) as they are sent."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def __call__(self, job: dict, update: dict) -> None:
        self.sent.append((job["id"], update))

    def of(self, job_id: str) -> list[dict]:
        return [update for sent_for, update in self.sent if sent_for == job_id]


@pytest.fixture(scope="session")
def tiny_sdxl_refiner_dir(tmp_path_factory) -> Path:
    from devkit.fixtures.sdxl import build_refiner

    return build_refiner(tmp_path_factory.mktemp("tiny-sdxl-refiner"))


@pytest.fixture(scope="session")
def progress_log() -> ProgressLog:
    return ProgressLog()


@pytest.fixture(scope="session")
def worker(tiny_sdxl_dir, tiny_sdxl_refiner_dir, progress_log):
    """The worker, set up once from the environment production uses (MODEL_PATH, REFINER_PATH)."""
    from worker_sdxl.worker import SdxlWorker

    env = {"MODEL_PATH": str(tiny_sdxl_dir), "REFINER_PATH": str(tiny_sdxl_refiner_dir), "PROGRESS_INTERVAL_S": "0"}
    saved = {key: os.environ.get(key) for key in (*env, "VAE_PATH", "MAX_RESPONSE_BYTES")}
    os.environ.update(env)
    os.environ.pop("VAE_PATH", None)
    os.environ.pop("MAX_RESPONSE_BYTES", None)
    try:
        instance = SdxlWorker(send_progress=progress_log)
        instance.setup()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return instance


@pytest.fixture(scope="session")
def run_job(worker):
    """Run one job through the handler wrapped as serve() wraps it: result dict, or {"error": envelope str}."""
    handler = guard(worker.handler)
    counter = iter(range(10**6))

    def run(job_input: Any, job_id: str | None = None, **job_fields: Any) -> dict:
        """``job_fields``: more of the job as RunPod hands it over (``s3Config``)."""
        job = {"id": job_id or f"job-{next(counter)}", "input": job_input, **job_fields}
        return asyncio.run(handler(job))

    return run


#: Every test job is tiny: 64x64 (an 8x8 latent), 2 steps.
SMALL = {"width": 64, "height": 64, "num_inference_steps": 2}


def envelope(result: dict) -> dict:
    assert set(result) == {"error"}, f"expected a failed job, got {str(result)[:300]}"
    return json.loads(result["error"])


def decode(image_entry: dict):
    from PIL import Image

    text = image_entry["image"]
    if text.startswith("data:"):
        text = text.split(",", 1)[1]
    image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
    image.load()
    return image


def pixels(image_entry: dict):
    import numpy as np

    return np.asarray(decode(image_entry).convert("RGB"), dtype=np.int16)


def png_b64(width: int, height: int, color=(120, 30, 200), fmt: str = "PNG") -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="session")
def check():
    """The helpers above, for tests: ``check.SMALL``, ``check.envelope(result)``, ``check.decode(entry)``..."""
    return types.SimpleNamespace(SMALL=SMALL, envelope=envelope, decode=decode, pixels=pixels, png_b64=png_b64)
