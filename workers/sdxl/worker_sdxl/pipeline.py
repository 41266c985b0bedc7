"""SDXL pipelines: loaded once from the baked folders, then text-to-image, img2img and refiner runs.

Placement: fp16 on a GPU (the whole model stays on it: no CPU offload, which would move weights on
every request), fp32 on a CPU (tests). Attention is PyTorch SDPA. Fused QKV projections are left
off: diffusers keeps the unfused weights next to the fused ones (more GPU memory for a gain that shows
mostly with torch.compile, itself off because it adds minutes to a cold start). The
stock SDXL VAE overflows in fp16, so either a fp16-fix VAE is baked (``VAE_PATH``) or diffusers
upcasts the decode to fp32 (the stock VAE's ``force_upcast``); a NaN or all-black result is still
caught and reported as INVALID_OUTPUT.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL.Image import Image

from shared.errors import GpuOutOfMemory, InvalidOutput, StartupError
from shared.torch_errors import release_gpu_memory
from worker_sdxl.inputs import Job

log = logging.getLogger(__name__)

#: Public scheduler names -> (class, options on top of the model's own scheduler config).
SCHEDULERS: dict[str, tuple[type, dict[str, Any]]] = {
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "ddim": (DDIMScheduler, {}),
}
#: A decoded image whose every pixel is at or below this (of 1.0) is "black": the fp16 VAE failure mode.
BLACK_LEVEL = 1.0 / 255
#: Called after each denoising step with (stage, step done, steps in the stage).
StepCallback = Callable[[str, int, int], None]


@dataclass
class Pipelines:
    """The loaded model: one set of weights shared by text-to-image, img2img and the optional refiner."""

    text2img: StableDiffusionXLPipeline
    refiner: StableDiffusionXLImg2ImgPipeline | None
    device: torch.device
    dtype: torch.dtype
    # One job uses the GPU at a time: the stock VAE's upcast switches its dtype in place mid-run.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def generate(self, job: Job, on_step: StepCallback) -> list[Image]:
        """Run the job; raise GpuOutOfMemory (memory freed) or InvalidOutput (NaN/black)."""
        with self._lock:
            pixels = self._run_freeing_memory_on_oom(job, on_step)
        return to_pil(pixels)

    def _run_freeing_memory_on_oom(self, job: Job, on_step: StepCallback) -> np.ndarray:
        try:
            return self._run(job, on_step)
        except torch.OutOfMemoryError:
            pass  # leave the except block first: its traceback holds the job's tensors alive
        release_gpu_memory()
        raise GpuOutOfMemory(
            f"the GPU ran out of memory for {job.request.num_images} image(s) of {job.width}x{job.height}; "
            "memory was freed, retry with fewer or smaller images"
        )

    def _run(self, job: Job, on_step: StepCallback) -> np.ndarray:
        request = job.request
        common = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": request.num_inference_steps,
            "guidance_scale": request.guidance_scale,
            "num_images_per_prompt": request.num_images,
            # CPU generators: the same seed gives the same starting noise on any device.
            "generator": [torch.Generator("cpu").manual_seed(job.seed + i) for i in range(request.num_images)],
        }
        if job.source is not None:
            pipe = self._variant(StableDiffusionXLImg2ImgPipeline, self.text2img, request.scheduler)
            return pipe(
                image=job.source, strength=job.strength, output_type="np",
                callback_on_step_end=_step_callback("img2img", on_step), **common,
            ).images
        pipe = self._variant(StableDiffusionXLPipeline, self.text2img, request.scheduler)
        size = {"width": job.width, "height": job.height}
        if not request.refine:
            return pipe(**size, output_type="np", callback_on_step_end=_step_callback("base", on_step), **common).images
        latents = pipe(
            **size, denoising_end=request.refiner_switch, output_type="latent",
            callback_on_step_end=_step_callback("base", on_step), **common,
        ).images
        refiner = self._variant(StableDiffusionXLImg2ImgPipeline, self.refiner, request.scheduler)
        return refiner(
            image=latents, denoising_start=request.refiner_switch, output_type="np",
            callback_on_step_end=_step_callback("refiner", on_step), **common,
        ).images

    @staticmethod
    def _variant(cls: type, loaded: Any, scheduler: str) -> Any:
        """A pipeline of ``cls`` over ``loaded``'s modules with a fresh scheduler: no weights are copied,
        and no job shares the scheduler's per-run state with another."""
        # Not from_pipe(): it re-casts every module on each call (a warning per job in the log).
        accepted = set(inspect.signature(cls.__init__).parameters)
        arguments = {name: module for name, module in loaded.components.items() if name in accepted}
        # Options such as the refiner's requires_aesthetics_score live in the config, not the components.
        arguments |= {k: v for k, v in loaded.config.items() if k in accepted and k not in arguments}
        scheduler_cls, options = SCHEDULERS[scheduler]
        arguments["scheduler"] = scheduler_cls.from_config(loaded.scheduler.config, **options)
        pipe = cls(**arguments)
        pipe.set_progress_bar_config(disable=True)  # progress goes to the client, not to tqdm in the log
        return pipe


