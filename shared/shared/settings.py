"""Worker settings from environment variables: bounded numbers and baked folders, each refusal naming the variable.

Read in ``setup()`` (never at import), so a bad value fails startup with one clear line instead of
failing jobs later.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TypeVar

from shared.errors import NotReady

Number = TypeVar("Number", int, float)


def number(name: str, default: Number | None, *, minimum: Number, maximum: Number | None = None,
           kind: type[Number] = int) -> Number | None:
    """``kind(os.environ[name])`` within [minimum, maximum]; ``default`` when the variable is unset or blank."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        noun = "a whole number" if kind is int else "a number"
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be {noun} {bounds}, got {raw!r}")
    return value


def folder(name: str, *, required: bool = True, holds: str | None = None) -> Path | None:
    """The folder ``os.environ[name]`` names (weights baked into the image); NotReady if it is not there.

    ``holds`` names a file the folder must contain (``config.json`` for a Hugging Face model).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        if required:
            raise NotReady(f"{name} is not set: it must name the folder the model weights were baked into "
                           "(the image sets it)")
        return None
    path = Path(raw)
    if not path.is_dir():
        raise NotReady(f"{name}={raw} is not a folder: the weights it names are missing")
    if holds and not (path / holds).is_file():
        raise NotReady(f"{name}={raw} holds no model (no {holds})")
    return path
