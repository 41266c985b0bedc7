"""Worker containers of one endpoint id: start them with RunPod's production environment, restart, watch, replace, stop.

What RunPod does with a worker, emulated here (RunPod docs, "Worker overview", worker states):

- A worker whose process exits unasked is restarted in the same container (same worker id, same disk:
  WORKER_STATE_DIR, see shared.serving) after a back-off of RESTART_DELAYS_S; the jobs it held go back to
  the queue (jobs.JobQueue.worker_lost). Exiting once more than that, in a row, makes it UNHEALTHY: no more
  restarts, its jobs stay IN_QUEUE, and scaling starts a new container in its place (at most one every
  scaling.RESTART_BACKOFF_S while none has started). A failed start never fails the jobs waiting: that was
  a rule of this stand-in, not RunPod's.
- A worker in its job loop that has not pinged for PING_TIMEOUT_S is frozen: it gets no more jobs, is
  killed and marked UNHEALTHY, its jobs go back to the queue (or fail, on their last attempt) and a new
  container replaces it. The SDK's heartbeat process pings RUNPOD_WEBHOOK_PING every RUNPOD_PING_INTERVAL
  (runpod-python, rp_ping.Heartbeat), as RunPod uses it to tell live workers; here every PING_INTERVAL_MS.
  A freeze of the whole container stops the pings; a handler stuck while the heartbeat process still
  pings is caught by the job's execution timeout, as on RunPod.
- A worker told to stop (SIGTERM: idle, replaced, shutdown) that is still there STOP_GRACE_S later is killed.
- Worker output is read in chunks (worker_output), whatever a worker prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.endpoint import worker_output
from devkit.endpoint.jobs import JobQueue, Signal
from devkit.endpoint.scaling import PoolState, idle_workers_to_stop, should_start_worker
from devkit.endpoint.spec import WorkerSpec
from shared.serving import STARTUP_FAILURE_MARKER, STATE_DIR_ENV

log = logging.getLogger(__name__)
#: Every line the worker processes print, prefixed with the worker id.
worker_log = logging.getLogger("devkit.endpoint.worker_output")

#: How often the pool checks timeouts, pings, restarts, scaling and retention.
TICK_S = 0.25
#: Seconds a worker told to stop (SIGTERM) gets to drain its jobs before it is killed.
STOP_GRACE_S = 10.0
#: Heartbeat interval handed to the SDK (RUNPOD_PING_INTERVAL, ms; RunPod's default is 10 s). The SDK rounds
#: it down to whole seconds and a 0 would make its heartbeat spin, so 1 s is the shortest that works.
PING_INTERVAL_MS = 1_000
#: A worker in its job loop with no ping for this long is frozen: ten missed pings, so a loaded machine that
#: delays a few does not lose a worker (RunPod does not document its own threshold).
PING_TIMEOUT_S = 10.0
#: The same for a worker that has not sent its first ping yet (the SDK's heartbeat is a process of its own,
#: which a worker whose libraries set multiprocessing's "spawn" start method takes seconds to start).
FIRST_PING_TIMEOUT_S = 60.0
#: Back-off before each restart of a container whose process exited unasked; one exit more is UNHEALTHY.
RESTART_DELAYS_S = (1.0, 2.0)
#: A process that ran this long before it exited starts a new count of exits in a row.
STEADY_RUN_S = 60.0
#: How long an UNHEALTHY worker still shows in /health after it was marked.
UNHEALTHY_SHOWN_S = 600.0
#: Lines of a worker's stderr kept to explain an exit.
STDERR_TAIL = 40
#: A worker not in its job loop this long after its start is killed as failed (RunPod: 7 min, unhealthy).
STARTUP_TIMEOUT_S = 7 * 60

_PR_SET_PDEATHSIG = 1


class WorkerState(enum.StrEnum):
    STARTING = "starting"  # its process is spawned and has not asked for a job yet (setup, SDK import)
    READY = "ready"  # in the job loop
    RESTARTING = "restarting"  # its process exited unasked: started again in the same container after a back-off
    DRAINING = "draining"  # told to stop (idle scale-down, replacement or shutdown); gets no new jobs
    UNHEALTHY = "unhealthy"  # exited too often in a row, or stopped pinging: no jobs, no restart; replaced
    EXITED = "exited"


@dataclass(eq=False)
class WorkerProcess:
    """One worker container: its id and its disk outlive its process, which is restarted in place."""

    id: str
    state_dir: Path
    process: asyncio.subprocess.Process | None = None
    state: WorkerState = WorkerState.STARTING
    #: When the current process started.
    started_at: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    ever_ready: bool = False
    last_seen: float | None = None
    last_ping: float | None = None
    idle_since: float | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL))
    #: What the current process said after shared.serving.STARTUP_FAILURE_MARKER, if it said it.
    startup_failure: str | None = None
    pumps: list[asyncio.Task] = field(default_factory=list)
    watcher: asyncio.Task | None = None
    #: Set when the endpoint kills the process: why.
    kill_reason: str | None = None
    #: Unasked exits in a row (see STEADY_RUN_S).
    exits: int = 0
    restart_at: float | None = None
    stop_deadline: float | None = None
    unhealthy_at: float | None = None

    @property
    def live(self) -> bool:
        """Counts as one of the endpoint's workers for scaling."""
        return self.state in (WorkerState.STARTING, WorkerState.READY, WorkerState.RESTARTING)

    @property
    def accepting(self) -> bool:
        return self.state in (WorkerState.STARTING, WorkerState.READY)


