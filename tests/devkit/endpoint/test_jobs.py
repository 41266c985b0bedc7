"""The local endpoint's job queue and state machine, without processes or HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from devkit.endpoint.jobs import (
    DEFAULT_TTL_S,
    MAX_ATTEMPTS,
    RETENTION_RUN_S,
    RETENTION_RUNSYNC_S,
    STOP_REPEAT_S,
    STOP_RESEND_S,
    JobQueue,
    Status,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def finished() -> list:
    return []


@pytest.fixture
def queue(clock, finished) -> JobQueue:
    return JobQueue(execution_timeout=60, clock=clock, on_finished=finished.append)


def test_jobs_are_taken_in_submission_order_up_to_the_batch_size(queue):
    jobs = [queue.submit({"n": n}) for n in range(3)]
    assert [job.status for job in jobs] == [Status.IN_QUEUE] * 3
    taken = queue.take("w1", 2)
    assert taken == jobs[:2]
    assert all(job.status is Status.IN_PROGRESS and job.worker_id == "w1" and job.attempts == 1 for job in taken)
    assert queue.pending_count() == 1
    assert queue.take("w2", 5) == jobs[2:]
    assert queue.take("w2", 5) == []


def test_oldest_wait_is_the_head_of_the_queues_time_in_it(queue, clock):
    assert queue.oldest_wait() == 0
    queue.submit({})
    clock.now += 3
    queue.submit({})
    assert queue.oldest_wait() == 3
    queue.take("w1", 1)
    assert queue.oldest_wait() == 0


def test_a_finished_job_shows_output_times_and_worker_as_runpod_does(queue, clock, finished):
    job = queue.submit({"x": 1})
    clock.now += 2
    queue.take("w1", 1)
    clock.now += 3
    assert queue.finish(job.id, "w1", {"output": {"y": 2}}, is_stream=False)
    assert job.view() == {"id": job.id, "status": "COMPLETED", "delayTime": 2000, "executionTime": 3000,
                          "workerId": "w1", "output": {"y": 2}}
    assert finished == [job]


def test_an_error_result_fails_the_job_and_keeps_the_error_string(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    envelope = json.dumps({"code": "BAD_INPUT", "message": "m", "retryable": False})
    queue.finish(job.id, "w1", {"error": envelope}, is_stream=True)
    assert job.status is Status.FAILED
    assert job.view()["error"] == envelope
    assert "output" not in job.view()


def test_a_result_with_no_output_completes_without_an_output_field(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    queue.finish(job.id, "w1", {}, is_stream=False)
    assert job.status is Status.COMPLETED
    assert "output" not in job.view()


def test_stream_chunks_are_handed_out_once_each_in_order(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    queue.add_chunk(job.id, "w1", 1)
    queue.add_chunk(job.id, "w1", 2)
    assert queue.take_stream(job) == [1, 2]
    assert queue.take_stream(job) == []
    queue.add_chunk(job.id, "w1", 3)
    queue.finish(job.id, "w1", {"output": [1, 2, 3]}, is_stream=True)
    assert queue.take_stream(job) == [3]
    assert job.output == [1, 2, 3]


def test_the_output_of_a_returning_handler_is_its_one_stream_chunk(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    queue.finish(job.id, "w1", {"output": "whole"}, is_stream=False)
    assert queue.take_stream(job) == ["whole"]


def test_progress_shows_as_output_while_running_and_late_progress_is_ignored(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    assert queue.set_progress(job.id, "w1", {"pct": 50})
    assert job.view()["output"] == {"pct": 50}
    queue.finish(job.id, "w1", {"output": "done"}, is_stream=False)
    assert not queue.set_progress(job.id, "w1", {"pct": 99})  # progress_update() posts from a thread
    assert job.view()["output"] == "done"


def test_posts_from_a_worker_that_does_not_hold_the_job_are_dropped(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    assert not queue.add_chunk(job.id, "w2", "stray")
    assert not queue.finish(job.id, "w2", {"output": "stray"}, is_stream=False)
    assert not queue.finish("no-such-job", "w1", {"output": 1}, is_stream=False)
    assert job.status is Status.IN_PROGRESS and job.chunks == []


def test_cancelling_a_queued_job_removes_it_from_the_queue(queue):
    job = queue.submit({})
    assert queue.cancel(job.id) is job
    assert job.status is Status.CANCELLED
    assert queue.take("w1", 1) == []
    assert queue.stops_for("w1") == []


def test_cancelling_a_running_job_asks_its_worker_to_stop_it_and_drops_its_late_result(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    queue.cancel(job.id)
    assert job.status is Status.CANCELLED
    assert queue.stops_for("w1") == [job.id]
    assert queue.stops_for("w2") == []
    assert not queue.finish(job.id, "w1", {"output": "late"}, is_stream=False)
    assert job.status is Status.CANCELLED


def test_a_stop_is_sent_again_until_its_repeat_window_ends(queue, clock):
    # The SDK drops a stop that arrives before the job's task exists: resending covers that race.
    job = queue.submit({})
    queue.take("w1", 1)
    queue.cancel(job.id)
    assert queue.stops_for("w1") == [job.id]
    assert queue.stops_for("w1") == []
    clock.now += STOP_RESEND_S
    assert queue.stops_for("w1") == [job.id]
    clock.now += STOP_REPEAT_S
    assert queue.stops_for("w1") == []


def test_cancelling_a_finished_job_leaves_it_as_it_is(queue):
    job = queue.submit({})
    queue.take("w1", 1)
    queue.finish(job.id, "w1", {"output": 1}, is_stream=False)
    queue.cancel(job.id)
    assert job.status is Status.COMPLETED


def test_a_job_past_its_execution_timeout_times_out_with_the_typed_error(queue, clock):
    slow = queue.submit({})
    quick = queue.submit({}, execution_timeout=5)
    queue.take("w1", 2)
    clock.now += 6
    assert queue.time_out_overdue() == [quick]
    assert quick.status is Status.TIMED_OUT
    assert json.loads(quick.error)["code"] == "TIMEOUT"
    assert queue.stops_for("w1") == [quick.id]
    clock.now += 60
    assert queue.time_out_overdue() == [slow]


def test_jobs_of_a_dead_worker_go_back_to_the_head_of_the_queue_then_fail(queue):
    first, second, waiting = queue.submit({}), queue.submit({}), queue.submit({})
    queue.take("w1", 2)
    queue.worker_lost("w1", "exit code -9")
    assert [first.status, second.status] == [Status.IN_QUEUE, Status.IN_QUEUE]
    assert queue.take("w2", 3) == [first, second, waiting]
    assert first.attempts == MAX_ATTEMPTS == 2
    queue.worker_lost("w2", "exit code 1")
    assert first.status is Status.FAILED
    error = json.loads(first.error)
    assert error["code"] == "INTERNAL"
    assert "exit code 1" in error["message"]
    assert waiting.status is Status.IN_QUEUE  # first attempt lost: retried
    assert queue.counts()["retried"] == 3


def test_purge_cancels_queued_jobs_and_leaves_running_ones(queue):
    running, waiting = queue.submit({}), queue.submit({})
    queue.take("w1", 1)
    assert queue.purge() == 1
    assert (running.status, waiting.status) == (Status.IN_PROGRESS, Status.CANCELLED)


def test_finished_jobs_are_forgotten_after_runpods_retention(queue, clock):
    run_job, sync_job = queue.submit({}), queue.submit({}, sync=True)
    queue.cancel(run_job.id)
    queue.cancel(sync_job.id)
    clock.now += RETENTION_RUNSYNC_S + 1
    assert queue.sweep() == 1
    assert queue.get(sync_job.id) is None and queue.get(run_job.id) is run_job
    clock.now += RETENTION_RUN_S
    queue.sweep()
    assert queue.get(run_job.id) is None


def test_counts_follow_runpods_health_shape(queue):
    done, failed, running = queue.submit({}), queue.submit({}), queue.submit({})
    queue.submit({})
    queue.take("w1", 3)
    queue.finish(done.id, "w1", {"output": 1}, is_stream=False)
    queue.finish(failed.id, "w1", {"error": "x"}, is_stream=False)
    assert running.status is Status.IN_PROGRESS
    assert queue.counts() == {"completed": 1, "failed": 1, "inProgress": 1, "inQueue": 1, "retried": 0}


def test_a_waiting_job_take_returns_as_soon_as_a_job_is_submitted():
    async def scenario():
        queue = JobQueue(execution_timeout=60)
        waiter = asyncio.create_task(queue.take_waiting("w1", 1, hold=30, accepting=lambda: True))
        await asyncio.sleep(0.01)
        job = queue.submit({})
        return job, await asyncio.wait_for(waiter, 5)

    job, taken = asyncio.run(scenario())
    assert taken == [job]


def test_a_waiting_job_take_ends_empty_when_its_worker_stops_accepting():
    async def scenario():
        queue = JobQueue(execution_timeout=60)
        accepting = [True]
        waiter = asyncio.create_task(queue.take_waiting("w1", 1, hold=30, accepting=lambda: accepting[0]))
        await asyncio.sleep(0.01)
        accepting[0] = False
        queue.queued.fire()
        return await asyncio.wait_for(waiter, 5)

    taken = asyncio.run(scenario())
    assert taken == []


def test_a_waiting_stop_poll_returns_the_cancelled_job():
    async def scenario():
        queue = JobQueue(execution_timeout=60)
        job = queue.submit({})
        queue.take("w1", 1)
        waiter = asyncio.create_task(queue.stops_waiting("w1", hold=30, accepting=lambda: True))
        await asyncio.sleep(0.01)
        queue.cancel(job.id)
        return job, await asyncio.wait_for(waiter, 5)

    job, stops = asyncio.run(scenario())
    assert stops == [job.id]


def test_a_job_is_handed_to_its_worker_with_its_s3_config_as_runpod_does(queue):
    plain = queue.submit({"x": 1})
    with_bucket = queue.submit({"x": 2}, s3_config={"bucketName": "b"})
    assert plain.wire() == {"id": plain.id, "input": {"x": 1}}
    assert with_bucket.wire() == {"id": with_bucket.id, "input": {"x": 2}, "s3Config": {"bucketName": "b"}}
    assert "s3Config" not in with_bucket.view()  # credentials go to the worker, never back to clients


def test_low_priority_jobs_are_taken_after_every_normal_job(queue):
    low = queue.submit({"n": 0}, low_priority=True)
    first, second = queue.submit({"n": 1}), queue.submit({"n": 2})
    assert queue.take("w1", 2) == [first, second]
    assert queue.take("w1", 2) == [low]


def test_low_priority_jobs_never_call_for_a_worker_but_count_as_queued(queue, clock):
    queue.submit({}, low_priority=True)
    clock.now += 5
    assert (queue.pending_count(), queue.oldest_wait()) == (0, 0)
    assert queue.counts()["inQueue"] == 1
    normal = queue.submit({})
    clock.now += 2
    assert (queue.pending_count(), queue.oldest_wait()) == (1, 2)
    assert queue.take("w1", 1) == [normal]


def test_a_queued_low_priority_job_is_cancelled_and_purged_like_any_other(queue):
    cancelled, purged = queue.submit({}, low_priority=True), queue.submit({}, low_priority=True)
    queue.cancel(cancelled.id)
    assert queue.purge() == 1
    assert (cancelled.status, purged.status) == (Status.CANCELLED, Status.CANCELLED)
    assert queue.take("w1", 5) == []


def test_a_queued_job_past_its_ttl_is_deleted(queue, clock, finished):
    job = queue.submit({}, ttl=10)
    clock.now += 9
    assert queue.sweep() == 0
    clock.now += 1
    assert queue.sweep() == 1
    assert queue.get(job.id) is None and job.deleted
    assert queue.take("w1", 1) == [] and queue.counts()["inQueue"] == 0
    assert finished == []  # deleted, not finished: no webhook


def test_a_running_job_past_its_ttl_is_deleted_and_stopped_on_its_worker(queue, clock):
    job = queue.submit({}, ttl=10)
    queue.take("w1", 1)
    clock.now += 10
    queue.sweep()
    assert queue.get(job.id) is None
    assert queue.stops_for("w1") == [job.id]
    assert not queue.finish(job.id, "w1", {"output": "late"}, is_stream=False)


def test_the_ttl_cuts_a_results_retention_short(queue, clock):
    job = queue.submit({}, ttl=60)
    queue.take("w1", 1)
    queue.finish(job.id, "w1", {"output": 1}, is_stream=False)
    clock.now += 60
    queue.sweep()
    assert queue.get(job.id) is None  # RETENTION_RUN_S is 30 min, the TTL 1 min


def test_the_default_ttl_is_runpods_24_hours(queue, clock):
    job = queue.submit({})
    assert job.expires_at == clock.now + DEFAULT_TTL_S == clock.now + 86_400


def test_a_status_ttl_deletes_the_job_that_long_from_now(queue, clock):
    job = queue.submit({})
    queue.take("w1", 1)
    queue.finish(job.id, "w1", {"output": 1}, is_stream=False)
    queue.set_ttl(job.id, 6)
    clock.now += 5
    queue.sweep()
    assert queue.get(job.id) is job
    clock.now += 1
    queue.sweep()
    assert queue.get(job.id) is None


def test_a_failed_job_is_retried_under_its_id_with_its_input_and_no_old_output(queue, clock, finished):
    job = queue.submit({"x": 1})
    queue.take("w1", 1)
    queue.add_chunk(job.id, "w1", "partial")
    queue.finish(job.id, "w1", {"error": "boom"}, is_stream=True)
    assert queue.retry(job.id) is job
    assert job.view() == {"id": job.id, "status": "IN_QUEUE"}
    assert queue.counts() == {"completed": 0, "failed": 1, "inProgress": 0, "inQueue": 1, "retried": 1}
    clock.now += 4
    assert queue.oldest_wait() == 4  # counted from the retry
    clock.now += 1
    assert queue.take("w2", 1) == [job]
    assert job.wire() == {"id": job.id, "input": {"x": 1}} and job.attempts == 1
    assert job.view()["delayTime"] == 5000
    queue.finish(job.id, "w2", {"output": "ok"}, is_stream=False)
    assert job.view()["output"] == "ok" and queue.take_stream(job) == ["ok"]
    assert finished == [job, job]  # its webhook is sent again when the retry ends


def test_a_timed_out_job_is_retried_and_its_old_stop_does_not_stop_the_new_attempt(queue, clock):
    job = queue.submit({}, execution_timeout=5)
    queue.take("w1", 1)
    clock.now += 6
    queue.time_out_overdue()
    assert queue.retry(job.id) is job
    assert queue.take("w1", 1) == [job]
    assert queue.stops_for("w1") == []
    assert job.status is Status.IN_PROGRESS


@pytest.mark.parametrize("state", ["queued", "running", "completed", "cancelled"])
def test_only_failed_or_timed_out_jobs_can_be_retried(queue, state):
    job = queue.submit({})
    if state != "queued":
        queue.take("w1", 1)
    if state == "completed":
        queue.finish(job.id, "w1", {"output": 1}, is_stream=False)
    if state == "cancelled":
        queue.cancel(job.id)
    before = job.status
    assert queue.retry(job.id) is None
    assert job.status is before and queue.counts()["retried"] == 0
    assert queue.retry("no-such-job") is None


def test_health_counts_follow_every_transition(queue, clock):
    done, failed, running, _, _ = (queue.submit({}) for _ in range(5))
    queue.take("w1", 3)
    queue.finish(done.id, "w1", {"output": 1}, is_stream=False)
    queue.finish(failed.id, "w1", {"error": "x"}, is_stream=False)
    assert queue.counts() == {"completed": 1, "failed": 1, "inProgress": 1, "inQueue": 2, "retried": 0}
    queue.worker_lost("w1", "exit code 1")
    assert queue.counts() == {"completed": 1, "failed": 1, "inProgress": 0, "inQueue": 3, "retried": 1}
    assert running.status is Status.IN_QUEUE
