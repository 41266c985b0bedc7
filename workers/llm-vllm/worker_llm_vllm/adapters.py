"""LoRA adapters baked beside the model: found at startup, checked against the LoRA limits, chosen per request.

The image bakes each adapter of model.toml's ``[adapters.<name>]`` into ``/adapters/<name>``
(shared/shared/weights.py) in PEFT's format (``adapter_config.json`` + ``adapter_model.safetensors``);
``ADAPTERS_PATH`` names that folder (the Dockerfile sets it). Every adapter folder in it is served
under its folder name: vLLM's OpenAI serving layer loads them as ``vllm serve --lora-modules
name=path`` does, so ``/v1/models`` lists them and an OpenAI ``model`` field selects one; a native
request's ``lora`` field and worker-vllm's ``sampling_params.model`` take the same ``LoRARequest``
from it. vLLM batches requests of different adapters (and of the base model) together, up to
``MAX_LORAS`` distinct adapters per step.

Limits are vLLM's LoRA settings, under their worker-vllm env names (README "Engine settings"): an adapter
whose rank is over ``MAX_LORA_RANK`` (vLLM's default 16) and more adapters than ``MAX_CPU_LORAS`` (every
adapter stays loaded in CPU memory, so no request waits for a disk load; default: the number of
adapters) fail startup naming the setting, before the engine starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.errors import BadInput, StartupError

log = logging.getLogger(__name__)

#: Where the image bakes the adapters (shared/weights.Dockerfile); unset or absent: no adapters.
ADAPTERS_ENV = "ADAPTERS_PATH"
#: PEFT's files: the config (rank, target modules) and the weights (safetensors only, never pickles).
CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
#: A served adapter name: what clients send as `model` / `lora` (also its folder's name).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class AdapterError(StartupError):
    """Baked adapters this engine cannot serve with its settings; the message names the adapter and the setting."""


def baked() -> dict[str, Path]:
    """The adapters in ADAPTERS_PATH's folder; {} when it is unset or absent (the image sets it; the folder
    exists only when model.toml names adapters)."""
    raw = os.environ.get(ADAPTERS_ENV, "").strip()
    if raw and not Path(raw).is_dir():
        log.info("%s=%s is not a folder: no LoRA adapters are served", ADAPTERS_ENV, raw)
    return find(Path(raw)) if raw else {}


def find(root: Path | None) -> dict[str, Path]:
    """name -> folder of every adapter under ``root`` (one folder each), sorted by name; {} without a root."""
    if root is None or not root.is_dir():
        return {}
    adapters = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not NAME.match(folder.name):
            raise AdapterError(f"adapter folder {folder} is not a valid adapter name",
                               "name adapters with letters, digits, '.', '_' and '-' (model.toml [adapters.<name>])")
        missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
        if missing:
            raise AdapterError(f"adapter {folder.name!r} ({folder}) has no {' or '.join(missing)}",
                               "bake PEFT adapters with safetensors weights (model.toml [adapters.<name>])")
        adapters[folder.name] = folder
    return adapters


def rank(folder: Path) -> int:
    """The LoRA rank ``r`` of a PEFT adapter folder (the largest one where ranks differ per module)."""
    config = json.loads((folder / CONFIG).read_text())
    ranks = [config.get("r", 8), *dict(config.get("rank_pattern") or {}).values()]  # PEFT's default r is 8
    return max(int(r) for r in ranks)


def check_limits(adapters: Mapping[str, Path], args: Any, given: Mapping[str, str]) -> None:
    """Refuse adapters the engine's LoRA settings (vLLM's parsed ``args``) cannot hold, naming the setting."""
    ranks = {name: rank(folder) for name, folder in adapters.items()}
    over = {name: r for name, r in ranks.items() if r > args.max_lora_rank}
    if over:
        raise AdapterError("; ".join(f"adapter {name!r} has rank {r}, over MAX_LORA_RANK={args.max_lora_rank}"
                                     for name, r in over.items()),
                           f"set MAX_LORA_RANK to at least {max(over.values())} (one of vLLM's 8, 16, 32, 64, 128, "
                           "256, 320, 512), or bake adapters of a lower rank")
    if "MAX_CPU_LORAS" in given and args.max_cpu_loras < len(adapters):
        raise AdapterError(f"{len(adapters)} adapters are baked ({', '.join(adapters)}), over MAX_CPU_LORAS="
                           f"{args.max_cpu_loras}: every adapter stays loaded",
                           f"set MAX_CPU_LORAS to at least {len(adapters)}, or unset it, or bake fewer adapters")


def served_names(state: Any) -> list[str]:
    """The model names this worker answers to: the base model's, then the adapters' (vLLM's serving state)."""
    models = state.openai_serving_models
    return [path.name for path in models.base_model_paths] + sorted(models.lora_requests)


def lora_request(state: Any, name: str | None, field: str) -> Any:
    """vLLM's ``LoRARequest`` for adapter ``name`` (None: the base model, by no name or its own name);
    BadInput naming ``field`` and every known name otherwise."""
    models = state.openai_serving_models
    if name is None or models.is_base_model(name):
        return None
    if name in models.lora_requests:
        return models.lora_requests[name]
    raise BadInput.field(field, f"unknown model or adapter; known: {', '.join(served_names(state))}", name)
