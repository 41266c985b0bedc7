"""worker-vllm's native request (``prompt`` or ``messages`` + ``sampling_params``), declared once, and its answer.

Source: runpod-workers/worker-vllm, newest release v2.25.2 (README "Usage: Standard (Non-OpenAI)" and
``src/handler.py``, "Legacy shorthand"): the request ``{"prompt" | "messages", "sampling_params", "stream"}``
is turned into the body ``{**sampling_params, "stream", "prompt" | "messages"}`` of vLLM's
``/v1/completions`` (``prompt``) or ``/v1/chat/completions`` (``messages``), and the answer is what that
route answers: the whole OpenAI response once, or, streamed, the raw server-sent-event text
(``"data: {...}\\n\\n"`` ... ``"data: [DONE]\\n\\n"``) as string chunks. This module is the one place both
LLM workers read that form from: the typed request (bounds, defaults; the README table and JSON Schema
come from it), the mixed-form check, the OpenAI body it stands for, and the SSE text of a stream chunk.

Earlier releases (<= v2.23, ``src/engine.py``) also read ``apply_chat_template``, ``use_openai_format``
and the stream batching knobs ``max_batch_size``, ``min_batch_size``, ``batch_size_growth_factor``; the
newest README still mentions ``apply_chat_template``. They are accepted (typed, bounded) so such clients
are not refused; answers follow the newest release (OpenAI shapes, so ``use_openai_format`` is always on)
and stream batching is ours: text produced while the previous chunk is being posted is joined into the
next one (``shared.stream_coalescing``), which is what the batching knobs tuned by hand.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import Field, StrictBool, ValidationError, field_validator

from shared.errors import BadInput, FieldProblem
from shared.llm.inputs import (
    MAX_MESSAGES,
    MAX_MODEL_NAME_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STOP_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_TOKENS_LIMIT,
    ChatMessage,
    Sampling,
    StructuredOutputs,
    stop_as_list,
)
from shared.llm.openai import CHAT_ROUTE, COMPLETIONS_ROUTE, StreamOptions
from shared.validation import WorkerInput, markdown_table, problems_from

#: max_tokens of a ``prompt`` request that names none (vLLM's /v1/completions default).
DEFAULT_COMPLETION_MAX_TOKENS = 16
#: Most sequences per request (``n``); vLLM has no cap of its own, each one costs a full generation.
MAX_N = 16
#: Most log-probabilities per token (vLLM's own default cap, ``max_logprobs``, is 20).
MAX_LOGPROBS = 20
MAX_STOP_TOKEN_IDS = 64
MAX_TOKEN_ID = 2**31 - 1
#: Stream batching knobs of worker-vllm <= v2.23 (its defaults: 50, 1, 3; DEFAULT_BATCH_SIZE etc.).
MAX_BATCH_SIZE = 10_000

#: Top-level fields that make a request worker-vllm's form rather than ours.
WORKER_VLLM_ONLY = ("sampling_params", "apply_chat_template", "use_openai_format", "max_batch_size",
                    "min_batch_size", "batch_size_growth_factor")


class VllmSamplingParams(WorkerInput):
    """worker-vllm's ``sampling_params``: vLLM's SamplingParams names (README "Sampling Parameters"), with the
    defaults vLLM's OpenAI server applies. Fields vLLM 0.32 no longer has (``best_of``, ``early_stopping``)
    are refused as unknown rather than silently ignored. ``model`` is not a sampling parameter: worker-vllm
    merges ``sampling_params`` into the OpenAI body (src/handler.py), so a ``model`` there selects the served
    model or a LoRA adapter, as on its OpenAI routes."""

    model: str | None = Field(None, min_length=1, max_length=MAX_MODEL_NAME_CHARS, description="The served model "
                              "or a LoRA adapter, by its `/v1/models` name (default: the served model); the "
                              "transformers worker serves no adapters.")

    n: int = Field(1, ge=1, le=MAX_N, description="Number of output sequences generated from the prompt.")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Penalizes tokens already in the output; "
                                    "> 0 encourages new tokens.")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Penalizes tokens by their count in the "
                                     "output so far; > 0 encourages new tokens.")
    repetition_penalty: float = Field(1.0, gt=0.0, le=2.0, description="> 1 discourages tokens of the prompt and "
                                      "output; 1 = off.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="Randomness of sampling; 0 = greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Cumulative probability of the top tokens to consider.")
    top_k: int = Field(-1, ge=-1, le=100_000, description="Number of top tokens to consider; -1 or 0 = all.")
    min_p: float = Field(0.0, ge=0.0, le=1.0, description="Minimum probability of a token relative to the most "
                         "likely one; 0 = off.")
    use_beam_search: StrictBool = Field(False, description="Beam search instead of sampling.")
    length_penalty: float = Field(1.0, ge=-10.0, le=10.0, description="Length penalty of beam search.")
    stop: list[str] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES,
                            description=f"Strings that end generation (a string or a list; each at most "
                            f"{MAX_STOP_CHARS} characters); not in the output.")
    stop_token_ids: list[int] = Field(default_factory=list, max_length=MAX_STOP_TOKEN_IDS,
                                      description="Token ids that end generation.")
    include_stop_str_in_output: StrictBool = Field(False, description="Keep the stop string in the output.")
    ignore_eos: StrictBool = Field(False, description="Keep generating past end-of-sequence, up to max_tokens.")
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT, description="Most tokens to generate per "
                                   f"sequence. Default (vLLM's): {DEFAULT_COMPLETION_MAX_TOKENS} for `prompt`, "
                                   "what the context leaves for `messages`; prompt + max_tokens over the "
                                   "context is refused.")
    min_tokens: int = Field(0, ge=0, le=MAX_TOKENS_LIMIT, description="End-of-sequence and stop strings are "
                            "ignored until this many tokens are generated.")
    skip_special_tokens: StrictBool = Field(True, description="Leave special tokens out of the output.")
    spaces_between_special_tokens: StrictBool = Field(True, description="Spaces between special tokens in "
                                                      "the output.")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Sampling seed: same seed, same text.")
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS, description="Log-probabilities of this many top "
                                 "tokens per generated token.")
    stream_options: StreamOptions | None = Field(None, description="With `stream`: `{\"include_usage\": true}` "
                                                 "adds a last chunk with the usage (an OpenAI body field; worker-vllm "
                                                 "merges sampling_params into the body, so it works there too).")
    structured_outputs: StructuredOutputs | None = Field(None, description="Constrain the output to a JSON "
                                                         "schema, a regex or a list of choices (vLLM's guided "
                                                         "decoding).")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        return stop_as_list(value)

    @field_validator("stop")
    @classmethod
    def _stop_lengths(cls, value: list[str]) -> list[str]:
        if any(not 1 <= len(stop) <= MAX_STOP_CHARS for stop in value):
            raise ValueError(f"each stop string must be 1 to {MAX_STOP_CHARS} characters long")
        return value

    @field_validator("stop_token_ids")
    @classmethod
    def _token_ids(cls, value: list[int]) -> list[int]:
        if any(not 0 <= token <= MAX_TOKEN_ID for token in value):
            raise ValueError(f"token ids are 0 to {MAX_TOKEN_ID}")
        return value

    def given(self) -> dict[str, Any]:
        """The fields the client set, as vLLM's OpenAI request takes them."""
        return self.model_dump(exclude_unset=True, by_alias=True)


