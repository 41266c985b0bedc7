"""The seed baselines run on the tiny fixtures and do the work they are compared on."""

from __future__ import annotations

import base64
import io

from devkit.bench.seed import SeedLlm, SeedSdxl


def test_seed_llm_generates_exactly_the_tokens_asked_for(tiny_llm_dir):
    output = SeedLlm(tiny_llm_dir).handler({"input": {"prompt": "Hello there", "max_tokens": 12}})
    assert output["completion_tokens"] == 12
    assert isinstance(output["text"], str)


def test_seed_sdxl_returns_a_png_of_the_asked_size(tiny_sdxl_dir):
    from PIL import Image

    output = SeedSdxl(tiny_sdxl_dir).handler(
        {"input": {"prompt": "a lighthouse", "width": 64, "height": 64, "steps": 2}}
    )
    image = Image.open(io.BytesIO(base64.b64decode(output["image"])))
    assert image.format == "PNG" and image.size == (64, 64)
