"""devkit.bench.timing: variants take turns round after round, and each keeps its fastest round."""

from __future__ import annotations

from devkit.bench.timing import best, interleaved


def test_variants_are_warmed_up_then_measured_in_turn():
    calls: list[str] = []

    def variant(name: str, amount: int):
        def one_round() -> int:
            calls.append(name)
            return amount

        return one_round

    measured = interleaved({"seed": variant("seed", 10), "worker": variant("worker", 30)}, rounds=2)
    assert calls == ["seed", "worker"] * 3  # one warm-up each, then two rounds in turn
    assert measured["worker"]["amount"] == 30 and len(measured["worker"]["rounds_per_s"]) == 2


def test_the_fastest_round_is_kept_and_none_counts_as_one():
    assert best([(100.0, 2.0), (100.0, 1.0), (100.0, 4.0)])["per_s"] == 100.0
    assert interleaved({"image": lambda: None}, rounds=1)["image"]["amount"] == 1.0
