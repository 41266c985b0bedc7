""".ci/extras_dir.py: CI's local folder of a worker's extra models, one tiny stand-in per model.toml table."""

from __future__ import annotations

import pytest

from tests.images.test_bake import load_ci_module


@pytest.fixture(scope="module")
def extras_dir():
    return load_ci_module("extras_dir")


def test_sdxl_gets_a_folder_per_table_laid_out_as_the_weights_stage_reads_it(extras_dir, tmp_path):
    out = extras_dir.lay_out("sdxl", tmp_path / "extras")
    assert sorted(p.name for p in out.iterdir()) == ["refiner", "vae"]
    assert (out / "vae" / "config.json").is_file()
    assert (out / "refiner" / "model_index.json").is_file() and not (out / "refiner" / "vae").exists()


def test_a_worker_without_tables_or_without_a_model_gets_no_folder(extras_dir, tmp_path):
    assert extras_dir.lay_out("llm-hf", tmp_path / "a") is None
    assert extras_dir.lay_out("progress-demo", tmp_path / "b") is None


def test_a_table_with_no_tiny_stand_in_is_refused_by_name(extras_dir, tmp_path):
    workers = tmp_path / "workers"
    (workers / "sdxl").mkdir(parents=True)
    (workers / "sdxl" / "model.toml").write_text('id = "a/b"\n[upscaler]\nid = "c/d"\n')
    with pytest.raises(SystemExit, match=r"\['upscaler'\] have no tiny stand-in"):
        extras_dir.lay_out("sdxl", tmp_path / "out", workers)


def test_llm_vllm_gets_its_tiny_lora_adapters_and_the_bake_override_naming_them(extras_dir, tmp_path):
    import json

    from devkit.fixtures.llm import ADAPTER_BUILDERS

    out = extras_dir.lay_out("llm-vllm", tmp_path / "extras")
    assert sorted(p.name for p in out.iterdir()) == ["adapters"]
    assert sorted(p.name for p in (out / "adapters").iterdir() if p.is_dir()) == sorted(ADAPTER_BUILDERS)
    assert (out / "adapters" / "tiny-lora" / "adapter_config.json").is_file()
    override = json.loads(extras_dir.adapters_override("llm-vllm"))
    assert sorted(override) == sorted(ADAPTER_BUILDERS)
    assert all(set(table) == {"id", "revision", "license"} for table in override.values())
    assert extras_dir.adapters_override("llm-hf") is None, "llm-hf serves no adapters"
