"""The jobs of one endpoint: queue, RunPod's job state machine, stop requests, TTL, retry, retention, waiting.

Everything here runs on the server's one event loop; methods that change state are plain functions
(atomic between awaits) and wake waiters through `Signal`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.errors import JobTimeout, WorkerError


class Status(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT})

#: How long RunPod keeps a finished job's result: 30 min for /run, 1 min for /runsync (RunPod docs,
#: "Send API requests", "Result retention").
RETENTION_RUN_S = 30 * 60
RETENTION_RUNSYNC_S = 60
#: A job's total lifespan (``policy.ttl``) when the request sets none: 24 h (same section, "Execution
#: policies"). When it runs out the job is deleted whatever its state, and /status answers 404.
DEFAULT_TTL_S = 24 * 60 * 60
#: Statuses /retry accepts (RunPod docs, "Operation reference", /retry: "Only works for jobs with FAILED
#: or TIMED_OUT status").
RETRYABLE = frozenset({Status.FAILED, Status.TIMED_OUT})

#: A stop (cancel, timeout) is sent to the worker every STOP_RESEND_S seconds for STOP_REPEAT_S seconds.
STOP_RESEND_S = 1.0
STOP_REPEAT_S = 10.0

#: A job whose worker died is queued again this many times in all; then it fails (poison-pill guard).
MAX_ATTEMPTS = 2


class Signal:
    """Wakes every coroutine waiting on it; cheap to fire when nobody waits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return on the next fire or after ``timeout`` seconds, whichever is first."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass(eq=False)
