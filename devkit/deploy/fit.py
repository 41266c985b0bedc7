"""The GPU-fit check: does a worker's model, with the KV cache its limits allow, fit each GPU it may get?

Formula, per GPU type of the endpoint (numbers in decimal GB, 1 GB = 10^9 bytes)::

    weights  = sizes of the baked weight files, else parameters(config.json) x bytes per parameter,
               plus those of every extra model model.toml names (its tables: VAE, refiner) but for
               the components the worker takes from the main model (the table's from_base lists)
    kv cache = 2 (K and V) x layers x KV heads x head size x bytes per value
               x MAX_MODEL_LEN x MAX_CONCURRENCY                       (endpoint.toml [env])
    fits    <=> weights + kv cache <= catalog memory (GB) x GPU count x margin

``margin`` is GPU_MEMORY_UTILIZATION from [env] when set (vLLM reserves exactly that share), else
0.90: the other 10% is the CUDA context, activations and allocator slack. The catalog states memory
as "GB" (v2 GpuType.memory, "VRAM in GB"); it is taken as 10^9 bytes, the smaller reading, so the
check errs on the side of refusing. Models without a KV cache (SDXL) are checked on weights alone.
An extra model that replaces a part of the main one (sdxl's fp16-fix VAE) is counted on top of it:
0.17 GB more than loaded, on the refusing side as well.

No model hub is reachable from here, so the real models' config.json values are kept in KNOWN_MODELS
(each model's config.json at the revision model.toml pins); a local folder of baked files
(``<WORKER>_MODEL_DIR``, the bake variable of docs/images.md) wins over the table when it is set, and
for an extra model ``<WORKER>_EXTRAS_DIR/<table>`` (baked without the components taken from the main model).
The container disk is checked against the image: ``container.image_gb`` (from ``make sizes``)
plus 10% headroom for what the worker writes.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from devkit import endpoint_config
from devkit.deploy.api_models import GpuType
from devkit.endpoint_config import EndpointConfig

GB = 1e9
DEFAULT_MARGIN = 0.90
DISK_HEADROOM = 1.10
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8": 1, "int8": 1}


@dataclass(frozen=True)
class ModelShape:
    """What the check needs of a model: its weight bytes, and its KV cache bytes per token (0: none)."""

    name: str
    weight_bytes: float
    kv_bytes_per_token: float = 0.0


@dataclass(frozen=True)
class TransformerConfig:
    """The config.json values of a decoder-only transformer (Llama / Qwen2 layout)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    head_dim: int | None = None
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    torch_dtype: str = "bfloat16"

    @classmethod
    def from_json(cls, config: dict) -> TransformerConfig:
        fields = {k: config[k] for k in cls.__dataclass_fields__ if k in config}
        fields.setdefault("torch_dtype", config.get("dtype", "bfloat16"))
        if config.get("model_type") == "qwen2":
            fields["attention_bias"] = True  # Qwen2 has q/k/v biases; its config.json does not say so
        return cls(**fields)

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.torch_dtype]

    def parameters(self) -> int:
        h, heads, kv, d = self.hidden_size, self.num_attention_heads, self.num_key_value_heads, self.head_size
        attention = h * heads * d + 2 * h * kv * d + heads * d * h
        if self.attention_bias:
            attention += heads * d + 2 * kv * d
        mlp = 3 * h * self.intermediate_size  # gate, up, down
        layer = attention + mlp + 2 * h  # two RMSNorm weights
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_hidden_layers * layer + embeddings + h  # final norm

    def kv_bytes_per_token(self) -> int:
        return 2 * self.num_hidden_layers * self.num_key_value_heads * self.head_size * self.dtype_bytes

    def shape(self, name: str, weight_bytes: float | None = None) -> ModelShape:
        weights = weight_bytes if weight_bytes is not None else self.parameters() * self.dtype_bytes
        return ModelShape(name, weights, self.kv_bytes_per_token())


