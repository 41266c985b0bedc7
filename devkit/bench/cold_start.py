"""Cold start: process start to first job done, split into imports, device init, weights (the engine's
start for llm-vllm), job loop start and first job, each against the floor's same phase (torch import +
raw safetensors load of the same files, fresh process), in the same run.

Imports are counted wherever they happen (``-X importtime``), so a library imported lazily inside
``setup()`` counts as import time, not as model load; the heaviest top-level imports are listed. Every
probe starts with the model's files dropped from the page cache, as in a fresh container, and the
worker runs twice: as served (the weights prefetch on, shared.prefetch) and with ``WEIGHTS_PREFETCH=0``.
progress-demo's ready time is its real start command to its first job take (devkit.bench.cold_start_ready).
The probe, its parsing and the figures import nothing beyond the standard library and this repo's light
modules (the local endpoint, httpx, is imported where a worker's env is needed): the GPU script
(devkit.bench.gpu) runs them on a device machine that has no runpod, fastapi or httpx.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from devkit import manifest
from devkit.bench import cold_start_ready
from devkit.bench.cold_start_probe import MARK, RESULT
from devkit.bench.results import BenchResult, Figure, Target
from shared.prefetch import PREFETCH_ENV

REPO = Path(__file__).resolve().parents[2]

#: The issue's bar: process start to first job done, at most this multiple of the floor.
TARGET_OVER_FLOOR = 1.5
#: ... or, for a worker whose engine is its own baseline (worker.toml ``[bench] engine_baseline``: llm-vllm),
#: at most this multiple of the raw engine's start to the same request.
TARGET_OVER_ENGINE = 1.05

HEAVIEST = 8

#: The worker with no model whose ready time the issue bounds, and the bound (seconds).
READY_WORKER = "progress-demo"
READY_TARGET_S = 0.5

#: Env vars naming the folders a worker loads weights from (shared.prefetch reads the same ones).
WEIGHT_ENVS = ("MODEL_PATH", "VAE_PATH", "REFINER_PATH")

#: Phase of the probe -> its label, and the floor's phase it is compared with (None: no floor has it).
PHASES = (
    ("imports", "imports (all, lazy included)", "torch import"),
    ("cuda_init", "device init", "device init"),
    ("model_load", "weights / engine start (imports excluded)", "raw safetensors"),
    ("job_loop_import", "job loop start (imports excluded)", None),
    ("first_job", "first job (imports excluded)", None),
)


#: The probe in a fresh interpreter of this venv.
PROBE = (sys.executable, "-X", "importtime", "-m", "devkit.bench.cold_start_probe")


def probe(args: list[str], env: dict[str, str], command: tuple[str, ...] | list[str] = PROBE) -> dict[str, Any]:
    """Run the probe in a fresh process (``command``: the probe under ``-X importtime``; by default in this
    venv, or in a container: devkit.bench.cold_start_image); phases (seconds) with the import time in each."""
    spawned = time.time()
    done = subprocess.run([*command, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
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
        "phases_s": rounded(phases),
        "split_s": rounded(split),
        "import_s_by_phase": rounded(import_s),
        "heaviest_imports_s": heaviest,
        **{k: times[k] for k in ("files", "bytes") if k in times},
    }


def rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in seconds.items()}


def _imports_by_phase(stderr: str) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of imports per phase (top-level cumulative times), and per package (self times summed by
    top-level name, so torch pulled in by transformers counts as torch)."""
    phase, per_phase, per_package = "interpreter", defaultdict(float), defaultdict(float)
    for line in stderr.splitlines():
        if line.startswith(MARK):
            phase = line.split(":", 1)[1].strip()
            continue
        own, cumulative, name = profile_line(line)
        if name is None:
            continue
        per_package[name.strip().split(".")[0]] += own
        if not name.startswith("  "):  # a nested import is already inside its parent's cumulative time
            per_phase[phase] += cumulative
    heaviest = dict(sorted(per_package.items(), key=lambda kv: -kv[1])[:HEAVIEST])
    return dict(per_phase), {k: round(v, 3) for k, v in heaviest.items()}


def profile_line(line: str) -> tuple[float, float, str | None]:
    """(self s, cumulative s, indented name) of one ``-X importtime`` line; name None for any other line."""
    if not line.startswith("import time:") or line.count("|") != 2:
        return 0.0, 0.0, None
    own, cumulative, name = line[len("import time:"):].split("|")
    if not cumulative.strip().isdigit():
        return 0.0, 0.0, None  # the header line
    return int(own) / 1e6, int(cumulative) / 1e6, name


