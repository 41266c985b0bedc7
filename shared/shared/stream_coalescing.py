"""Stream coalescing: the chunks a stream produces while its consumer is busy go out joined, as one.

A streaming handler's consumer is the runpod SDK's job loop, which posts each yielded chunk to RunPod and
awaits the post before it asks for the next one (runpod 1.12.0, ``rp_job.handle_job`` ->
``rp_http.stream_result``). Fed one chunk per token, the loop is paced by the posts: under CPU
contention a worker fell behind its own engine (issue 13). `coalesced` reads the source on its own task,
so production never waits for a post, and hands the consumer everything that piled up since its last
ask, joined where ``join`` allows. Hence:

- the first chunk goes out at once (nothing is waited for when nothing is pending);
- a chunk ready while the consumer is free is handed over at once, so nothing ready is held back for
  longer than the one post in flight;
- the order is kept: chunks ``join`` refuses (a finish or usage chunk) go out on their own, in turn;
- the consumer sees the source's error after every chunk produced before it, and closing the
  coalesced stream (a cancelled job) cancels the reading and closes the source.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: ``join(earlier, later)``: one chunk carrying both, or None when the two must stay separate.
Join = Callable[[T, T], "T | None"]


async def coalesced(chunks: AsyncIterator[T], join: Join) -> AsyncIterator[T]:
    """``chunks``, with those produced while the consumer was away joined (see the module docstring)."""
    pending: _Pending[T] = _Pending(join)
    reader = asyncio.create_task(_read(chunks, pending))
    try:
        while (chunk := await pending.take()) is not _END:
            yield chunk
    finally:
        reader.cancel()
        await asyncio.wait({reader})  # wait() never raises: a cancelled caller keeps its own CancelledError
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


_END = object()


async def _read(chunks: AsyncIterator[T], pending: _Pending[T]) -> None:
    try:
        async for chunk in chunks:
            pending.put(chunk)
    except BaseException as exc:  # handed to the consumer, after the chunks produced before it
        pending.end(exc)
        if not isinstance(exc, Exception):
            raise  # a cancelled reader stays cancelled
    else:
        pending.end()


class _Pending(Generic[T]):
    """Chunks read but not yet taken, and how the source ended."""

    def __init__(self, join: Join):
        self._join = join
        self._chunks: deque[T] = deque()
        self._arrived = asyncio.Event()
        self._ended = False
        self._error: BaseException | None = None

    def put(self, chunk: T) -> None:
        self._chunks.append(chunk)
        self._arrived.set()

    def end(self, error: BaseException | None = None) -> None:
        self._ended, self._error = True, error
        self._arrived.set()

    async def take(self) -> T | object:
        """The next chunk (joined with those after it that join allows), or `_END`; raises the source's error."""
        if not self._chunks and not self._ended:
            self._arrived.clear()  # no await since the check: a put() cannot slip between
            await self._arrived.wait()
        if self._chunks:
            return self._joined()
        if self._error is not None:
            raise self._error
        return _END

    def _joined(self) -> T:
        chunk = self._chunks.popleft()
        while self._chunks and (both := self._join(chunk, self._chunks[0])) is not None:
            chunk = both
            self._chunks.popleft()
        return chunk
