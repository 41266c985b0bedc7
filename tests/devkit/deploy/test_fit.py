"""The GPU-fit check: the formula over a table of model configs x GPUs, and deploy refusing before any write."""

from __future__ import annotations

import json

import pytest

from devkit.deploy.fit import GB, KNOWN_MODELS, Fit, ModelShape, PipelineWeights, TransformerConfig, model_shape
from devkit.endpoint_config import load

#: config.json of Llama-3.1-8B (Hugging Face Hub, meta-llama/Llama-3.1-8B): the issue's refusal example.
LLAMA_31_8B = TransformerConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                num_attention_heads=32, num_key_value_heads=8, vocab_size=128256)
LLAMA_32_1B = KNOWN_MODELS["meta-llama/Llama-3.2-1B-Instruct"]
QWEN_25_15B = KNOWN_MODELS["Qwen/Qwen2.5-1.5B-Instruct"]
SDXL = KNOWN_MODELS["stabilityai/stable-diffusion-xl-base-1.0"]


@pytest.mark.parametrize(("config", "published"), [
    (LLAMA_32_1B, 1.24e9), (QWEN_25_15B, 1.54e9), (LLAMA_31_8B, 8.03e9),
])
def test_parameters_from_config_json_match_the_published_counts(config, published):
    assert config.parameters() == pytest.approx(published, rel=0.005)


def test_the_kv_cache_is_two_tensors_per_layer_per_kv_head_per_token():
    # 2 x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB a token; 8192 x 8 tokens = 8 GiB.
    assert LLAMA_31_8B.kv_bytes_per_token() == 128 * 1024
    assert LLAMA_31_8B.kv_bytes_per_token() * 8192 * 8 == 8 * 2**30


# model, tokens (MAX_MODEL_LEN x MAX_CONCURRENCY), GPU, its catalog GB, count, margin, fits
TABLE = [
    ("Llama-3.2-1B", LLAMA_32_1B, 8192 * 8, "NVIDIA GeForce RTX 4090", 24, 1, 0.90, True),
    ("Llama-3.2-1B", LLAMA_32_1B, 8192 * 8, "NVIDIA RTX A4000", 16, 1, 0.90, True),
    ("Qwen2.5-1.5B", QWEN_25_15B, 16384 * 30, "NVIDIA L4", 24, 1, 0.90, True),
    ("Qwen2.5-1.5B", QWEN_25_15B, 16384 * 30, "NVIDIA RTX A4000", 16, 1, 0.90, False),
    ("Qwen2.5-1.5B", QWEN_25_15B, 32768 * 64, "NVIDIA A100 80GB PCIe", 80, 1, 0.90, True),
    ("Qwen2.5-1.5B", QWEN_25_15B, 32768 * 96, "NVIDIA A100 80GB PCIe", 80, 1, 0.90, False),
    ("Llama-3.1-8B", LLAMA_31_8B, 8192 * 8, "NVIDIA GeForce RTX 4090", 24, 1, 0.90, False),
    ("Llama-3.1-8B", LLAMA_31_8B, 8192 * 8, "NVIDIA GeForce RTX 4090", 24, 2, 0.90, True),
    ("Llama-3.1-8B", LLAMA_31_8B, 8192 * 8, "NVIDIA L40S", 48, 1, 0.90, True),
    ("Llama-3.1-8B", LLAMA_31_8B, 8192 * 8, "NVIDIA A100 80GB PCIe", 80, 1, 0.90, True),
    ("SDXL", SDXL, 0, "NVIDIA RTX A4000", 16, 1, 0.90, True),
    ("SDXL", SDXL, 0, "NVIDIA GeForce RTX 3080", 10, 1, 0.60, False),
]


@pytest.mark.parametrize(("name", "model", "tokens", "gpu", "memory", "count", "margin", "fits"), TABLE,
                         ids=[f"{row[0]}-{row[3]}-x{row[5]}" for row in TABLE])
def test_the_fit_table(name, model, tokens, gpu, memory, count, margin, fits):
    shape = model.shape(name) if isinstance(model, TransformerConfig) else model
    fit = Fit(gpu, shape, tokens, memory, count, margin)
    assert fit.fits is fits
    assert fit.needed == shape.weight_bytes + shape.kv_bytes_per_token * tokens
    assert fit.available == memory * GB * count * margin


