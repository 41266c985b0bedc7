"""The sdxl job result: images encoded as asked, inlined or uploaded (shared.payload), with seed and timings."""

from __future__ import annotations

from collections.abc import Callable

from PIL.Image import Image

from shared.encoding import IMAGE_MIME, image_bytes
from shared.payload import FileRef, OutputFile
from worker_sdxl.inputs import Job


def encode(images: list[Image], job: Job) -> list[OutputFile]:
    fmt, quality = job.request.format, job.request.quality
    return [
        OutputFile(name=f"{index}.{fmt}", data=image_bytes(image, fmt, quality=quality), mime=IMAGE_MIME[fmt])
        for index, image in enumerate(images)
    ]


def renderer(job: Job, timings: dict[str, float]) -> Callable[[list[FileRef]], dict]:
    """Builds the result around one FileRef per image (base64 ``image`` or bucket ``url``)."""

    def render(refs: list[FileRef]) -> dict:
        images = []
        for index, ref in enumerate(refs):
            where = {"image": ref.base64} if ref.base64 is not None else {"url": ref.url}
            images.append({**where, "seed": job.seed + index, "width": job.width, "height": job.height,
                           "format": job.request.format})
        return {
            "images": images,
            "seed": job.seed,
            "width": job.width,
            "height": job.height,
            "delivery": "inline" if refs and refs[0].base64 is not None else "url",
            "timings": {name: round(seconds, 4) for name, seconds in timings.items()},
        }

    return render
