"""What a benchmark reports: figures, each with its baseline, ratio and target, as a table and JSON."""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field
from typing import Any

_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Target:
    """``of`` ("value" or "ratio") compared with ``op`` against ``bound``."""

    of: str
    op: str
    bound: float

    def met(self, figure: Figure) -> bool | None:
        measured = figure.value if self.of == "value" else figure.ratio
        if measured is None:
            return None
        return _COMPARE[self.op](measured, self.bound)

    def __str__(self) -> str:
        return f"{self.of} {self.op} {self.bound:g}"


@dataclass
class Figure:
    """One measured figure; ``ratio`` is against ``baseline`` (how it is formed is in ``ratio_is``)."""

    measure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    ratio: float | None = None
    ratio_is: str | None = None
    target: Target | None = None

    @property
    def met(self) -> bool | None:
        return self.target.met(self) if self.target else None

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["target"] = str(self.target) if self.target else None
        body["met"] = self.met
        return body


@dataclass
class BenchResult:
    """The figures of one benchmark, with the details worth keeping (sizes, settings, breakdowns)."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "skipped": self.skipped,
            "seconds": self.seconds,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "figures": [f.to_json() for f in self.figures],
            "details": self.details,
        }


def faster(measure: str, value: float, unit: str, baseline: float, baseline_name: str,
           target: Target | None = None, higher_is_better: bool = True) -> Figure:
    """A figure whose ratio says how many times better than the baseline it is (> 1: better)."""
    ratio = value / baseline if higher_is_better else baseline / value
    return Figure(measure, value, unit, baseline, baseline_name, ratio,
                  "value / baseline" if higher_is_better else "baseline / value", target)


def table(results: list[BenchResult]) -> str:
    """A plain-text table of every figure (and every skipped benchmark)."""
    header = ("benchmark", "measure", "value", "baseline", "ratio", "target", "met")
    rows = [header]
    for result in results:
        if result.skipped:
            rows.append((result.name, "skipped", _one_line(result.skipped), "", "", "", ""))
            continue
        for f in result.figures:
            baseline = f"{_num(f.baseline)} {f.unit} ({f.baseline_name})" if f.baseline is not None else ""
            met = {True: "yes", False: "NO", None: ""}[f.met]
            rows.append((result.name, f.measure, f"{_num(f.value)} {f.unit}", baseline,
                         f"{f.ratio:.2f}x" if f.ratio is not None else "", str(f.target or ""), met))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _one_line(text: str, limit: int = 110) -> str:
    """A reason short enough for the table (the JSON keeps it whole)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    shown = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"
