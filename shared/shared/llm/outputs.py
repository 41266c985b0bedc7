"""What an LLM engine reports (text deltas, then one `Finish`) and how `render` turns it into yielded chunks.

Native API (``{"input": {...}}``), non-streamed: one ``{"text", "finish_reason", "usage"}``. Streamed: one
``{"text": delta}`` per delta, then ``{"text": "", "finish_reason", "usage"}``. Another API's shapes (llm-hf's
OpenAI routes, ``worker_llm_hf.openai``) come in as a `ResponseShape` of their own; the local endpoint and
RunPod turn each yielded chunk into one SSE ``data:`` line.

Streams are `coalesced` with `join_text_chunks`: text deltas produced while the SDK posts the previous
chunk go out as one delta chunk of the same shape, so a client joins exactly the same text from fewer
chunks; finish and usage chunks are never joined.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.llm.openai import FinishReason, Usage
from shared.llm.requests import GenerationRequest
from shared.llm.worker_vllm import as_sse
from shared.stream_coalescing import coalesced


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


class ResponseShape:
    """The objects one response is made of: the native API's here; another API overrides each method."""

    def whole(self, text: str, finish: Finish) -> dict[str, Any]:
        """The non-streamed result."""
        return GenerateOutput(text=text, finish_reason=finish.reason, usage=finish.usage).model_dump()

    def opening(self) -> dict[str, Any] | None:
        """A chunk the stream opens with before any text, if the API has one."""
        return None

    def delta(self, text: str) -> dict[str, Any]:
        return StreamChunk(text=text).model_dump(exclude_none=True)

    def last(self, finish: Finish) -> dict[str, Any]:
        return StreamChunk(text="", finish_reason=finish.reason, usage=finish.usage).model_dump()

    def usage(self, finish: Finish) -> dict[str, Any] | None:
        """The chunk a stream asked to end with usage (``include_usage``) ends with, if the API has one."""
        return None


async def render(request: GenerationRequest, events: AsyncIterator[Event],
                 shape: ResponseShape | None = None) -> AsyncIterator[dict]:
    """The chunks a handler yields for ``request``, from the engine's events, in ``shape`` (native if none).
    Closing this iterator (a cancelled job) closes ``events``, which must stop the generation."""
    shape = shape or ResponseShape()
    async with contextlib.aclosing(events):
        if request.stream:
            # Closed before ``events``: its reading task must stop iterating them first.
            chunks = coalesced(_stream(request, events, shape), join_text_chunks)
            async with contextlib.aclosing(as_sse(chunks) if request.sse else chunks) as pieces:
                async for piece in pieces:
                    yield piece
        else:
            yield await _whole(events, shape)


async def _whole(events: AsyncIterator[Event], shape: ResponseShape) -> dict[str, Any]:
    parts: list[str] = []
    async for event in events:
        if isinstance(event, Finish):
            return shape.whole("".join(parts), event)
        parts.append(event)
    raise RuntimeError("the engine ended without a Finish event")


async def _stream(request: GenerationRequest, events: AsyncIterator[Event],
                  shape: ResponseShape) -> AsyncIterator[dict]:
    opening = shape.opening()
    if opening is not None:
        yield opening
    async for event in events:
        if isinstance(event, Finish):
            yield shape.last(event)
            usage = shape.usage(event) if request.include_usage else None
            if usage is not None:
                yield usage
            return
        if event:
            yield shape.delta(event)
    raise RuntimeError("the engine ended without a Finish event")


# --- joining streamed text ------------------------------------------------------------------------

_CHUNK_OBJECTS = ("chat.completion.chunk", "text_completion")


def join_text_chunks(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any] | None:
    """One chunk carrying the text of both, when both are text-only deltas of the same stream; else None.

    Text-only: a native ``{"text"}`` chunk, or an OpenAI chunk (ours or vLLM's) with one choice whose
    only content is its text (``delta.content`` / ``text``): no finish reason, log-probabilities, usage,
    role, tool calls. Everything but the text must be equal (id, created, model, choice index...), so the
    joined chunk is a chunk the stream could have sent.
    """
    first, second = _text_slot(earlier), _text_slot(later)
    if first is None or second is None or first[1] != second[1]:
        return None
    joined = copy.deepcopy(earlier)
    container, key = _text_container(joined)
    container[key] = first[0] + second[0]
    return joined


def _text_slot(chunk: Any) -> tuple[str, Any] | None:
    """(the chunk's text, the chunk with its text blanked) for a text-only delta chunk; else None."""
    if not isinstance(chunk, dict):
        return None
    if set(chunk) == {"text"} and isinstance(chunk["text"], str):  # native
        return chunk["text"], {}
    if chunk.get("object") not in _CHUNK_OBJECTS or chunk.get("usage") is not None:
        return None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    if choice.get("finish_reason") is not None or choice.get("logprobs") is not None:
        return None
    container, key = _text_container(chunk)
    if container is None or not isinstance(container.get(key), str):
        return None
    if chunk["object"] == "chat.completion.chunk" and {k for k, v in container.items() if v is not None} != {key}:
        return None  # a role, tool calls or reasoning ride along: not plain text
    blanked = copy.deepcopy(chunk)
    _text_container(blanked)[0][key] = ""
    return container[key], blanked


def _text_container(chunk: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The dict that holds a chunk's text, and the key of the text in it."""
    if "choices" not in chunk:
        return chunk, "text"
    choice = chunk["choices"][0]
    if chunk.get("object") == "chat.completion.chunk":
        delta = choice.get("delta")
        return (delta if isinstance(delta, dict) else None), "content"
    return choice, "text"
