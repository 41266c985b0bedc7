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

from llm_vllm.engine import EngineHost
from shared.errors import BadInput, DeviceFailure, FieldProblem, NotReady, WorkerError
from shared.llm.openai import CHAT_ROUTE, COMPLETIONS_ROUTE, MODELS_ROUTE, ROUTES
from shared.llm.outputs import join_text_chunks
from shared.stream_coalescing import coalesced
from shared.validation import loose_boolean_problems, problems_from

_INPUT = "openai_input"


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
    loose = loose_boolean_problems(model, body, prefix=_INPUT)
    if loose:
        raise BadInput(loose)
    try:
        # The job id names the request in vLLM's logs (and keeps it unique across workers).
        request = model.model_validate({**body, "request_id": request_id})
    except ValidationError as exc:
        raise BadInput(problems_from(exc, prefix=_INPUT)) from None
    except Exception as exc:  # vLLM's own request checks raise its typed errors (with the parameter)
        raise _error_from(host, route, _error_of_exception(exc)) from exc
    if route == CHAT_ROUTE:
        created = state.openai_serving_chat.create_chat_completion(request, None)
    else:
        created = state.openai_serving_completion.create_completion(request, None)
    try:
        result = await host.call(created)
    except Exception as exc:  # vLLM raises some refusals instead of returning them (context length)
        raise _error_from(host, route, _error_of_exception(exc)) from exc
    if _is_error_response(result):
        raise _error_from(host, route, result.error.model_dump())
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
            raise _error_from(host, route, chunk["error"])
        yield chunk


def _route_and_body(job_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    problems = [FieldProblem(name, "unknown field") for name in sorted(set(job_input) - {"openai_route", _INPUT})]
    route = job_input.get("openai_route")
    if route not in ROUTES:
        problems.append(FieldProblem("openai_route", f"must be one of {', '.join(ROUTES)}", route))
    body = job_input.get(_INPUT, {})
    if not isinstance(body, dict):
        problems.append(FieldProblem(_INPUT, f"must be a JSON object, got {type(body).__name__}"))
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


def _error_of_exception(exc: Exception) -> dict[str, Any]:
    from vllm.entrypoints.serve.exception_handling.error_response import create_error_response

    # vLLM's own classification of an exception into an HTTP error (by type), as `vllm serve` does.
    return create_error_response(exc).error.model_dump()


def _error_from(host: EngineHost, route: str, error: dict[str, Any]) -> WorkerError:
    """A typed worker error for vLLM's ``{"message", "type", "param", "code"}``."""
    status, message, param = error.get("code"), str(error.get("message", "")), error.get("param")
    if isinstance(status, int) and 400 <= status < 500:
        if status == 404:  # a 404 from these routes is an unknown model
            param = "model"
        elif param == "input_tokens":  # vLLM's name for the prompt's length: name the request field
            param = "messages" if route == CHAT_ROUTE else "prompt"
        return BadInput([FieldProblem(f"{_INPUT}.{param}" if param else _INPUT, message)])
    if host.engine.errored:
        return DeviceFailure("the vLLM engine died; this worker will be replaced")
    if status == 503:
        return NotReady(f"the engine cannot take this request now: {message}")
    return WorkerError(f"the vLLM engine failed this request: {message}")
