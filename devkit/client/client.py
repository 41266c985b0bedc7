"""A client for one RunPod queue endpoint (or the local endpoint): submit, wait, stream, cancel, health.

Every outcome is explicit: a COMPLETED job returns its output, anything else raises a typed error
(devkit.client.errors). Calls are retried on 429, 5xx and network errors only; a job submission is
resent after a network error only when the request never left this machine, so a job is not queued twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from devkit.client.errors import (
    ClientError,
    JobCancelled,
    JobTimedOut,
    WaitTimeout,
    api_error,
    error_message,
    job_failed,
)
from devkit.client.retry import RetryPolicy, send_with_retries

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
#: RunPod holds a /runsync request at most this long (its ``wait`` parameter, in ms, caps at 300 s).
_RUNSYNC_MAX_WAIT_S = 300


@dataclass(frozen=True)
class JobStatus:
    """One answer of /status (or /run, /runsync, /cancel). ``output``/``error`` as RunPod sent them."""

    id: str
    status: str
    output: Any = None
    error: Any = None
    delay_ms: int | None = None
    execution_ms: int | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobStatus:
        return cls(id=str(body.get("id", "")), status=str(body.get("status", "UNKNOWN")),
                   output=body.get("output"), error=body.get("error"),
                   delay_ms=body.get("delayTime"), execution_ms=body.get("executionTime"))


def outcome(job: JobStatus) -> Any:
    """The output of a finished job, or the typed error of a job that finished any other way."""
    if job.status == "COMPLETED":
        return job.output
    if job.status == "FAILED":
        raise job_failed(job.id, job.error)
    if job.status == "TIMED_OUT":
        default = "the job ran past the endpoint's execution timeout"
        raise JobTimedOut(job.id, job.status, error_message(job.error) if job.error else default)
    if job.status == "CANCELLED":
        raise JobCancelled(job.id, job.status, error_message(job.error) if job.error else "the job was cancelled")
    raise ValueError(f"job {job.id} is not finished: {job.status}")


class Client:
    """Jobs of one endpoint. ``endpoint`` is the RunPod endpoint id, or the worker name locally."""

    def __init__(
        self,
        endpoint: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        poll_interval_s: float = 0.5,
        request_timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        base = base_url or os.environ.get("RUNPOD_ENDPOINT_BASE_URL") or DEFAULT_BASE_URL
        self.endpoint = endpoint
        self.url = f"{base.rstrip('/')}/{endpoint}"
        self.retry = retry or RetryPolicy()
        self.poll_interval_s = poll_interval_s
        self._api_key = api_key if api_key is not None else os.environ.get("RUNPOD_API_KEY")
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._http = httpx.Client(headers=headers, timeout=request_timeout_s, transport=transport)

    def __repr__(self) -> str:  # never the key
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- calls -----------------------------------------------------------------------------------

    def run(self, job_input: Any) -> JobStatus:
        """Queue a job; returns at once with its id (status IN_QUEUE, usually)."""
        return JobStatus.from_json(self._call("POST", "/run", json={"input": job_input}, submit=True))

    def runsync(self, job_input: Any, *, timeout: float = 90.0,
                on_progress: Callable[[JobStatus], None] | None = None) -> Any:
        """Run a job and return its output, waiting at most ``timeout`` seconds overall."""
        started = time.monotonic()
        wait_ms = int(min(timeout, _RUNSYNC_MAX_WAIT_S) * 1000)
        job = JobStatus.from_json(
            self._call("POST", "/runsync", json={"input": job_input}, params={"wait": wait_ms}, submit=True,
                       read_timeout=timeout + 10)
        )
        if job.done:
            return outcome(job)
        # RunPod answers IN_QUEUE/IN_PROGRESS when its own wait ends first: go on polling.
        return self.wait(job.id, timeout=timeout - (time.monotonic() - started), on_progress=on_progress)

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_json(self._call("GET", f"/status/{job_id}"))

    def wait(self, job_id: str, *, timeout: float | None = None,
             on_progress: Callable[[JobStatus], None] | None = None) -> Any:
        """Poll /status until the job ends; ``on_progress`` sees every change of status or output."""
        started = time.monotonic()
        seen: tuple[str, Any] | None = None
        while True:
            job = self.status(job_id)
            if on_progress is not None and (job.status, job.output) != seen:
                seen = (job.status, job.output)
                on_progress(job)
            if job.done:
                return outcome(job)
            self._sleep_or_give_up(job_id, job.status, started, timeout)

    def stream(self, job_id: str, *, timeout: float | None = None) -> Iterator[Any]:
        """Yield each chunk a generator worker produces, as soon as /stream has it; raise if the job fails."""
        started = time.monotonic()
        while True:
            body = self._call("GET", f"/stream/{job_id}")
            status = str(body.get("status", "UNKNOWN"))
            for chunk in body.get("stream") or ():
                yield chunk.get("output") if isinstance(chunk, dict) else chunk
            if status in TERMINAL:
                if status != "COMPLETED":
                    # /stream may omit the error: /status holds the whole record.
                    outcome(self.status(job_id))
                return
            if not body.get("stream"):
                self._sleep_or_give_up(job_id, status, started, timeout)

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.from_json(self._call("POST", f"/cancel/{job_id}"))

    def health(self) -> dict[str, Any]:
        """Worker and job counts: ``{"jobs": {...}, "workers": {...}}``."""
        return self._call("GET", "/health")

    # --- plumbing --------------------------------------------------------------------------------

    def _sleep_or_give_up(self, job_id: str, status: str, started: float, timeout: float | None) -> None:
        waited = time.monotonic() - started
        if timeout is not None and waited + self.poll_interval_s > timeout:
            raise WaitTimeout(job_id, waited, status)
        time.sleep(self.poll_interval_s)

    def _call(self, method: str, path: str, *, submit: bool = False, read_timeout: float | None = None,
              **kwargs: Any) -> dict[str, Any]:
        if read_timeout is not None:
            kwargs["timeout"] = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        response = send_with_retries(
            lambda: self._http.request(method, self.url + path, **kwargs), self.retry,
            resend_after_delivery=not submit,
        )
        if response.is_error:
            raise api_error(response, secret=self._api_key)
        body = response.json()
        if not isinstance(body, dict):
            raise ClientError(f"{method} {path}: expected a JSON object, got {type(body).__name__}")
        return body
