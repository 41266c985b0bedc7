"""devkit.bench.cpu_load: the competing load runs on the bench's cores while asked, and never outlives it."""

from __future__ import annotations

import os

from devkit.bench import cpu_load


def test_the_busy_loops_run_on_the_benchs_cores_during_the_block_and_stop_after():
    with cpu_load.competing_load(processes=2) as spinners:
        assert len(spinners) == 2
        assert all(spinner.poll() is None for spinner in spinners)
        assert all(os.sched_getaffinity(spinner.pid) == os.sched_getaffinity(0) for spinner in spinners)
    assert all(spinner.poll() is not None for spinner in spinners)


def test_a_busy_loop_left_running_ends_by_itself():
    with cpu_load.competing_load(processes=1, max_seconds=0.2) as [spinner]:
        assert spinner.wait(timeout=60) == 0  # ended at its deadline, before the block stopped it

