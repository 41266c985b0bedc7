"""Native LLM input: a prompt or chat messages, sampling settings with bounds, and the context check."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StringConstraints, ValidationError, field_validator, model_validator

from shared.errors import BadInput, FieldProblem
from shared.validation import WorkerInput, problems_from

#: Completion length when the request names none (capped by what the context leaves).
DEFAULT_MAX_TOKENS = 512
#: Hard cap on max_tokens/min_tokens, whatever the model; the model's context is checked per request.
MAX_TOKENS_LIMIT = 131_072
#: Prompt size caps, in characters and messages (RunPod's own payload limit is 10 MB for /run).
MAX_PROMPT_CHARS = 1_000_000
MAX_MESSAGES = 1_000
MAX_STOP_SEQUENCES = 8
MAX_STOP_CHARS = 128
MAX_SEED = 2**63 - 1
#: Longest model or LoRA adapter name a request may give.
MAX_MODEL_NAME_CHARS = 128

#: Structured output: a JSON schema's serialized size, a regex's length, and the number of choices.
MAX_SCHEMA_CHARS = 100_000
MAX_REGEX_CHARS = 10_000
MAX_CHOICES = 256

StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STOP_CHARS)]


class TextPart(WorkerInput):
    """One part of a message's content in OpenAI's list form; only text parts are accepted."""

    type: Literal["text"]
    text: str


class ChatMessage(WorkerInput):
    role: Literal["system", "developer", "user", "assistant", "tool"] = Field(description="Who says it.")
    content: str | list[TextPart] = Field(description="The text, or a list of OpenAI text parts.")
    name: str | None = Field(None, max_length=64, description="Optional speaker name (OpenAI); not sent to the model.")

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


def stop_as_list(value: Any) -> Any:
    """``stop`` as requests send it (none, a string or a list), as the list the models validate."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class Sampling(WorkerInput):
    """How to generate; the same fields, bounds and defaults in the native and OpenAI inputs."""

    max_tokens: int | None = Field(
        None,
        ge=1,
        le=MAX_TOKENS_LIMIT,
        description=f"Most tokens to generate. Default: {DEFAULT_MAX_TOKENS}, or what the context leaves if less. "
        "prompt tokens + max_tokens over the model's context is refused before any generation.",
    )
    min_tokens: int = Field(
        0, ge=0, le=MAX_TOKENS_LIMIT, description="End-of-sequence is ignored until this many tokens are generated."
    )
    ignore_eos: StrictBool = Field(False, description="Keep generating past end-of-sequence, up to max_tokens.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 = greedy (deterministic).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling: keep the smallest set of tokens "
                         "whose probability sums to top_p.")
    top_k: int = Field(0, ge=0, le=100_000, description="Keep the k most likely tokens; 0 = off.")
    repetition_penalty: float = Field(1.0, gt=0.0, le=2.0, description="> 1 discourages repeating tokens; 1 = off.")
    stop: list[StopSequence] = Field(
        default_factory=list,
        max_length=MAX_STOP_SEQUENCES,
        description="Generation ends before the first of these strings (a string or a list). "
        "finish_reason is then 'stop' and the stop string is not in the text.",
    )
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Sampling seed: same seed, same text.")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        return stop_as_list(value)

    def sampling(self) -> Sampling:
        """Just the sampling fields (subclasses carry request fields too)."""
        return Sampling.model_validate(self.model_dump(include=set(Sampling.model_fields)))


