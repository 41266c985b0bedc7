"""The production job loop: the runpod SDK's own JobScaler, woken by events instead of fixed sleeps.

runpod 1.12.0's loop (``rp_scale.JobScaler``) polls: ``get_jobs`` sleeps 1 s whenever no slot is free,
and ``run_jobs`` looks at its queue every 0.1 s. At concurrency 1 that idles up to ~1.1 s between two
jobs, so a worker serves about one trivial job per second. `EventJobScaler` keeps every part of the
SDK that talks to RunPod (``get_job`` with its single/batch take, ``handle_job`` with results,
streaming and ``refresh_worker``, the stop-signal long-poll, ``set_scale``, the job tracker that feeds
pings) and only replaces the two polling loops: a slot freed or a job queued wakes them at once.
`run_worker` repeats the SDK's ``run_worker`` step for step (fitness checks, ping mirror, heartbeat)
with this scaler. Everything else in ``runpod.serverless.start`` (arguments, ``--test_input``,
``--rp_serve_api``) stays the SDK's.

Set ``WORKER_JOB_LOOP=sdk`` to run the SDK's stock loop instead (the dispatch benchmark's baseline,
and a way back should a new SDK release change what this module relies on).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
from collections.abc import Iterable, Iterator
from typing import Any

from shared import logs


@contextlib.contextmanager
def _cpu_probe_answered_from_proc() -> Iterator[None]:
    """While runpod is imported, answer py-cpuinfo from /proc/cpuinfo instead of its subprocess probe.

    runpod's rp_debugger calls ``cpuinfo.get_cpu_info()`` at import, only to name the processor in
    ``--rp_debugger`` output; the probe costs ~1.1 s of every cold start. Restored right after, so other
    users of cpuinfo (vLLM's CPU platform reads its flags) get the real probe.
    """
    try:
        import cpuinfo
    except ImportError:
        yield
        return
    probe = cpuinfo.get_cpu_info
    cpuinfo.get_cpu_info = lambda: {"brand_raw": _cpu_brand()}
    try:
        yield
    finally:
        cpuinfo.get_cpu_info = probe


def _cpu_brand() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


with _cpu_probe_answered_from_proc():
    import runpod
    from runpod.http_client import AsyncClientSession, ClientSession, TooManyRequests
    from runpod.serverless import worker as sdk_worker
    from runpod.serverless.modules import rp_scale
    from runpod.serverless.modules.rp_logger import RunPodLogger
    from runpod.serverless.modules.worker_state import JobsProgress, PingJobMirror

#: The runpod release whose JobScaler internals this module was written and tested against.
PINNED_RUNPOD_VERSION = "1.12.0"

#: Env var choosing the loop: "event" (default) or "sdk" (the SDK's stock polling loop).
LOOP_ENV = "WORKER_JOB_LOOP"

#: Seconds the SDK backs off after a 429 from the job-take API (rp_scale.get_jobs).
_TOO_MANY_REQUESTS_BACKOFF_S = 5

log = RunPodLogger()


class EventJobScaler(rp_scale.JobScaler):
    """``rp_scale.JobScaler`` whose take and run loops wait on events, never on fixed sleeps."""

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self._slot_freed = asyncio.Event()
        self._job_queued = asyncio.Event()
        self._taking = True

    async def run(self) -> None:
        # The SDK installs SIGTERM/SIGINT with signal.signal(), which sets a flag but cannot wake an
        # event loop that sleeps with no timer due; the loop's own handlers write to its wake-up pipe.
        installed = _install_signal_handlers(self.kill_worker)
        try:
            async with AsyncClientSession() as session:
                stop_signals = asyncio.create_task(self.monitor_stop_signals(session))
                try:
                    await asyncio.gather(self.get_jobs(session), self.run_jobs(session))
                finally:
                    # Jobs are drained: nothing left to stop, and the long-poll must not hold the exit.
                    stop_signals.cancel()
                    await asyncio.gather(stop_signals, return_exceptions=True)
        finally:
            _restore_signal_handlers(installed, self.handle_shutdown)

    def kill_worker(self) -> None:
        super().kill_worker()
        self._slot_freed.set()  # wakes a take loop waiting for a slot, so it sees the shutdown

    async def get_jobs(self, session: ClientSession) -> None:
        """Take as many jobs as there are free slots; with none free, wait until one frees."""
        try:
            while self.is_alive():
                await self.set_scale()
                self._slot_freed.clear()  # before counting, so a slot freed meanwhile is not missed
                jobs_needed = self.current_concurrency - self.current_occupancy()
                if jobs_needed <= 0:
                    await self._slot_freed.wait()
                    continue
                await self._take(session, jobs_needed)
        finally:
            self._taking = False
            self._job_queued.set()

    async def _take(self, session: ClientSession, jobs_needed: int) -> None:
        # Same outcomes as rp_scale.JobScaler.get_jobs: a take in flight is never cancelled, so a job
        # the server hands out during shutdown is still run (run_jobs waits for the take to end).
        try:
            acquired = await asyncio.wait_for(
                self.jobs_fetcher(session, jobs_needed), timeout=self.jobs_fetcher_timeout
            )
            if not acquired:
                return
            for job in acquired:
                await self.jobs_queue.put(job)
                self.job_progress.add(job)
            self._job_queued.set()
            log.info(f"Jobs in queue: {self.jobs_queue.qsize()}")
        except TooManyRequests:
            log.debug("EventJobScaler.get_jobs | Too many requests. Debounce for 5 seconds.")
            await _sleep_unless(self._shutdown_event, _TOO_MANY_REQUESTS_BACKOFF_S)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.debug("EventJobScaler.get_jobs | Job acquisition timed out. Retrying.")
        except TypeError as error:
            log.debug(f"EventJobScaler.get_jobs | Unexpected error: {error}.")
        except Exception as error:
            log.error(f"Failed to get job. | Error Type: {type(error).__name__} | Error Message: {error}")
        finally:
            await asyncio.sleep(0)

    async def run_jobs(self, session: ClientSession) -> None:
        """Start queued jobs as slots allow; wake on a job queued or a job done, drain on shutdown."""
        tasks: set[asyncio.Task] = set()
        while self._taking or not self.jobs_queue.empty():
            self._start_queued(session, tasks)
            self._job_queued.clear()  # nothing awaited since the queue was read: no wake-up is lost
            queued = asyncio.ensure_future(self._job_queued.wait())
            try:
                done, _ = await asyncio.wait({*tasks, queued}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                queued.cancel()
            tasks.difference_update(done)

        # As the SDK does: let in-flight jobs finish; a stopped job's CancelledError is expected.
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                log.error(f"EventJobScaler.run_jobs | Task failed during shutdown drain: {result}")

    def _start_queued(self, session: ClientSession, tasks: set[asyncio.Task]) -> None:
        started = False
        while len(tasks) < self.current_concurrency and not self.jobs_queue.empty():
            job = self.jobs_queue.get_nowait()
            task = asyncio.create_task(self.handle_job(session, job))
            tasks.add(task)
            self.jobs_tasks[job["id"]] = task
            started = True
        if started:
            # A queued job counts twice in current_occupancy (queue + tracker); leaving the queue
            # frees that count, which may let the take loop ask for more.
            self._slot_freed.set()

    async def handle_job(self, session: ClientSession, job: dict[str, Any]) -> None:
        try:
            await super().handle_job(session, job)
        finally:
            self._slot_freed.set()


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _install_signal_handlers(callback) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, callback)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread / no unix loop
            continue
        installed.append(signum)
    return installed


def _restore_signal_handlers(installed: Iterable[signal.Signals], handler) -> None:
    loop = asyncio.get_running_loop()
    for signum in installed:
        loop.remove_signal_handler(signum)
        signal.signal(signum, handler)  # a signal during the exit still drains, as with the SDK


def run_worker(config: dict[str, Any]) -> None:
    """``runpod.serverless.worker.run_worker`` of runpod 1.12.0, with `EventJobScaler`."""
    asyncio.run(sdk_worker.run_fitness_checks())

    mirror = PingJobMirror()  # what the ping process reports as this worker's jobs in progress
    JobsProgress().set_mirror(mirror)
    sdk_worker.heartbeat.start_ping(mirror)

    EventJobScaler(config).start()


def use_event_loop() -> bool:
    """Whether `start` runs `EventJobScaler` (else the SDK's stock loop)."""
    choice = os.environ.get(LOOP_ENV, "event")
    if choice not in ("event", "sdk"):
        raise ValueError(f"{LOOP_ENV} must be 'event' or 'sdk', got {choice!r}")
    if choice == "sdk":
        return False
    if runpod.__version__ != PINNED_RUNPOD_VERSION:
        log.warn(
            f"runpod {runpod.__version__} is not {PINNED_RUNPOD_VERSION}, which the event-driven job loop "
            "was built for: running the SDK's own loop."
        )
        return False
    return True


def start(config: dict[str, Any]) -> None:
    """``runpod.serverless.start(config)``, whose production loop is `run_worker` unless told otherwise."""
    logs.adopt_sdk_logger(RunPodLogger)  # the SDK's lines in our handler: one level, one shape, bounded
    if not use_event_loop():
        runpod.serverless.start(config)
        return
    stock = sdk_worker.run_worker
    sdk_worker.run_worker = run_worker  # the one seam: worker.main() looks it up at call time
    try:
        runpod.serverless.start(config)
    finally:
        sdk_worker.run_worker = stock
