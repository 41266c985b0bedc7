"""The one entrypoint of every worker: run its startup once, then the runpod SDK's job loop.

A worker is any object with ``setup()`` (load the model; may raise) and ``handler(job)`` (sync,
async, generator or async generator). Its package's ``__main__`` calls ``serve(Worker())``, so the
image's start command is ``python -m <package>`` and nothing heavy happens at import time.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from shared import logs, settings
from shared.errors import guard

log = logging.getLogger(__name__)

#: Prefix of the one log line (stderr) that says why startup failed; the local endpoint shows what
#: follows it in /health and in the error of the jobs that were waiting.
STARTUP_FAILURE_MARKER = "worker startup failed:"

#: Exit status of a worker whose startup failed (distinct from a crash mid-job).
STARTUP_FAILURE_EXIT = 3


class Worker(Protocol):
    #: Default number of jobs one worker process runs at once; MAX_CONCURRENCY overrides it.
    max_concurrency: int

    def setup(self) -> None: ...

    def handler(self, job: dict[str, Any]) -> Any: ...


def max_concurrency(worker: Worker) -> int:
    return settings.number("MAX_CONCURRENCY", max(1, worker.max_concurrency), minimum=1)


def runpod_config(worker: Worker) -> dict[str, Any]:
    """The config handed to ``runpod.serverless.start``."""
    limit = max_concurrency(worker)
    return {
        "handler": guard(worker.handler),
        # Generator workers: /stream clients get chunks as they come, /run + /status clients the list.
        "return_aggregate_stream": True,
        "concurrency_modifier": _fixed(limit),
    }


def _fixed(limit: int) -> Callable[[int], int]:
    def concurrency_modifier(current: int) -> int:
        return limit

    return concurrency_modifier


def start_up(worker: Worker) -> dict[str, Any]:
    """Validate settings and run ``setup()`` once; exit non-zero with the reason if either fails."""
    started = time.perf_counter()
    try:
        config = runpod_config(worker)
        worker.setup()
    except Exception as exc:
        log.error("startup failed", exc_info=exc)
        print(f"{STARTUP_FAILURE_MARKER} {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(STARTUP_FAILURE_EXIT) from None
    log.info("%s ready in %.2f s", type(worker).__name__, time.perf_counter() - started)
    return config


def serve(worker: Worker) -> None:
    logs.configure()
    config = start_up(worker)
    # After setup: a failed setup exits without paying runpod's ~2 s import. job_loop runs the SDK's
    # start() with a loop that takes the next job as soon as a slot frees (no 1 s idle per job).
    from shared import job_loop

    job_loop.start(config)
