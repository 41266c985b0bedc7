"""The dispatch benchmark drives trivial jobs through the local endpoint and reports both loops' figures."""

from __future__ import annotations

import pytest

from devkit.bench import dispatch


@pytest.mark.e2e
def test_dispatch_measures_round_trips_through_the_event_loop():
    measured = dispatch.measure("event", jobs=3, warmup=1, chunk_jobs=1)
    assert measured["jobs"] == 3 and measured["loop"] == "event"
    assert measured["jobs_per_s"] > 0 and 0 < measured["median_ms"] <= measured["max_ms"]
    assert isinstance(measured["per_chunk_ms"], float)