def test_a_refusal_states_the_numbers():
    fit = Fit("NVIDIA GeForce RTX 4090", LLAMA_31_8B.shape("Llama-3.1-8B"), 8192 * 8, 24, 1, 0.90)
    assert fit.describe() == "Llama-3.1-8B: 16.1 GB weights + 8.6 GB KV > 24 GB x 0.90 on NVIDIA GeForce RTX 4090"


BIG = """
name = "big"
profile = "development"
[gpu]
types = ["NVIDIA L40S", "NVIDIA GeForce RTX 4090"]
[container]
disk_gb = 40
image_gb = 25
[env]
MAX_MODEL_LEN = "8192"
MAX_CONCURRENCY = "8"
"""


@pytest.fixture
def big(workers_dir, tmp_path):
    """A worker serving Llama-3.1-8B from a baked folder: its config.json, and one weights file of its size."""
    folder = tmp_path / "baked"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "torch_dtype": "bfloat16"}))
    with open(folder / "model.safetensors", "wb") as weights:
        weights.truncate(16_060_522_496)  # sparse: the size of Llama-3.1-8B's bf16 safetensors
    workers_dir("big", BIG, model_toml='id = "meta-llama/Llama-3.1-8B"\nrevision = "0"\n')
    return folder


def test_baked_files_give_the_weights_and_their_config_json_the_kv_cache(big, monkeypatch):
    monkeypatch.setenv("BIG_MODEL_DIR", str(big))
    from devkit import endpoint_config

    shape = model_shape(load(endpoint_config.WORKERS_DIR / "big" / "endpoint.toml"))
    assert shape == ModelShape("Llama-3.1-8B", 16_060_522_496, 128 * 1024)


def test_deploy_refuses_a_model_that_does_not_fit_before_creating_anything(runpod, big, deploy, monkeypatch):
    monkeypatch.setenv("BIG_MODEL_DIR", str(big))
    status, out = deploy("deploy")
    assert status == 2
    assert "GPU-fit check refused, nothing was created" in out
    assert "Llama-3.1-8B: 16.1 GB weights + 8.6 GB KV > 24 GB x 0.90 on NVIDIA GeForce RTX 4090" in out
    assert "fit: Llama-3.1-8B: 16.1 GB weights + 8.6 GB KV <= 48 GB x 0.90 on NVIDIA L40S" in out
    assert runpod.writes() == []


def test_a_model_without_a_size_is_refused_unless_forced(runpod, big, deploy):
    status, out = deploy("deploy")  # no baked folder, and Llama-3.1-8B is not in KNOWN_MODELS
    assert status == 2 and "not in devkit.deploy.fit.KNOWN_MODELS" in out
    status, out = deploy("deploy", "--force")
    assert status == 0, out
    assert "GPU-fit check skipped (--force)" in out
    assert len(runpod.endpoints) == 1


def test_an_image_larger_than_the_container_disk_is_refused(runpod, big, deploy, monkeypatch, workers_dir):
    monkeypatch.setenv("BIG_MODEL_DIR", str(big))
    workers_dir("big", BIG.replace('"NVIDIA L40S", "NVIDIA GeForce RTX 4090"', '"NVIDIA L40S"')
                .replace("image_gb = 25", "image_gb = 38"))
    status, out = deploy("deploy")
    assert status == 2
    assert "big: image 38 GB x 1.10 headroom > container disk 40 GB (container.disk_gb)" in out
    assert runpod.writes() == []


def test_every_repo_worker_fits_its_gpus(runpod, deploy):
    status, out = deploy("deploy", "--dry-run")
    assert status == 0, out
    assert "Qwen2.5-1.5B-Instruct: 3.1 GB weights + 14.1 GB KV <= 24 GB x 0.90 on NVIDIA L4" in out


