"""Concurrent jobs share forward passes, and each gets exactly what it gets alone."""

from __future__ import annotations

import asyncio

import pytest

PROMPTS = ["Hello there", "日本語のテキスト and more words", "a", "The quick brown fox jumps over the lazy dog"]


@pytest.fixture
def batched(worker, job_chunks, hold_until_queued):
    """(chunks of each job, largest batch seen) for jobs submitted together."""

    async def together(requests):
        return await asyncio.gather(*(job_chunks(request) for request in requests))

    def run_together(requests):
        worker.engine.peak_batch = 0
        hold_until_queued(len(requests))
        results = asyncio.run(together(requests))
        return results, worker.engine.peak_batch

    return run_together


def test_concurrent_greedy_jobs_give_exactly_their_alone_outputs(run, greedy, batched):
    # Different prompt and completion lengths: sequences join and leave the batch at different steps.
    requests = [greedy(prompt=p, max_tokens=20 + 7 * i) for i, p in enumerate(PROMPTS)]
    alone = [run(request) for request in requests]
    together, peak = batched(requests)
    assert peak == len(requests), "the jobs were not all batched together"
    assert together == alone


def streamed(chunks):
    """(the text a client joins, the last chunk): where a stream's text is cut depends on when the consumer
    asked (text produced meanwhile comes joined, shared.stream_coalescing), what it says does not."""
    return "".join(chunk["text"] for chunk in chunks), chunks[-1]


def test_concurrent_streams_give_exactly_their_alone_text(run, greedy, batched):
    requests = [greedy(messages=[{"role": "user", "content": p}], max_tokens=16, stream=True) for p in PROMPTS]
    alone = [streamed(run(request)) for request in requests]
    together, peak = batched(requests)
    assert peak == len(requests)
    assert [streamed(chunks) for chunks in together] == alone


def test_seeded_sampling_is_unchanged_by_batch_neighbours(run, greedy, batched):
    sampled = {"prompt": "Once upon", "max_tokens": 24, "temperature": 0.9, "top_k": 40, "seed": 7, "ignore_eos": True}
    requests = [sampled, greedy(prompt="neighbour", max_tokens=30), {**sampled, "seed": 8}]
    alone = [run(request) for request in requests]
    together, peak = batched(requests)
    assert peak == len(requests)
    assert together == alone


def test_jobs_ending_early_leave_the_others_running(worker, greedy, batched, eventually):
    requests = [greedy(prompt="short", max_tokens=2), greedy(prompt="long one", max_tokens=40),
                greedy(prompt="mid", max_tokens=12)]
    together, _ = batched(requests)
    assert [r[0]["usage"]["completion_tokens"] for r in together] == [2, 40, 12]
    eventually(lambda: worker.engine.active == 0)


def test_concurrent_plain_greedy_jobs_give_exactly_their_alone_outputs(run, batched):
    # No EOS override: jobs may end at EOS at different steps, leaving the batch one by one.
    requests = [{"prompt": p, "max_tokens": 24, "temperature": 0} for p in PROMPTS]
    alone = [run(request) for request in requests]
    together, _ = batched(requests)
    assert together == alone
