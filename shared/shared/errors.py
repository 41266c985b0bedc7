"""Typed worker errors with stable codes, the envelope clients read, and the one place that writes it.

The error tree (codes are stable API: clients branch on them, never on messages). Each type carries
its ``code``, ``retryable`` and ``http_status`` (the local endpoint's OpenAI routes answer it);
ERROR_TYPES lists them and the README's error table is generated from it (``make docs``)::

    WorkerError                       INTERNAL            (base; never raised bare by workers)
    ├── BadInput                      BAD_INPUT           every offending field, with path and reason
    ├── InputTooLarge                 INPUT_TOO_LARGE     a field's payload over its documented limit
    ├── OutputTooLarge                OUTPUT_TOO_LARGE    a result over RunPod's payload limit
    ├── UploadFailed                  UPLOAD_FAILED       the bucket refused an over-the-limit result
    ├── InvalidOutput                 INVALID_OUTPUT      the model produced an unusable result (NaN, blank)
    ├── GpuOutOfMemory                GPU_OUT_OF_MEMORY   caches are freed; the worker keeps serving
    ├── JobTimeout                    TIMEOUT             the job ran past its own time limit
    ├── NotReady                      NOT_READY           startup failed or the model is not loaded
    │   └── StartupError              NOT_READY           setup found what a restart cannot fix: cause + fix
    └── DeviceFailure                 DEVICE_FAILURE      unrecoverable: the worker asks to be replaced

INTERNAL is not retryable: it is a failure nobody anticipated, so the same input most likely meets it
again, and RunPod does not retry a FAILED job itself; every failure known to pass on a retry has its own
retryable code (GPU_OUT_OF_MEMORY, TIMEOUT, NOT_READY, DEVICE_FAILURE, UPLOAD_FAILED).

On the wire a failed job carries ``error`` = a JSON *string* (runpod-python issue 299: a non-string
``error`` can show as COMPLETED) holding the envelope::

    {"code": "BAD_INPUT", "message": "...", "retryable": false,
     "problems": [{"field": "messages.0.role", "reason": "...", "value": "robot"}]}

plus ``"more_problems": <count>`` when more problems were found than MAX_LISTED_PROBLEMS.

`classify` maps any exception to its type and `failure_result` writes the handler result RunPod turns into
a FAILED job; shared.guard, the runtime around every handler, calls them. The envelope is bounded
(MAX_LISTED_PROBLEMS, MAX_ENVELOPE_CHARS...), whatever the input.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: How much of a refusal the envelope carries, whatever the input: a client needs the first problems
#: and how many more there are, never the input echoed back (a BAD_INPUT naming 5,000 unknown fields,
#: or a 70 KB field name, once made a log line and a job error the size of the input).
#: Problems listed in ``problems`` (and in the message); ``more_problems`` counts the rest.
MAX_LISTED_PROBLEMS = 20
#: Characters of one problem's ``field``, ``reason`` and echoed ``value`` (a string value is cut).
MAX_FIELD_CHARS = 200
MAX_REASON_CHARS = 500
MAX_ECHO_CHARS = 200
#: Characters of the envelope's ``message``.
MAX_MESSAGE_CHARS = 1_000
#: Characters of the whole envelope as JSON (ASCII); problems are dropped from the end to fit, down to
#: one. Even in JSON's widest escaping (12 characters for one astral character) the message and one
#: problem fit, so this bound always holds.
MAX_ENVELOPE_CHARS = 32 * 1024

#: An engine's exception mapper: the WorkerError for an exception of its engine, None for any other.
EngineErrorMapper = Callable[[BaseException], "WorkerError | None"]


@dataclass(frozen=True)
class FieldProblem:
    """One reason one input field was refused. ``field`` is a dotted path (``messages.0.role``)."""

    field: str
    reason: str
    value: Any = None


class WorkerError(Exception):
    """Anything unexpected: a safe message to the client, the traceback in the worker log."""

    code = "INTERNAL"
    retryable = False
    #: The HTTP status the local endpoint's OpenAI routes answer with (devkit.endpoint.openai_api).
    http_status = 500
    #: Ask RunPod to replace this worker after the job (the SDK's ``refresh_worker``).
    replace_worker = False

    def __init__(self, message: str, problems: list[FieldProblem] | None = None):
        # Bounded here, so the worker log line that reports it is bounded too.
        message = _bounded_text(str(message), MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])

    def envelope(self, listed: int = MAX_LISTED_PROBLEMS) -> dict[str, Any]:
        """The error as clients see it; at most ``listed`` problems, each cut to a bounded, strict-JSON form."""
        body: dict[str, Any] = {"code": self.code, "message": self.message,
                                "retryable": self.retryable}
        if self.problems:
            body["problems"] = [_problem_json(p) for p in self.problems[:listed]]
            if len(self.problems) > listed:
                body["more_problems"] = len(self.problems) - listed
        return body

    def to_job_error(self) -> str:
        """The envelope as a JSON string of at most MAX_ENVELOPE_CHARS ASCII characters, always strict JSON."""
        listed = MAX_LISTED_PROBLEMS
        while len(text := json.dumps(self.envelope(listed), allow_nan=False)) > MAX_ENVELOPE_CHARS and listed > 1:
            listed -= 1
        return text


class BadInput(WorkerError):
    """Any invalid field; lists every one, with its path and reason."""

    code = "BAD_INPUT"
    http_status = 400

    def __init__(self, problems: list[FieldProblem], message: str | None = None):
        if not problems:
            raise ValueError("BadInput needs at least one FieldProblem")
        if message is None:
            listed = "; ".join(f"{_bounded_text(str(p.field), MAX_FIELD_CHARS)}: {p.reason}"
                               for p in problems[:MAX_LISTED_PROBLEMS])
            more = len(problems) - MAX_LISTED_PROBLEMS
            message = f"{len(problems)} invalid input field(s): {listed}" + (f"; and {more} more" if more > 0 else "")
        super().__init__(message, problems)

    @classmethod
    def field(cls, field: str, reason: str, value: Any = None) -> BadInput:
        return cls([FieldProblem(field, reason, value)])


class InputTooLarge(WorkerError):
    """A payload over its documented limit (bytes, pixels, tokens)."""

    code = "INPUT_TOO_LARGE"
    http_status = 413

    def __init__(self, field: str, size: int | None, limit: int, unit: str = "bytes"):
        """``size`` None: known to be over the limit, not by how much."""
        over = f"{size} {unit} is over" if size is not None else "is over"
        reason = f"{over} the limit of {limit} {unit}"
        super().__init__(f"{field}: {reason}", [FieldProblem(field, reason)])


class OutputTooLarge(WorkerError):
    """A result over RunPod's payload limit with no bucket configured (shared.payload)."""

    code = "OUTPUT_TOO_LARGE"