def test_a_bad_number_in_env_is_refused_naming_the_field(runpod, big, deploy, monkeypatch, workers_dir):
    monkeypatch.setenv("BIG_MODEL_DIR", str(big))
    workers_dir("big", BIG.replace('MAX_CONCURRENCY = "8"', 'MAX_CONCURRENCY = "eight"'))
    status, out = deploy("deploy")
    assert status == 2 and "big: env.MAX_CONCURRENCY: not a number: 'eight'" in out
    assert runpod.writes() == []


def test_without_max_model_len_the_kv_cache_is_said_not_to_be_counted():
    fit = Fit("NVIDIA L40S", LLAMA_31_8B.shape("Llama-3.1-8B"), 0, 48, 1, 0.90)
    assert fit.describe() == ("Llama-3.1-8B: 16.1 GB weights + KV not counted (MAX_MODEL_LEN unset) "
                              "<= 48 GB x 0.90 on NVIDIA L40S")


REFINER = KNOWN_MODELS["stabilityai/stable-diffusion-xl-refiner-1.0"]
FP16_FIX_VAE = KNOWN_MODELS["madebyollin/sdxl-vae-fp16-fix"]


def test_sdxl_counts_its_vae_and_the_refiners_unet_but_not_what_the_refiner_takes_from_the_base(repo):
    shape = model_shape(load(repo / "workers" / "sdxl" / "endpoint.toml"))
    # model.toml's [refiner]: from_base = ["vae"], from_base_if_same = ["text_encoder_2", "tokenizer_2"]
    assert shape.weight_bytes == SDXL.weight_bytes + FP16_FIX_VAE.weight_bytes + REFINER.components["unet"]
    assert shape.name == "stable-diffusion-xl-base-1.0 + sdxl-vae-fp16-fix + stable-diffusion-xl-refiner-1.0"
    assert shape.kv_bytes_per_token == 0


SDXL_LIKE = """
name = "pics"
profile = "development"
[gpu]
types = ["NVIDIA GeForce RTX 4090"]
"""
SDXL_LIKE_MODEL = """
id = "stabilityai/stable-diffusion-xl-base-1.0"
revision = "0"
[refiner]
id = "stabilityai/stable-diffusion-xl-refiner-1.0"
revision = "0"
from_base = ["vae"]
"""


def test_an_extra_pipeline_counts_every_component_it_does_not_take_from_the_base(workers_dir):
    from devkit import endpoint_config

    workers_dir("pics", SDXL_LIKE, model_toml=SDXL_LIKE_MODEL)
    shape = model_shape(load(endpoint_config.WORKERS_DIR / "pics" / "endpoint.toml"))
    assert shape.weight_bytes == SDXL.weight_bytes + REFINER.components["unet"] + REFINER.components["text_encoder_2"]


def test_a_baked_extra_model_is_counted_from_its_files(workers_dir, tmp_path, monkeypatch):
    from devkit import endpoint_config

    unet = tmp_path / "extras" / "refiner" / "unet"
    unet.mkdir(parents=True)
    with open(unet / "diffusion_pytorch_model.fp16.safetensors", "wb") as weights:
        weights.truncate(4_000_000_000)  # sparse
    monkeypatch.setenv("PICS_EXTRAS_DIR", str(tmp_path / "extras"))
    workers_dir("pics", SDXL_LIKE, model_toml=SDXL_LIKE_MODEL)
    shape = model_shape(load(endpoint_config.WORKERS_DIR / "pics" / "endpoint.toml"))
    assert shape.weight_bytes == SDXL.weight_bytes + 4_000_000_000


def test_an_extra_model_without_a_size_is_refused_naming_its_folder(runpod, deploy, workers_dir):
    workers_dir("pics", SDXL_LIKE, model_toml=SDXL_LIKE_MODEL.replace("stable-diffusion-xl-refiner-1.0", "unknown"))
    status, out = deploy("deploy")
    assert status == 2
    assert "stabilityai/unknown is not in devkit.deploy.fit.KNOWN_MODELS and PICS_EXTRAS_DIR/refiner is not set" in out


def test_a_pipelines_weights_leave_out_the_components_it_is_lent():
    pipeline = PipelineWeights("p", {"unet": 3.0, "vae": 1.0})
    assert pipeline.shape().weight_bytes == 4.0
    assert pipeline.shape("q", ["vae"]) == ModelShape("q", 3.0)
