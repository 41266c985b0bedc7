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


# --- worker-vllm's settings (README "Configuration" and docs/configuration.md, v2.25.2) ------------------

#: Every engine setting worker-vllm's README and docs/configuration.md document by name, with a value valid
#: for the tiny model. "Any env var whose name is the UPPERCASED form of a `vllm serve` flag is applied".
WORKER_VLLM_DOCUMENTED = {
    "MAX_MODEL_LEN": "256", "QUANTIZATION": "fp8", "TENSOR_PARALLEL_SIZE": "1", "GPU_MEMORY_UTILIZATION": "0.8",
    "MAX_NUM_SEQS": "8", "CUSTOM_CHAT_TEMPLATE": "{{ messages[0]['content'] }}", "ENABLE_AUTO_TOOL_CHOICE": "true",
    "TOOL_CALL_PARSER": "hermes", "OPENAI_SERVED_MODEL_NAME_OVERRIDE": "my-model", "ENFORCE_EAGER": "true",
    "ENABLE_CHUNKED_PREFILL": "true", "SPECULATIVE_CONFIG": '{"method": "ngram", "num_speculative_tokens": 3}',
    "DTYPE": "float32", "KV_CACHE_DTYPE": "auto", "ENABLE_PREFIX_CACHING": "false", "ENABLE_LORA": "true",
    "MAX_LORAS": "2", "MAX_LORA_RANK": "16", "REASONING_PARSER": "deepseek_r1", "MAX_NUM_BATCHED_TOKENS": "8192",
    "TRUST_REMOTE_CODE": "false", "TOKENIZER_NAME": "/tokenizer", "TOKENIZER_REVISION": "main", "BLOCK_SIZE": "16",
}


def test_every_engine_setting_worker_vllm_documents_is_read_under_its_name(tiny_llm_dir):
    loaded = settings.load(tiny_llm_dir, WORKER_VLLM_DOCUMENTED)
    args = loaded.args
    assert set(loaded.given) == set(WORKER_VLLM_DOCUMENTED)
    assert loaded.served_model_names == ["my-model"]
    assert (args.chat_template, args.tokenizer, args.tokenizer_revision) == (
        "{{ messages[0]['content'] }}", "/tokenizer", "main")
    assert (args.enable_lora, args.max_loras, args.max_lora_rank) == (True, 2, 16)
    assert (args.quantization, args.block_size, args.max_model_len) == ("fp8", 16, 256)
    assert args.speculative_config == {"method": "ngram", "num_speculative_tokens": 3}


def test_an_alias_and_our_name_for_the_same_option_are_refused_together(tiny_llm_dir):
    with pytest.raises(EngineSettingsError) as caught:
        settings.load(tiny_llm_dir, {"SERVED_MODEL_NAME": "a", "OPENAI_SERVED_MODEL_NAME_OVERRIDE": "b"})
    assert caught.value.refusals == ["OPENAI_SERVED_MODEL_NAME_OVERRIDE='b': SERVED_MODEL_NAME is set too ('a'); "
                                     "set one"]


def test_the_escape_hatch_takes_any_vllm_serve_argument_through_vllms_parser(tiny_llm_dir):
    extra = "--max-logprobs 5 --override-generation-config '{\"temperature\": 0.5}'"
    loaded = settings.load(tiny_llm_dir, {"MAX_LOGPROBS": "3", "VLLM_EXTRA_ARGS": extra})
    assert loaded.args.max_logprobs == 5  # applied last, as in worker-vllm
    assert loaded.args.override_generation_config == {"temperature": 0.5}


def test_an_unknown_or_invalid_escape_hatch_argument_fails_startup_naming_the_variable_and_value(tiny_llm_dir):
    for value, reason in [("--no-such-option 1", "unrecognized arguments: --no-such-option"),
                          ("--max-logprobs many", "invalid int value: 'many'"),
                          ("--hf-token hf_x", "--hf-token is not accepted"), ("'unclosed", "shell-quoted")]:
        with pytest.raises(EngineSettingsError) as caught:
            settings.load(tiny_llm_dir, {"VLLM_EXTRA_ARGS": value})
        [refusal] = caught.value.refusals
        assert refusal.startswith(f"VLLM_EXTRA_ARGS={value!r}: ") and reason in refusal, refusal


def test_an_engine_settings_error_is_a_startup_error():
    from shared.errors import StartupError

    assert issubclass(EngineSettingsError, StartupError)


def test_worker_vllms_retired_batching_knobs_are_checked_then_ignored(tiny_llm_dir):
    loaded = settings.load(tiny_llm_dir, {"DEFAULT_BATCH_SIZE": "50", "DEFAULT_MIN_BATCH_SIZE": "1",
                                          "DEFAULT_BATCH_SIZE_GROWTH_FACTOR": "3", "RAW_OPENAI_OUTPUT": "1"})
    assert loaded.given == {}
    with pytest.raises(EngineSettingsError) as caught:
        settings.load(tiny_llm_dir, {"DEFAULT_BATCH_SIZE": "0", "DEFAULT_BATCH_SIZE_GROWTH_FACTOR": "fast",
                                     "RAW_OPENAI_OUTPUT": "maybe"})
    assert caught.value.refusals == ["DEFAULT_BATCH_SIZE='0': must be >= 1",
                                     "DEFAULT_BATCH_SIZE_GROWTH_FACTOR='fast': must be a number",
                                     "RAW_OPENAI_OUTPUT='maybe': must be one of ['0', '1', 'false', 'no', 'off', "
                                     "'on', 'true', 'yes']"]


def test_options_vllm_removed_are_logged_and_ignored_as_worker_vllm_does(tiny_llm_dir, caplog):
    loaded = settings.load(tiny_llm_dir, {"SWAP_SPACE": "4"})
    assert loaded.given == {}
    assert "SWAP_SPACE is ignored: vLLM removed this option" in caplog.text


def test_model_name_must_name_the_baked_model(tiny_llm_dir):
    assert settings.load(tiny_llm_dir, {"MODEL_NAME": "org/baked"}, served_name="org/baked").given == {}
    with pytest.raises(EngineSettingsError, match="MODEL_NAME='org/other': this image serves its baked model"):
        settings.load(tiny_llm_dir, {"MODEL_NAME": "org/other"}, served_name="org/baked")


# --- an embedding model (worker_llm_vllm.embeddings) ------------------------------------------------------------


def test_vllm_runs_the_embedding_fixture_as_an_embedding_model_on_its_own(tiny_embedding_dir, tiny_llm_dir):
    model = settings.check(settings.load(tiny_embedding_dir, {})).model_config
    assert (model.runner_type, model.convert_type) == ("pooling", "embed")
    assert settings.check(settings.load(tiny_llm_dir, {})).model_config.runner_type == "generate"


def test_runner_and_convert_make_a_generative_architecture_an_embedding_model(tiny_llm_dir):
    loaded = settings.load(tiny_llm_dir, {"RUNNER": "pooling", "CONVERT": "embed",
                                          "POOLER_CONFIG": '{"seq_pooling_type": "MEAN"}'})
    model = settings.check(loaded).model_config
    assert (model.runner_type, model.convert_type, model.pooler_config.seq_pooling_type) == ("pooling", "embed",
                                                                                             "MEAN")


def test_an_unknown_runner_fails_startup_naming_the_variable(tiny_llm_dir):
    with pytest.raises(EngineSettingsError) as caught:
        settings.load(tiny_llm_dir, {"RUNNER": "embedding"})
    [refusal] = caught.value.refusals
    assert refusal.startswith("RUNNER='embedding': invalid choice")
