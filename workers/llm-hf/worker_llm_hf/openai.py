"""llm-hf's OpenAI-compatible routes: the requests RunPod forwards (``openai_route`` + ``openai_input``), parsed
into the shared `GenerationRequest`, and the response and chunk shapes `render` yields for them.

Requests accept what the official ``openai`` client sends for /v1/chat/completions and /v1/completions,
plus vLLM's extra sampling fields (``top_k``, ``repetition_penalty``, ``min_tokens``, ``ignore_eos``,
sent with ``extra_body``). What the transformers engine cannot honour (``n`` > 1, log-probabilities,
penalties other than repetition, tools) is refused with a field-level reason rather than silently ignored.
llm-vllm serves its OpenAI routes with vLLM's own request models instead (tools, ``response_format``,
logprobs, ``n``); the route names are shared (``shared.llm.openai``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, StrictBool, field_validator, model_serializer

from shared.errors import BadInput, FieldProblem
from shared.llm.inputs import (
    MAX_MESSAGES,
    MAX_PROMPT_CHARS,
    MAX_TOKENS_LIMIT,
    ChatMessage,
    Sampling,
    min_tokens_problems,
)
from shared.llm.openai import (
    CHAT_ROUTE,
    COMPLETIONS_ROUTE,
    MODELS_ROUTE,
    ROUTES,
    FinishReason,
    StreamOptions,
    Usage,
)
from shared.llm.outputs import Finish, ResponseShape
from shared.llm.requests import GenerationRequest
from shared.validation import parse

# --- requests -------------------------------------------------------------------------------------


class _OpenAIRequest(Sampling):
    """Fields both OpenAI generation routes share (sampling bounds come from `Sampling`)."""

    model: str = Field(min_length=1, max_length=256, description="Must be the served model (see /v1/models).")
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only one choice per request.")
    frequency_penalty: float = Field(0.0, description="Not supported: only 0 (use repetition_penalty).")
    presence_penalty: float = Field(0.0, description="Not supported: only 0 (use repetition_penalty).")
    user: str | None = Field(None, max_length=256, description="Accepted for compatibility; not used.")

    @field_validator("frequency_penalty", "presence_penalty")
    @classmethod
    def _penalty_off(cls, value: float) -> float:
        if value != 0:
            raise ValueError("is not supported (only 0); use repetition_penalty")
        return value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_OpenAIRequest):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT, description="Newer name of max_tokens.")
    logprobs: Literal[False] | None = Field(None, description="Not supported.")

    def completion_budget(self) -> tuple[int | None, str]:
        """(requested max tokens, the field that asked for it) — max_completion_tokens wins, as in OpenAI."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens, "max_completion_tokens"
        return self.max_tokens, "max_tokens"


class CompletionRequest(_OpenAIRequest):
    prompt: str | list[str] = Field(description="One prompt (a string, or a list holding exactly one string).")
    echo: Literal[False] = Field(False, description="Not supported.")
    logprobs: None = Field(None, description="Not supported.")
    suffix: None = Field(None, description="Not supported.")

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str:
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError("only one prompt per request is supported")
            value = value[0]
        if not 1 <= len(value) <= MAX_PROMPT_CHARS:
            raise ValueError(f"must be 1 to {MAX_PROMPT_CHARS} characters long")
        return value


# --- responses ------------------------------------------------------------------------------------


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _set_fields_only(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """OpenAI sends only the delta fields that are set (the role once, then content)."""
        return {key: value for key, value in dump(self).items() if value is not None}


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None = None
    logprobs: None = None


class Completion(BaseModel):
    """Both the whole /v1/completions response and its stream chunks (OpenAI uses one shape for both)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "runpod-workers"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def new_id(kind: Literal["chat", "completion"]) -> str:
    return ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex


def now() -> int:
    return int(time.time())


def model_list(served_model: str) -> dict[str, Any]:
    return ModelList(data=[ModelCard(id=served_model, created=now())]).model_dump()


# --- parsing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelsRequest:
    """GET /v1/models."""


def parse_openai(job_input: dict[str, Any], served_model: str) -> GenerationRequest | ModelsRequest:
    """Parse RunPod's ``{"openai_route", "openai_input"}``; BadInput lists every bad field."""
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


def _check(model: str, sampling: Sampling, served_model: str) -> None:
    problems = min_tokens_problems(sampling, "openai_input")
    if model != served_model:
        problems.append(FieldProblem("openai_input.model", f"this endpoint serves only {served_model!r}", model))
    if problems:
        raise BadInput(problems)


# --- rendering ------------------------------------------------------------------------------------


def shape_for(request: GenerationRequest, model: str) -> ResponseShape:
    """The shape of ``request``'s response: OpenAI objects for the chat and completion APIs, else native."""
    if request.api == "chat":
        return ChatShape(model)
    if request.api == "completion":
        return CompletionShape(model)
    return ResponseShape()


class _OpenAIShape(ResponseShape):
    """One response's objects: a stream's chunks share one id and creation time, as OpenAI's do.

    A subclass names its chunk object (``chunk_type``), that object's choice (``choice_type``) and the
    choice field that carries the generated text (``content_field``: a chat ``delta``, a completion's ``text``).
    """

    kind: Literal["chat", "completion"]
    chunk_type: type[BaseModel]
    choice_type: type[BaseModel]
    content_field: Literal["delta", "text"]

    def __init__(self, model: str):
        self.model = model
        self.id = new_id(self.kind)
        self.created = now()

    def _chunk(self, content: Any = None, finish: FinishReason | None = None, usage: Usage | None = None) -> dict:
        """One object with a single choice carrying ``content`` and ``finish``; with no ``content``, the
        usage chunk OpenAI ends a stream with when asked (``stream_options.include_usage``): no choices."""
        choices = [] if content is None else [self.choice_type(**{self.content_field: content}, finish_reason=finish)]
        return self.chunk_type(id=self.id, created=self.created, model=self.model, choices=choices,
                               usage=usage).model_dump()


class ChatShape(_OpenAIShape):
    kind = "chat"
    chunk_type = ChatCompletionChunk
    choice_type = ChatChunkChoice
    content_field = "delta"

    def whole(self, text: str, finish: Finish) -> dict[str, Any]:
        return ChatCompletion(
            id=self.id, created=self.created, model=self.model, usage=finish.usage,
            choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=finish.reason)],
        ).model_dump()

    def opening(self) -> dict[str, Any]:
        return self._chunk(ChatDelta(role="assistant", content=""))

    def delta(self, text: str) -> dict[str, Any]:
        return self._chunk(ChatDelta(content=text))

    def last(self, finish: Finish) -> dict[str, Any]:
        return self._chunk(ChatDelta(), finish.reason)

    def usage(self, finish: Finish) -> dict[str, Any]:
        return self._chunk(usage=finish.usage)


class CompletionShape(_OpenAIShape):
    kind = "completion"
    chunk_type = Completion
    choice_type = CompletionChoice
    content_field = "text"

    def whole(self, text: str, finish: Finish) -> dict[str, Any]:
        return self._chunk(text, finish.reason, finish.usage)

    def delta(self, text: str) -> dict[str, Any]:
        return self._chunk(text)

    def last(self, finish: Finish) -> dict[str, Any]:
        return self._chunk("", finish.reason)

    def usage(self, finish: Finish) -> dict[str, Any]:
        return self._chunk(usage=finish.usage)
