"""Plots of `.bench/results.json`: one PNG per benchmark, each figure against its baseline and its target.

    python -m devkit.bench.plots                                 # .bench/results.json -> docs/bench/<name>.png
    python -m devkit.bench.plots --results docs/bench/results-2026-11-27.json

`make bench` runs it after the benchmarks; docs/benchmarks.md shows the PNGs next to its tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from devkit.bench.runner import DEFAULT_OUT, REPO

DEFAULT_PLOTS = REPO / "docs" / "bench"
#: Bars spanning more than this factor get a log axis, so the smaller one stays visible.
LOG_SPAN = 20.0
_WORKER, _BASELINE, _TARGET = "#5b3fd1", "#9aa5b1", "#c1272d"


def target_value(figure: dict[str, Any]) -> float | None:
    """Where the figure's target lies on its value axis: the bound itself for a target on the value, the
    value a target ratio needs for one on the ratio (``ratio_is`` says which way the ratio is formed)."""
    if not figure.get("target"):
        return None
    of, _op, bound = figure["target"].split()
    bound = float(bound)
    if of == "value":
        return bound
    baseline = figure.get("baseline")
    if baseline is None:
        return None
    return baseline / bound if figure.get("ratio_is") == "baseline / value" else baseline * bound


def plotted(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of a benchmark that have a baseline to be drawn against."""
    return [f for f in result.get("figures", []) if f.get("baseline") is not None]


def plot_result(result: dict[str, Any], path: Path) -> Path:
    """One PNG for one benchmark's figures: per figure, measured vs baseline bars and the target line."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import pyplot

    figures = plotted(result)
    fig, axes = pyplot.subplots(len(figures), 1, figsize=(8, 1.6 * len(figures) + 0.6), squeeze=False)
    for ax, figure in zip(axes[:, 0], figures, strict=True):
        _plot_figure(ax, figure)
    fig.suptitle(f"{result['name']}: each figure against its baseline (same run, same machine)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: a rerun on the same data is identical
    pyplot.close(fig)
    return path


def _plot_figure(ax, figure: dict[str, Any]) -> None:
    value, baseline, unit = figure["value"], figure["baseline"], figure["unit"]
    labels = ["this repo", figure.get("baseline_name") or "baseline"]
    bars = ax.barh(labels, [value, baseline], color=[_WORKER, _BASELINE], height=0.6)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{value:,.4g} {unit}", f"{baseline:,.4g} {unit}"], padding=3, fontsize=8)
    target = target_value(figure)
    shown = [v for v in (value, baseline, target) if v]
    if min(shown) > 0 and max(shown) / min(shown) > LOG_SPAN:
        ax.set_xscale("log")
    if target is not None:
        ax.axvline(target, color=_TARGET, linestyle="--", linewidth=1.2)
    ax.set_xlim(right=max(shown) * (4 if ax.get_xscale() == "log" else 1.3))
    ratio = f", {figure['ratio']:.3g}x ({figure['ratio_is']})" if figure.get("ratio") is not None else ""
    met = {True: "met", False: "NOT met"}.get(figure.get("met"), "")
    met = f"; target {figure['target']} (dashed): {met}" if target is not None else ""
    ax.set_title(f"{figure['measure']}{ratio}{met}", fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    ax.set_xlabel(unit, fontsize=8)


def write_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """A PNG per benchmark that has figures with a baseline (skipped ones have none)."""
    return [plot_result(result, out_dir / f"{result['name']}.png")
            for result in results["results"] if not result.get("skipped") and plotted(result)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.bench.plots", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_OUT, help=f"results JSON (default {DEFAULT_OUT})")
    parser.add_argument("--out", type=Path, default=DEFAULT_PLOTS, help=f"PNG folder (default {DEFAULT_PLOTS})")
    args = parser.parse_args(argv)
    for path in write_plots(json.loads(args.results.read_text()), args.out):
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
