"""Engine settings: env vars with vLLM's option names, parsed and checked by vLLM before the engine starts."""

from __future__ import annotations

import pytest

from worker_llm_vllm import settings
from worker_llm_vllm.settings import EngineSettingsError

pytestmark = pytest.mark.vllm


def test_env_vars_become_vllm_serve_options(tiny_llm_dir):
    loaded = settings.load(tiny_llm_dir, {
        "MAX_MODEL_LEN": "256", "GPU_MEMORY_UTILIZATION": "0.8", "MAX_NUM_SEQS": "16", "ENFORCE_EAGER": "true",
        "ENABLE_PREFIX_CACHING": "off", "SERVED_MODEL_NAME": "tiny, tiny-alias", "TOOL_CALL_PARSER": "hermes",
    })
    args = loaded.args
    assert (args.max_model_len, args.gpu_memory_utilization, args.max_num_seqs) == (256, 0.8, 16)
    assert args.enforce_eager is True and args.enable_prefix_caching is False
    assert loaded.served_model_names == ["tiny", "tiny-alias"]
    assert args.tool_call_parser == "hermes"
    assert args.model == str(tiny_llm_dir)


def test_served_model_name_defaults_to_the_model_toml_id_then_to_the_folder(tiny_llm_dir):
    from worker_llm_vllm.worker import model_id

    assert model_id() == "Qwen/Qwen2.5-1.5B-Instruct"
    assert settings.load(tiny_llm_dir, {}, served_name=model_id()).served_model_names == [model_id()]
    assert settings.load(tiny_llm_dir, {"SERVED_MODEL_NAME": "x"}, served_name="y").served_model_names == ["x"]
    assert settings.load(tiny_llm_dir, {}).served_model_names == [str(tiny_llm_dir)]


def test_every_unparsable_variable_is_named_at_once(tiny_llm_dir):
    with pytest.raises(EngineSettingsError) as caught:
        settings.load(tiny_llm_dir, {"MAX_MODEL_LEN": "lots", "DTYPE": "float8", "ENFORCE_EAGER": "maybe",
                                     "GPU_MEMORY_UTILIZATION": "most"})
    problems = caught.value.refusals
    assert [problem.split("=")[0] for problem in problems] == [
        "MAX_MODEL_LEN", "GPU_MEMORY_UTILIZATION", "DTYPE", "ENFORCE_EAGER"]
    assert "invalid choice: 'float8'" in problems[2]
    assert "--" not in str(caught.value), "messages name env vars, not vLLM's command-line flags"


def test_settings_vllm_refuses_for_this_model_name_the_variable(tiny_llm_dir):
    with pytest.raises(EngineSettingsError, match="MAX_MODEL_LEN") as caught:
        settings.check(settings.load(tiny_llm_dir, {"MAX_MODEL_LEN": "4096"}))
    assert "512" in str(caught.value)  # the model's own context, so the user knows what fits


def test_out_of_range_value_names_the_variable_and_its_bound(tiny_llm_dir):
    with pytest.raises(EngineSettingsError) as caught:
        settings.check(settings.load(tiny_llm_dir, {"GPU_MEMORY_UTILIZATION": "1.5"}))
    assert caught.value.refusals == ["GPU_MEMORY_UTILIZATION='1.5': Input should be less than or equal to 1"]


def test_unrelated_variables_that_share_a_vllm_option_name_are_ignored(tiny_llm_dir):
    loaded = settings.load(tiny_llm_dir, {"LOG_LEVEL": "INFO", "HF_TOKEN": "hf_secret", "MASTER_PORT": "1"})
    assert loaded.given == {}
    assert loaded.args.hf_token is None
