"""Engine settings from environment variables named after vLLM's own options, validated by vLLM at startup.

``MAX_MODEL_LEN=8192`` is ``vllm serve --max-model-len 8192``: the name is the option upper-cased with
``_`` for ``-``, the value goes through vLLM's own argument parser (types, choices) and then through
vLLM's engine configuration (cross-checks against the model, the device and each other). Every bad
variable is reported at once, by its name, before the engine starts.

Only the options in `ENGINE_OPTIONS` and `SERVING_OPTIONS` are read: a generic upper-casing of all of
vLLM's ~300 options would pick up unrelated variables that happen to share a name (``LOG_LEVEL``,
``MASTER_PORT``, ``HF_TOKEN``: a secret that vLLM would then log with its non-default arguments).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import StartupError

#: Engine options (vLLM's ``AsyncEngineArgs``) a deployment may set, one env var each.
ENGINE_OPTIONS = (
    "max_model_len",
    "gpu_memory_utilization",
    "kv_cache_memory_bytes",
    "max_num_seqs",
    "max_num_batched_tokens",
    "quantization",
    "dtype",
    "kv_cache_dtype",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "enable_expert_parallel",
    "enforce_eager",
    "enable_prefix_caching",
    "enable_chunked_prefill",
    "block_size",
    "cpu_offload_gb",
    "seed",
    "served_model_name",
    "tokenizer_mode",
    "trust_remote_code",
    "generation_config",
    "max_logprobs",
    "speculative_config",
    "compilation_config",
    "limit_mm_per_prompt",
    "reasoning_parser",
    "structured_outputs_config",
    "load_format",
    "async_scheduling",
    "disable_log_stats",
    "enable_log_requests",
)

#: Options of vLLM's OpenAI serving layer (tools, chat templates, usage details).
SERVING_OPTIONS = (
    "enable_auto_tool_choice",
    "tool_call_parser",
    "chat_template",
    "chat_template_content_format",
    "response_role",
    "return_tokens_as_token_ids",
    "enable_prompt_tokens_details",
    "enable_force_include_usage",
)

OPTIONS = ENGINE_OPTIONS + SERVING_OPTIONS

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EngineSettingsError(StartupError):
    """Engine settings that vLLM refuses; the message names every offending environment variable. No restart
    fixes them: the worker answers every job with them (shared.serving)."""

    def __init__(self, refusals: list[str]):
        #: One line per refused variable (``problems`` is the envelope's list of input fields: none here).
        self.refusals = refusals
        super().__init__("invalid engine settings: " + "; ".join(refusals),
                         "change or unset the variables named in the endpoint's environment (they take the values "
                         "of `vllm serve`'s options of the same name)")


class _ParseError(Exception):
    pass


@dataclass(frozen=True)
class EngineSettings:
    """What the engine starts with: vLLM's parsed serve arguments and the env vars they came from."""

    args: argparse.Namespace
    #: env var name -> value, for the ones that were set (logged at startup; none is secret).
    given: dict[str, str]

    @property
    def served_model_names(self) -> list[str]:
        return list(self.args.served_model_name or [self.args.model])

    def engine_args(self) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs

        return AsyncEngineArgs.from_cli_args(self.args)


def env_name(option: str) -> str:
    return option.upper()


def load(model_path: Path, environ: Mapping[str, str] | None = None, served_name: str | None = None) -> EngineSettings:
    """Parse the engine settings from ``environ`` (default: the process environment) with vLLM's parser.

    ``served_name`` is the model name clients use when SERVED_MODEL_NAME is not set (vLLM's own default
    would be the folder's path).
    """
    environ = os.environ if environ is None else environ
    parser = _parser()
    actions = {action.dest: action for action in parser._actions}
    given = {env_name(o): environ[env_name(o)] for o in OPTIONS if environ.get(env_name(o), "").strip()}
    problems: list[str] = []
    argv = ["--model", str(model_path)]
    if served_name and "SERVED_MODEL_NAME" not in given:
        argv += ["--served-model-name", served_name]
    for option in OPTIONS:
        name = env_name(option)
        if name not in given:
            continue
        try:
            words = _argv_for(actions[option], given[name])
            _parse(parser, ["--model", str(model_path), *words])  # alone, so each bad variable is named
        except _ParseError as exc:
            problems.append(f"{name}={given[name]!r}: {exc}")
            continue
        argv += words
    if problems:
        raise EngineSettingsError(problems)
    return EngineSettings(args=_parse(parser, argv), given=given)


def check(settings: EngineSettings) -> Any:
    """vLLM's whole engine configuration for these settings (model folder read, cross-checks done)."""
    from pydantic import ValidationError
    from vllm.usage.usage_lib import UsageContext

    try:
        return settings.engine_args().create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)
    except ValidationError as exc:
        raise EngineSettingsError([_pydantic_problem(e, settings.given) for e in exc.errors()]) from exc
    except (ValueError, TypeError) as exc:
        raise EngineSettingsError([f"{_env_words(str(exc))} (settings given: {_listing(settings.given)})"]) from exc


def _pydantic_problem(error: Any, given: dict[str, str]) -> str:
    option = str(error["loc"][-1]) if error["loc"] else ""
    reason = _env_words(error["msg"].removeprefix("Value error, "))
    if option in OPTIONS:
        return f"{env_name(option)}={given.get(env_name(option), '(default)')!r}: {reason}"
    return f"{reason} (settings given: {_listing(given)})"


def _parser() -> argparse.ArgumentParser:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))

    def refuse(message: str) -> None:  # argparse would print usage and exit the process
        # "argument --max-model-len/-x: invalid int value": the caller names the env var already.
        raise _ParseError(_env_words(re.sub(r"^argument [^:]+: ", "", message)))

    parser.error = refuse  # type: ignore[method-assign]
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    try:
        return parser.parse_args(argv)
    except (ValueError, TypeError) as exc:  # vLLM's JSON/dataclass options raise directly
        raise _ParseError(str(exc)) from None


def _argv_for(action: argparse.Action, value: str) -> list[str]:
    flag = action.option_strings[0]
    if isinstance(action, argparse.BooleanOptionalAction):
        word = value.strip().lower()
        if word in _TRUE:
            return [flag]
        if word in _FALSE:
            return [f"--no-{flag.removeprefix('--')}"]
        raise _ParseError(f"must be one of {sorted(_TRUE | _FALSE)}")
    if action.nargs in ("+", "*"):
        return [flag, *value.replace(",", " ").split()]
    return [flag, value]


def _env_words(message: str) -> str:
    """vLLM's messages name options as ``--max-model-len`` or ``max_model_len``: say the env var instead."""
    for option in OPTIONS:
        message = message.replace(f"--{option.replace('_', '-')}", env_name(option))
        message = message.replace(f"`{option}`", env_name(option))
    return message


def _listing(given: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in given.items()) or "none"
