"""Worker processes of one endpoint id: start them with RunPod's production environment, scale, replace, stop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import logging
import os
import secrets
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from devkit.endpoint.jobs import JobQueue, Signal
from devkit.endpoint.scaling import PoolState, idle_workers_to_stop, should_start_worker
from devkit.endpoint.spec import WorkerSpec
from shared.serving import STARTUP_FAILURE_EXIT, STARTUP_FAILURE_MARKER

log = logging.getLogger(__name__)
#: Every line the worker processes print, prefixed with the worker id.
worker_log = logging.getLogger("devkit.endpoint.worker_output")

#: How often the pool checks timeouts, scaling and retention.
TICK_S = 0.25
#: Seconds a stopping worker gets to drain its jobs before it is killed.
STOP_GRACE_S = 10.0
#: Heartbeat interval handed to the SDK (RUNPOD_PING_INTERVAL, in ms; the SDK rounds down to seconds).
PING_INTERVAL_MS = 10_000
#: Lines of a worker's stderr kept to explain an exit.
STDERR_TAIL = 40
#: A worker not in its job loop this long after its start is killed as failed (RunPod: 7 min, unhealthy).
STARTUP_TIMEOUT_S = 7 * 60

_PR_SET_PDEATHSIG = 1


class WorkerState(enum.StrEnum):
    STARTING = "starting"  # spawned; has not asked for a job yet (setup, SDK import)
    READY = "ready"  # in the job loop
    DRAINING = "draining"  # told to stop (idle scale-down or shutdown); gets no new jobs
    EXITED = "exited"


@dataclass(eq=False)
class WorkerProcess:
    id: str
    process: asyncio.subprocess.Process
    state: WorkerState = WorkerState.STARTING
    started_at: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    last_seen: float | None = None
    idle_since: float | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL))
    startup_failure: str | None = None
    pumps: list[asyncio.Task] = field(default_factory=list)
    watcher: asyncio.Task | None = None
    #: Set when the endpoint kills a worker that never became ready: the startup failure's reason.
    kill_reason: str | None = None

    @property
    def live(self) -> bool:
        return self.state in (WorkerState.STARTING, WorkerState.READY)

    def startup_failure_line(self) -> str | None:
        for line in reversed(self.stderr_tail):
            if line.startswith(STARTUP_FAILURE_MARKER):
                return line.removeprefix(STARTUP_FAILURE_MARKER).strip()
        return None


class StartupFailed(RuntimeError):
    """No worker of an endpoint id could start; the message says why (from the worker's stderr)."""


class WorkerPool:
    """The worker processes behind one endpoint id, scaled like RunPod's request-count scaler."""

    def __init__(self, spec: WorkerSpec, base_url: str, queue: JobQueue) -> None:
        self.spec = spec
        self.name = spec.name
        self.queue = queue
        self._base_url = base_url
        self.workers: dict[str, WorkerProcess] = {}
        #: Why the last worker that never became ready exited; cleared when a worker becomes ready.
        self.startup_failure: str | None = None
        self.changed = Signal()
        self._spawned = 0
        self._startup_failures = 0  # ever, for wait_ready
        self._failures_since_ready = 0  # for /health's "unhealthy"
        self._last_failure_at = float("-inf")
        self._closing = False
        self._ticker: asyncio.Task | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name=f"pool-{self.name}")

    async def stop(self) -> None:
        """Drain and stop every worker; kill those still running after STOP_GRACE_S."""
        self._closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        running = [w for w in self.workers.values() if w.state is not WorkerState.EXITED]
        for worker in running:
            self._drain(worker)
        if running:
            exits = [asyncio.ensure_future(w.process.wait()) for w in running]
            _, pending = await asyncio.wait(exits, timeout=STOP_GRACE_S)
            for future in pending:
                future.cancel()
        for worker in running:
            _kill_group(worker.process.pid)
        self.queued_and_stops_release()

    def queued_and_stops_release(self) -> None:
        """Wake every long-poll so that it sees the pool closing or its worker draining."""
        self.queue.queued.fire()
        self.queue.stops_changed.fire()

    def accepting(self, worker_id: str) -> bool:
        worker = self.workers.get(worker_id)
        return not self._closing and worker is not None and worker.live

    def seen(self, worker_id: str) -> WorkerProcess | None:
        """A request from a worker: the first one means it reached the SDK's job loop."""
        worker = self.workers.get(worker_id)
        if worker is None:
            return None
        worker.last_seen = time.monotonic()
        if worker.state is WorkerState.STARTING:
            worker.state, worker.ready_at = WorkerState.READY, worker.last_seen
            worker.idle_since = worker.last_seen
            self.startup_failure = None
            self._failures_since_ready = 0
            log.info("%s: worker %s ready in %.1f s", self.name, worker.id, worker.ready_at - worker.started_at)
            self.changed.fire()
        return worker

    async def wait_ready(self, timeout: float) -> None:
        """Until one worker is in the job loop (starting one if none runs); StartupFailed if it cannot start."""
        deadline = time.monotonic() + timeout
        failures_before = self._startup_failures
        while not any(w.state is WorkerState.READY for w in self.workers.values()):
            if self._startup_failures > failures_before:
                raise StartupFailed(f"{self.name}: {self.startup_failure}")
            if not any(w.live for w in self.workers.values()):
                await self._spawn()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no worker ready after {timeout:g} s")
            await self.changed.wait(min(remaining, 1.0))

    # --- scaling -------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:  # a bug in one tick must not stop timeouts and scaling for good
                log.exception("%s: pool tick failed", self.name)
            await asyncio.sleep(TICK_S)

    async def _tick(self) -> None:
        self.queue.time_out_overdue()
        self.queue.sweep()
        now = time.monotonic()
        live = [w for w in self.workers.values() if w.live]
        for worker in live:
            if worker.state is WorkerState.STARTING and now - worker.started_at > STARTUP_TIMEOUT_S:
                worker.kill_reason = f"not in the job loop {STARTUP_TIMEOUT_S} s after its start (killed)"
                _kill_group(worker.process.pid)
        ready = [w for w in live if w.state is WorkerState.READY]
        state = PoolState(
            starting=len(live) - len(ready), ready=len(ready), pending=self.queue.pending_count(),
            oldest_wait=self.queue.oldest_wait(), startup_failed=self.startup_failure is not None,
            seconds_since_failure=now - self._last_failure_at,
        )
        if should_start_worker(state, self.spec.scaling):
            await self._spawn()
            return
        for worker in ready:
            if self.queue.held_by(worker.id):
                worker.idle_since = None
            elif worker.idle_since is None:
                worker.idle_since = now
        idle = {w.id: None if w.idle_since is None else now - w.idle_since for w in ready}
        for worker_id in idle_workers_to_stop(idle, len(live), state.pending, self.spec.scaling):
            log.info("%s: worker %s idle for %ss, stopping it", self.name, worker_id, self.spec.scaling.idle_timeout)
            self._drain(self.workers[worker_id])

    # --- processes -----------------------------------------------------------------------------

    async def _spawn(self) -> WorkerProcess:
        self._spawned += 1
        worker_id = f"{self.name}-{self._spawned}-{secrets.token_hex(4)}"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.spec.module,
            # The SDK logs every request at DEBUG by default; a worker's env may still ask for it.
            env=self.spec.process_env({"RUNPOD_LOG_LEVEL": "INFO", **os.environ}, self._runpod_env(worker_id)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Own process group: the SDK's heartbeat child process is stopped with its worker.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        worker = WorkerProcess(id=worker_id, process=process)
        self.workers[worker_id] = worker
        worker.pumps = [
            asyncio.create_task(self._pump(worker, process.stdout, keep=False)),
            asyncio.create_task(self._pump(worker, process.stderr, keep=True)),
        ]
        worker.watcher = asyncio.create_task(self._watch(worker))
        log.info("%s: started worker %s (pid %s)", self.name, worker_id, process.pid)
        self.changed.fire()
        return worker

    def _runpod_env(self, worker_id: str) -> dict[str, str]:
        """What RunPod sets in a serverless container, pointed at this endpoint."""
        worker_api = f"{self._base_url}/_worker/{self.name}"
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{worker_api}/job-take/$ID?gpu=local",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{worker_api}/job-done/$RUNPOD_POD_ID/$ID?gpu=local",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{worker_api}/job-stream/$RUNPOD_POD_ID/$ID?gpu=local",
            "RUNPOD_WEBHOOK_PING": f"{worker_api}/ping/$RUNPOD_POD_ID",
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_ENDPOINT_ID": self.name,
            # Worker requests are authorised by their unguessable worker id; the SDK only needs a value.
            "RUNPOD_AI_API_KEY": "local-worker",
            "RUNPOD_PING_INTERVAL": str(PING_INTERVAL_MS),
            # No internet and no GPU here: the SDK's fitness probes cannot pass.
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    async def _pump(self, worker: WorkerProcess, stream: asyncio.StreamReader, *, keep: bool) -> None:
        """Log a worker's output line by line under its id; keep stderr's tail to explain an exit."""
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            worker_log.info("[%s] %s", worker.id, text)
            if keep:
                worker.stderr_tail.append(text)

    async def _watch(self, worker: WorkerProcess) -> None:
        returncode = await worker.process.wait()
        was_ready = worker.ready_at is not None
        worker.state = WorkerState.EXITED  # at once: a job take it left open must not get a job now
        self.queued_and_stops_release()
        _kill_group(worker.process.pid)  # orphans (the SDK's heartbeat process) hold the pipes open
        await asyncio.wait(worker.pumps, timeout=2)
        if not was_ready and not self._closing:
            self._startup_failed(worker, self._explain_startup_failure(worker, returncode))
        else:
            lost = self.queue.worker_lost(worker.id, f"exit code {returncode}")
            if lost:
                log.warning("%s: worker %s exited with code %s holding %d job(s)",
                            self.name, worker.id, returncode, len(lost))
        self.changed.fire()

    def _startup_failed(self, worker: WorkerProcess, reason: str) -> None:
        worker.startup_failure = self.startup_failure = reason
        self._startup_failures += 1
        self._failures_since_ready += 1
        self._last_failure_at = time.monotonic()
        failed = []
        if not any(w.state is WorkerState.READY for w in self.workers.values()):
            failed = self.queue.fail_queued(f"worker {self.name} failed to start: {reason}")
        log.error("%s: worker %s failed to start: %s (%d queued jobs failed)",
                  self.name, worker.id, reason, len(failed))

    def _explain_startup_failure(self, worker: WorkerProcess, returncode: int) -> str:
        if worker.kill_reason:
            return worker.kill_reason
        line = worker.startup_failure_line()
        if returncode == STARTUP_FAILURE_EXIT and line:
            return line
        last = next((text for text in reversed(worker.stderr_tail) if text.strip()), "no output")
        return f"exited with code {returncode} before it was ready; last stderr line: {last}"

    def retire(self, worker_id: str) -> None:
        """The worker asked to be replaced (``refresh_worker``): no new job for it; it exits on its own."""
        worker = self.workers.get(worker_id)
        if worker is not None and worker.live:
            log.info("%s: worker %s asked to be replaced", self.name, worker_id)
            self._drain(worker)

    def _drain(self, worker: WorkerProcess) -> None:
        if worker.state is WorkerState.EXITED:
            return
        worker.state = WorkerState.DRAINING
        self.queued_and_stops_release()
        # The SDK's SIGTERM handler finishes the jobs in flight, then exits 0.
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGTERM)

    def pids(self) -> dict[str, int]:
        return {w.id: w.process.pid for w in self.workers.values() if w.state is not WorkerState.EXITED}

    def health(self) -> dict[str, Any]:
        """RunPod's /health body, plus ``startupFailure`` (null, or why the last start failed)."""
        states = [w.state for w in self.workers.values()]
        busy = {job.worker_id for job in self.queue.running()}
        ready = [w for w in self.workers.values() if w.state is WorkerState.READY]
        return {
            "jobs": self.queue.counts(),
            "workers": {
                "idle": sum(1 for w in ready if w.id not in busy),
                "initializing": states.count(WorkerState.STARTING),
                "ready": len(ready),
                "running": sum(1 for w in ready if w.id in busy),
                "throttled": 0,
                "unhealthy": self._failures_since_ready,
            },
            "startupFailure": self.startup_failure,
        }


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the endpoint dies without stopping its workers."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
