"""OpenAI-compatible shapes: the requests RunPod forwards (``openai_input``) and the responses and chunks.

Requests accept what the official ``openai`` client sends for /v1/chat/completions and /v1/completions,
plus vLLM's extra sampling fields (``top_k``, ``repetition_penalty``, ``min_tokens``, ``ignore_eos``,
sent with ``extra_body``). These are the models llm-hf serves its OpenAI routes with: what it cannot
honour (``n`` > 1, log-probabilities, penalties other than repetition, tools) is refused with a
field-level reason rather than silently ignored. llm-vllm serves its OpenAI routes with vLLM's own
request models instead, so it accepts all of vLLM's fields (tools, ``response_format``, logprobs, ``n``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, field_validator

from shared.llm.inputs import MAX_MESSAGES, MAX_PROMPT_CHARS, MAX_TOKENS_LIMIT, ChatMessage, Sampling
from shared.validation import WorkerInput

CHAT_ROUTE = "/v1/chat/completions"
COMPLETIONS_ROUTE = "/v1/completions"
MODELS_ROUTE = "/v1/models"
ROUTES = (CHAT_ROUTE, COMPLETIONS_ROUTE, MODELS_ROUTE)

FinishReason = Literal["stop", "length"]


# --- requests -------------------------------------------------------------------------------------


class StreamOptions(WorkerInput):
    include_usage: StrictBool = Field(False, description="Send one last chunk with the token usage.")


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


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens)


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