@dataclass(frozen=True)
class PipelineWeights:
    """A diffusers pipeline's weight bytes per component folder (``unet``, ``text_encoder_2``, ``vae``)."""

    name: str
    components: dict[str, float]

    def shape(self, name: str | None = None, without: Iterable[str] = ()) -> ModelShape:
        """The pipeline's weights but for the components in ``without`` (those another pipeline lends it)."""
        left_out = set(without)
        return ModelShape(name or self.name, sum(b for part, b in self.components.items() if part not in left_out))


#: config.json of the models workers/*/model.toml name (Hugging Face Hub, at the pinned revisions),
#: and SDXL's fp16 weight sizes (its unet, two text encoders and VAE: 2.57 B + 0.12 B + 0.69 B + 0.08 B
#: parameters x 2 bytes, the sizes of the repo's *.fp16.safetensors files); the refiner's per component
#: (unet 2.26 B, text_encoder_2 0.69 B, vae 0.08 B parameters x 2 bytes), the worker taking some from the
#: base; the fp16-fix VAE's 0.08 B parameters as loaded, in fp16 (its file holds them in fp32).
KNOWN_MODELS: dict[str, TransformerConfig | ModelShape | PipelineWeights] = {
    "meta-llama/Llama-3.2-1B-Instruct": TransformerConfig(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, head_dim=64, tie_word_embeddings=True),
    "Qwen/Qwen2.5-1.5B-Instruct": TransformerConfig(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
        num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, attention_bias=True),
    "stabilityai/stable-diffusion-xl-base-1.0": ModelShape("stable-diffusion-xl-base-1.0", 6.94 * GB),
    "stabilityai/stable-diffusion-xl-refiner-1.0": PipelineWeights("stable-diffusion-xl-refiner-1.0", {
        "unet": 4.52 * GB, "text_encoder_2": 1.39 * GB, "vae": 0.17 * GB}),
    "madebyollin/sdxl-vae-fp16-fix": ModelShape("sdxl-vae-fp16-fix", 0.17 * GB),
}


class FitError(ValueError):
    """A worker that cannot run on a GPU type it may be given, or whose image does not fit its disk."""


def model_shape(config: EndpointConfig, workers_dir: Path | None = None) -> ModelShape | None:
    """What the worker loads (workers/<name>/model.toml): its main model, with the KV cache, and each extra
    model of its tables; None for a worker without one."""
    model_toml = (workers_dir or endpoint_config.WORKERS_DIR) / config.name / "model.toml"
    if not model_toml.is_file():
        return None
    tables = tomllib.loads(model_toml.read_text())
    prefix = config.name.upper().replace("-", "_")
    main = _one_model(config.name, tables, f"{prefix}_MODEL_DIR")
    extras = [_one_model(config.name, table, f"{prefix}_EXTRAS_DIR", name)
              for name, table in tables.items() if isinstance(table, dict)]
    if not extras:
        return main
    return ModelShape(" + ".join([main.name, *(extra.name for extra in extras)]),
                      main.weight_bytes + sum(extra.weight_bytes for extra in extras), main.kv_bytes_per_token)


def _one_model(worker: str, table: dict, variable: str, subfolder: str = "") -> ModelShape:
    """One model of model.toml (its top level or a table): from its baked folder when there is one, else
    KNOWN_MODELS, less the components the worker takes from the main model (``from_base``, and
    ``from_base_if_same``: the image bakes those only where they differ, and then their files count)."""
    model_id = table["id"]
    name = model_id.rsplit("/", 1)[-1]
    known = KNOWN_MODELS.get(model_id)
    root = os.environ.get(variable)
    if root and (Path(root) / subfolder).is_dir():
        return _from_folder(name, Path(root) / subfolder, known)
    if known is None:
        where = f"{variable}/{subfolder}" if subfolder else variable
        raise FitError(f"{worker}: {model_id} is not in devkit.deploy.fit.KNOWN_MODELS and {where} is not set: "
                       "no size to check (add its config.json values, or pass --force)")
    if isinstance(known, PipelineWeights):
        return known.shape(name, [*table.get("from_base", ()), *table.get("from_base_if_same", ())])
    return known.shape(name) if isinstance(known, TransformerConfig) else known


