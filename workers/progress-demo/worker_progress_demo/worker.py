"""The progress-demo worker: typed input, explicit setup, a generator handler that streams progress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from shared.authoring import Field, WorkerInput, parse

MAX_STEPS = 1000
MAX_STEP_SECONDS = 10.0


class Input(WorkerInput):
    steps: int = Field(10, ge=1, le=MAX_STEPS, description="Number of steps to run.")
    step_seconds: float = Field(
        0.1, ge=0.0, le=MAX_STEP_SECONDS, description="Duration of each step, in seconds."
    )


class ProgressDemo:
    """Copy this class to start a worker: `setup()` loads, `handler()` serves one job."""

    #: Steps mostly wait, so several jobs share one worker without slowing each other.
    max_concurrency = 4

    def setup(self) -> None:
        # A real worker loads its model here (once, before the job loop). Nothing to load.
        self.started_at = time.time()

    async def handler(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        request = parse(Input, job["input"])
        total = 0
        for step in range(request.steps):
            await asyncio.sleep(request.step_seconds)
            total += step * step  # stands in for the work a real step would do
            yield {"progress": (step + 1) / request.steps, "step": step, "partial_result": total}
        yield {"progress": 1.0, "done": True, "result": {"steps": request.steps, "sum_of_squares": total}}