def measure(worker: str) -> dict[str, Any]:
    """The floor, the worker's start, the same start without the weights prefetch and, where the worker names
    one, its raw engine's start, each from a cold page cache for the model's files (the state of a freshly
    pulled image) and a warm one for the libraries', in this order, in one run."""
    # The environment the local endpoint gives the worker (endpoint.toml env, tiny-model CPU settings,
    # MODEL_PATH, PYTHONPATH).
    from devkit.bench import through_endpoint

    env = through_endpoint.worker_env(worker)
    folders = weight_folders(env)
    declared = manifest.load(worker)
    job = ["worker", declared.package, json.dumps(declared.first_job)]
    runs = [("floor", ["floor", *folders], {}), ("worker", job, {}),
            ("worker_without_prefetch", job, {PREFETCH_ENV: "0"})]
    if declared.engine_baseline:
        runs.append(("engine", ["engine", declared.engine_baseline, json.dumps(declared.first_job)], {}))
    # One unrecorded start first: it reads the libraries' files (torch, transformers, vLLM...) into the page
    # cache, as the floor does for torch alone, so that the order of the runs is not a figure (only the
    # weights are evicted before each run).
    probe(job, {**env, PREFETCH_ENV: "0"})
    measured = {}
    for name, args, extra in runs:
        evict(folders)
        measured[name] = probe(args, {**env, **extra})
    return measured


def weight_folders(env: dict[str, str]) -> list[str]:
    """The model folders the worker loads (its env's MODEL_PATH and extra folders) that exist."""
    return [env[name] for name in WEIGHT_ENVS if env.get(name) and Path(env[name]).is_dir()]


def evict(folders: list[str]) -> int:
    """Drop the folders' files from the page cache (``posix_fadvise(DONTNEED)``, no root needed); files dropped.

    A fresh worker reads its weights from disk (or a network volume), not from the cache a previous run
    filled: without this each probe after the first would load from memory and the prefetch would show
    nothing.
    """
    dropped = 0
    for path in (f for folder in folders for f in Path(folder).rglob("*") if f.is_file()):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)  # dirty pages are not dropped; a fixture just written may have some
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            dropped += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return dropped


def unavailable() -> str | None:
    return None if _present() else "no worker with a model (llm-hf, sdxl, llm-vllm) is in the tree yet"


def _present(quick: bool = False) -> list[str]:
    # A small first job each worker.toml declares under [bench] (the real test_input.json may ask for a
    # 1024^2 image or many tokens).
    from devkit.bench import through_endpoint

    names = [m.name for m in manifest.all_manifests()
             if m.first_job is not None and through_endpoint.unavailable(m.name) is None]
    return names[:1] if quick else names


def run(quick: bool = False) -> BenchResult:
    result = BenchResult("cold-start")
    for worker in _present(quick):
        measured = measure(worker)
        result.details[worker] = measured
        result.figures.extend(figures(worker, measured))
    result.figures.append(ready_figure(READY_WORKER))
    return result


def ready_figure(worker: str) -> Figure:
    """The worker's start command to its first job take, against a fresh ``import runpod``."""
    from devkit.bench import through_endpoint

    env = through_endpoint.worker_env(worker)
    floor = cold_start_ready.floor_s(env, str(REPO))
    ready = cold_start_ready.ready_s(manifest.load(worker).package, env, str(REPO))
    return Figure(f"{worker}: ready (start command to first job take)", ready, "s", floor, "import runpod",
                  ready / floor, "value / baseline", Target("value", "<=", READY_TARGET_S))


def figures(worker: str, measured: dict[str, Any]) -> list[Figure]:
    """Start to first job done against the floor (the issue's target), then each phase against its floor."""
    start, floor, engine = measured["worker"], measured["floor"], measured.get("engine")
    total, floor_total = start["total_s"], floor["total_s"]
    found = [Figure(f"{worker}: start to first job done", total, "s", floor_total, "floor",
                    total / floor_total, "value / baseline",
                    None if engine else Target("ratio", "<=", TARGET_OVER_FLOOR))]
    if engine:
        found.append(Figure(f"{worker}: start to first job done, against the raw engine", total, "s",
                            engine["total_s"], "raw engine, same settings and request", total / engine["total_s"],
                            "value / baseline", Target("ratio", "<=", TARGET_OVER_ENGINE)))
        found.extend(Figure(f"{worker}: {label}, against the raw engine", start["split_s"][phase], "s",
                            engine["split_s"][phase], "raw engine",
                            start["split_s"][phase] / max(engine["split_s"][phase], 1e-3), "value / baseline")
                     for phase, label in (("imports", "imports"), ("model_load", "engine start (imports excluded)"))
                     if phase in start["split_s"] and phase in engine["split_s"])
    for phase, label, floor_name in PHASES:
        value = start["split_s"].get(phase)
        if value is None:
            continue
        base = floor["split_s"].get(phase) if floor_name else None
        ratio = value / max(base, 1e-3) if base is not None else None
        found.append(Figure(f"{worker}: {label}", value, "s", base, floor_name, ratio,
                            "value / baseline" if ratio is not None else None))
    without = measured.get("worker_without_prefetch")
    if without:
        found.append(Figure(f"{worker}: start to first job done, weights prefetch on", total, "s",
                            without["total_s"], f"{PREFETCH_ENV}=0", total / without["total_s"], "value / baseline"))
    return found
