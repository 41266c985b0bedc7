"""When to start a worker and which idle workers to stop (RunPod's request-count scaler, one job per worker)."""

from __future__ import annotations

from dataclasses import dataclass

from devkit.endpoint_config import Scaling

#: Seconds a job waits in the queue, while workers are ready, before another worker is started:
#: ready workers take queued jobs on their next poll.
SCALE_UP_DELAY_S = 1.0
#: After a failed start, demand waits this long before the next start (no crash loop at full speed).
RESTART_BACKOFF_S = 5.0


@dataclass(frozen=True)
class PoolState:
    starting: int
    ready: int
    pending: int
    #: Seconds the oldest queued job has waited.
    oldest_wait: float
    #: The last start failed and no worker has started since.
    startup_failed: bool
    seconds_since_failure: float = float("inf")


def should_start_worker(state: PoolState, scaling: Scaling) -> bool:
    live = state.starting + state.ready
    if live < scaling.min_workers and not state.startup_failed:
        return True
    if live >= scaling.max_workers or state.seconds_since_failure < RESTART_BACKOFF_S:
        return False
    # Each starting worker will absorb a job; beyond that, jobs still waiting call for another worker.
    return state.pending > state.starting and (state.ready == 0 or state.oldest_wait > SCALE_UP_DELAY_S)


def idle_workers_to_stop(idle_seconds: dict[str, float | None], live: int, pending: int,
                         scaling: Scaling) -> list[str]:
    """Ready workers idle past idle_timeout (``None``: busy), longest idle first, keeping min_workers."""
    if pending:
        return []
    idle = sorted((-seconds, worker_id) for worker_id, seconds in idle_seconds.items()
                  if seconds is not None and seconds > scaling.idle_timeout)
    return [worker_id for _, worker_id in idle[:max(0, live - scaling.min_workers)]]
