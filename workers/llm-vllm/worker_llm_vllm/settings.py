"""Engine settings from environment variables named after vLLM's own options, validated by vLLM at startup.

``MAX_MODEL_LEN=8192`` is ``vllm serve --max-model-len 8192``: the name is the option upper-cased with
``_`` for ``-``, the value goes through vLLM's own argument parser (types, choices) and then through
vLLM's engine configuration (cross-checks against the model, the device and each other). Every bad
variable is reported at once, by its name, before the engine starts.

Only the options in `ENGINE_OPTIONS` and `SERVING_OPTIONS` are read: a generic upper-casing of all of
vLLM's ~300 options would pick up unrelated variables that happen to share a name (``LOG_LEVEL``,
``MASTER_PORT``, ``HF_TOKEN``: a secret that vLLM would then log with its non-default arguments). Any
other option goes through the explicit escape hatch ``VLLM_EXTRA_ARGS`` (``vllm serve`` arguments, parsed
by vLLM's parser: an unknown or invalid one fails startup naming the variable and its value).

Settings of runpod-workers/worker-vllm (newest release v2.25.2: README "Configuration", docs/configuration.md,
src/args_builder.py) keep their names: its aliases (`ALIASES`), its escape hatch (``VLLM_EXTRA_ARGS``), its
removed options, logged and ignored as it does (`REMOVED`), and its retired batching knobs, checked and
ignored (`NO_EFFECT`). The README's settings table is generated from these declarations (`reference`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import StartupError

log = logging.getLogger(__name__)

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
    "tokenizer",
    "tokenizer_revision",
    "attention_backend",
    "hf_overrides",
    "override_generation_config",
    "disable_sliding_window",
    "disable_custom_all_reduce",
    "max_parallel_loading_workers",
    "enable_lora",
    "max_loras",
    "max_lora_rank",
    "max_cpu_loras",
    # An embedding model (worker_llm_vllm.embeddings): vLLM's runner and model conversion, and its pooler.
    "runner",
    "convert",
    "pooler_config",
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
    "lora_modules",
)

OPTIONS = ENGINE_OPTIONS + SERVING_OPTIONS

#: worker-vllm's env names that are not the option's upper-cased name (its ``ENV_ALIASES``) -> the option.
#: Both names are read; setting both is refused (which one should win is a guess).
ALIASES = {
    "OPENAI_SERVED_MODEL_NAME_OVERRIDE": "served_model_name",
    "CUSTOM_CHAT_TEMPLATE": "chat_template",
    "TOKENIZER_NAME": "tokenizer",
}

#: ``vllm serve`` arguments appended after every other setting (worker-vllm's escape hatch, same name).
EXTRA_ARGS = "VLLM_EXTRA_ARGS"
#: Options refused in VLLM_EXTRA_ARGS: secrets (the settings are logged at startup) and the baked model.
_REFUSED_EXTRA = {"--hf-token": "a secret: the model is baked into the image, no token is needed",
                  "--api-key": "the worker has no HTTP server; RunPod authenticates callers",
                  "--model": "the model is baked into the image (model.toml)"}

#: worker-vllm settings that change nothing here, checked (so a typo still fails) then ignored: type, least.
NO_EFFECT: dict[str, tuple[type, float, str]] = {
    "DEFAULT_BATCH_SIZE": (int, 1, "stream chunks are joined while the previous one is posted "
                           "(shared/stream_coalescing.py), not batched by count"),
    "DEFAULT_MIN_BATCH_SIZE": (int, 1, "as DEFAULT_BATCH_SIZE"),
    "DEFAULT_BATCH_SIZE_GROWTH_FACTOR": (float, 1, "as DEFAULT_BATCH_SIZE"),
    "RAW_OPENAI_OUTPUT": (bool, 0, "OpenAI stream chunks are always yielded as chunk objects"),
}

#: Options vLLM removed (worker-vllm's ``REMOVED_FLAGS``): a stale template value is logged and ignored, as
#: worker-vllm does, rather than keeping a worker from starting.
REMOVED = {
    "SWAP_SPACE": "vLLM V1 has no swap space",
    "ROPE_SCALING": "pass rope_scaling in HF_OVERRIDES",
    "ROPE_THETA": "pass rope_theta in HF_OVERRIDES",
    "GUIDED_DECODING_BACKEND": "use STRUCTURED_OUTPUTS_CONFIG",
    "NUM_LOOKAHEAD_SLOTS": "use SPECULATIVE_CONFIG",
    "DISABLE_LOG_REQUESTS": "use ENABLE_LOG_REQUESTS=false",
    "MAX_SEQ_LEN_TO_CAPTURE": "use COMPILATION_CONFIG",
}

#: worker-vllm settings for the model itself: here the model is baked (model.toml), so they must name it.
MODEL_NAMES = ("MODEL_NAME",)

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


def load(model_path: Path, environ: Mapping[str, str] | None = None, served_name: str | None = None,
         adapters: Mapping[str, Path] | None = None) -> EngineSettings:
    """Parse the engine settings from ``environ`` (default: the process environment) with vLLM's parser.

    ``served_name`` is the model name clients use when SERVED_MODEL_NAME is not set (vLLM's own default
    would be the folder's path). ``adapters`` (name -> baked folder, worker_llm_vllm.adapters) turn LoRA on
    and are served as ``--lora-modules``; limits they exceed fail here (`with_adapters`).
    """
    environ = os.environ if environ is None else environ
    parser = _parser()
    actions = {action.dest: action for action in parser._actions}
    given = {name: environ[name] for name in _read_names() if environ.get(name, "").strip()}
    problems = _alias_conflicts(given) + _no_effect_problems(environ) + _model_name_problems(environ, served_name)
    _log_removed(environ)
    argv = ["--model", str(model_path)]
    if served_name and not {"SERVED_MODEL_NAME", "OPENAI_SERVED_MODEL_NAME_OVERRIDE"} & given.keys():
        argv += ["--served-model-name", served_name]
    for name, value in given.items():
        try:
            words = _extra_words(value) if name == EXTRA_ARGS else _argv_for(actions[option_of(name)], value)
            _parse(parser, ["--model", str(model_path), *words])  # alone, so each bad variable is named
        except _ParseError as exc:
            problems.append(f"{name}={value!r}: {exc}")
            continue
        argv += words
    if problems:
        raise EngineSettingsError(problems)
    settings = EngineSettings(args=_parse(parser, argv), given=given)
    return with_adapters(settings, adapters) if adapters else settings


def with_adapters(settings: EngineSettings, adapters: Mapping[str, Path]) -> EngineSettings:
    """``settings`` serving ``adapters`` too: LoRA on (ENABLE_LORA=false is refused), every adapter kept in CPU
    memory (MAX_CPU_LORAS defaults to their number), each one a ``--lora-modules`` entry after those of
    LORA_MODULES; an adapter over MAX_LORA_RANK, or more of them than MAX_CPU_LORAS, fails startup."""
    from vllm.entrypoints.openai.models.protocol import LoRAModulePath

    from worker_llm_vllm.adapters import check_limits

    args = settings.args
    if "ENABLE_LORA" in settings.given and not args.enable_lora:
        raise EngineSettingsError([f"ENABLE_LORA={settings.given['ENABLE_LORA']!r}: LoRA adapters are baked "
                                   f"({', '.join(adapters)}); unset it or set it to true"])
    check_limits(adapters, args, settings.given)
    baked = [LoRAModulePath(name=name, path=str(path)) for name, path in adapters.items()]
    clashes = sorted({m.name for m in args.lora_modules or []} & set(adapters))
    if clashes:
        raise EngineSettingsError([f"LORA_MODULES ({EXTRA_ARGS}'s --lora-modules) names {clashes}, the names of "
                                   "baked adapters; rename one of them"])
    served = argparse.Namespace(**{**vars(args), "enable_lora": True, "lora_modules": [*(args.lora_modules or []),
                                   *baked], "max_cpu_loras": args.max_cpu_loras or max(len(adapters), args.max_loras)})
    return EngineSettings(args=served, given=settings.given)


def option_of(name: str) -> str:
    """The vLLM option an env var sets (its alias target, or its lower-cased name)."""
    return ALIASES.get(name, name.lower())


def _read_names() -> list[str]:
    """Every env var read as a vLLM option, in the order they are applied (the escape hatch last)."""
    return [*map(env_name, OPTIONS), *ALIASES, EXTRA_ARGS]


def _alias_conflicts(given: dict[str, str]) -> list[str]:
    return [f"{alias}={given[alias]!r}: {env_name(option)} is set too ({given[env_name(option)]!r}); set one"
            for alias, option in ALIASES.items() if alias in given and env_name(option) in given]


def _no_effect_problems(environ: Mapping[str, str]) -> list[str]:
    problems = []
    for name, (kind, least, _) in NO_EFFECT.items():
        value = environ.get(name, "").strip()
        if not value:
            continue
        if kind is bool:
            if value.lower() not in _TRUE | _FALSE:
                problems.append(f"{name}={value!r}: must be one of {sorted(_TRUE | _FALSE)}")
            continue
        try:
            number = kind(value)
        except ValueError:
            problems.append(f"{name}={value!r}: must be a{'n integer' if kind is int else ' number'}")
            continue
        if number < least:
            problems.append(f"{name}={value!r}: must be >= {least:g}")
    return problems


def _model_name_problems(environ: Mapping[str, str], served_name: str | None) -> list[str]:
    """worker-vllm downloads MODEL_NAME; this image serves its baked model, so MODEL_NAME may only name it."""
    return [f"{name}={environ[name]!r}: this image serves its baked model {served_name!r} (model.toml); "
            "bake the other model into an image of its own, or unset it"
            for name in MODEL_NAMES if environ.get(name, "").strip() and environ[name].strip() != served_name]


def _log_removed(environ: Mapping[str, str]) -> None:
    for name, instead in REMOVED.items():
        if environ.get(name, "").strip():
            log.warning("%s is ignored: vLLM removed this option (%s)", name, instead)


def _extra_words(value: str) -> list[str]:
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise _ParseError(f"not a shell-quoted argument list: {exc}") from None
    for word in words:
        flag = word.split("=", 1)[0]
        if flag in _REFUSED_EXTRA:
            raise _ParseError(f"{flag} is not accepted: {_REFUSED_EXTRA[flag]}")
    return words


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
        name = next((n for n in given if n != EXTRA_ARGS and option_of(n) == option), env_name(option))
        return f"{name}={given.get(name, '(default)')!r}: {reason}"
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
    if action.dest == "lora_modules":
        return [flag, *_lora_module_words(value)]
    if action.nargs in ("+", "*"):
        return [flag, *value.replace(",", " ").split()]
    return [flag, value]


def _lora_module_words(value: str) -> list[str]:
    """LORA_MODULES as vLLM's parser takes it, one word per adapter: worker-vllm's JSON list
    (``[{"name": ..., "path": ...}]``, docs/configuration.md "LoRA") or ``name=path`` words."""
    if not value.lstrip().startswith("["):
        return value.split()
    try:
        modules = json.loads(value)
    except json.JSONDecodeError as exc:
        raise _ParseError(f"not a JSON list of {{\"name\", \"path\"}} objects: {exc}") from None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise _ParseError('must be a JSON list of {"name", "path"} objects, or name=path words')
    return [json.dumps(module) for module in modules]


def _env_words(message: str) -> str:
    """vLLM's messages name options as ``--max-model-len`` or ``max_model_len``: say the env var instead."""
    for option in OPTIONS:
        message = message.replace(f"--{option.replace('_', '-')}", env_name(option))
        message = message.replace(f"`{option}`", env_name(option))
    return message


def _listing(given: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in given.items()) or "none"


#: Settings of the worker itself (shared.serving, shared.settings), listed with the engine's.
WORKER_SETTINGS = {
    "MODEL_PATH": "the model folder (the image sets `/model`)",
    "MAX_CONCURRENCY": "jobs one worker takes at once (default 30, as worker-vllm); vLLM runs MAX_NUM_SEQS of "
                       "them per step and queues the rest",
    "LOG_LEVEL": "the worker's log level",
    "ADAPTERS_PATH": "the folder of LoRA adapters, one folder each, served under its name (the image sets "
                     "`/adapters`, where model.toml's `[adapters.<name>]` are baked); LoRA turns on when it holds any",
}


def reference() -> str:
    """The README's settings table, one row per variable read, generated from the declarations above (no
    vLLM import: option names are vLLM's, their values are checked by vLLM's parser at startup)."""
    rows = ["| variable | what it sets | notes |", "|---|---|---|"]
    for option in OPTIONS:
        kind = "OpenAI serving" if option in SERVING_OPTIONS else "engine"
        rows.append(f"| `{env_name(option)}` | `--{option.replace('_', '-')}` | {kind} |")
    for alias, option in ALIASES.items():
        rows.append(f"| `{alias}` | `--{option.replace('_', '-')}` | worker-vllm's name for "
                    f"`{env_name(option)}`; set one of the two |")
    rows.append(f"| `{EXTRA_ARGS}` | any `vllm serve` arguments, shell-quoted | applied last; checked by vLLM's "
                f"parser; refused: {', '.join(f'`{flag}`' for flag in _REFUSED_EXTRA)} |")
    rows += [f"| `{name}` | nothing | must name the baked model, if set (worker-vllm downloads it) |"
             for name in MODEL_NAMES]
    rows += [f"| `{name}` | nothing | worker-vllm's; checked ({kind.__name__}{'' if kind is bool else f' >= {least:g}'}"
             f") and ignored: {why} |" for name, (kind, least, why) in NO_EFFECT.items()]
    rows += [f"| `{name}` | nothing | removed from vLLM, logged and ignored (as worker-vllm): {instead} |"
             for name, instead in REMOVED.items()]
    rows += [f"| `{name}` | the worker | {what} |" for name, what in WORKER_SETTINGS.items()]
    return "\n".join(rows)
