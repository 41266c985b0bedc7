"""The typed request every LLM job becomes, whatever API it came through; the native input parsed into it,
and the completion budget it leaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shared.errors import BadInput, FieldProblem
from shared.llm.inputs import (
    ChatMessage,
    Sampling,
    StructuredOutputs,
    parse_generate,
    resolve_max_tokens,
)

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
    #: LoRA adapter to generate with (native input; llm-vllm only); None: the base model.
    lora: str | None = None

    def chat(self) -> list[dict[str, str]] | None:
        """The messages as the dicts tokenizers' chat templates take."""
        if self.messages is None:
            return None
        return [{"role": m.role, "content": m.text()} for m in self.messages]


def parse_native(job_input: Any) -> GenerationRequest:
    """Parse a native job ``input``; BadInput lists every bad field. Each worker routes its other APIs
    (OpenAI routes, worker-vllm's form) before this."""
    native = parse_generate(job_input)
    return GenerationRequest(
        api="native",
        sampling=native.sampling(),
        prompt=native.prompt,
        messages=tuple(native.messages) if native.messages else None,
        stream=native.stream,
        prompt_field="prompt" if native.prompt is not None else "messages",
        structured_outputs=native.structured_outputs,
        lora=native.lora,
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
