"""What an LLM engine reports (text deltas, then one `Finish`) and how each API turns it into yielded chunks.

Native API (``{"input": {...}}``), non-streamed: one ``{"text", "finish_reason", "usage"}``. Streamed: one
``{"text": delta}`` per delta, then ``{"text": "", "finish_reason", "usage"}``. OpenAI routes: one
``chat.completion`` / ``text_completion`` object, or their chunk objects (the local endpoint and RunPod
turn each yielded chunk into one SSE ``data:`` line).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.llm.openai import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatDelta,
    Completion,
    CompletionChoice,
    FinishReason,
    Usage,
    new_id,
    now,
)
from shared.llm.requests import GenerationRequest


@dataclass(frozen=True)
class Finish:
    """The last event of a generation: why it ended and what it cost."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int

    @property
    def usage(self) -> Usage:
        return Usage.of(self.prompt_tokens, self.completion_tokens)


Event = str | Finish


class GenerateOutput(BaseModel):
    """The native, non-streamed result."""

    text: str
    finish_reason: FinishReason
    usage: Usage


class StreamChunk(BaseModel):
    """One native stream chunk; the last one has ``finish_reason`` and ``usage``."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


async def render(request: GenerationRequest, events: AsyncIterator[Event], model: str) -> AsyncIterator[dict]:
    """The chunks a handler yields for ``request``, from the engine's events. Closing this iterator
    (a cancelled job) closes ``events``, which must stop the generation."""
    async with contextlib.aclosing(events):
        if request.stream:
            async for chunk in _stream(request, events, model):
                yield chunk
        else:
            yield await _whole(request, events, model)


async def _whole(request: GenerationRequest, events: AsyncIterator[Event], model: str) -> dict[str, Any]:
    parts: list[str] = []
    async for event in events:
        if isinstance(event, Finish):
            return _whole_response(request, "".join(parts), event, model)
        parts.append(event)
    raise RuntimeError("the engine ended without a Finish event")


def _whole_response(request: GenerationRequest, text: str, finish: Finish, model: str) -> dict[str, Any]:
    if request.api == "chat":
        return ChatCompletion(
            id=new_id("chat"), created=now(), model=model, usage=finish.usage,
            choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=finish.reason)],
        ).model_dump()
    if request.api == "completion":
        return Completion(
            id=new_id("completion"), created=now(), model=model, usage=finish.usage,
            choices=[CompletionChoice(text=text, finish_reason=finish.reason)],
        ).model_dump()
    return GenerateOutput(text=text, finish_reason=finish.reason, usage=finish.usage).model_dump()


async def _stream(request: GenerationRequest, events: AsyncIterator[Event], model: str) -> AsyncIterator[dict]:
    shape = _ChunkShape(request, model)
    if request.api == "chat":
        yield shape.chat(ChatDelta(role="assistant", content=""))
    async for event in events:
        if isinstance(event, Finish):
            yield shape.last(event)
            if request.include_usage and request.api != "native":
                yield shape.usage(event)
            return
        if event:
            yield shape.delta(event)
    raise RuntimeError("the engine ended without a Finish event")


class _ChunkShape:
    """Chunk objects of one stream (OpenAI streams share one id and creation time)."""

    def __init__(self, request: GenerationRequest, model: str):
        self.api = request.api
        self.model = model
        self.id = new_id("chat" if self.api == "chat" else "completion")
        self.created = now()

    def chat(self, delta: ChatDelta, finish: FinishReason | None = None, usage: Usage | None = None) -> dict:
        choices = [] if usage else [ChatChunkChoice(delta=delta, finish_reason=finish)]
        chunk = ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=choices, usage=usage)
        body = chunk.model_dump()
        for choice in body["choices"]:  # OpenAI sends only the delta fields that are set
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
        return body

    def completion(self, text: str, finish: FinishReason | None = None, usage: Usage | None = None) -> dict:
        choices = [] if usage else [CompletionChoice(text=text, finish_reason=finish)]
        return Completion(id=self.id, created=self.created, model=self.model, choices=choices,
                          usage=usage).model_dump()

    def delta(self, text: str) -> dict:
        if self.api == "chat":
            return self.chat(ChatDelta(content=text))
        if self.api == "completion":
            return self.completion(text)
        return StreamChunk(text=text).model_dump(exclude_none=True)

    def last(self, finish: Finish) -> dict:
        if self.api == "chat":
            return self.chat(ChatDelta(), finish.reason)
        if self.api == "completion":
            return self.completion("", finish.reason)
        return StreamChunk(text="", finish_reason=finish.reason, usage=finish.usage).model_dump()

    def usage(self, finish: Finish) -> dict:
        if self.api == "chat":
            return self.chat(ChatDelta(), usage=finish.usage)
        return self.completion("", usage=finish.usage)
