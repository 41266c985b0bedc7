"""The seed's handlers, the baselines: what a worker looked like before this repo (the official-worker pattern).

One job at a time, one ``generate`` / one pipeline call per job, model loaded with the plain
``from_pretrained`` call in half precision on a GPU (fp32 on the CPU). Kept minimal on purpose: they are
what the workers are measured against, not something to serve with.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any


def _device_and_dtype(prefer_bf16: bool = False):
    import torch

    if not torch.cuda.is_available():
        return "cpu", torch.float32
    if prefer_bf16 and torch.cuda.is_bf16_supported():
        return "cuda", torch.bfloat16
    return "cuda", torch.float16


class SeedLlm:
    """``handler({"input": {"prompt", "max_tokens"}})`` -> ``{"text", "completion_tokens"}``, one generate each."""

    def __init__(self, model_path: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # bf16 as the seed figures were taken (and as llm-hf loads): the ratio is serving, not dtype.
        self.device, dtype = _device_and_dtype(prefer_bf16=True)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(self.device)

    def handler(self, job: dict[str, Any]) -> dict[str, Any]:
        import torch

        job_input = job["input"]
        encoded = self.tokenizer(job_input["prompt"], return_tensors="pt").to(self.device)
        max_tokens = job_input.get("max_tokens", 256)
        with torch.inference_mode():
            # min_new_tokens = max: the same token count as the worker's run (random weights hit EOS early).
            output = self.model.generate(**encoded, max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                                         do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
        new = output[0, encoded["input_ids"].shape[1]:]
        return {"text": self.tokenizer.decode(new, skip_special_tokens=True), "completion_tokens": int(new.shape[0])}


class SeedSdxl:
    """``handler({"input": {"prompt", "width", "height", "steps"}})`` -> ``{"image": <base64 PNG>}``."""

    def __init__(self, model_path: Path):
        from diffusers import StableDiffusionXLPipeline

        self.device, dtype = _device_and_dtype()
        # As the official worker-sdxl loads it: the fp16 weights variant (upcast to fp32 on the CPU).
        self.pipe = StableDiffusionXLPipeline.from_pretrained(
            model_path, dtype=dtype, variant="fp16", use_safetensors=True
        ).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    def handler(self, job: dict[str, Any]) -> dict[str, Any]:
        job_input = job["input"]
        image = self.pipe(
            prompt=job_input["prompt"],
            width=job_input["width"],
            height=job_input["height"],
            num_inference_steps=job_input["steps"],
        ).images[0]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return {"image": base64.b64encode(buffer.getvalue()).decode("ascii")}