class UploadFailed(WorkerError):
    """A result over the payload limit that the configured bucket refused or could not be reached for."""

    code = "UPLOAD_FAILED"
    retryable = True
    http_status = 502


class InvalidOutput(WorkerError):
    """The model produced an unusable result (NaN values, an all-black image); deterministic for the same
    inputs and seed."""

    code = "INVALID_OUTPUT"


class GpuOutOfMemory(WorkerError):
    """CUDA ran out of memory; the GPU memory is released and the worker keeps serving."""

    code = "GPU_OUT_OF_MEMORY"
    retryable = True
    http_status = 503


class JobTimeout(WorkerError):
    """The job ran past its own time limit."""

    code = "TIMEOUT"
    retryable = True
    http_status = 504


class NotReady(WorkerError):
    """The model is not loaded (yet): another worker, or this one a little later, can take the job."""

    code = "NOT_READY"
    retryable = True
    http_status = 503


class StartupError(NotReady):
    """The worker could not start (a bad setting, missing weights, a model that cannot be served or does
    not fit): every job it takes fails at once with the cause and the fix.

    shared.serving keeps the worker in its job loop answering every job with it. ``cause`` says what is
    wrong (which variable, which value), ``fix`` what to change; the message joins them into one sentence.
    """

    retryable = False

    def __init__(self, cause: str, fix: str):
        self.cause, self.fix = cause, fix
        super().__init__(f"{cause}; {fix}")


