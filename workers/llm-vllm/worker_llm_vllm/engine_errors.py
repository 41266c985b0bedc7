"""vLLM's failures as the worker's typed errors: the one mapper of this engine, for both job shapes.

Native jobs and OpenAI routes fail the same ways (a dead engine, vLLM's own request checks, its error
responses) and get the same codes; only the field a refusal names differs (``openai_input.<param>`` on a
route). Matching is by vLLM's types and status codes, never by message text.
"""

from __future__ import annotations

from typing import Any

from shared.errors import BadInput, DeviceFailure, FieldProblem, NotReady, WorkerError
from shared.llm.openai import CHAT_ROUTE, EMBEDDINGS_ROUTE
from worker_llm_vllm.adapters import served_names
from worker_llm_vllm.engine import EngineHost

#: Where an OpenAI route's request body sits in the job input.
OPENAI_INPUT = "openai_input"
#: The request field that holds what vLLM calls ``input_tokens``, per route.
_PROMPT_FIELDS = {CHAT_ROUTE: "messages", EMBEDDINGS_ROUTE: "input"}
_ENGINE_DIED = "the vLLM engine died; this worker will be replaced"


def exception_error(host: EngineHost, exc: BaseException, route: str | None = None) -> WorkerError | None:
    """The typed error for an exception raised while vLLM served a job. On an OpenAI ``route`` vLLM
    classifies every exception, as `vllm serve` does; for a native job (``route`` None) an exception vLLM
    did not type is None, left to shared.errors.classify (INTERNAL, with its traceback in the log)."""
    if isinstance(exc, WorkerError):
        return exc
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.engine.exceptions import EngineDeadError

    if isinstance(exc, EngineDeadError) or host.engine.errored:
        return DeviceFailure(_ENGINE_DIED)
    if route is None:
        if isinstance(exc, VLLMValidationError):
            return BadInput.field(exc.parameter or "input", str(exc), exc.value)
        return None
    from vllm.entrypoints.serve.exception_handling.error_response import create_error_response

    # vLLM's own classification of an exception into an HTTP error (by type), as `vllm serve` does.
    return response_error(host, route, create_error_response(exc).error.model_dump())


def response_error(host: EngineHost, route: str, error: dict[str, Any]) -> WorkerError:
    """The typed error for vLLM's error response ``{"message", "type", "param", "code"}`` on ``route``."""
    status, message, param = error.get("code"), str(error.get("message", "")), error.get("param")
    if isinstance(status, int) and 400 <= status < 500:
        if status == 404:  # a 404 from these routes is an unknown model (or LoRA adapter)
            param = "model"
            message = f"{message} Known: {', '.join(served_names(host.state))}"
        elif param == "input_tokens":  # vLLM's name for the prompt's length: name the request field
            param = _PROMPT_FIELDS.get(route, "prompt")
        return BadInput([FieldProblem(f"{OPENAI_INPUT}.{param}" if param else OPENAI_INPUT, message)])
    if host.engine.errored:
        return DeviceFailure(_ENGINE_DIED)
    if status == 503:
        return NotReady(f"the engine cannot take this request now: {message}")
    return WorkerError(f"the vLLM engine failed this request: {message}")
