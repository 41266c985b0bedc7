"""Worker log lines in the runpod SDK's shape, tagged with the current job's requestId, one level, bounded in size.

RunPod's console shows a worker's stdout and stderr and lets you filter by request and level (RunPod
docs, "Monitor logs" and "Write logs"). The runpod SDK's own logger (runpod 1.12.0,
``serverless/modules/rp_logger.py``) prints, when ``RUNPOD_ENDPOINT_ID`` is set (that is, on RunPod
and behind the local endpoint), one JSON object per line::

    {"requestId": "<job id or null>", "message": "...", "level": "INFO"}

and elsewhere (a one-shot local run) ``INFO   | <job id> | message``. `configure` makes every
``logging`` line of the worker come out the same way, with the id of the job being run (set by
`job_context`, which ``shared.guard.guard`` wraps around every job), and `adopt_sdk_logger` sends
the SDK's own lines through the same handler, so both:

- share one level: ``LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR; default INFO). ``RUNPOD_LOG_LEVEL``,
  the SDK's own variable, is read when ``LOG_LEVEL`` is unset (its WARN and TRACE are accepted);
- never exceed `MAX_LINE_BYTES` per line: a longer message loses its middle, replaced by a marker
  saying how many characters were cut (a traceback keeps its head and its last frames);
- print a traceback once: the SDK's lines carry none while ``guard`` turns every failure into the
  job's error, and ``guard`` logs the unexpected ones, once, with their traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

#: The documented level setting.
LEVEL_ENV = "LOG_LEVEL"
#: The runpod SDK's level setting, read when LEVEL_ENV is unset.
SDK_LEVEL_ENV = "RUNPOD_LOG_LEVEL"
DEFAULT_LEVEL = "INFO"

#: The most bytes one log line takes (UTF-8, newline excluded). Well under what a reader of the
#: worker's output buffers per line (asyncio's StreamReader: 64 KiB, issue 19).
MAX_LINE_BYTES = 16 * 1024

#: Set on RunPod (and by the local endpoint): the SDK then prints JSON lines, and so do we.
ENDPOINT_ENV = "RUNPOD_ENDPOINT_ID"

#: The job whose code is running in this task or thread; None outside a job.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

#: Level names as the SDK prints them (rp_logger.LOG_LEVELS), by Python level.
_PRINTED = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN", logging.ERROR: "ERROR",
            logging.CRITICAL: "ERROR"}
#: Every name either setting accepts, as a Python level.
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "WARNING": logging.WARNING, "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL,
           "FATAL": logging.CRITICAL}
#: The SDK's message levels (its ``log(message, message_level)``), as Python levels; TIP is advice.
_SDK_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "TIP": logging.INFO,
               "WARN": logging.WARNING, "ERROR": logging.ERROR}
#: The logger the SDK's lines go through once adopted.
SDK_LOGGER = "runpod"


def level_setting(environ: dict[str, str] | None = None) -> tuple[int, str | None]:
    """(the Python level, a complaint about an unusable value or None), from LOG_LEVEL or RUNPOD_LOG_LEVEL."""
    environ = os.environ if environ is None else environ
    for name in (LEVEL_ENV, SDK_LEVEL_ENV):
        raw = environ.get(name, "").strip()
        if raw:
            level = _LEVELS.get(raw.upper())
            if level is None:
                return _LEVELS[DEFAULT_LEVEL], (f"{name}={raw!r} is not a log level (use DEBUG, INFO, WARNING or "
                                                f"ERROR): logging at {DEFAULT_LEVEL}")
            return level, None
    return _LEVELS[DEFAULT_LEVEL], None


def configure(stream: Any = None) -> None:
    """Route every ``logging`` line of the process through one handler in the SDK's shape, at the one level."""
    level, complaint = level_setting()
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(RunPodShape())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if complaint:
        logging.getLogger(__name__).warning(complaint)


@contextlib.contextmanager
def job_context(job: Any) -> Iterator[None]:
    """While a job runs, every line logged from its task (and the threads it starts) carries its id."""
    job_id = job.get("id") if isinstance(job, dict) else None
    token = request_id.set(job_id if isinstance(job_id, str) else None)
    try:
        yield
    finally:
        # A generator closed from another task (a cancelled job collected later) has another context.
        with contextlib.suppress(ValueError):
            request_id.reset(token)


class RunPodShape(logging.Formatter):
    """One record as one line in the SDK's shape (JSON on an endpoint), at most `MAX_LINE_BYTES`."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info).rstrip()}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        job_id = getattr(record, "request_id", None) or request_id.get()
        level = _PRINTED.get(record.levelno, record.levelname)
        if os.environ.get(ENDPOINT_ENV):
            return bounded(message, lambda text: json.dumps({"requestId": job_id, "message": text, "level": level}))
        prefix = f"{level.ljust(7)}| " + (f"{job_id} | " if job_id else "")
        return bounded(message, lambda text: _printable(prefix + text))


def bounded(message: str, render: Any, limit: int = MAX_LINE_BYTES) -> str:
    """``render(message)``, with as little of the message's middle cut as fits the line in ``limit`` bytes."""
    line = render(message)
    if _size(line) <= limit:
        return line
    # Characters escape to 1 to 12 bytes: search the most characters kept whose line fits (17 renders
    # for a megabyte, and only for an oversized line).
    fits, kept, over = render(_cut_middle(message, len(message))), 0, len(message)
    while over - kept > 1:
        middle = (kept + over) // 2
        candidate = render(_cut_middle(message, len(message) - middle))
        if _size(candidate) <= limit:
            fits, kept = candidate, middle
        else:
            over = middle
    return fits


def _cut_middle(message: str, cut: int) -> str:
    keep = len(message) - cut
    head = keep // 2
    return message[:head] + _marker(cut, len(message)) + message[len(message) - (keep - head):]


def _marker(cut: int, total: int) -> str:
    return f" ...[{cut} of {total} characters cut]... "


def _size(line: str) -> int:
    return len(line.encode("utf-8", "backslashreplace"))


def _printable(line: str) -> str:
    """A lone surrogate cannot be written to a UTF-8 stream: shown escaped instead of failing the write."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def adopt_sdk_logger(sdk_logger_class: Any) -> None:
    """Send the runpod SDK's own lines (``RunPodLogger``) through `configure`'s handler.

    Its ``log(message, message_level, job_id)`` becomes a record of the ``runpod`` logger, so the SDK's
    lines obey the one level, carry the job's id, and are bounded like ours. The SDK's own cut (its
    ``MAX_MESSAGE_LENGTH``) no longer applies; ours does. Patched on the class at run time: the library's
    files stay as installed.
    """
    sdk = logging.getLogger(SDK_LOGGER)

    def log(_self: Any, message: Any, message_level: str = "INFO", job_id: str | None = None) -> None:
        level = _SDK_LEVELS.get(str(message_level).upper(), logging.INFO)
        if sdk.isEnabledFor(level):
            sdk.log(level, "%s", message, extra={"request_id": job_id})

    sdk_logger_class.log = log