def _from_folder(name: str, folder: Path, known: TransformerConfig | ModelShape | PipelineWeights | None) -> ModelShape:
    files = sorted(folder.rglob("*.safetensors")) or sorted(folder.rglob("*.bin"))
    weights = float(sum(f.stat().st_size for f in files)) if files else None
    config_json = folder / "config.json"
    if config_json.is_file():
        config = json.loads(config_json.read_text())
        if "num_key_value_heads" in config or "num_attention_heads" in config:
            config.setdefault("num_key_value_heads", config["num_attention_heads"])
            return TransformerConfig.from_json(config).shape(name, weights)
    if isinstance(known, TransformerConfig):
        return known.shape(name, weights)
    if weights is None and isinstance(known, PipelineWeights):
        weights = known.shape().weight_bytes
    return ModelShape(name, weights if weights is not None else (known.weight_bytes if known else 0.0))


@dataclass(frozen=True)
class Fit:
    gpu: str
    model: ModelShape
    tokens: int
    capacity_gb: float
    count: int
    margin: float

    @property
    def kv_bytes(self) -> float:
        return self.model.kv_bytes_per_token * self.tokens

    @property
    def needed(self) -> float:
        return self.model.weight_bytes + self.kv_bytes

    @property
    def available(self) -> float:
        return self.capacity_gb * GB * self.count * self.margin

    @property
    def fits(self) -> bool:
        return self.needed <= self.available

    def describe(self) -> str:
        kv = f" + {self.kv_bytes / GB:.1f} GB KV" if self.model.kv_bytes_per_token else ""
        if self.model.kv_bytes_per_token and not self.tokens:
            kv = " + KV not counted (MAX_MODEL_LEN unset)"
        count = f" x {self.count}" if self.count > 1 else ""
        relation = "<=" if self.fits else ">"
        return (f"{self.model.name}: {self.model.weight_bytes / GB:.1f} GB weights{kv} {relation} "
                f"{self.capacity_gb:g} GB{count} x {self.margin:.2f} on {self.gpu}")


def _env_number(config: EndpointConfig, name: str, default: float, kind: type = int) -> float:
    value = config.env.get(name)
    try:
        number = kind(value) if value is not None else default
    except ValueError:
        raise FitError(f"{config.name}: env.{name}: not a number: {value!r}") from None
    if number < 0 or (name == "GPU_MEMORY_UTILIZATION" and not 0 < number <= 1):
        raise FitError(f"{config.name}: env.{name}: out of range: {value!r}")
    return number


def kv_tokens(config: EndpointConfig) -> int:
    """Tokens the KV cache must hold: MAX_MODEL_LEN x MAX_CONCURRENCY (0 when MAX_MODEL_LEN is unset)."""
    return int(_env_number(config, "MAX_MODEL_LEN", 0)) * int(_env_number(config, "MAX_CONCURRENCY", 1))


def check_gpus(config: EndpointConfig, model: ModelShape, catalog: dict[str, GpuType]) -> list[Fit]:
    """One Fit per GPU type of the endpoint (types missing from the catalog are the plan's error)."""
    margin = _env_number(config, "GPU_MEMORY_UTILIZATION", DEFAULT_MARGIN, float)
    return [Fit(t, model, kv_tokens(config), catalog[t].memory, config.gpu.count, margin)
            for t in config.gpu.types if t in catalog]


def check_disk(config: EndpointConfig) -> str | None:
    """The refusal when the image does not fit the container disk; None when it does or is not stated."""
    image_gb = config.container.image_gb
    if image_gb is not None and image_gb * DISK_HEADROOM > config.container.disk_gb:
        return (f"{config.name}: image {image_gb:g} GB x {DISK_HEADROOM:.2f} headroom > container disk "
                f"{config.container.disk_gb} GB (container.disk_gb)")
    return None


def check(config: EndpointConfig, catalog: dict[str, GpuType],
          workers_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """(lines that pass, refusals) of the check for one worker; FitError when the model has no known size."""
    lines, refusals = [], []
    model = model_shape(config, workers_dir)
    if model is None:
        lines.append(f"{config.name}: no model.toml: GPU memory not checked")
    else:
        for fit in check_gpus(config, model, catalog):
            (lines if fit.fits else refusals).append(fit.describe())
    disk = check_disk(config)
    if disk:
        refusals.append(disk)
    return lines, refusals
