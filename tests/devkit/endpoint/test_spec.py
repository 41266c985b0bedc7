"""What the local endpoint runs for a worker: from its endpoint.toml, with overrides, and its process env."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from devkit import endpoint_config
from devkit.endpoint import LocalEndpoint, WorkerSpec


def test_a_repo_worker_runs_its_package_with_its_endpoint_toml_scaling_and_env():
    spec = WorkerSpec.from_repo("progress-demo")
    config = endpoint_config.for_worker("progress-demo")
    assert spec.module == "worker_progress_demo"
    assert spec.pythonpath == (endpoint_config.WORKERS_DIR / "progress-demo",)
    assert spec.scaling == config.effective_scaling()
    assert spec.env == config.env  # no weights: no MODEL_PATH


def test_overrides_add_env_and_change_single_scaling_knobs():
    spec = WorkerSpec.from_repo("progress-demo").with_overrides({"A": "1"}, {"max_workers": 3})
    assert spec.env["A"] == "1"
    assert spec.scaling.max_workers == 3
    assert spec.scaling.idle_timeout == WorkerSpec.from_repo("progress-demo").scaling.idle_timeout


def test_scaling_overrides_are_validated_like_endpoint_toml():
    with pytest.raises(ValidationError):
        WorkerSpec.from_repo("progress-demo").with_overrides(scaling={"max_workers": 0})


def test_the_process_env_puts_the_worker_folder_first_and_runpod_variables_last():
    spec = WorkerSpec.from_repo("progress-demo").with_overrides({"RUNPOD_POD_ID": "user-set"})
    env = spec.process_env({"PYTHONPATH": "/elsewhere", "HOME": "/root"}, {"RUNPOD_POD_ID": "w1"})
    assert env["PYTHONPATH"].split(":") == [str(spec.pythonpath[0]), "/elsewhere"]
    assert env["RUNPOD_POD_ID"] == "w1"
    assert env["HOME"] == "/root"


def test_the_endpoints_client_api_key_never_reaches_a_worker():
    env = WorkerSpec.from_repo("progress-demo").process_env({"RUNPOD_API_KEY": "client-key", "HOME": "/root"}, {})
    assert "RUNPOD_API_KEY" not in env and env["HOME"] == "/root"


def test_overrides_for_a_worker_that_is_not_served_are_refused():
    with pytest.raises(ValueError, match="not served"):
        LocalEndpoint(workers=["progress-demo"], scaling={"sdxl": {"max_workers": 1}})


def test_repo_workers_get_the_cpu_settings_their_tiny_model_needs_over_endpoint_toml():
    from devkit.fixtures.llm import CONTEXT

    spec = WorkerSpec.from_repo("llm-vllm")
    assert spec.env["MAX_MODEL_LEN"] == str(CONTEXT), "endpoint.toml's real-model context would not fit"
    assert spec.env["VLLM_CPU_KVCACHE_SPACE"] and spec.env["ENFORCE_EAGER"] == "true"
    assert spec.env["MODEL_PATH"].endswith("tiny-llama")


def test_make_dev_serves_the_tiny_lora_adapters_on_llm_vllm_only():
    from devkit.fixtures.llm import ADAPTER_BUILDERS
    from worker_llm_vllm import adapters

    path = WorkerSpec.from_repo("llm-vllm").env["ADAPTERS_PATH"]
    assert sorted(adapters.find(Path(path))) == sorted(ADAPTER_BUILDERS)
    assert "ADAPTERS_PATH" not in WorkerSpec.from_repo("llm-hf").env, "llm-hf serves no adapters"
    assert "ADAPTERS_PATH" not in WorkerSpec.from_repo("llm-vllm-embedding").env, "the adapters are the Llama's"


def test_an_images_env_leaves_out_the_local_fixture_folders_the_image_names_itself():
    spec = WorkerSpec.from_repo("llm-vllm")
    assert {"MODEL_PATH", "ADAPTERS_PATH"} <= set(spec.env)
    assert spec.image_env() == {k: v for k, v in spec.env.items() if k not in ("MODEL_PATH", "ADAPTERS_PATH")}


def test_a_worker_toml_variant_runs_the_same_package_on_its_own_fixture_with_its_env_over_the_workers():
    from devkit import fixtures, manifest

    spec = WorkerSpec.from_repo("llm-vllm-embedding")
    variant = manifest.load("llm-vllm").variants["embedding"]
    assert (spec.name, spec.module) == ("llm-vllm-embedding", "worker_llm_vllm")
    assert spec.scaling == endpoint_config.for_worker("llm-vllm").effective_scaling()
    assert spec.env["MODEL_PATH"] == str(fixtures.CACHE / variant.fixture.folder)
    assert spec.env["SERVED_MODEL_NAME"] == variant.fixture.env["SERVED_MODEL_NAME"]
    assert spec.env["VLLM_CPU_KVCACHE_SPACE"] == fixtures.cpu_env("llm-vllm")["VLLM_CPU_KVCACHE_SPACE"]