class StructuredOutputs(WorkerInput):
    """Constrained decoding (vLLM's ``StructuredOutputsParams``): the output matches exactly one of these."""

    json_schema: dict[str, Any] | None = Field(
        None, alias="json", description=f"A JSON Schema the output must validate against "
        f"(at most {MAX_SCHEMA_CHARS} characters serialized).")
    regex: str | None = Field(None, min_length=1, max_length=MAX_REGEX_CHARS,
                              description="A regular expression the whole output must match.")
    choice: list[str] | None = Field(None, min_length=1, max_length=MAX_CHOICES,
                                     description="The output is exactly one of these strings.")

    @field_validator("json_schema")
    @classmethod
    def _schema_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_SCHEMA_CHARS:
            raise ValueError(f"is over {MAX_SCHEMA_CHARS} characters serialized")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> StructuredOutputs:
        given = [name for name in ("json_schema", "regex", "choice") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of json, regex, choice")
        return self

    def vllm_params(self) -> dict[str, Any]:
        """The keyword arguments of vLLM's ``StructuredOutputsParams``."""
        return self.model_dump(by_alias=True, exclude_none=True)


class GenerateInput(Sampling):
    """The native input of both LLM workers (``{"input": {...}}``): exactly one of prompt or messages."""

    prompt: str | None = Field(
        None, min_length=1, max_length=MAX_PROMPT_CHARS, description="Raw text to continue (no chat template)."
    )
    messages: list[ChatMessage] | None = Field(
        None, min_length=1, max_length=MAX_MESSAGES, description="A chat; the model's chat template renders it."
    )
    stream: StrictBool = Field(False, description="Yield text as it is generated (what is made while a chunk is being "
                                            "sent comes in the next one) instead of one result at the end.")
    structured_outputs: StructuredOutputs | None = Field(
        None, description="Constrain the text to a JSON schema (`json`), a `regex` or one of a list of strings "
        "(`choice`), as vLLM's structured outputs; only a vLLM engine serves it (the transformers worker refuses it).")
    lora: str | None = Field(
        None, min_length=1, max_length=MAX_MODEL_NAME_CHARS, description="Generate with this LoRA adapter (its "
        "name as `/v1/models` lists it; none: the base model). The vLLM worker serves the adapters baked from "
        "model.toml; the transformers worker refuses it.")


def parse_generate(data: Any, *, prefix: str = "") -> GenerateInput:
    """Validate the native input, reporting every bad field at once, cross-field rules included."""
    if not isinstance(data, dict):
        raise BadInput.field(prefix or "input", f"must be a JSON object, got {type(data).__name__}")
    problems = _one_of(data, ("prompt", "messages"), prefix)
    try:
        request = GenerateInput.model_validate(data)
    except ValidationError as exc:
        raise BadInput(problems_from(exc, prefix=prefix) + problems) from None
    problems += min_tokens_problems(request, prefix)
    if problems:
        raise BadInput(problems)
    return request


def _one_of(data: dict[str, Any], names: tuple[str, str], prefix: str) -> list[FieldProblem]:
    given = [name for name in names if data.get(name) is not None]
    if len(given) == 1:
        return []
    reason = "give only one of " if given else "one of these is required: "
    return [FieldProblem(_path(prefix, names[0]), reason + " or ".join(names))]


def min_tokens_problems(sampling: Sampling, prefix: str = "") -> list[FieldProblem]:
    if sampling.max_tokens is not None and sampling.min_tokens > sampling.max_tokens:
        return [FieldProblem(_path(prefix, "min_tokens"), f"must be <= max_tokens ({sampling.max_tokens})",
                             sampling.min_tokens)]
    return []


def resolve_max_tokens(
    requested: int | None, prompt_tokens: int, context: int, *, prompt_field: str, max_tokens_field: str
) -> int:
    """The completion budget for a prompt of ``prompt_tokens``; BadInput if the context cannot hold it."""
    room = context - prompt_tokens
    if room < 1:
        raise BadInput.field(
            prompt_field,
            f"is {prompt_tokens} tokens; the model's context is {context} tokens, which leaves no room to generate",
        )
    if requested is None:
        return min(DEFAULT_MAX_TOKENS, room)
    if requested > room:
        raise BadInput.field(
            max_tokens_field,
            f"prompt ({prompt_tokens} tokens) + max_tokens ({requested}) is over the model's context of "
            f"{context} tokens; at most {room} fit",
            requested,
        )
    return requested


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
