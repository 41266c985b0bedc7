"""A competing CPU load for a benchmark: busy-loop processes on the bench's own cores, bounded in time.

Both sides of a comparison run while the load runs (their rounds interleaved as usual), so it takes its
share from each alike, as another tenant of the machine would. Each busy loop stops by itself after
``max_seconds`` even if the bench dies without stopping it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

#: One busy loop: spin until the deadline given as its argument (seconds from its start).
_SPIN = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


def default_processes() -> int:
    """Half the cores the bench may use (at least one): a tenant as busy as the two sides together."""
    return max(1, len(os.sched_getaffinity(0)) // 2)


@contextlib.contextmanager
def competing_load(processes: int | None = None, max_seconds: float = 900) -> Iterator[list[subprocess.Popen]]:
    """``processes`` busy loops (default `default_processes`) pinned to the bench's cores while the block
    runs; yields them."""
    count = default_processes() if processes is None else processes
    cores = os.sched_getaffinity(0)  # the cores the bench and the processes it starts may use
    spinners = [subprocess.Popen([sys.executable, "-c", _SPIN, str(max_seconds)], stdin=subprocess.DEVNULL)
                for _ in range(count)]
    try:
        for spinner in spinners:
            os.sched_setaffinity(spinner.pid, cores)
        yield spinners
    finally:
        for spinner in spinners:
            spinner.terminate()
        for spinner in spinners:
            try:
                spinner.wait(10)
            except subprocess.TimeoutExpired:
                spinner.kill()
                spinner.wait(10)
