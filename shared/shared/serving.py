"""The one entrypoint of every worker: run its startup once, then the runpod SDK's job loop.

A worker is any object with ``setup()`` (load the model; may raise) and ``handler(job)`` (sync,
async, generator or async generator), and optionally ``engine_error(exc)``, its engine's exception mapper
(shared.errors.classify). Its package's ``__main__`` calls ``serve(Worker())``, so the
image's start command is ``python -m <package>`` and nothing heavy happens at import time.

A failed startup follows RunPod's own rules. An exited container is restarted, and after repeated
exits the worker is marked unhealthy while its jobs stay IN_QUEUE with nothing telling the client why
(RunPod docs, "Worker overview": worker states, Unhealthy; runpod-workers/worker-vllm issue 29). So the
failure is classified by its type, never by its message:

- `StartupError` (setup checked and found what no restart fixes: a bad setting, a missing or unreadable
  model folder, a model the engine cannot serve, weights that do not fit): the worker enters the SDK's
  job loop anyway and fails every job it takes at once with NOT_READY carrying the cause and the fix,
  as worker-vllm's entrypoint does for failures it recognises (src/main.py, src/startup_errors.py).
- Anything else (a device error, CUDA init failing, a file system hiccup, an unexpected bug) may pass
  on a restart: the process exits with STARTUP_FAILURE_EXIT so the platform restarts it, after writing
  a marker file. A container's disk lives as long as the worker ("Container disk: temporary storage that
  exists only while a worker is running", RunPod docs, "Storage options"), so a restart of the same
  worker finds the marker: a repeat of the failure answers jobs as above instead of exiting again, and
  a queue never hangs on a broken image. A new worker starts with a clean disk and gets its own try.
  A setup that succeeds removes the marker.

The marker lives in WORKER_STATE_DIR (default: the temp folder, in the container's writable layer; the
local endpoint gives each of its worker containers its own folder).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from shared import logs, prefetch, settings
from shared.errors import StartupError, failure_result
from shared.guard import guard

log = logging.getLogger(__name__)

#: Prefix of the one stderr line that says why startup failed; the local endpoint shows what follows it
#: in /health (``startupFailure``) and in the log.
STARTUP_FAILURE_MARKER = "worker startup failed:"

#: Logged as setup() begins; with the "ready in" line after it, RunPod's console (which stamps each line) shows
#: where a slow start went: before it, the interpreter and the worker's own imports; between the two, the
#: weights and the engine. The image cold-start bench (devkit.bench.cold_start_image) splits a start there.
SETUP_STARTED = "%s: setup() started (weights, engine)"

#: Exit status of a worker whose startup failed in a way a restart may fix (distinct from a crash mid-job).
STARTUP_FAILURE_EXIT = 3

#: Env var naming a folder that lives as long as the worker's container (see the module docstring).
STATE_DIR_ENV = "WORKER_STATE_DIR"

#: Jobs a worker whose startup failed takes at once: each is answered in well under a millisecond.
FAILED_START_CONCURRENCY = 8

#: Characters of an unexpected exception's text quoted in the NOT_READY message (the traceback is in the log).
QUOTED_ERROR_CHARS = 1000


class Worker(Protocol):
    #: Default number of jobs one worker process runs at once; MAX_CONCURRENCY overrides it.
    max_concurrency: int

    def setup(self) -> None: ...

    def handler(self, job: dict[str, Any]) -> Any: ...

    # Optional: ``engine_error(exc) -> WorkerError | None``, the worker's engine's exception mapper
    # (shared.errors.classify); torch's types are mapped without one.
    # Optional: ``weight_folders``, the env vars naming the folders setup() loads (shared.prefetch).


def max_concurrency(worker: Worker) -> int:
    return settings.number("MAX_CONCURRENCY", max(1, worker.max_concurrency), minimum=1)


def runpod_config(worker: Worker) -> dict[str, Any]:
    """The config handed to ``runpod.serverless.start``."""
    return _config(guard(worker.handler, getattr(worker, "engine_error", None)), max_concurrency(worker))


def _config(handler: Callable, limit: int) -> dict[str, Any]:
    return {
        "handler": handler,
        # Generator workers: /stream clients get chunks as they come, /run + /status clients the list.
        "return_aggregate_stream": True,
        "concurrency_modifier": _fixed(limit),
    }


def _fixed(limit: int) -> Callable[[int], int]:
    def concurrency_modifier(current: int) -> int:
        return limit

    return concurrency_modifier


def failure_marker(worker: Worker) -> Path:
    """The file saying that this worker's startup already failed once in this container."""
    folder = os.environ.get(STATE_DIR_ENV, "").strip() or tempfile.gettempdir()
    kind = type(worker)
    return Path(folder) / f"startup-failed-{kind.__module__}.{kind.__qualname__}"