class WorkerVllmRequest(WorkerInput):
    """worker-vllm's native input (``{"input": {...}}``): a ``prompt`` (to /v1/completions) or ``messages``
    (to /v1/chat/completions) with vLLM ``sampling_params``; the answer is that route's OpenAI response,
    or its server-sent-event text when streamed."""

    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS,
                               description="Text to continue; no chat template unless apply_chat_template.")
    messages: list[ChatMessage] | None = Field(None, min_length=1, max_length=MAX_MESSAGES,
                                               description="A chat; the model's chat template renders it.")
    sampling_params: VllmSamplingParams = Field(default_factory=VllmSamplingParams,
                                                description="vLLM sampling parameters (table below).")
    stream: StrictBool = Field(False, description="Answer as server-sent-event text chunks (`data: {...}`, "
                               "ending `data: [DONE]`), as worker-vllm streams them.")
    apply_chat_template: StrictBool = Field(False, description="With `prompt`: send it as one user message "
                                            "through the chat template (worker-vllm <= v2.23).")
    use_openai_format: StrictBool = Field(True, description="Accepted for worker-vllm <= v2.23 clients; answers "
                                          "are always in OpenAI's format, as in the newest worker-vllm.")
    max_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH_SIZE, description="Accepted for worker-vllm "
                                       "<= v2.23 clients; stream chunks are joined while the previous one is "
                                       "posted instead.")
    min_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH_SIZE, description="As max_batch_size.")
    batch_size_growth_factor: float | None = Field(None, ge=1.0, le=100.0, description="As max_batch_size.")

    @property
    def route(self) -> str:
        return CHAT_ROUTE if self.messages is not None or self.apply_chat_template else COMPLETIONS_ROUTE

    def chat(self) -> list[ChatMessage] | None:
        if self.messages is not None:
            return list(self.messages)
        if self.apply_chat_template:
            return [ChatMessage(role="user", content=self.prompt or "")]
        return None

    def openai_body(self, model: str) -> dict[str, Any]:
        """The vLLM OpenAI request body this stands for (as worker-vllm's handler builds it): ``model`` is
        ``sampling_params.model`` if given, else the served model."""
        body: dict[str, Any] = {"model": model, **self.sampling_params.given(), "stream": self.stream}
        chat = self.chat()
        if chat is not None:
            body["messages"] = [m.model_dump(exclude_none=True) for m in chat]
        else:
            body["prompt"] = self.prompt
        return body