class DeviceFailure(WorkerError):
    """An unrecoverable GPU or engine error; the worker asks RunPod to replace it."""

    code = "DEVICE_FAILURE"
    retryable = True
    http_status = 503
    replace_worker = True


#: Every error type a client may see, in the order the README's table lists them.
ERROR_TYPES: tuple[type[WorkerError], ...] = (
    BadInput, InputTooLarge, OutputTooLarge, UploadFailed, InvalidOutput, GpuOutOfMemory, JobTimeout, NotReady,
    StartupError, DeviceFailure, WorkerError,
)
#: Every code a client may see, for docs and client-side checks.
CODES: tuple[str, ...] = tuple(dict.fromkeys(kind.code for kind in ERROR_TYPES))
#: The HTTP status of each code (a code's types agree on it: NOT_READY is 503 whether or not it is a failed start).
HTTP_STATUS: dict[str, int] = {kind.code: kind.http_status for kind in ERROR_TYPES}


@dataclass(frozen=True)
class Envelope:
    """A failed job's ``error`` as a client reads it: what `WorkerError.to_job_error` wrote."""

    code: str
    message: str
    retryable: bool = False
    problems: tuple[FieldProblem, ...] = ()
    more_problems: int = 0


def read_envelope(error: Any) -> Envelope | None:
    """The envelope in a job's ``error`` (a JSON string, or its already-parsed object); None when it holds
    none (plain text, the runpod SDK's own report of an exception a handler let escape, another worker's)."""
    body = error
    if isinstance(error, str):
        try:
            body = json.loads(error)
        except ValueError:
            return None
    if not (isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("message"), str)):
        return None
    listed = body.get("problems")
    problems = tuple(
        FieldProblem(str(p.get("field", "")), str(p.get("reason", "")), p.get("value"))
        for p in (listed if isinstance(listed, list) else ()) if isinstance(p, dict)
    )
    more = body.get("more_problems")
    return Envelope(body["code"], body["message"], body.get("retryable") is True, problems,
                    more if isinstance(more, int) and not isinstance(more, bool) else 0)


def _problem_json(problem: FieldProblem) -> dict[str, Any]:
    body: dict[str, Any] = {"field": _bounded_text(str(problem.field), MAX_FIELD_CHARS),
                            "reason": _bounded_text(str(problem.reason), MAX_REASON_CHARS)}
    value = _echo(problem.value)
    if value is not None:
        body["value"] = value
    return body


def _echo(value: Any) -> Any:
    """The offending value in a form that always serialises as strict JSON and stays small: enough to
    recognise it, never a whole payload. Containers and other objects are not echoed (None)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # past 64 bits, writing the digits is itself unbounded work
        return value if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return value if math.isfinite(value) else json.dumps(value)  # "NaN", "Infinity", "-Infinity"
    if isinstance(value, str):
        return _bounded_text(value, MAX_ECHO_CHARS)
    return None


def _bounded_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (marked by "..."), lone surrogates replaced, so it encodes as UTF-8."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def classify(exc: BaseException, engine_error: EngineErrorMapper | None = None) -> WorkerError:
    """Map any exception to the WorkerError a client sees: by type, never by message text.

    The worker's own errors pass through; then its engine's mapper (``engine_error``, e.g. worker_llm_vllm's for
    vLLM's exceptions) has its say; then torch's (shared.torch_errors, which also covers transformers and
    diffusers: they raise torch's types), consulted only if the worker already imported torch, so this
    module stays import-free; a timeout is TIMEOUT; anything else INTERNAL.
    """
    if isinstance(exc, WorkerError):
        return exc
    if engine_error is not None and (mapped := engine_error(exc)) is not None:
        return mapped
    if "torch" in sys.modules:
        from shared.torch_errors import torch_error

        if (mapped := torch_error(exc)) is not None:
            return mapped
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return JobTimeout("the job ran past its time limit")
    return WorkerError("internal error while running the job; details are in the worker log")


def failure_result(error: WorkerError) -> dict[str, Any]:
    """The handler return value that the runpod SDK turns into a FAILED job."""
    result: dict[str, Any] = {"error": error.to_job_error()}
    if error.replace_worker:
        result["refresh_worker"] = True
    return result
