"""Timing on a shared machine: variants measured in turn, round after round, each keeping its best round."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: A variant does one round of work and returns how much it did (tokens, images); None counts as 1.
Round = Callable[[], float | None]


def interleaved(variants: dict[str, Round], rounds: int) -> dict[str, dict[str, Any]]:
    """Warm every variant up, then time them in turn, ``rounds`` times, so a burst of load from elsewhere
    hits all of them alike; each keeps its fastest round (the least disturbed one)."""
    for one_round in variants.values():
        one_round()
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, one_round in variants.items():
            started = time.perf_counter()
            amount = one_round()
            measured[name].append((1.0 if amount is None else float(amount), time.perf_counter() - started))
    return {name: best(rows) for name, rows in measured.items()}


def best(rows: list[tuple[float, float]]) -> dict[str, Any]:
    """The fastest of (amount, seconds) rounds, with every round's rate kept for the record."""
    amount, seconds = max(rows, key=lambda row: row[0] / row[1])
    return {"amount": amount, "seconds": seconds, "per_s": amount / seconds,
            "rounds_per_s": [round(a / s, 2) for a, s in rows]}
