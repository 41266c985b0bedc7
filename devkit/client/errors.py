"""Typed errors of RunPod calls: HTTP refusals (shared with deploy) and job outcomes other than COMPLETED.

A FAILED job carries the worker's error envelope as a JSON string in ``error``, read here with the
definition the workers write it with (shared.errors.read_envelope); `JobFailed` exposes its code,
retryable flag and field problems. Workers outside this repo, and the runpod SDK itself
when a handler raises, put other strings there: those become a `JobFailed` with ``code=None`` and the
best message that can be read from them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.errors import FieldProblem, read_envelope


class ClientError(Exception):
    """Base of every error raised by devkit.client and devkit.deploy's HTTP layer."""


# --- HTTP-level -----------------------------------------------------------------------------------


class ApiError(ClientError):
    """RunPod answered with an error status (after retries, for transient ones)."""

    def __init__(self, status: int, message: str, method: str, url: str):
        super().__init__(f"{method} {url}: HTTP {status}: {message}")
        self.status = status
        self.message = message


class Unauthorized(ApiError):
    """401/403: the API key is missing, wrong, or lacks the permission."""


class RequestRejected(ApiError):
    """400/404/422 and other 4xx: the request is wrong; ``message`` is the server's reason. Never retried."""


class ServerUnavailable(ApiError):
    """429 or 5xx still there after every retry."""


class Unreachable(ClientError):
    """A network error (refused, reset, timed out) still there after every retry."""

    def __init__(self, method: str, url: str, cause: Exception):
        super().__init__(f"{method} {url}: {type(cause).__name__}: {cause or 'no detail'}")


def api_error(response: httpx.Response, *, secret: str | None = None) -> ApiError:
    """The typed error for a non-2xx response; ``secret`` is scrubbed from anything the server echoed."""
    status = response.status_code
    message = server_message(response)
    if secret:
        message = message.replace(secret, "***")
    if status in (401, 403):
        message = f"{message} (check RUNPOD_API_KEY)" if message else "check RUNPOD_API_KEY"
        kind: type[ApiError] = Unauthorized
    elif status == 429 or status >= 500:
        kind = ServerUnavailable
    else:
        kind = RequestRejected
    request = response.request
    return kind(status, message, request.method, str(request.url.copy_with(query=None)))


def server_message(response: httpx.Response) -> str:
    """The reason a server gave: RunPod's ``error``/``message``, FastAPI's ``detail``, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)[:1000]
    return json.dumps(body)[:500]


# --- job outcomes ---------------------------------------------------------------------------------


#: One refused input field, as the worker reported it: the worker's own type (``field`` is a dotted path).
Problem = FieldProblem


class JobError(ClientError):
    """A job that ended without a result."""

    def __init__(self, job_id: str, status: str, message: str):
        super().__init__(f"job {job_id} {status}: {message}")
        self.job_id = job_id
        self.status = status
        self.message = message


class JobFailed(JobError):
    """FAILED. ``code`` is the worker's error code (BAD_INPUT, ...), None when it sent no envelope."""

    def __init__(self, job_id: str, message: str, *, code: str | None = None, retryable: bool = False,
                 problems: tuple[Problem, ...] = (), more_problems: int = 0, raw: Any = None):
        super().__init__(job_id, "FAILED", f"{code}: {message}" if code else message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.problems = problems
        #: Problems the worker found beyond those listed (the envelope lists at most MAX_LISTED_PROBLEMS).
        self.more_problems = more_problems
        self.raw = raw


class JobTimedOut(JobError):
    """TIMED_OUT: the job ran past the endpoint's execution timeout."""


class JobCancelled(JobError):
    """CANCELLED: someone cancelled the job (this client included)."""


class WaitTimeout(ClientError):
    """This client stopped waiting; the job may still run. Cancel it or keep polling ``job_id``."""

    def __init__(self, job_id: str, waited_s: float, last_status: str):
        super().__init__(f"job {job_id} still {last_status} after {waited_s:.1f} s")
        self.job_id = job_id
        self.last_status = last_status


def error_message(error: Any) -> str:
    """The readable message of any ``error`` value (envelope, SDK report or plain text)."""
    envelope = read_envelope(error)
    return envelope.message if envelope is not None else _other_message(error)


def job_failed(job_id: str, error: Any) -> JobFailed:
    envelope = read_envelope(error)
    if envelope is None:
        return JobFailed(job_id, _other_message(error), raw=error)
    return JobFailed(job_id, envelope.message, code=envelope.code, retryable=envelope.retryable,
                     problems=envelope.problems, more_problems=envelope.more_problems, raw=error)


def _other_message(error: Any) -> str:
    """The message of an ``error`` that holds no envelope: the SDK's report of an exception, or any text."""
    body = error
    if isinstance(error, str):
        try:
            body = json.loads(error)
        except ValueError:
            return error or "the job failed without a message"
    if not isinstance(body, dict):
        return str(error)
    if "error_message" in body:  # the runpod SDK's report of an exception the handler let escape
        kind = body.get("error_type") or "error"
        return f"{kind}: {body['error_message']}"
    return json.dumps(body)[:1000]
