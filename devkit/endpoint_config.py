"""Per-worker endpoint configuration (``workers/<name>/endpoint.toml``), read by deploy and the local endpoint.

One file per worker, reviewed like code. A named scaling profile gives the defaults; the file's
``[scaling]`` table overrides single knobs::

    name = "progress-demo"
    profile = "development"            # development | latency-sensitive | cost-optimised
    [gpu]
    types = ["NVIDIA GeForce RTX 4090"]
    [scaling]
    max_workers = 2                    # overrides the profile's value

Secrets never go in this file: an env var whose name looks secret (``*TOKEN*``, ``*KEY*``,
``*SECRET*``, ``*PASSWORD*``) must hold a RunPod secret reference, ``{{ RUNPOD_SECRET_<name> }}``,
which RunPod resolves when it starts a worker.
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


#: The seed's named scaling profiles.
PROFILES: dict[str, Scaling] = {
    "development": Scaling(min_workers=0, max_workers=1, idle_timeout=5, execution_timeout=600, flashboot=True),
    "latency-sensitive": Scaling(
        min_workers=1, max_workers=10, idle_timeout=60, execution_timeout=300, flashboot=True
    ),
    "cost-optimised": Scaling(min_workers=0, max_workers=3, idle_timeout=5, execution_timeout=1800, flashboot=True),
}


class Gpu(_Strict):
    types: list[str] = Field(min_length=1, description="RunPod GPU type ids, in order of preference.")
    count: int = Field(1, ge=1, le=8)


class Container(_Strict):
    disk_gb: int = Field(20, ge=5, le=500, description="Container disk; the image (weights included) must fit.")
    network_volume_id: str | None = None
    registry_auth_id: str | None = Field(None, description="RunPod registry credential id for private images.")


#: Env names that usually carry credentials; their values must be RunPod secret references.
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
_SECRET_REFERENCE = re.compile(r"^\{\{\s*RUNPOD_SECRET_[A-Za-z0-9_-]+\s*\}\}$")


class EndpointConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    profile: Literal["development", "latency-sensitive", "cost-optimised"] = "development"
    image: str | None = Field(None, description="Full image reference; default <REGISTRY>/<name>:<TAG>.")
    gpu: Gpu
    container: Container = Container()
    env: dict[str, str] = Field(default_factory=dict, description="Non-secret environment of the workers.")
    scaling: dict[str, int | bool] = Field(default_factory=dict, description="Overrides of the profile's knobs.")

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
        return Scaling.model_validate(PROFILES[self.profile].model_dump() | self.scaling)

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


class ConfigError(ValueError):
    """An endpoint.toml that cannot be used; the message names the file and every bad field."""


def load(path: Path) -> EndpointConfig:
    try:
        config = EndpointConfig.model_validate(tomllib.loads(path.read_text()))
        config.effective_scaling()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    return config


def worker_names() -> list[str]:
    return sorted(p.parent.name for p in WORKERS_DIR.glob("*/endpoint.toml"))


def for_worker(name: str) -> EndpointConfig:
    return load(WORKERS_DIR / name / "endpoint.toml")
