"""Stream coalescing: what a slow consumer, a free consumer, an ended, failed or cancelled stream see."""

from __future__ import annotations

import asyncio

import pytest

from shared.stream_coalescing import coalesced

_END = object()


def join_strings(earlier, later):
    """Strings join; anything else (a stand-in for a finish chunk) stays on its own."""
    if isinstance(earlier, str) and isinstance(later, str):
        return earlier + later
    return None


class Source:
    """A stream whose items the test releases one by one, and that records whether it was closed."""

    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False

    def release(self, *items) -> None:
        for item in items:
            self.queue.put_nowait(item)

    async def drained(self) -> None:
        """Until the reader has taken every released item (what a consumer busy posting lets happen)."""
        await self.queue.join()

    async def items(self):
        try:
            while True:
                item = await self.queue.get()
                self.queue.task_done()
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True


def scenario(body):
    """Run ``body(source, stream)`` on a fresh event loop, the stream being the source coalesced."""

    async def main():
        source = Source()
        stream = coalesced(source.items(), join_strings)
        try:
            return await body(source, stream)
        finally:
            await stream.aclose()

    return asyncio.run(main())


def test_the_first_item_goes_out_while_the_source_is_still_producing():
    async def body(source, stream):
        source.release("first")
        return await anext(stream), source.closed

    assert scenario(body) == ("first", False)


def test_a_slow_consumer_gets_what_piled_up_joined_into_one():
    async def body(source, stream):
        source.release("a")
        first = await anext(stream)
        source.release("b", "c", "d")  # produced while the consumer posts "a"
        await source.drained()
        return first, await anext(stream)

    assert scenario(body) == ("a", "bcd")


def test_a_free_consumer_gets_each_item_as_soon_as_it_is_produced():
    async def body(source, stream):
        source.release("a")
        await anext(stream)
        waiting = asyncio.ensure_future(anext(stream))  # the consumer asks before anything is ready
        await asyncio.sleep(0)
        source.release("b")
        second = await waiting
        return second, source.closed

    assert scenario(body) == ("b", False)  # not held back to wait for more


def test_items_that_do_not_join_keep_their_place_in_order():
    async def body(source, stream):
        source.release("a")
        first = await anext(stream)
        source.release("b", "c", 1, "d", 2, _END)
        await source.drained()
        return [first] + [item async for item in stream]

    assert scenario(body) == ["a", "bc", 1, "d", 2]


def test_the_end_of_the_stream_flushes_what_is_pending():
    async def body(source, stream):
        source.release("a")
        first = await anext(stream)
        source.release("b", "c", _END)
        await source.drained()
        return [first] + [item async for item in stream], source.closed

    assert scenario(body) == (["a", "bc"], True)


def test_an_error_reaches_the_consumer_after_the_items_produced_before_it():
    async def body(source, stream):
        source.release("a")
        seen = [await anext(stream)]
        source.release("b", "c", ValueError("engine failed"))
        await source.drained()
        seen.append(await anext(stream))
        with pytest.raises(ValueError, match="engine failed"):
            await anext(stream)
        return seen

    assert scenario(body) == ["a", "bc"]


def test_an_empty_stream_ends_at_once():
    async def body(source, stream):
        source.release(_END)
        return [item async for item in stream]

    assert scenario(body) == []


def test_closing_the_coalesced_stream_closes_the_source():
    async def body(source, stream):
        source.release("a")
        await anext(stream)
        source.release("b")  # read, never taken
        await source.drained()
        await stream.aclose()  # the job ended early (a client gone, a stop sequence upstream)
        return source.closed

    assert scenario(body) is True


def test_cancelling_a_waiting_consumer_cancels_the_reading_and_closes_the_source():
    async def body(source, stream):
        source.release("a")
        await anext(stream)

        async def consume():
            async for _ in stream:
                pass

        job = asyncio.ensure_future(consume())
        await asyncio.sleep(0)  # the consumer now waits for the next item
        job.cancel()  # the SDK cancels the job's task (a /cancel)
        with pytest.raises(asyncio.CancelledError):
            await job
        return source.closed, asyncio.current_task().cancelling()

    assert scenario(body) == (True, 0)
