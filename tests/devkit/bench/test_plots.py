"""`make bench`'s plots: one PNG per benchmark with a baseline, the target drawn where the figure needs it."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from devkit.bench.plots import main, target_value, write_plots
from devkit.bench.results import BenchResult, Figure, Target, faster

SMALL = {
    "machine": {},
    "quick": True,
    "results": [
        BenchResult("dispatch", [
            Figure("overhead", 2.0, "ms", 1000.0, "SDK loop", 500.0, "baseline / value", Target("value", "<", 20)),
            Figure("per chunk", 0.3, "ms"),
        ]).to_json(),
        BenchResult("llm-hf", [faster("aggregate", 800.0, "tok/s", 200.0, "seed", Target("ratio", ">=", 3))]).to_json(),
        BenchResult("sdxl", skipped="no GPU").to_json(),
        BenchResult("notes", [Figure("per chunk", 0.3, "ms")]).to_json(),
    ],
}


def test_one_png_per_benchmark_with_a_baseline(tmp_path):
    paths = write_plots(SMALL, tmp_path)
    assert sorted(p.name for p in paths) == ["dispatch.png", "llm-hf.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300


def test_the_same_results_give_the_same_files(tmp_path):
    first = [p.read_bytes() for p in write_plots(SMALL, tmp_path / "a")]
    assert first == [p.read_bytes() for p in write_plots(SMALL, tmp_path / "b")]


@pytest.mark.parametrize(("figure", "expected"), [
    (Figure("overhead", 2.0, "ms", 1000.0, "SDK loop", 500.0, "baseline / value", Target("value", "<", 20)), 20.0),
    (faster("aggregate", 800.0, "tok/s", 200.0, "seed", Target("ratio", ">=", 3)), 600.0),
    (faster("s/image", 0.2, "s", 0.4, "seed", Target("ratio", ">=", 2), higher_is_better=False), 0.2),
    (Figure("cold", 3.0, "s", 1.0, "floor", 3.0, "value / baseline", Target("ratio", "<=", 1.5)), 1.5),
    (Figure("per chunk", 0.3, "ms"), None),
])
def test_the_target_line_sits_where_the_figure_meets_its_target(figure, expected):
    assert target_value(figure.to_json()) == expected


def test_the_command_reads_a_results_file(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(SMALL))
    assert main(["--results", str(results), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "llm-hf.png").is_file()
    assert "llm-hf.png" in capsys.readouterr().out