class Job:
    id: str
    input: Any
    created_at: float
    execution_timeout: float
    retention: float
    #: When it last entered the queue: its submission, or its /retry (delayTime and scaling count from it).
    queued_at: float = 0.0
    #: When the job is deleted whatever its state (submission + ``policy.ttl``, or a /status ``?ttl=``).
    expires_at: float = float("inf")
    webhook: str | None = None
    #: ``policy.lowPriority``: taken after every normal job, and never the reason a worker starts.
    low_priority: bool = False
    #: The request's ``s3Config``, handed to the worker in the job as RunPod does.
    s3_config: dict[str, Any] | None = None
    status: Status = Status.IN_QUEUE
    worker_id: str | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    has_output: bool = False
    output: Any = None
    error: str | None = None
    #: Latest progress_update value; /status shows it as ``output`` while the job runs.
    progress: Any = None
    chunks: list[Any] = field(default_factory=list)
    #: Chunks already handed out by /stream (each chunk is returned by /stream once, as on RunPod).
    delivered: int = 0
    #: Deleted past its TTL or retention: requests about it answer 404.
    deleted: bool = False
    changed: Signal = field(default_factory=Signal)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def wire(self) -> dict[str, Any]:
        """The job as RunPod hands it to a worker's job take: ``id``, ``input``, and ``s3Config`` when given."""
        body = {"id": self.id, "input": self.input}
        if self.s3_config is not None:
            body["s3Config"] = self.s3_config
        return body

    def view(self) -> dict[str, Any]:
        """The job as RunPod's /status shows it."""
        body: dict[str, Any] = {"id": self.id, "status": str(self.status)}
        if self.started_at is not None:
            body["delayTime"] = _ms(self.started_at - self.queued_at)
            body["workerId"] = self.worker_id
        if self.finished_at is not None and self.started_at is not None:
            body["executionTime"] = _ms(self.finished_at - self.started_at)
        if self.has_output:
            body["output"] = self.output
        elif self.status is Status.IN_PROGRESS and self.progress is not None:
            body["output"] = self.progress
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass
class _Stop:
    next_send: float
    until: float


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class JobQueue:
    """Jobs of one endpoint id, from submission to expiry."""

    def __init__(
        self,
        *,
        execution_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        on_finished: Callable[[Job], None] | None = None,
    ) -> None:
        self.execution_timeout = execution_timeout
        self._clock = clock
        self._on_finished = on_finished
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        #: lowPriority jobs wait here: taken once ``_queue`` is empty.
        self._low: deque[Job] = deque()
        self._stops: dict[str, dict[str, _Stop]] = {}
        self.queued = Signal()
        self.stops_changed = Signal()
        self.completed_count = 0
        self.failed_count = 0
        self.retried_count = 0

    # --- client side ---------------------------------------------------------------------------

    def submit(
        self, job_input: Any, *, webhook: str | None = None, sync: bool = False,
        execution_timeout: float | None = None, ttl: float | None = None, low_priority: bool = False,
        s3_config: dict[str, Any] | None = None,
    ) -> Job:
        now = self._clock()
        job = Job(
            id=f"{uuid.uuid4()}-local",
            input=job_input,
            created_at=now,
            queued_at=now,
            execution_timeout=execution_timeout or self.execution_timeout,
            retention=RETENTION_RUNSYNC_S if sync else RETENTION_RUN_S,
            expires_at=now + (ttl or DEFAULT_TTL_S),
            webhook=webhook,
            low_priority=low_priority,
            s3_config=s3_config,
        )
        self._jobs[job.id] = job
        self._waiting(job).append(job)
        self.queued.fire()
        return job

    def _waiting(self, job: Job) -> deque[Job]:
        return self._low if job.low_priority else self._queue

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; a finished job is left as it is."""
        job = self._jobs.get(job_id)
        if job is not None and not job.done:
            self._end(job, Status.CANCELLED)
        return job

    def retry(self, job_id: str) -> Job | None:
        """Queue a FAILED or TIMED_OUT job again under its id and input, its previous output removed
        (RunPod docs, "Operation reference", /retry). Returns None for a job in any other state."""
        job = self._jobs.get(job_id)
        if job is None or job.status not in RETRYABLE:
            return None
        job.status, job.worker_id, job.attempts = Status.IN_QUEUE, None, 0
        job.started_at = job.finished_at = None
        job.queued_at = self._clock()
        job.has_output, job.output, job.error, job.progress = False, None, None, None
        job.chunks, job.delivered = [], 0
        self.retried_count += 1
        self._waiting(job).append(job)
        job.changed.fire()
        self.queued.fire()
        return job

    def set_ttl(self, job_id: str, ttl: float) -> None:
        """A /status ``?ttl=<ms>``: the job is deleted ``ttl`` seconds from now (sooner than its retention)."""
        job = self._jobs.get(job_id)
        if job is not None:
            job.expires_at = self._clock() + ttl

    def purge(self) -> int:
        """Cancel every job still waiting in the queue (running jobs go on), as /purge-queue does."""
        waiting = [*self._queue, *self._low]
        for job in waiting:
            self._end(job, Status.CANCELLED)
        return len(waiting)

    def pending_count(self) -> int:
        """Queued jobs that call for a worker: lowPriority ones never trigger scaling (RunPod docs, "Send
        API requests", "Execution policies")."""
        return len(self._queue)

    def oldest_wait(self) -> float:
        """Seconds the oldest queued job that calls for a worker has waited (0 when there is none)."""
        return self._clock() - self._queue[0].queued_at if self._queue else 0.0

    def running(self) -> list[Job]:
        return [job for job in self._jobs.values() if job.status is Status.IN_PROGRESS]

    def take_stream(self, job: Job) -> list[Any]:
        """The chunks /stream has not handed out yet."""
        new = job.chunks[job.delivered:]
        job.delivered = len(job.chunks)
        return new

    # --- worker side ---------------------------------------------------------------------------

    def take(self, worker_id: str, count: int) -> list[Job]:
        """Up to ``count`` queued jobs, normal ones first, then lowPriority ones, each in submission order."""
        taken = []
        while (self._queue or self._low) and len(taken) < count:
            job = (self._queue or self._low).popleft()
            # A retried job may come back to the worker that was told to stop its previous attempt.
            self._stops.get(worker_id, {}).pop(job.id, None)
            job.status = Status.IN_PROGRESS
            job.worker_id = worker_id
            job.attempts += 1
            job.started_at = self._clock()
            job.changed.fire()
            taken.append(job)
        return taken

    async def take_waiting(self, worker_id: str, count: int, hold: float, accepting: Callable[[], bool]) -> list[Job]:
        """Long-poll of a job take: up to ``count`` jobs, waiting up to ``hold`` s while none is queued."""
        deadline = self._clock() + hold
        while accepting():
            if taken := self.take(worker_id, count):
                return taken
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            await self.queued.wait(remaining)
        return []

    def held_by(self, worker_id: str) -> list[Job]:
        return [job for job in self.running() if job.worker_id == worker_id]

    def _own(self, job_id: str, worker_id: str) -> Job | None:
        """The job if this worker is still the one running it; late or stray posts are dropped."""
        job = self._jobs.get(job_id)
        if job is None or job.status is not Status.IN_PROGRESS or job.worker_id != worker_id:
            return None
        return job

    def add_chunk(self, job_id: str, worker_id: str, chunk: Any) -> bool:
        job = self._own(job_id, worker_id)
        if job is None:
            return False
        job.chunks.append(chunk)
        job.changed.fire()
        return True

    def set_progress(self, job_id: str, worker_id: str, value: Any) -> bool:
        job = self._own(job_id, worker_id)
        if job is None:
            return False
        job.progress = value
        job.changed.fire()
        return True

    def finish(self, job_id: str, worker_id: str, result: dict[str, Any], *, is_stream: bool) -> bool:
        """Record the SDK's final post: ``{"output": ...}`` or ``{"error": "..."}`` (+ ``stopPod``)."""
        job = self._own(job_id, worker_id)
        if job is None:
            return False
        if result.get("error"):
            job.error = result["error"] if isinstance(result["error"], str) else str(result["error"])
            self._end(job, Status.FAILED)
            return True
        if "output" in result:
            job.has_output, job.output = True, result["output"]
            if not is_stream and not job.chunks:
                # /stream of a job whose handler returns (not yields) shows its output as the one chunk.
                job.chunks.append(result["output"])
        self._end(job, Status.COMPLETED)
        return True

    def stops_for(self, worker_id: str) -> list[str]:
        """Jobs this worker must stop now. Each stop is sent again every STOP_RESEND_S for STOP_REPEAT_S:
        the SDK drops a stop that arrives before the job's task exists (taken, not yet started)."""
        now = self._clock()
        pending = self._stops.get(worker_id, {})
        due = []
        for job_id, stop in list(pending.items()):
            if now >= stop.until:
                del pending[job_id]
            elif now >= stop.next_send:
                stop.next_send = now + STOP_RESEND_S
                due.append(job_id)
        return sorted(due)

    def _next_stop_at(self, worker_id: str) -> float | None:
        pending = self._stops.get(worker_id)
        return min((stop.next_send for stop in pending.values()), default=None) if pending else None

    async def stops_waiting(self, worker_id: str, hold: float, accepting: Callable[[], bool]) -> list[str]:
        """Long-poll of the job-stop channel."""
        deadline = self._clock() + hold
        while accepting():
            if stops := self.stops_for(worker_id):
                return stops
            now = self._clock()
            wake = min(deadline, self._next_stop_at(worker_id) or deadline)
            if deadline - now <= 0:
                break
            await self.stops_changed.wait(max(wake - now, 0.01))
        return []

    # --- lifecycle -----------------------------------------------------------------------------

    def time_out_overdue(self) -> list[Job]:
        now = self._clock()
        overdue = [job for job in self.running() if now - job.started_at > job.execution_timeout]
        for job in overdue:
            job.error = JobTimeout(
                f"the job ran past the endpoint's execution timeout of {job.execution_timeout:g} s"
            ).to_job_error()
            self._end(job, Status.TIMED_OUT)
        return overdue

    def worker_lost(self, worker_id: str, reason: str) -> list[Job]:
        """The worker died: its jobs go back to the head of the queue, or fail after MAX_ATTEMPTS."""
        self._stops.pop(worker_id, None)
        lost = self.held_by(worker_id)
        for job in reversed(lost):  # keep their order at the head of the queue
            if job.attempts >= MAX_ATTEMPTS:
                job.error = WorkerError(
                    f"the worker running this job exited ({reason}) on each of its {job.attempts} attempts"
                ).to_job_error()
                self._end(job, Status.FAILED)
            else:
                job.status, job.worker_id, job.started_at, job.progress = Status.IN_QUEUE, None, None, None
                self.retried_count += 1
                self._waiting(job).appendleft(job)
                job.changed.fire()
        if lost:
            self.queued.fire()
        return lost

    def sweep(self) -> int:
        """Forget finished jobs past their retention, and every job past its TTL whatever its state (RunPod
        docs, "Send API requests": "When TTL expires, the job is deleted regardless of state"): a queued one
        leaves the queue, a running one is stopped on its worker. /status of either is then a 404."""
        now = self._clock()
        expired = [job for job in self._jobs.values()
                   if now >= job.expires_at or (job.done and now - job.finished_at > job.retention)]
        for job in expired:
            if job.status is Status.IN_QUEUE:
                self._waiting(job).remove(job)
            elif job.status is Status.IN_PROGRESS:
                self._stop_on_worker(job)
            del self._jobs[job.id]
            job.deleted = True
            job.changed.fire()  # a /runsync or /stream waiting on it answers the 404 now
        return len(expired)

    def counts(self) -> dict[str, int]:
        """The ``jobs`` part of RunPod's /health."""
        return {
            "completed": self.completed_count,
            "failed": self.failed_count,
            "inProgress": len(self.running()),
            "inQueue": len(self._queue) + len(self._low),
            "retried": self.retried_count,
        }

    def _stop_on_worker(self, job: Job) -> None:
        """The worker's job-stop poll tells it to stop this job."""
        now = self._clock()
        self._stops.setdefault(job.worker_id, {})[job.id] = _Stop(next_send=now, until=now + STOP_REPEAT_S)
        self.stops_changed.fire()

    def _end(self, job: Job, status: Status) -> None:
        if job.status is Status.IN_QUEUE:
            self._waiting(job).remove(job)
        elif job.status is Status.IN_PROGRESS and status is not Status.COMPLETED and status is not Status.FAILED:
            self._stop_on_worker(job)  # cancelled or timed out while running
        job.status = status
        job.finished_at = self._clock()
        if status is Status.COMPLETED:
            self.completed_count += 1
        elif status is not Status.CANCELLED:
            self.failed_count += 1
        job.changed.fire()
        if self._on_finished is not None:
            self._on_finished(job)
