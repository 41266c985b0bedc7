"""Worker settings from environment variables: bounded numbers and baked folders, each refusal naming the variable.

Read in ``setup()`` (never at import). A bad value is a `StartupError` (no restart fixes it): the worker
stays in its job loop and answers every job with the variable, the value and what to change
(shared.serving), instead of crash-looping.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TypeVar

from shared.errors import StartupError

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
        raise StartupError(f"{name} must be {noun} {bounds}, got {raw!r}",
                           f"set {name} to {noun} {bounds} in the endpoint's environment, or unset it for the default")
    return value


def folder(name: str, *, required: bool = True, holds: str | None = None) -> Path | None:
    """The folder ``os.environ[name]`` names (weights baked into the image); StartupError if it is not there.

    ``holds`` names a file the folder must contain (``config.json`` for a Hugging Face model).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        if required:
            raise StartupError(f"{name} is not set",
                               "set it to the folder the model weights were baked into (the image sets it)")
        return None
    path = Path(raw)
    if not path.is_dir():
        raise StartupError(f"{name}={raw} is not a folder: the weights it names are missing",
                           f"bake the weights into the image at {raw}, or set {name} to the folder that holds them")
    if holds and not (path / holds).is_file():
        raise StartupError(f"{name}={raw} holds no model (no {holds})",
                           f"set {name} to the folder that holds the model's {holds}, or rebuild the image")
    if not os.access(path, os.R_OK | os.X_OK):
        raise StartupError(f"{name}={raw} cannot be read by this process",
                           "make the folder readable by the image's user (chmod -R a+rX)")
    return path
