"""Where the model comes from and how it is loaded: MODEL_PATH, model.toml, device, dtype, context length."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import settings
from shared.errors import StartupError

#: The one place the production model is named; the image build reads it too.
MODEL_TOML = Path(__file__).resolve().parents[1] / "model.toml"


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    tokenizer: Any
    #: Name clients use (OpenAI ``model``, /v1/models).
    served_name: str
    #: Most tokens (prompt + completion) one sequence may hold.
    context: int
    eos_ids: frozenset[int]


def model_path() -> Path:
    return settings.folder("MODEL_PATH", holds="config.json")


def load(path: Path) -> LoadedModel:
    """Tokenizer and model from a local folder, with the call production uses: offline, safetensors only,
    bf16 (fp16 without bf16 support) on a GPU, fp32 on the CPU.

    What no restart fixes is a StartupError (shared.serving): no weights, a model transformers cannot build
    (it says so with ValueError or KeyError), weights that do not fit the GPU. Anything else, an OSError
    reading the files included, may pass on a restart.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not any(path.glob("*.safetensors")):
        raise StartupError(f"MODEL_PATH={path} holds no *.safetensors weights",
                           "bake the model's safetensors files into that folder (the only format loaded)")
    on_gpu = torch.cuda.is_available()
    dtype = torch.float32
    if on_gpu:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, device_map="cuda" if on_gpu else "cpu", use_safetensors=True, local_files_only=True
        )
    except torch.cuda.OutOfMemoryError as exc:
        raise StartupError(f"the model at MODEL_PATH={path} does not fit in this GPU's memory",
                           "deploy the endpoint on a GPU with more memory, or bake a smaller model") from exc
    except (ValueError, KeyError) as exc:
        raise StartupError(f"MODEL_PATH={path} holds a model transformers cannot build ({type(exc).__name__}: "
                           f"{exc})", "bake a causal LM whose architecture this worker's transformers release "
                           "supports, or pin a release that has it in requirements.txt") from exc
    model.eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        served_name=served_name(path),
        context=context_length(model.config),
        eos_ids=eos_ids(model, tokenizer),
    )


def served_name(path: Path) -> str:
    """SERVED_MODEL_NAME, else the id in model.toml, else the folder's name."""
    if name := os.environ.get("SERVED_MODEL_NAME"):
        return name
    if MODEL_TOML.is_file():
        return tomllib.loads(MODEL_TOML.read_text())["id"]
    return path.name


def context_length(config: Any) -> int:
    """The model's context, capped by MAX_MODEL_LEN (KV cache memory grows with it)."""
    native = config.get_text_config().max_position_embeddings
    return min(settings.number("MAX_MODEL_LEN", native, minimum=2), native)


def eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Every token that ends a turn (Llama 3 Instruct lists several in its generation config)."""
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return frozenset(i for i in ids if i is not None)
