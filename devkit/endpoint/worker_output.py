"""A worker process's output read in chunks and split into bounded lines, so the endpoint never stops reading it.

asyncio's ``readline()`` raises on a line over its 64 KiB buffer; a pump that stopped there left the worker
blocked on a full pipe the next time it wrote (issue 19). Here a line of any length costs at most
MAX_LINE_BYTES of memory: its head is kept and logged, the rest is counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shared import logs

#: Bytes read from a worker's pipe at a time.
READ_CHUNK_BYTES = 64 * 1024
#: Bytes of one output line that are kept (logged, kept to explain an exit); the rest is only counted. The
#: workers' own bound (shared.logs), so a line a worker wrote within it arrives whole.
MAX_LINE_BYTES = logs.MAX_LINE_BYTES


class LineSplitter:
    """Bytes in, whole lines out; each line cut to ``limit`` bytes plus a note of how many were left out."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._limit = limit
        self._head = bytearray()
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[str]:
        lines = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._keep(chunk[start:end])
            lines.append(self._line())
            start = end + 1
        self._keep(chunk[start:])
        return lines

    def flush(self) -> list[str]:
        """The last line, if the output ended without a newline."""
        return [self._line()] if self._head or self._dropped else []

    def _keep(self, part: bytes) -> None:
        room = self._limit - len(self._head)
        self._head += part[:room]
        self._dropped += max(0, len(part) - room)

    def _line(self) -> str:
        text = self._head.decode(errors="replace").rstrip()
        if self._dropped:
            text += f" ... [{self._dropped} more bytes not shown]"
        self._head, self._dropped = bytearray(), 0
        return text


async def pump(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    """Read ``stream`` to its end, handing each (bounded) line to ``on_line``."""
    lines = LineSplitter()
    while chunk := await stream.read(READ_CHUNK_BYTES):
        for line in lines.feed(chunk):
            on_line(line)
    for line in lines.flush():
        on_line(line)
