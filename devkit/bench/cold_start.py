"""Cold start: process start to first job done, split into imports, CUDA init, model load, first job,
against the floor (torch import + raw safetensors load of the same files), in the same run.

Imports are counted wherever they happen (``-X importtime``), so a library imported lazily inside
``setup()`` counts as import time, not as model load; the heaviest top-level imports are listed.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

from devkit import manifest
from devkit.bench import through_endpoint
from devkit.bench.cold_start_probe import MARK, RESULT
from devkit.bench.results import BenchResult, Figure, Target
from devkit.bench.through_endpoint import REPO

#: The issue's bar: process start to first job done, at most this multiple of the floor.
TARGET_OVER_FLOOR = 1.5

HEAVIEST = 8


def probe(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run the probe in a fresh process; phases (seconds) with the import time spent in each."""
    spawned = time.time()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "devkit.bench.cold_start_probe", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-15:]
        raise RuntimeError(f"cold-start probe {args[:2]} failed ({done.returncode}): " + "\n".join(tail))
    times = json.loads(next(line for line in done.stdout.splitlines() if line.startswith(RESULT))[len(RESULT):])
    import_s, heaviest = _imports_by_phase(done.stderr)
    marks = [m for m in ("imports", "cuda_init", "model_load", "job_loop_import", "first_job", "end") if m in times]
    phases = {"interpreter": times["imports"] - spawned}
    phases.update({m: times[following] - times[m] for m, following in itertools.pairwise(marks)})
    # The split moves import time spent inside later phases (lazy imports) into "imports".
    split = {m: s - (import_s.get(m, 0.0) if m not in ("interpreter", "imports") else 0.0) for m, s in phases.items()}
    split["imports"] += sum(import_s.get(m, 0.0) for m in phases if m not in ("interpreter", "imports"))
    return {
        "total_s": times["end"] - spawned,
        "phases_s": _rounded(phases),
        "split_s": _rounded(split),
        "import_s_by_phase": _rounded(import_s),
        "heaviest_imports_s": heaviest,
        **{k: times[k] for k in ("files", "bytes") if k in times},
    }


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in seconds.items()}


def _imports_by_phase(stderr: str) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of imports per phase (top-level cumulative times), and per package (self times summed by
    top-level name, so torch pulled in by transformers counts as torch)."""
    phase, per_phase, per_package = "interpreter", defaultdict(float), defaultdict(float)
    for line in stderr.splitlines():
        if line.startswith(MARK):
            phase = line.split(":", 1)[1].strip()
            continue
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        per_package[name.strip().split(".")[0]] += int(own) / 1e6
        if not name.startswith("  "):  # a nested import is already inside its parent's cumulative time
            per_phase[phase] += int(cumulative) / 1e6
    heaviest = dict(sorted(per_package.items(), key=lambda kv: -kv[1])[:HEAVIEST])
    return dict(per_phase), {k: round(v, 3) for k, v in heaviest.items()}


def measure(worker: str) -> dict[str, Any]:
    # The environment the local endpoint gives the worker (endpoint.toml env, tiny-model CPU settings,
    # MODEL_PATH, PYTHONPATH).
    env = through_endpoint.worker_env(worker)
    floor = probe(["floor", env["MODEL_PATH"]], env)
    declared = manifest.load(worker)
    start = probe(["worker", declared.package, json.dumps(declared.first_job)], env)
    return {"worker": start, "floor": floor}


def unavailable() -> str | None:
    return None if _present() else "no worker with a model (llm-hf, sdxl, llm-vllm) is in the tree yet"


def _present(quick: bool = False) -> list[str]:
    # A small first job each worker.toml declares under [bench] (the real test_input.json may ask for a
    # 1024^2 image or many tokens).
    names = [m.name for m in manifest.all_manifests()
             if m.first_job is not None and through_endpoint.unavailable(m.name) is None]
    return names[:1] if quick else names


def run(quick: bool = False) -> BenchResult:
    result = BenchResult("cold-start")
    for worker in _present(quick):
        measured = measure(worker)
        result.details[worker] = measured
        total, floor = measured["worker"]["total_s"], measured["floor"]["total_s"]
        result.figures.append(Figure(f"{worker}: start to first job done", total, "s", floor, "floor",
                                     total / floor, "value / baseline", Target("ratio", "<=", TARGET_OVER_FLOOR)))
        split = measured["worker"]["split_s"]
        result.figures.append(Figure(f"{worker}: imports (all, lazy included)", split["imports"], "s",
                                     measured["floor"]["split_s"]["imports"], "torch import",
                                     split["imports"] / measured["floor"]["split_s"]["imports"], "value / baseline"))
        result.figures.append(Figure(f"{worker}: model load (imports excluded)", split["model_load"], "s",
                                     measured["floor"]["split_s"]["model_load"], "raw safetensors",
                                     split["model_load"] / max(measured["floor"]["split_s"]["model_load"], 1e-3),
                                     "value / baseline"))
    return result
