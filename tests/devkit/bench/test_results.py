"""devkit.bench.results: ratios point the right way, targets judge the right number, the table shows all."""

from __future__ import annotations

import pytest

from devkit.bench.results import BenchResult, Figure, Target, faster, table


def test_faster_is_above_one_when_better_in_either_direction():
    assert faster("tok/s", 300.0, "tok/s", 100.0, "seed").ratio == pytest.approx(3.0)
    assert faster("latency", 5.0, "ms", 1000.0, "sdk", higher_is_better=False).ratio == pytest.approx(200.0)


@pytest.mark.parametrize(
    ("target", "figure", "met"),
    [
        (Target("value", "<", 20), Figure("overhead", 4.0, "ms"), True),
        (Target("value", "<", 20), Figure("overhead", 25.0, "ms"), False),
        (Target("ratio", ">=", 3), Figure("tok/s", 1.0, "tok/s", 1.0, "seed", 2.5), False),
        (Target("ratio", "<=", 1.5), Figure("start", 3.0, "s", 2.5, "floor", 1.2), True),
        (Target("ratio", ">=", 3), Figure("no baseline", 1.0, "x"), None),
    ],
)
def test_a_target_judges_the_value_or_the_ratio(target, figure, met):
    assert target.met(figure) is met


def test_the_table_lists_every_figure_and_every_skipped_benchmark():
    ran = BenchResult("llm-hf", figures=[faster("8 concurrent", 900.0, "tok/s", 100.0, "seed",
                                                Target("ratio", ">=", 3))])
    skipped = BenchResult("sdxl", skipped="workers/sdxl is not in the tree yet")
    text = table([ran, skipped])
    assert "9.00x" in text and "ratio >= 3" in text and "yes" in text
    assert "workers/sdxl is not in the tree yet" in text


def test_json_carries_the_target_as_text_and_whether_it_was_met():
    figure = Figure("overhead", 4.0, "ms", target=Target("value", "<", 20)).to_json()
    assert figure["target"] == "value < 20" and figure["met"] is True
