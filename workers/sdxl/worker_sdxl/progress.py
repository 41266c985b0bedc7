"""Per-step progress of one job, sent with the runpod SDK's ``progress_update``.

Why not a generator stream: the final chunk would carry the images, and RunPod caps a stream chunk
at 1 MB while one 1024x1024 PNG is already ~1.5 MB of base64. With ``progress_update`` the job's
``/status`` reads IN_PROGRESS with ``output`` = the latest of these updates, and the result stays one
plain object that ``/run`` and ``/runsync`` clients read the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: Least time between two updates of one job; first and last step of a stage are always sent.
DEFAULT_INTERVAL_S = 0.5

Send = Callable[[dict[str, Any], dict[str, Any]], None]


def runpod_progress_update(job: dict[str, Any], update: dict[str, Any]) -> None:
    from runpod.serverless import progress_update  # imported late: `import runpod` costs ~2 s

    progress_update(job, update)


class StepProgress:
    """Turns the pipeline's step callbacks into throttled progress updates for one job."""

    def __init__(self, job: dict[str, Any], send: Send, interval_s: float = DEFAULT_INTERVAL_S):
        self._job = job
        self._send = send
        self._interval_s = interval_s
        self._last_sent = float("-inf")

    def __call__(self, stage: str, step: int, steps: int) -> None:
        now = time.monotonic()
        edge = step in (1, steps)
        if not edge and now - self._last_sent < self._interval_s:
            return
        self._last_sent = now
        self._send(self._job, {"stage": stage, "step": step, "steps": steps, "progress": round(step / steps, 4)})
