"""The sdxl job input: one typed model with every bound, and the img2img source image checked and decoded."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, StrictBool, model_validator

from shared.encoding import decode_image
from shared.errors import BadInput, FieldProblem
from shared.validation import WorkerInput

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_SIZE = 1024
MIN_SIZE = 64
MAX_SIZE = 2048
#: Pixels of all images of one job together: four 1024x1024 images, or one 2048x2048.
MAX_JOB_PIXELS = 4 * 1024 * 1024
MAX_STEPS = 100
MAX_IMAGES = 4
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000
#: img2img strength when the request names none.
DEFAULT_STRENGTH = 0.8
#: An img2img source image: bytes of the file, and pixels once decoded.
MAX_IMAGE_BYTES = 8_000_000
MAX_IMAGE_PIXELS = MAX_SIZE * MAX_SIZE

Scheduler = Literal["euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim"]
ImageFormat = Literal["png", "jpeg", "webp"]


class Input(WorkerInput):
    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="What to draw. The text encoders read its first 77 tokens.",
    )
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS, description="What to steer away from.")
    width: int | None = Field(
        None,
        ge=MIN_SIZE,
        le=MAX_SIZE,
        multiple_of=8,
        description=f"Output width in pixels; default {DEFAULT_SIZE}, or the source image's width for img2img.",
    )
    height: int | None = Field(
        None,
        ge=MIN_SIZE,
        le=MAX_SIZE,
        multiple_of=8,
        description=f"Output height in pixels; default {DEFAULT_SIZE}, or the source image's height for img2img.",
    )
    num_inference_steps: int = Field(
        30, ge=1, le=MAX_STEPS, description="Denoising steps (img2img runs steps x strength)."
    )
    guidance_scale: float = Field(5.0, ge=0.0, le=20.0, description="Classifier-free guidance; <= 1 turns it off.")
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="Image i uses seed + i; the same seed and inputs give the same image. Random if omitted.",
    )
    num_images: int = Field(1, ge=1, le=MAX_IMAGES, description="Images to generate from the prompt.")
    scheduler: Scheduler = Field("euler", description="Sampler used for the denoising steps.")
    format: ImageFormat = Field("png", description="Encoding of the returned images.")
    quality: int = Field(90, ge=1, le=100, description="JPEG/WebP quality; ignored for PNG.")
    data_uri: StrictBool = Field(False, description="Return `data:image/...;base64,` URIs instead of bare base64.")
    image: str | None = Field(
        None,
        description=f"img2img source: base64 PNG, JPEG or WebP (data URI accepted), at most {MAX_IMAGE_BYTES} "
        f"bytes and {MAX_IMAGE_PIXELS} pixels.",
    )
    strength: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description=f"img2img only: how much of the source is repainted (1 = all of it); default {DEFAULT_STRENGTH}. "
        "num_inference_steps x strength must be at least 1 (the steps img2img runs).",
    )
    refine: StrictBool = Field(False, description="Finish the last steps with the refiner (only where it is baked in).")
    refiner_switch: float = Field(
        0.8, gt=0.0, lt=1.0, description="With `refine`: fraction of the steps the base model runs."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Input:
        problems = []
        if self.strength is not None and self.image is None:
            problems.append(FieldProblem("strength", "only applies with an img2img `image`", self.strength))
        if self.image is not None:
            problems += self._img2img_step_problems()
        if self.refine and self.image is not None:
            problems.append(FieldProblem("refine", "is for text-to-image jobs, not img2img", True))
        pixels = (self.width or DEFAULT_SIZE) * (self.height or DEFAULT_SIZE) * self.num_images
        if self.image is None and pixels > MAX_JOB_PIXELS:
            problems.append(_too_many_pixels(pixels))
        if problems:
            raise BadInput(problems)
        return self


    def _img2img_step_problems(self) -> list[FieldProblem]:
        """img2img runs int(num_inference_steps x strength) steps (diffusers' get_timesteps); 0 is no image."""
        strength = DEFAULT_STRENGTH if self.strength is None else self.strength
        if int(self.num_inference_steps * strength) >= 1:
            return []
        reason = (f"num_inference_steps ({self.num_inference_steps}) x strength ({strength}) rounds down to 0 "
                  "denoising steps; raise either so that their product is at least 1")
        return [FieldProblem("num_inference_steps", reason, self.num_inference_steps),
                FieldProblem("strength", reason, strength)]


@dataclass(frozen=True)
class Job:
    """A validated request resolved into what the pipeline runs: final size, seed, decoded source."""

    request: Input
    width: int
    height: int
    seed: int
    source: Image | None

    @property
    def strength(self) -> float:
        return DEFAULT_STRENGTH if self.request.strength is None else self.request.strength


def resolve(request: Input) -> Job:
    """Decode the source image (checked before decoding), settle size and seed."""
    seed = secrets.randbelow(MAX_SEED + 1) if request.seed is None else request.seed
    if request.image is None:
        return Job(request, request.width or DEFAULT_SIZE, request.height or DEFAULT_SIZE, seed, None)
    source = decode_image(request.image, field="image", max_bytes=MAX_IMAGE_BYTES, max_pixels=MAX_IMAGE_PIXELS)
    width = request.width or _fit(source.width, "width")
    height = request.height or _fit(source.height, "height")
    if width * height * request.num_images > MAX_JOB_PIXELS:
        raise BadInput([_too_many_pixels(width * height * request.num_images)])
    if source.size != (width, height):
        from PIL import Image

        source = source.resize((width, height), Image.Resampling.LANCZOS)
    return Job(request, width, height, seed, source)


def _fit(side: int, name: str) -> int:
    """A source image side rounded down to a multiple of 8, or BadInput when out of bounds."""
    rounded = side - side % 8
    if not MIN_SIZE <= rounded <= MAX_SIZE:
        raise BadInput.field(
            "image", f"its {name} {side} is outside {MIN_SIZE}..{MAX_SIZE}; set `{name}` to resize it", side
        )
    return rounded


def _too_many_pixels(pixels: int) -> FieldProblem:
    return FieldProblem(
        "num_images", f"width x height x num_images = {pixels} pixels is over the limit of {MAX_JOB_PIXELS}"
    )