class StartupFailed(RuntimeError):
    """No worker of an endpoint id could start; the message says why (from the worker's stderr)."""


class WorkerPool:
    """The worker containers behind one endpoint id, scaled like RunPod's request-count scaler."""

    def __init__(self, spec: WorkerSpec, base_url: str, queue: JobQueue) -> None:
        self.spec = spec
        self.name = spec.name
        self.queue = queue
        self._base_url = base_url
        self.workers: dict[str, WorkerProcess] = {}
        #: Why the last worker that never served could not start; cleared when a worker starts fine.
        self.startup_failure: str | None = None
        self.changed = Signal()
        self._spawned = 0
        self._startup_failures = 0  # ever, for wait_ready
        self._last_failure_at = float("-inf")
        self._closing = False
        self._ticker: asyncio.Task | None = None
        self._last_tick = time.monotonic()
        self._disks: tempfile.TemporaryDirectory | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._disks = tempfile.TemporaryDirectory(prefix=f"local-endpoint-{self.name}-", ignore_cleanup_errors=True)
        self._ticker = asyncio.create_task(self._tick_forever(), name=f"pool-{self.name}")

    async def stop(self) -> None:
        """Drain and stop every worker; kill those still running after STOP_GRACE_S."""
        self._closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        running = [w for w in self.workers.values() if w.process is not None and w.process.returncode is None]
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
        if self._disks is not None:
            self._disks.cleanup()

    def queued_and_stops_release(self) -> None:
        """Wake every long-poll so that it sees the pool closing or its worker draining."""
        self.queue.queued.fire()
        self.queue.stops_changed.fire()

    def accepting(self, worker_id: str) -> bool:
        worker = self.workers.get(worker_id)
        return not self._closing and worker is not None and worker.accepting

    def seen(self, worker_id: str) -> WorkerProcess | None:
        """A request from a worker: the first one means it reached the SDK's job loop."""
        worker = self.workers.get(worker_id)
        if worker is None or worker.state in (WorkerState.UNHEALTHY, WorkerState.EXITED):
            return None
        worker.last_seen = time.monotonic()
        if worker.state is WorkerState.STARTING:
            self._ready(worker)
        return worker

    def pinged(self, worker_id: str) -> WorkerProcess | None:
        """A heartbeat from the SDK's ping process."""
        worker = self.seen(worker_id)
        if worker is not None:
            worker.last_ping = worker.last_seen
        return worker

    def _ready(self, worker: WorkerProcess) -> None:
        worker.state, worker.ready_at = WorkerState.READY, worker.last_seen
        worker.idle_since, worker.ever_ready = worker.last_seen, True
        if worker.startup_failure is not None:
            # shared.serving's failed start: in the job loop, failing every job with the reason (RunPod's view:
            # a ready worker; ours also says why in /health and in wait_ready).
            self.startup_failure = worker.startup_failure
            self._startup_failures += 1
            log.error("%s: worker %s could not start: %s; it fails every job it takes with NOT_READY",
                      self.name, worker.id, worker.startup_failure)
        else:
            self.startup_failure = None
            log.info("%s: worker %s ready in %.1f s", self.name, worker.id, worker.ready_at - worker.started_at)
        self.changed.fire()

    async def wait_ready(self, timeout: float) -> None:
        """Until one worker serves (starting one if none runs); StartupFailed if it cannot start."""
        deadline = time.monotonic() + timeout
        failures_before = self._startup_failures
        while True:
            ready = [w for w in self.workers.values() if w.state is WorkerState.READY]
            if any(w.startup_failure is None for w in ready):
                return
            if ready or self._startup_failures > failures_before:
                raise StartupFailed(f"{self.name}: {self.startup_failure}")
            if not any(w.live for w in self.workers.values()):
                await self._spawn()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no worker ready after {timeout:g} s")
            await self.changed.wait(min(remaining, 1.0))

    # --- scaling and watching ------------------------------------------------------------------

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
        await self._watch_containers(now)
        live = [w for w in self.workers.values() if w.live]
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

    async def _watch_containers(self, now: float) -> None:
        """Startup timeouts, missed pings, stops past their grace, restarts due, and forgetting old workers."""
        # After a stall of this endpoint's own loop, pings may be waiting unread: judge them next tick.
        pings_read = now - self._last_tick < 1.0
        self._last_tick = now
        for worker in list(self.workers.values()):
            if worker.state is WorkerState.STARTING and now - worker.started_at > STARTUP_TIMEOUT_S:
                self._kill(worker, f"not in the job loop {STARTUP_TIMEOUT_S} s after its start")
            elif worker.state is WorkerState.READY and pings_read and now > _ping_deadline(worker):
                silent = f"no ping for {now - (worker.last_ping or worker.ready_at):.0f} s"
                self._mark_unhealthy(worker, f"it stopped answering: {silent} (one is due every "
                                             f"{PING_INTERVAL_MS / 1000:g} s)")
                self._kill(worker, silent)
            elif worker.state is WorkerState.DRAINING and worker.stop_deadline and now > worker.stop_deadline:
                worker.stop_deadline = None
                log.warning("%s: worker %s still running %g s after SIGTERM, killing it",
                            self.name, worker.id, STOP_GRACE_S)
                self._kill(worker, f"still running {STOP_GRACE_S:g} s after SIGTERM")
            elif worker.state is WorkerState.RESTARTING and now >= worker.restart_at:
                await self._start_process(worker)
            elif self._forgotten(worker, now):
                del self.workers[worker.id]

    @staticmethod
    def _forgotten(worker: WorkerProcess, now: float) -> bool:
        """An exited worker, or one unhealthy long enough, whose exit has been handled."""
        gone = worker.state is WorkerState.EXITED or (
            worker.state is WorkerState.UNHEALTHY and now - worker.unhealthy_at > UNHEALTHY_SHOWN_S)
        return gone and (worker.watcher is None or worker.watcher.done())

    def _kill(self, worker: WorkerProcess, reason: str) -> None:
        worker.kill_reason = reason
        if worker.process is not None:
            _kill_group(worker.process.pid)

    # --- processes -----------------------------------------------------------------------------

    async def _spawn(self) -> WorkerProcess:
        """A new worker container, with its own id and disk."""
        self._spawned += 1
        worker_id = f"{self.name}-{self._spawned}-{secrets.token_hex(4)}"
        state_dir = Path(self._disks.name if self._disks else tempfile.gettempdir()) / worker_id
        state_dir.mkdir(parents=True)
        worker = WorkerProcess(id=worker_id, state_dir=state_dir)
        self.workers[worker_id] = worker
        await self._start_process(worker)
        return worker

    async def _start_process(self, worker: WorkerProcess) -> None:
        """Start (or restart) the container's process: the image's start command."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.spec.module,
            # The SDK logs every request at DEBUG by default; a worker's env may still ask for it.
            env=self.spec.process_env({"RUNPOD_LOG_LEVEL": "INFO", **os.environ}, self._runpod_env(worker)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Own process group: the SDK's heartbeat child process is stopped with its worker.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        restarted = worker.process is not None
        worker.process, worker.state, worker.started_at = process, WorkerState.STARTING, time.monotonic()
        worker.ready_at = worker.last_ping = worker.idle_since = worker.restart_at = None
        worker.startup_failure = worker.kill_reason = None
        worker.stderr_tail = deque(maxlen=STDERR_TAIL)
        worker.pumps = [
            asyncio.create_task(worker_output.pump(process.stdout, lambda line: self._output(worker, line))),
            asyncio.create_task(worker_output.pump(process.stderr, lambda line: self._output(worker, line, True))),
        ]
        worker.watcher = asyncio.create_task(self._watch(worker, process))
        log.info("%s: %s worker %s (pid %s)", self.name, "restarted" if restarted else "started", worker.id,
                 process.pid)
        self.changed.fire()

    def _runpod_env(self, worker: WorkerProcess) -> dict[str, str]:
        """What RunPod sets in a serverless container, pointed at this endpoint."""
        worker_api = f"{self._base_url}/_worker/{self.name}"
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{worker_api}/job-take/$ID?gpu=local",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{worker_api}/job-done/$RUNPOD_POD_ID/$ID?gpu=local",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{worker_api}/job-stream/$RUNPOD_POD_ID/$ID?gpu=local",
            "RUNPOD_WEBHOOK_PING": f"{worker_api}/ping/$RUNPOD_POD_ID",
            "RUNPOD_POD_ID": worker.id,
            "RUNPOD_ENDPOINT_ID": self.name,
            # Worker requests are authorised by their unguessable worker id; the SDK only needs a value.
            "RUNPOD_AI_API_KEY": "local-worker",
            "RUNPOD_PING_INTERVAL": str(PING_INTERVAL_MS),
            # No internet and no GPU here: the SDK's fitness probes cannot pass.
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
            # The container's own disk: what survives a restart of its process, and only that.
            STATE_DIR_ENV: str(worker.state_dir),
        }

    def _output(self, worker: WorkerProcess, line: str, stderr: bool = False) -> None:
        """One (bounded) line a worker printed: logged under its id; stderr's tail kept to explain an exit."""
        worker_log.info("[%s] %s", worker.id, line)
        if stderr:
            worker.stderr_tail.append(line)
            if line.startswith(STARTUP_FAILURE_MARKER):
                worker.startup_failure = line.removeprefix(STARTUP_FAILURE_MARKER).strip()

    async def _watch(self, worker: WorkerProcess, process: asyncio.subprocess.Process) -> None:
        returncode = await process.wait()
        was = worker.state
        if was is not WorkerState.UNHEALTHY:
            worker.state = WorkerState.EXITED  # at once: a job take it left open must not get a job now
        self.queued_and_stops_release()
        _kill_group(process.pid)  # orphans (the SDK's heartbeat process) hold the pipes open
        await asyncio.wait(worker.pumps, timeout=2)
        reason = worker.kill_reason or f"exit code {returncode}"
        lost = self.queue.worker_lost(worker.id, reason)
        if lost:
            log.warning("%s: worker %s exited (%s) holding %d job(s)", self.name, worker.id, reason, len(lost))
        if was is WorkerState.DRAINING or self._closing or was is WorkerState.UNHEALTHY:
            shutil.rmtree(worker.state_dir, ignore_errors=True)
        else:
            self._exited_unasked(worker, self._explain_exit(worker, returncode))
        self.changed.fire()

    def _exited_unasked(self, worker: WorkerProcess, reason: str) -> None:
        """RunPod restarts the container; after repeated exits the worker is UNHEALTHY."""
        now = time.monotonic()
        if now - worker.started_at >= STEADY_RUN_S:
            worker.exits = 0
        worker.exits += 1
        if worker.exits > len(RESTART_DELAYS_S):
            self._mark_unhealthy(worker, f"its process exited {worker.exits} times in a row, the last one {reason}")
            shutil.rmtree(worker.state_dir, ignore_errors=True)
            return
        delay = RESTART_DELAYS_S[worker.exits - 1]
        worker.state, worker.restart_at = WorkerState.RESTARTING, now + delay
        log.warning("%s: worker %s %s; restarting it in %g s (exit %d in a row, %d allowed)", self.name, worker.id,
                    reason, delay, worker.exits, len(RESTART_DELAYS_S))

    def _mark_unhealthy(self, worker: WorkerProcess, reason: str) -> None:
        """No more jobs and no restart for this worker; scaling replaces it. Its jobs stay in the queue."""
        worker.state, worker.unhealthy_at = WorkerState.UNHEALTHY, time.monotonic()
        if not worker.ever_ready:
            # It never served: a start that keeps failing. The next container waits out scaling's back-off.
            self.startup_failure = reason
            self._startup_failures += 1
            self._last_failure_at = worker.unhealthy_at
        log.error("%s: worker %s is unhealthy: %s; it gets no more jobs, and a new worker replaces it",
                  self.name, worker.id, reason)
        self.queued_and_stops_release()
        self.changed.fire()

    def _explain_exit(self, worker: WorkerProcess, returncode: int) -> str:
        if worker.kill_reason:
            return f"was killed: {worker.kill_reason}"
        if worker.ready_at is not None:
            return f"exited with code {returncode}"
        if worker.startup_failure:
            return f"exited with code {returncode} before it was ready: {worker.startup_failure}"
        last = next((text for text in reversed(worker.stderr_tail) if text.strip()), "no output")
        return f"exited with code {returncode} before it was ready; last stderr line: {last}"

    def retire(self, worker_id: str) -> None:
        """The worker asked to be replaced (``refresh_worker``): no new job for it; it exits on its own."""
        worker = self.workers.get(worker_id)
        if worker is not None and worker.accepting:
            log.info("%s: worker %s asked to be replaced", self.name, worker_id)
            self._drain(worker)

    def _drain(self, worker: WorkerProcess) -> None:
        if worker.state is WorkerState.RESTARTING:  # between two processes: none to stop, none to start
            worker.state = WorkerState.EXITED
            return
        if worker.process is None or worker.process.returncode is not None:
            return
        worker.state, worker.stop_deadline = WorkerState.DRAINING, time.monotonic() + STOP_GRACE_S
        self.queued_and_stops_release()
        # The SDK's SIGTERM handler finishes the jobs in flight, then exits 0.
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGTERM)

    def pids(self) -> dict[str, int]:
        return {w.id: w.process.pid for w in self.workers.values()
                if w.process is not None and w.process.returncode is None}

    def health(self) -> dict[str, Any]:
        """RunPod's /health body, plus ``startupFailure`` (null, or why the last start failed)."""
        states = [w.state for w in self.workers.values()]
        busy = {job.worker_id for job in self.queue.running()}
        ready = [w for w in self.workers.values() if w.state is WorkerState.READY]
        return {
            "jobs": self.queue.counts(),
            "workers": {
                "idle": sum(1 for w in ready if w.id not in busy),
                "initializing": states.count(WorkerState.STARTING) + states.count(WorkerState.RESTARTING),
                "ready": len(ready),
                "running": sum(1 for w in ready if w.id in busy),
                "throttled": 0,
                "unhealthy": states.count(WorkerState.UNHEALTHY),
            },
            "startupFailure": self.startup_failure,
        }


def _ping_deadline(worker: WorkerProcess) -> float:
    if worker.last_ping is None:
        return worker.ready_at + FIRST_PING_TIMEOUT_S
    return worker.last_ping + PING_TIMEOUT_S


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the endpoint dies without stopping its workers."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
