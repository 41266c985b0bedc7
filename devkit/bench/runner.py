"""Runs the benchmarks in turn, prints one table, writes .bench/results.json (machine and load included)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from devkit.bench import machine
from devkit.bench.results import BenchResult, table

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / ".bench" / "results.json"

#: Benchmark name -> module under devkit.bench; each has ``run(quick: bool) -> BenchResult`` and
#: ``unavailable() -> str | None`` (why it cannot run here, e.g. its worker is not in the tree).
BENCHMARKS = {
    "dispatch": "dispatch",
    "llm-hf": "llm_hf",
    "llm-vllm": "llm_vllm",
    "cold-start": "cold_start",
    "sdxl": "sdxl",
}


def run_one(name: str, quick: bool) -> BenchResult:
    module = importlib.import_module(f"devkit.bench.{BENCHMARKS[name]}")
    if reason := module.unavailable():
        return BenchResult(name, skipped=reason)
    load_before, started = machine.load(), time.perf_counter()
    try:
        result = module.run(quick=quick)
    except Exception as exc:
        traceback.print_exc()
        result = BenchResult(name, skipped=f"FAILED: {type(exc).__name__}: {exc}")
    result.load_before, result.load_after = load_before, machine.load()
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer jobs and tokens: a smoke run, not figures")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenMP threads of every process, baselines included (default 1: on a shared "
                        "machine, OpenMP threads spin-waiting for a busy core distort every figure)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if unknown := set(args.names) - set(BENCHMARKS):
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")
    logging.basicConfig(level=logging.WARNING)
    # Set before any torch import here, and inherited by every worker and baseline process.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    about = machine.describe()
    about["threads_per_process"] = args.threads
    print(f"machine: {about['cpus']} x {about['cpu']}, {about['memory_gib']} GiB | {about['uptime']}", flush=True)
    results = []
    for name in args.names or list(BENCHMARKS):
        print(f"--- {name} (load {machine.load()})", flush=True)
        results.append(run_one(name, args.quick))
    about["uptime_after"] = machine.describe()["uptime"]

    print()
    print(table(results))
    print(f"\nload before/after: {about['uptime']}  ->  {about['uptime_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": about, "quick": args.quick,
                                    "results": [r.to_json() for r in results]}, indent=2) + "\n")
    print(f"results: {args.out}")
    failed = [r.name for r in results if r.skipped and r.skipped.startswith("FAILED")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