def start_up(worker: Worker) -> dict[str, Any]:
    """Validate settings and run ``setup()`` once: the job loop's config, or a failed start's (see the module
    docstring); exits with STARTUP_FAILURE_EXIT for a first failure that a restart may fix."""
    started = time.perf_counter()
    marker = failure_marker(worker)
    log.info(SETUP_STARTED, type(worker).__name__)
    try:
        config = runpod_config(worker)
        worker.setup()
    except StartupError as exc:
        log.error("startup failed", exc_info=exc)
        return failed_start(exc)
    except Exception as exc:
        log.error("startup failed", exc_info=exc)
        first = _read(marker)
        if first is None:
            _exit_for_restart(marker, exc)
        return failed_start(repeated_failure(exc, first))
    marker.unlink(missing_ok=True)
    log.info("%s ready in %.2f s", type(worker).__name__, time.perf_counter() - started)
    return config


def repeated_failure(exc: BaseException, first: str) -> StartupError:
    """A failure a restart was meant to fix, seen again after the restart."""
    text = _quoted(exc)
    also = "" if first == text else f" (before the restart: {first})"
    return StartupError(
        f"setup failed again after the platform restarted this worker: {text}{also}",
        "a restart does not fix it: the traceback is in this worker's log; fix the image, its settings or "
        "the endpoint's GPU type and redeploy",
    )


def failed_start(error: StartupError) -> dict[str, Any]:
    """The job loop's config for a worker that cannot serve: every job fails at once with ``error``.

    Said once here, in the log and on stderr for the local endpoint; the jobs are answered silently.
    """
    log.error("this worker cannot serve (%s); every job it takes fails with %s", error.message, error.code)
    print(f"{STARTUP_FAILURE_MARKER} {error.message}", file=sys.stderr, flush=True)
    answer = failure_result(error)

    async def not_ready(job: dict[str, Any]) -> dict[str, Any]:
        return dict(answer)  # the SDK pops keys off what a handler returns

    return _config(not_ready, FAILED_START_CONCURRENCY)


def _exit_for_restart(marker: Path, exc: BaseException) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(_quoted(exc))
    except OSError as error:  # without the marker a repeat exits again: still the platform's own rules
        log.warning("could not write the startup failure marker %s: %s", marker, error)
    print(f"{STARTUP_FAILURE_MARKER} {_quoted(exc)} (exiting: a restart may fix it)", file=sys.stderr, flush=True)
    raise SystemExit(STARTUP_FAILURE_EXIT) from None


def _read(marker: Path) -> str | None:
    try:
        return marker.read_text()
    except OSError:
        return None


def _quoted(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever the exception printed
    return text if len(text) <= QUOTED_ERROR_CHARS else text[:QUOTED_ERROR_CHARS] + "..."


def serve(worker: Worker) -> None:
    logs.configure()
    prefetch.start(getattr(worker, "weight_folders", ()))  # reads the weights while setup() imports
    config = start_up(worker)
    # After setup: a failed setup exits without paying runpod's ~2 s import. job_loop runs the SDK's
    # start() with a loop that takes the next job as soon as a slot frees (no 1 s idle per job).
    from shared import job_loop

    job_loop.start(config)
