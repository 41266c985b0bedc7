"""Startup: MODEL_PATH checks, the served name from model.toml, the context cap, the load call's choices; what no
restart fixes is a StartupError (shared.serving answers jobs with it)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest
import torch
from transformers import AutoConfig

from devkit.fixtures.llm import CONTEXT
from shared.errors import StartupError
from worker_llm_hf.loading import MODEL_TOML, context_length, load, model_path, served_name
from worker_llm_hf.worker import LlmHf


def test_setup_without_model_path_is_a_startup_error(monkeypatch):
    monkeypatch.delenv("MODEL_PATH", raising=False)
    with pytest.raises(StartupError, match="MODEL_PATH is not set"):
        LlmHf().setup()


def test_setup_with_an_empty_folder_is_a_startup_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_PATH", str(tmp_path))
    with pytest.raises(StartupError, match="no model"):
        model_path()


def test_a_folder_without_safetensors_weights_is_a_startup_error(tmp_path, tiny_llm_dir):
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((tiny_llm_dir / name).read_bytes())
    with pytest.raises(StartupError, match=r"holds no \*.safetensors weights; bake"):
        load(tmp_path)


def test_a_model_transformers_cannot_build_is_a_startup_error(tmp_path, tiny_llm_dir):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    (tmp_path / "model.safetensors").write_bytes((tiny_llm_dir / "model.safetensors").read_bytes())
    with pytest.raises(StartupError, match="holds a model transformers cannot build") as info:
        load(tmp_path)
    assert "requirements.txt" in info.value.fix


def test_served_name_is_the_model_toml_id_unless_overridden(monkeypatch, tiny_llm_dir):
    monkeypatch.delenv("SERVED_MODEL_NAME", raising=False)
    assert served_name(tiny_llm_dir) == tomllib.loads(MODEL_TOML.read_text())["id"]
    monkeypatch.setenv("SERVED_MODEL_NAME", "my-model")
    assert served_name(tiny_llm_dir) == "my-model"


def test_model_toml_pins_a_revision():
    model = tomllib.loads(MODEL_TOML.read_text())
    assert len(model["revision"]) == 40 and int(model["revision"], 16) >= 0


@pytest.mark.parametrize(("limit", "expected"), [(None, CONTEXT), ("100", 100), ("100000", CONTEXT)])
def test_max_model_len_caps_the_context(monkeypatch, tiny_llm_dir, limit, expected):
    if limit is None:
        monkeypatch.delenv("MAX_MODEL_LEN", raising=False)
    else:
        monkeypatch.setenv("MAX_MODEL_LEN", limit)
    assert context_length(AutoConfig.from_pretrained(tiny_llm_dir)) == expected


@pytest.mark.parametrize("limit", ["lots", "1"])
def test_bad_max_model_len_is_refused(monkeypatch, tiny_llm_dir, limit):
    monkeypatch.setenv("MAX_MODEL_LEN", limit)
    with pytest.raises(StartupError, match="MAX_MODEL_LEN"):
        context_length(AutoConfig.from_pretrained(tiny_llm_dir))


def test_cpu_load_is_fp32_eval_with_the_fixtures_end_tokens(worker):
    model = worker.loaded.model
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert not model.training
    assert worker.loaded.eos_ids == {worker.loaded.tokenizer.eos_token_id}
    assert worker.loaded.context == CONTEXT


def test_a_sliding_window_model_fails_setup_with_the_reason(monkeypatch, tmp_path, tiny_llm_dir):
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm_dir)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=16,
                           max_position_embeddings=128, eos_token_id=tokenizer.eos_token_id)
    MistralForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    monkeypatch.setenv("MODEL_PATH", str(tmp_path))
    llm = LlmHf()
    try:
        with pytest.raises(StartupError, match=r"DynamicSlidingWindowLayer.*serve it with the llm-vllm worker"):
            llm.setup()
    finally:
        llm.close()


def test_importing_the_worker_and_its_entrypoint_does_not_import_torch_or_transformers():
    # shared.serving: nothing heavy happens at import; the frameworks load in setup().
    done = subprocess.run(
        [sys.executable, "-c", "import sys, worker_llm_hf.worker, worker_llm_hf.__main__;"
         "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.stdout.strip() == "[]"
