"""When the local endpoint starts and stops workers."""

from __future__ import annotations

from dataclasses import replace

from devkit.endpoint.scaling import (
    RESTART_BACKOFF_S,
    SCALE_UP_DELAY_S,
    PoolState,
    idle_workers_to_stop,
    should_start_worker,
)
from devkit.endpoint_config import Scaling

SCALING = Scaling(min_workers=1, max_workers=3, idle_timeout=5, execution_timeout=60, flashboot=False)


def state(**fields) -> PoolState:
    return PoolState(**({"starting": 0, "ready": 0, "pending": 0, "oldest_wait": 0.0, "startup_failed": False}
                        | fields))


def test_workers_are_started_up_to_min_workers_with_no_job():
    assert should_start_worker(state(), SCALING)
    assert not should_start_worker(state(ready=1), SCALING)


def test_min_workers_are_not_restarted_after_a_failed_start():
    assert not should_start_worker(state(startup_failed=True), SCALING)


def test_a_waiting_job_starts_a_worker_when_none_is_ready():
    assert should_start_worker(state(pending=1, startup_failed=True), SCALING.model_copy(update={"min_workers": 0}))


def test_each_starting_worker_absorbs_one_waiting_job():
    assert not should_start_worker(state(starting=2, pending=2), SCALING)
    assert should_start_worker(state(starting=2, pending=3), SCALING)


def test_ready_workers_get_a_moment_to_take_queued_jobs_before_another_starts():
    assert not should_start_worker(state(ready=1, pending=4, oldest_wait=SCALE_UP_DELAY_S / 2), SCALING)
    assert should_start_worker(state(ready=1, pending=4, oldest_wait=SCALE_UP_DELAY_S * 2), SCALING)


def test_never_more_than_max_workers():
    assert not should_start_worker(state(ready=3, pending=10, oldest_wait=60), SCALING)


def test_after_a_failed_start_demand_waits_before_the_next_try():
    busy = state(pending=1, startup_failed=True, seconds_since_failure=RESTART_BACKOFF_S / 2)
    assert not should_start_worker(busy, SCALING)
    assert should_start_worker(replace(busy, seconds_since_failure=RESTART_BACKOFF_S), SCALING)


def test_idle_workers_stop_longest_idle_first_down_to_min_workers():
    idle = {"busy": None, "fresh": 1.0, "idle": 6.0, "idlest": 9.0}
    assert idle_workers_to_stop(idle, live=4, pending=0, scaling=SCALING) == ["idlest", "idle"]
    assert idle_workers_to_stop(idle, live=2, pending=0, scaling=SCALING) == ["idlest"]
    assert idle_workers_to_stop(idle, live=1, pending=0, scaling=SCALING) == []


def test_no_worker_stops_while_jobs_wait():
    assert idle_workers_to_stop({"idle": 60.0}, live=3, pending=1, scaling=SCALING) == []
