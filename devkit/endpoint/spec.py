"""What the local endpoint runs for one endpoint id: the worker's start module, its environment and scaling."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devkit import endpoint_config, manifest
from devkit.endpoint_config import Scaling

#: The key the endpoint's clients must send (read by ``python -m devkit.endpoint``). It never reaches a
#: worker: on RunPod a worker gets its own RUNPOD_AI_API_KEY, never the key clients call with.
API_KEY_ENV = "RUNPOD_API_KEY"


#: Env vars naming the local fixture folders the endpoint serves from (.models/): an image names its own.
FIXTURE_FOLDER_ENVS = ("MODEL_PATH", "ADAPTERS_PATH")


@dataclass(frozen=True)
class WorkerSpec:
    """One endpoint id (the worker's name) and how to start and scale its worker processes."""

    name: str
    #: Started as ``python -m <module>``: the image's start command.
    module: str
    #: Folders prepended to PYTHONPATH (the worker folder holding the package).
    pythonpath: tuple[Path, ...]
    scaling: Scaling
    #: Worker environment on top of the endpoint's own (endpoint.toml [env], MODEL_PATH, overrides).
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_repo(cls, name: str) -> WorkerSpec:
        """A worker of ``workers/<name>/``, configured by its endpoint.toml, on its tiny fixture model
        with the settings that model needs on a CPU; or, for ``<worker>-<variant>``, that worker on the tiny
        model of its worker.toml ``[variants.<variant>]``."""
        from devkit import fixtures  # builds weights on first use: only when an endpoint is really made

        declared, variant = manifest.endpoint_of(name)
        config = endpoint_config.for_worker(declared.name)
        model_path, cpu_env = fixtures.for_endpoint(name)
        env = dict(config.env) | cpu_env
        if model_path is not None:
            env["MODEL_PATH"] = str(model_path)
        # A variant serves another model: the worker's adapters are for its own.
        adapters_path = fixtures.adapters_for_worker(declared.name) if variant is None else None
        if adapters_path is not None:
            env["ADAPTERS_PATH"] = str(adapters_path)
        return cls(
            name=name,
            module=declared.package,
            pythonpath=(declared.folder,),
            scaling=config.effective_scaling(),
            env=env,
        )

    def image_env(self) -> dict[str, str]:
        """The env without the local fixture folders: a worker image bakes its model and adapters and names
        them itself (its Dockerfile's ENV)."""
        return {key: value for key, value in self.env.items() if key not in FIXTURE_FOLDER_ENVS}

    def with_overrides(self, env: dict[str, str] | None = None, scaling: dict[str, Any] | None = None) -> WorkerSpec:
        """This spec with extra environment and scaling knobs, validated like endpoint.toml's."""
        return replace(
            self,
            env={**self.env, **(env or {})},
            scaling=Scaling.model_validate(self.scaling.model_dump() | (scaling or {})),
        )

    def process_env(self, base: dict[str, str], runpod_env: dict[str, str]) -> dict[str, str]:
        """The full environment of one worker process."""
        pythonpath = [str(p) for p in self.pythonpath]
        if base.get("PYTHONPATH"):
            pythonpath.append(base["PYTHONPATH"])
        return {
            **{key: value for key, value in base.items() if key != API_KEY_ENV},
            **self.env,
            **runpod_env,
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "PYTHONUNBUFFERED": "1",
        }
