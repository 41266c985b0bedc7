"""Per-worker endpoint configuration (``workers/<name>/endpoint.toml``), read by deploy and the local endpoint.

One file per worker, reviewed like code. A named scaling profile gives the defaults; the file's
``[scaling]`` table overrides single knobs::

    name = "progress-demo"
    profile = "development"            # development | latency-sensitive | cost-optimised
    [gpu]
    types = ["NVIDIA GeForce RTX 4090"]
    [scaling]
    max_workers = 2                    # overrides the profile's value

Every table refuses keys it does not know, and every number has its bounds: the error names the file
and the field. Secrets never go in this file: an env var whose name looks secret (``*TOKEN*``,
``*KEY*``, ``*SECRET*``, ``*PASSWORD*``, ``*CREDENTIAL*``) must hold a RunPod secret reference,
``{{ RUNPOD_SECRET_<name> }}``, which RunPod resolves when it starts a worker.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO = Path(__file__).resolve().parents[1]
WORKERS_DIR = REPO / "workers"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scaling(_Strict):
    min_workers: int = Field(ge=0, le=100, description="Workers kept warm even with no jobs.")
    max_workers: int = Field(ge=1, le=100, description="Most workers running at once.")
    idle_timeout: int = Field(ge=1, le=3600, description="Seconds an idle worker waits before it stops.")
    execution_timeout: int = Field(ge=5, le=7 * 24 * 3600, description="Seconds a job may run before TIMED_OUT.")
    flashboot: bool = Field(description="RunPod FlashBoot (snapshot-based fast start).")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Scaling:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) is above max_workers ({self.max_workers})")
        return self


class ScalingOverrides(_Strict):
    """``[scaling]``: single knobs of the profile; the result is checked as a whole (min <= max)."""

    min_workers: int | None = None
    max_workers: int | None = None
    idle_timeout: int | None = None
    execution_timeout: int | None = None
    flashboot: bool | None = None


#: The seed's named scaling profiles, with the seed's numbers (seed design doc, "Example
#: Configurations"). FlashBoot is on in all three: the seed's table says "Always enable if available",
#: and only cost-optimised names it explicitly.
PROFILES: dict[str, Scaling] = {
    "development": Scaling(min_workers=0, max_workers=1, idle_timeout=30, execution_timeout=300, flashboot=True),
    "latency-sensitive": Scaling(
        min_workers=2, max_workers=10, idle_timeout=120, execution_timeout=60, flashboot=True
    ),
    "cost-optimised": Scaling(min_workers=0, max_workers=5, idle_timeout=60, execution_timeout=300, flashboot=True),
}

_CUDA_VERSION = r"^\d+\.\d+$"


class Gpu(_Strict):
    types: list[str] = Field(min_length=1, description="RunPod GPU type ids (catalog `id`), in order of preference.")
    count: int = Field(1, ge=1, le=8)
    allowed_cuda_versions: list[str] | None = Field(
        None, description="Exact CUDA versions (major.minor) a worker's host may have; excludes min_cuda_version.")
    min_cuda_version: str | None = Field(
        None, pattern=_CUDA_VERSION,
        description="Lowest CUDA version of the host's driver; default: the image's CUDA version.")

    @field_validator("allowed_cuda_versions")
    @classmethod
    def _cuda_versions(cls, versions: list[str] | None) -> list[str] | None:
        bad = [v for v in versions or () if not re.match(_CUDA_VERSION, v)]
        if bad:
            raise ValueError(f"not a major.minor CUDA version: {', '.join(bad)}")
        return versions

    @model_validator(mode="after")
    def _one_cuda_constraint(self) -> Gpu:
        # RunPod REST v2 answers 400 to both (CreateEndpointGpuConfig.minCudaVersion).
        if self.allowed_cuda_versions and self.min_cuda_version:
            raise ValueError("allowed_cuda_versions and min_cuda_version exclude each other: set one")
        return self


class Container(_Strict):
    disk_gb: int = Field(20, ge=5, le=500, description="Container disk; the image (weights included) must fit.")
    image_gb: float | None = Field(
        None, gt=0, le=500, description="Uncompressed image size (`make sizes`), for the disk check.")
    registry_auth_id: str | None = Field(None, description="RunPod registry credential id for private images.")


class Placement(_Strict):
    data_centers: list[str] = Field(default_factory=list, description="Data centre ids; empty: RunPod chooses.")
    network_volumes: list[str] = Field(default_factory=list, description="Network volume ids to attach.")


class Scaler(_Strict):
    """How RunPod adds workers: queue wait in seconds, or in-flight requests per worker."""

    type: Literal["QUEUE_DELAY", "REQUEST_COUNT"] = "QUEUE_DELAY"
    #: RunPod's console default: 4 s of queue delay.
    value: float = Field(4, description="QUEUE_DELAY: 0.5-3600 s; REQUEST_COUNT: 1-1000 requests (whole).")

    @model_validator(mode="after")
    def _value_in_range(self) -> Scaler:
        if self.type == "QUEUE_DELAY" and not 0.5 <= self.value <= 3600:
            raise ValueError(f"value: QUEUE_DELAY takes 0.5 to 3600 seconds, not {self.value:g}")
        if self.type == "REQUEST_COUNT" and (self.value != int(self.value) or not 1 <= self.value <= 1000):
            raise ValueError(f"value: REQUEST_COUNT takes a whole 1 to 1000, not {self.value:g}")
        return self


#: Env names that usually carry credentials; their values must be RunPod secret references.
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
_SECRET_REFERENCE = re.compile(r"^\{\{\s*RUNPOD_SECRET_[A-Za-z0-9_-]+\s*\}\}$")
#: A CUDA version in a base image's reference, as CUDA images name it: pytorch/pytorch:2.13.0-cuda12.8-...,
#: nvidia/cuda:12.8.1-runtime-ubuntu24.04.
_CUDA_IN_TAG = re.compile(r"(?:cuda[-_]?|nvidia/cuda:)(\d+)\.(\d+)", re.IGNORECASE)
_BASE_IMAGE_ARG = re.compile(r"^ARG\s+BASE_IMAGE=(\S+)", re.MULTILINE)


class EndpointConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    profile: Literal["development", "latency-sensitive", "cost-optimised"] = "development"
    image: str | None = Field(None, description="Full image reference; default <REGISTRY>/<name>:<TAG>.")
    gpu: Gpu
    container: Container = Container()
    placement: Placement = Placement()
    scaler: Scaler = Scaler()
    env: dict[str, str] = Field(default_factory=dict, description="Non-secret environment of the workers.")
    scaling: ScalingOverrides = ScalingOverrides()

    @field_validator("env")
    @classmethod
    def _no_plain_secrets(cls, env: dict[str, str]) -> dict[str, str]:
        leaked = [name for name, value in env.items()
                  if _SECRET_NAME.search(name) and not _SECRET_REFERENCE.match(value)]
        if leaked:
            raise ValueError(
                f"{', '.join(sorted(leaked))}: looks like a secret; use a RunPod secret reference "
                "'{{ RUNPOD_SECRET_<name> }}' instead of a value in the repo"
            )
        return env

    def effective_scaling(self) -> Scaling:
        return Scaling.model_validate(PROFILES[self.profile].model_dump() | self.scaling.model_dump(exclude_none=True))

    def image_ref(self, registry: str | None = None, tag: str | None = None) -> str:
        """The image workers run: ``image`` if set, else ``<REGISTRY>/<name>:<TAG>``, the tag docker-bake.hcl
        gives it (TAG defaults to "dev" there and here; REGISTRY has no default: a local name cannot be pulled).
        """
        if self.image:
            return self.image
        registry = registry or os.environ.get("REGISTRY")
        if not registry:
            raise ConfigError(f"{self.name}: no image: set `image` in endpoint.toml or the REGISTRY env var")
        return f"{registry.rstrip('/')}/{self.name}:{tag or os.environ.get('TAG') or 'dev'}"

    def min_cuda_version(self) -> str | None:
        """The CUDA floor of the workers' hosts: ``gpu.min_cuda_version``, else none when an exact set is
        given, else the CUDA version the worker's base image names, so a CUDA 12.8 image never lands on a
        host whose driver is older (it would fail at start)."""
        if self.gpu.min_cuda_version or self.gpu.allowed_cuda_versions:
            return self.gpu.min_cuda_version
        return image_cuda_version(WORKERS_DIR / self.name / "Dockerfile")


def image_cuda_version(dockerfile: Path) -> str | None:
    """The CUDA version (major.minor) in the Dockerfile's ``ARG BASE_IMAGE=`` default, None if it names none."""
    try:
        base = _BASE_IMAGE_ARG.search(dockerfile.read_text())
    except OSError:
        return None
    found = _CUDA_IN_TAG.search(base.group(1)) if base else None
    return f"{found.group(1)}.{found.group(2)}" if found else None


class ConfigError(ValueError):
    """An endpoint.toml that cannot be used; the message names the file and every bad field."""


def load(path: Path) -> EndpointConfig:
    try:
        config = EndpointConfig.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
    try:
        config.effective_scaling()
    except ValidationError as exc:  # the profile and the overrides together
        raise ConfigError(f"{path}: {validation_problems(exc, prefix='scaling')}") from None
    return config


def validation_problems(exc: ValidationError, prefix: str = "") -> str:
    """One line: every problem as ``field.path: reason``."""
    return "; ".join(
        f"{'.'.join(map(str, [*([prefix] if prefix else []), *e['loc']])) or '(top)'}: {e['msg']}"
        for e in exc.errors()
    )


def worker_names() -> list[str]:
    return sorted(p.parent.name for p in WORKERS_DIR.glob("*/endpoint.toml"))


def for_worker(name: str) -> EndpointConfig:
    return load(WORKERS_DIR / name / "endpoint.toml")