def _step_callback(stage: str, on_step: StepCallback) -> Callable:
    def callback_on_step_end(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
        on_step(stage, index + 1, pipe.num_timesteps)
        return tensors

    return callback_on_step_end


def to_pil(pixels: np.ndarray) -> list[Image]:
    """Float images in [0, 1] (N, H, W, C) to PIL, refusing NaN and all-black ones."""
    for index, image in enumerate(pixels):
        if not np.isfinite(image).all():
            raise InvalidOutput(f"image {index} came out with NaN/inf values (a numerical overflow in the model); "
                                "try another seed, and check that the fp16-fix VAE is baked in (VAE_PATH)")
        if image.max() <= BLACK_LEVEL:
            raise InvalidOutput(f"image {index} came out all black (the usual sign of an fp16 overflow); "
                                "try another seed, and check that the fp16-fix VAE is baked in (VAE_PATH)")
    return StableDiffusionXLPipeline.numpy_to_pil(pixels)


def load(model_path: Path, *, vae_path: Path | None = None, refiner_path: Path | None = None) -> Pipelines:
    """Load the baked model onto the best device (the production call: ``from_pretrained`` of the folder).

    What no restart fixes is a StartupError (shared.serving): a pipeline diffusers cannot build from the
    folders (it says so with ValueError), weights that do not fit the GPU. An OSError reading them may pass.
    """
    try:
        return _load(model_path, vae_path=vae_path, refiner_path=refiner_path)
    except torch.cuda.OutOfMemoryError as exc:
        raise StartupError(
            f"{'SDXL and its refiner do' if refiner_path else 'SDXL does'} not fit in this GPU's memory",
            "deploy the endpoint on a GPU with more memory (24 GB or more for base + refiner), or unset REFINER_PATH",
        ) from exc
    except ValueError as exc:
        raise StartupError(f"the SDXL folders (MODEL_PATH, VAE_PATH, REFINER_PATH) hold a pipeline diffusers cannot "
                           f"build ({exc})", "rebuild the image from model.toml, which names compatible "
                           "weights") from exc


def _load(model_path: Path, *, vae_path: Path | None, refiner_path: Path | None) -> Pipelines:
    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    options: dict[str, Any] = {"dtype": dtype, "use_safetensors": True, "local_files_only": True}
    if vae_path is not None:
        options["vae"] = AutoencoderKL.from_pretrained(vae_path, **options, variant=_variant_of(vae_path))
    text2img = StableDiffusionXLPipeline.from_pretrained(
        model_path, **options, variant=_variant_of(model_path / "unet")
    )
    _place(text2img, device)
    refiner = None
    if refiner_path is not None:
        refiner = StableDiffusionXLImg2ImgPipeline.from_pretrained(
            refiner_path, **_from_base(text2img, refiner_path), **{k: v for k, v in options.items() if k != "vae"},
            variant=_variant_of(refiner_path / "unet"),
        )
        _place(refiner, device)
    log.info("SDXL loaded on %s (%s) in %.1f s; fp16-fix VAE: %s; refiner: %s", device, dtype,
             time.perf_counter() - started, vae_path is not None, refiner is not None)
    return Pipelines(text2img=text2img, refiner=refiner, device=device, dtype=dtype)


def _from_base(base: StableDiffusionXLPipeline, refiner_path: Path) -> dict[str, Any]:
    """The refiner's modules taken from the loaded base instead of loading copies: always its VAE (the
    fp16-fix one where baked), and its second text encoder and tokenizer unless the refiner folder has its
    own (the image bakes them only where they differ from the base's: shared/weights.py)."""
    shared = {"vae": base.vae}
    for name in ("text_encoder_2", "tokenizer_2"):
        if not (refiner_path / name).is_dir():
            shared[name] = getattr(base, name)
    return shared


def _variant_of(folder: Path) -> str | None:
    """'fp16' when the folder holds the fp16 weight files (all the image bakes), else the plain ones."""
    return "fp16" if any(folder.glob("*.fp16.safetensors")) else None


def _place(pipe: Any, device: torch.device) -> None:
    pipe.to(device)
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.vae.set_attn_processor(AttnProcessor2_0())
    if device.type == "cuda":
        # NHWC convolutions: the layout the GPU's tensor cores run fastest.
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
