"""Webhook delivery: a finished job's status body is POSTed to the URL its request carried, as RunPod does."""

from __future__ import annotations

import asyncio
import logging

import httpx

from devkit.endpoint.jobs import Job

log = logging.getLogger(__name__)

#: RunPod POSTs the job's /status body and, unless the webhook answers 200, "retries up to 2 more times
#: with a 10-second delay" (RunPod docs, "Send API requests", "Webhook notifications").
ATTEMPTS = 3
RETRY_PAUSE_S = 10.0
TIMEOUT_S = 10.0


class WebhookSender:
    """Sends webhooks in the background; `close` waits for deliveries in flight."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def job_finished(self, job: Job) -> None:
        if job.webhook is None:
            return
        task = asyncio.get_running_loop().create_task(deliver(job.webhook, job.view()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)


async def deliver(url: str, body: dict, *, pause: float = RETRY_PAUSE_S) -> bool:
    """POST ``body`` to ``url`` until it answers 200, at most ATTEMPTS times ``pause`` seconds apart."""
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await client.post(url, json=body)
                if response.status_code == 200:
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.warning("webhook %s for job %s failed (attempt %d/%d): %s", url, body["id"], attempt, ATTEMPTS, problem)
            if attempt < ATTEMPTS:
                await asyncio.sleep(pause)
    return False