def is_worker_vllm_form(data: Any) -> bool:
    return isinstance(data, dict) and any(name in data for name in WORKER_VLLM_ONLY)


def parse_worker_vllm(data: dict[str, Any]) -> WorkerVllmRequest:
    """Validate worker-vllm's form, every bad field at once; a request mixing in our native form's sampling
    fields is refused naming each of them (which form wins would be a guess)."""
    mixed = [FieldProblem(name, "is a field of this worker's own native form; with sampling_params "
                          f"(worker-vllm's form) put it in sampling_params.{name}")
             for name in data if name in Sampling.model_fields]
    given = [name for name in ("prompt", "messages") if data.get(name) is not None]
    if len(given) != 1:
        mixed.append(FieldProblem("prompt", ("give only one of " if given else "one of these is required: ")
                                  + "prompt or messages"))
    try:
        request = WorkerVllmRequest.model_validate({k: v for k, v in data.items() if k not in Sampling.model_fields})
    except ValidationError as exc:
        raise BadInput(mixed + problems_from(exc)) from None
    params = request.sampling_params
    if params.max_tokens is not None and params.min_tokens > params.max_tokens:
        mixed.append(FieldProblem("sampling_params.min_tokens", f"must be <= max_tokens ({params.max_tokens})",
                                  params.min_tokens))
    if request.apply_chat_template and request.messages is not None:
        mixed.append(FieldProblem("apply_chat_template", "applies to `prompt`; messages always use the template"))
    if mixed:
        raise BadInput(mixed)
    return request


def sse_text(chunk: dict[str, Any]) -> str:
    """One stream chunk as the server-sent-event text worker-vllm yields (vLLM's own ``data:`` lines)."""
    return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"


#: The last event of every worker-vllm stream (vLLM's OpenAI server ends its SSE stream with it).
SSE_DONE = "data: [DONE]\n\n"


async def as_sse(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """A stream's chunks as worker-vllm yields them: each one's SSE text, then ``data: [DONE]``."""
    async with contextlib.aclosing(chunks):  # a cancelled job closes the engine's stream
        async for chunk in chunks:
            yield sse_text(chunk)
    yield SSE_DONE


def reference() -> str:
    """The README reference of this form: the request's fields, then ``sampling_params``'s, then
    ``structured_outputs``'s (generated by devkit.docs)."""
    return "\n\n".join([markdown_table(WorkerVllmRequest), "`sampling_params`:", markdown_table(VllmSamplingParams),
                        "`sampling_params.structured_outputs` (exactly one):", markdown_table(StructuredOutputs)])
