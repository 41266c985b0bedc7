"""One entry point for every LLM job: native input or OpenAI route, parsed into one typed request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shared.errors import BadInput, FieldProblem
from shared.llm.inputs import (
    ChatMessage,
    Sampling,
    StructuredOutputs,
    min_tokens_problems,
    parse_generate,
    resolve_max_tokens,
)
from shared.llm.openai import (
    CHAT_ROUTE,
    COMPLETIONS_ROUTE,
    MODELS_ROUTE,
    ROUTES,
    ChatCompletionRequest,
    CompletionRequest,
)
from shared.llm.worker_vllm import (
    DEFAULT_COMPLETION_MAX_TOKENS,
    WorkerVllmRequest,
    is_worker_vllm_form,
    parse_worker_vllm,
)
from shared.validation import parse

Api = Literal["native", "chat", "completion"]


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate and how to answer, whatever API the job came through."""

    api: Api
    sampling: Sampling
    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    stream: bool = False
    #: OpenAI streams: one more chunk with the usage (stream_options.include_usage).
    include_usage: bool = False
    #: Field paths for errors found later (context overflow), as the client named them.
    prompt_field: str = "prompt"
    max_tokens_field: str = "max_tokens"
    #: Where the sampling fields sit in the job input ("" native, "openai_input" for OpenAI routes).
    prefix: str = ""
    #: Stream chunks go out as server-sent-event text (worker-vllm's form), not as objects.
    sse: bool = False
    #: Constrained decoding (native input; llm-vllm only).
    structured_outputs: StructuredOutputs | None = None

    def chat(self) -> list[dict[str, str]] | None:
        """The messages as the dicts tokenizers' chat templates take."""
        if self.messages is None:
            return None
        return [{"role": m.role, "content": m.text()} for m in self.messages]


@dataclass(frozen=True)
class ModelsRequest:
    """GET /v1/models."""


def parse_job(job_input: Any, served_model: str) -> GenerationRequest | ModelsRequest:
    """Parse a job's ``input`` (native, or RunPod's ``{"openai_route", "openai_input"}``); BadInput lists
    every bad field."""
    if isinstance(job_input, dict) and "openai_route" in job_input:
        return _parse_openai(job_input, served_model)
    if is_worker_vllm_form(job_input):
        return _transformers_request(parse_worker_vllm(job_input))
    native = parse_generate(job_input)
    return GenerationRequest(
        api="native",
        sampling=native.sampling(),
        prompt=native.prompt,
        messages=tuple(native.messages) if native.messages else None,
        stream=native.stream,
        prompt_field="prompt" if native.prompt is not None else "messages",
        structured_outputs=native.structured_outputs,
    )


def _parse_openai(job_input: dict[str, Any], served_model: str) -> GenerationRequest | ModelsRequest:
    route = job_input["openai_route"]
    unknown = sorted(set(job_input) - {"openai_route", "openai_input"})
    if unknown:
        raise BadInput([FieldProblem(name, "unknown field") for name in unknown])
    if route not in ROUTES:
        raise BadInput.field("openai_route", f"must be one of {', '.join(ROUTES)}", route)
    if route == MODELS_ROUTE:
        return ModelsRequest()
    body = job_input.get("openai_input")
    if route == CHAT_ROUTE:
        chat = parse(ChatCompletionRequest, body, prefix="openai_input")
        max_tokens, max_tokens_field = chat.completion_budget()
        sampling = chat.sampling().model_copy(update={"max_tokens": max_tokens})
        _check(chat.model, sampling, served_model)
        return GenerationRequest(
            api="chat",
            sampling=sampling,
            messages=tuple(chat.messages),
            stream=chat.stream,
            include_usage=chat.include_usage,
            prompt_field="openai_input.messages",
            max_tokens_field=f"openai_input.{max_tokens_field}",
            prefix="openai_input",
        )
    assert route == COMPLETIONS_ROUTE
    completion = parse(CompletionRequest, body, prefix="openai_input")
    _check(completion.model, completion.sampling(), served_model)
    return GenerationRequest(
        api="completion",
        sampling=completion.sampling(),
        prompt=completion.prompt,
        stream=completion.stream,
        include_usage=completion.include_usage,
        prompt_field="openai_input.prompt",
        max_tokens_field="openai_input.max_tokens",
        prefix="openai_input",
    )


#: sampling_params fields the transformers engine (llm-hf) honours; the others only at their default.
_TRANSFORMERS_SAMPLING = ("max_tokens", "min_tokens", "ignore_eos", "temperature", "top_p", "top_k",
                          "repetition_penalty", "stop", "seed", "stream_options")


def _transformers_request(request: WorkerVllmRequest) -> GenerationRequest:
    """worker-vllm's form as llm-hf serves it: what the transformers engine cannot do is refused per field."""
    params = request.sampling_params
    defaults = type(params)()
    refused = [FieldProblem(f"sampling_params.{name}", "is not supported by llm-hf (the transformers engine); "
                            "serve the model with llm-vllm for it", getattr(params, name))
               for name in sorted(params.model_fields_set - set(_TRANSFORMERS_SAMPLING))
               if getattr(params, name) != getattr(defaults, name)]
    if refused:
        raise BadInput(refused)
    chat = request.route == CHAT_ROUTE
    max_tokens = params.max_tokens if params.max_tokens is not None or chat else DEFAULT_COMPLETION_MAX_TOKENS
    sampling = Sampling(max_tokens=max_tokens, min_tokens=params.min_tokens, ignore_eos=params.ignore_eos,
                        temperature=params.temperature, top_p=params.top_p, top_k=max(params.top_k, 0),
                        repetition_penalty=params.repetition_penalty, stop=params.stop, seed=params.seed)
    messages = request.chat()
    return GenerationRequest(
        api="chat" if chat else "completion",
        sampling=sampling,
        prompt=None if chat else request.prompt,
        messages=tuple(messages) if messages is not None else None,
        stream=request.stream,
        include_usage=bool(params.stream_options and params.stream_options.include_usage),
        prompt_field="messages" if request.messages is not None else "prompt",
        max_tokens_field="sampling_params.max_tokens",
        prefix="sampling_params",
        sse=True,
    )


def completion_budget(request: GenerationRequest, prompt_tokens: int, context: int) -> int:
    """max_tokens for this prompt (default: what the context leaves, up to DEFAULT_MAX_TOKENS); BadInput
    naming the client's own field when prompt + completion cannot fit the model's context."""
    sampling = request.sampling
    budget = resolve_max_tokens(sampling.max_tokens, prompt_tokens, context,
                                prompt_field=request.prompt_field, max_tokens_field=request.max_tokens_field)
    if sampling.min_tokens > budget:
        field = f"{request.prefix}.min_tokens" if request.prefix else "min_tokens"
        raise BadInput([FieldProblem(field, f"must be <= max_tokens ({budget}, what the context leaves)",
                                     sampling.min_tokens)])
    return budget


def _check(model: str, sampling: Sampling, served_model: str) -> None:
    problems = min_tokens_problems(sampling, "openai_input")
    if model != served_model:
        problems.append(FieldProblem("openai_input.model", f"this endpoint serves only {served_model!r}", model))
    if problems:
        raise BadInput(problems)
