"""devkit.endpoint.worker_output: a worker's output split into bounded lines, whatever it prints."""

from __future__ import annotations

import asyncio

from devkit.endpoint.worker_output import MAX_LINE_BYTES, LineSplitter, pump


def test_lines_split_across_chunks_come_out_whole():
    lines = LineSplitter()
    assert lines.feed(b"first li") == []
    assert lines.feed(b"ne\nsecond\nthi") == ["first line", "second"]
    assert lines.feed(b"rd\r\n") == ["third"]
    assert lines.flush() == []


def test_a_line_over_the_limit_keeps_its_head_and_counts_the_rest():
    lines = LineSplitter(limit=10)
    out = lines.feed(b"x" * 25) + lines.feed(b"y" * 5 + b"\nnext\n")
    assert out == ["x" * 10 + " ... [20 more bytes not shown]", "next"]


def test_output_that_ends_without_a_newline_is_flushed():
    lines = LineSplitter()
    assert lines.feed(b"\xff broken utf-8 and no newline") == []
    assert lines.flush() == ["\ufffd broken utf-8 and no newline"]


def test_pump_reads_a_stream_of_any_line_length_to_its_end():
    async def run() -> list[str]:
        stream = asyncio.StreamReader()
        stream.feed_data(b"a" * 300_000 + b"\n" + b"".join(b"line %d\n" % n for n in range(1000)) + b"tail")
        stream.feed_eof()
        seen: list[str] = []
        await pump(stream, seen.append)
        return seen

    seen = asyncio.run(run())
    assert len(seen) == 1002
    assert seen[0].startswith("a" * 100) and seen[0].endswith("more bytes not shown]")
    assert len(seen[0]) < MAX_LINE_BYTES + 100  # the kept head plus the note
    assert seen[1] == "line 0" and seen[-1] == "tail"
