"""A cancelled job stops generating; a GPU out-of-memory error fails the jobs in flight, frees memory, and the
worker serves the next job."""

from __future__ import annotations

import asyncio
import json
import logging

import torch

from shared.guard import guard
from worker_llm_hf.kv_cache import LeftPaddedCache


def test_cancelled_job_stops_generating(worker, greedy, caplog, eventually):
    async def cancel_after_first_chunk():
        seen = asyncio.Event()

        async def consume():
            async for _ in worker.handler({"id": "c", "input": greedy(prompt="go", max_tokens=480, stream=True)}):
                seen.set()

        task = asyncio.create_task(consume())
        await seen.wait()
        task.cancel()  # what the runpod SDK does on a job-stop
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the job finished before it could be cancelled")

    with caplog.at_level(logging.INFO, logger="worker_llm_hf.batching"):
        asyncio.run(cancel_after_first_chunk())
        eventually(lambda: worker.engine.active == 0)
        eventually(lambda: "generation cancelled" in caplog.text)
    [line] = [r.getMessage() for r in caplog.records if "generation cancelled" in r.getMessage()]
    generated = int(line.split()[3])
    assert generated < 480


def test_cancelling_one_job_leaves_its_batch_neighbours_intact(run, greedy, job_chunks):
    survivor = greedy(prompt="survivor", max_tokens=40)
    [alone] = run(survivor)

    async def both():
        victim = asyncio.create_task(job_chunks(greedy(prompt="victim", max_tokens=400, stream=True)))
        kept = asyncio.create_task(job_chunks(survivor))
        await asyncio.sleep(0.05)
        victim.cancel()
        return await kept

    assert asyncio.run(both()) == [alone]


class _OomOnce:
    """Wraps the model so its first decode step over two sequences raises CUDA's OOM error."""

    def __init__(self, model):
        self.model = model
        self.armed = True

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, *args, **kwargs):
        if self.armed and kwargs["input_ids"].shape == (2, 1):
            self.armed = False
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.model(*args, **kwargs)


def test_out_of_memory_fails_the_jobs_in_flight_frees_memory_and_the_next_job_is_served(
    worker, run_guarded, envelope, greedy, eventually, monkeypatch, hold_until_queued
):
    freed = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append(True))
    hold_until_queued(2)
    monkeypatch.setattr(worker.engine, "model", _OomOnce(worker.engine.model))
    guarded = guard(worker.handler)

    async def one_job(prompt):
        return [chunk async for chunk in guarded({"id": prompt, "input": greedy(prompt=prompt, max_tokens=200)})]

    async def two_jobs():
        return await asyncio.gather(one_job("big"), one_job("other"))

    bodies = [envelope(chunks) for chunks in asyncio.run(two_jobs())]
    assert [body["code"] for body in bodies] == ["GPU_OUT_OF_MEMORY"] * 2
    assert all(body["retryable"] for body in bodies)
    assert freed, "the GPU cache was not emptied"
    eventually(lambda: worker.engine.active == 0)
    [result] = run_guarded(greedy(prompt="next", max_tokens=4))
    assert result["usage"]["completion_tokens"] == 4


class _OomOnLongPrompt(_OomOnce):
    """Raises CUDA's OOM error on the prefill of a prompt longer than 50 tokens (a big request)."""

    def __call__(self, *args, **kwargs):
        if kwargs["input_ids"].shape[1] > 50:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.model(*args, **kwargs)


def test_out_of_memory_at_prefill_fails_only_that_job(worker, run, job_chunks, greedy, envelope, monkeypatch):
    running = greedy(prompt="running", max_tokens=60)
    [alone] = run(running)
    monkeypatch.setattr(worker.engine, "model", _OomOnLongPrompt(worker.engine.model))
    guarded = guard(worker.handler)

    async def big_job_joins_a_running_one():
        kept = asyncio.create_task(job_chunks(running))
        await asyncio.sleep(0.05)
        big = [chunk async for chunk in guarded({"id": "big", "input": greedy(prompt="word " * 80, max_tokens=5)})]
        return big, await kept

    big, kept = asyncio.run(big_job_joins_a_running_one())
    assert envelope(big)["code"] == "GPU_OUT_OF_MEMORY"
    assert kept == [alone]


def test_out_of_memory_while_joining_the_batch_fails_the_batch_and_the_next_job_is_served(
    worker, job_chunks, greedy, run, eventually, monkeypatch
):
    original = LeftPaddedCache.add

    def add(cache, single, length):
        if len(cache):  # growing a non-empty batch allocates the padded copy: where a real OOM would hit
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(cache, single, length)

    monkeypatch.setattr(LeftPaddedCache, "add", add)
    guarded = guard(worker.handler)

    async def second_job_joins():
        first = asyncio.create_task(job_chunks(greedy(prompt="first", max_tokens=200)))
        while worker.engine.active == 0:
            await asyncio.sleep(0.005)
        second = [chunk async for chunk in guarded({"id": "2", "input": greedy(prompt="second", max_tokens=5)})]
        try:
            await first
        except torch.cuda.OutOfMemoryError:
            return second, "failed"
        return second, "completed"

    second, first_outcome = asyncio.run(second_job_joins())
    assert json.loads(second[0]["error"])["code"] == "GPU_OUT_OF_MEMORY"
    assert first_outcome == "failed"
    eventually(lambda: worker.engine.active == 0)
    monkeypatch.setattr(LeftPaddedCache, "add", original)
    [result] = run(greedy(prompt="next", max_tokens=3))
    assert result["usage"]["completion_tokens"] == 3
