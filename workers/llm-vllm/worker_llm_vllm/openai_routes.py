"""OpenAI routes served by vLLM's own OpenAI serving layer, in process: what `vllm serve` answers, as job output.

RunPod delivers ``/openai/v1/...`` calls as ``{"openai_route", "openai_input"}``. The body is validated
with vLLM's request models and handed to vLLM's ``OpenAIServingChat`` / ``OpenAIServingCompletion`` /
``OpenAIServingModels`` (the objects behind ``vllm serve``'s routes), so everything vLLM supports works
as it does there: tools and ``tool_choice``, ``response_format`` / structured outputs, ``logprobs``,
``n``, penalties, ``stream_options``. A streamed response's SSE lines become the chunk dicts the handler
yields (the endpoint writes each back as one ``data:`` line); text-only deltas that pile up while the
previous chunk is posted are joined into one (``shared.llm.outputs.join_text_chunks``). vLLM's error
responses become the typed errors of ``shared.errors``, with the offending field when vLLM names it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from shared.errors import BadInput, FieldProblem
from shared.llm.openai import CHAT_ROUTE, COMPLETIONS_ROUTE, MODELS_ROUTE, ROUTES
from shared.llm.outputs import join_text_chunks
from shared.llm.worker_vllm import MAX_N
from shared.stream_coalescing import coalesced
from shared.validation import loose_boolean_problems, problems_from
from worker_llm_vllm.engine import EngineHost
from worker_llm_vllm.engine_errors import OPENAI_INPUT, exception_error, response_error


async def respond(host: EngineHost, job_input: dict[str, Any], request_id: str) -> AsyncIterator[dict[str, Any]]:
    """The chunks of one OpenAI call: the whole response once, or each stream chunk."""
    route, body = _route_and_body(job_input)
    state = host.state
    if route == MODELS_ROUTE:
        models = await host.call(state.openai_serving_models.show_available_models())
        yield models.model_dump(mode="json")
        return
    model = _request_model(route)
    # vLLM's models read "true", 1 or "yes" as True; booleans only, as on llm-hf and in OpenAI's API.
    loose = loose_boolean_problems(model, body, prefix=OPENAI_INPUT)
    if loose:
        raise BadInput(loose)
    try:
        # The job id names the request in vLLM's logs (and keeps it unique across workers).
        request = model.model_validate({**body, "request_id": request_id})
    except ValidationError as exc:
        raise BadInput(problems_from(exc, prefix=OPENAI_INPUT)) from None
    except Exception as exc:  # vLLM's own request checks raise its typed errors (with the parameter)
        raise exception_error(host, exc, route) from exc
    _check_limits(request)
    if route == CHAT_ROUTE:
        created = state.openai_serving_chat.create_chat_completion(request, None)
    else:
        created = state.openai_serving_completion.create_completion(request, None)
    try:
        result = await host.call(created)
    except Exception as exc:  # vLLM raises some refusals instead of returning them (context length)
        raise exception_error(host, exc, route) from exc
    if _is_error_response(result):
        raise response_error(host, route, result.error.model_dump())
    if not hasattr(result, "__aiter__"):
        yield result.model_dump(mode="json")
        return
    # Text deltas vLLM produces while the SDK posts the previous chunk go out joined (shared.llm.outputs).
    async with contextlib.aclosing(coalesced(_stream_chunks(host, route, result), join_text_chunks)) as chunks:
        async for chunk in chunks:  # closing this generator (a cancelled job) closes vLLM's stream
            yield chunk


async def _stream_chunks(host: EngineHost, route: str, result: Any) -> AsyncIterator[dict[str, Any]]:
    """The chunk dicts of vLLM's SSE stream ``result``."""
    async for line in host.stream(result):
        chunk = _sse_data(line)
        if chunk is None:
            continue
        if "error" in chunk:  # vLLM reports a failure after the first chunk as one more event
            raise response_error(host, route, chunk["error"])
        yield chunk


def _check_limits(request: Any) -> None:
    """The worker's own bounds where vLLM sets none: ``n`` as on the native request (each sequence is a full
    generation, so an unbounded ``n`` lets one request hold the engine)."""
    if request.n is not None and request.n > MAX_N:
        raise BadInput([FieldProblem(f"{OPENAI_INPUT}.n", f"at most {MAX_N} sequences per request", request.n)])


def _route_and_body(job_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    problems = [FieldProblem(name, "unknown field") for name in sorted(set(job_input) - {"openai_route", OPENAI_INPUT})]
    route = job_input.get("openai_route")
    if route not in ROUTES:
        problems.append(FieldProblem("openai_route", f"must be one of {', '.join(ROUTES)}", route))
    body = job_input.get(OPENAI_INPUT, {})
    if not isinstance(body, dict):
        problems.append(FieldProblem(OPENAI_INPUT, f"must be a JSON object, got {type(body).__name__}"))
    if problems:
        raise BadInput(problems)
    return route, body


def _request_model(route: str) -> type:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest

    assert route in (CHAT_ROUTE, COMPLETIONS_ROUTE)
    return ChatCompletionRequest if route == CHAT_ROUTE else CompletionRequest


def _is_error_response(result: Any) -> bool:
    from vllm.entrypoints.serve.engine.protocol import ErrorResponse

    return isinstance(result, ErrorResponse)


def _sse_data(line: str) -> dict[str, Any] | None:
    """The JSON object of one ``data: {...}`` SSE event; None for ``[DONE]`` and keep-alive lines."""
    payload = line.strip().removeprefix("data:").strip()
    if not payload or payload == "[DONE]" or line.lstrip().startswith(":"):
        return None
    return json.loads(payload)
