"""Cold start in a built worker image, as RunPod pays it: ``docker run`` of the pushed image to its first job
done through the runpod SDK's job loop, per phase, against the floor measured in the same image, same run.

    python -m devkit.bench.cold_start_image --registry 127.0.0.1:5000/workers --tag ci [worker ...]

Per worker image, after one unrecorded start of the worker (the image's libraries into the page cache, so
that the runs' order is no figure), in this order, the weights' files dropped from the page cache before
each run (their files in the image's layers on this host, as in a freshly pulled image):

- the floor: ``devkit/bench/cold_start_probe.py`` alone, mounted into the same image and run by its Python
  under ``-X importtime``: container start and interpreter, ``import torch``, device init, a raw
  safetensors load of every weight folder the image's env names (MODEL_PATH, VAE_PATH, REFINER_PATH).
  An image without torch (progress-demo) gets ``docker run`` of the image importing runpod instead;
- for a worker whose engine is its own baseline (worker.toml ``[bench] engine_baseline``: llm-vllm), that
  engine alone in the same image, with the worker's env, to the first job's request done: the module is
  mounted beside the probe (it imports only the standard library and the image's own worker package);
- the worker: ``docker run`` of the image's own start command with the worker's env (endpoint.toml's, as
  CI's image smoke test runs it) and RunPod's variables pointed at a stand-in job API
  (devkit.bench.cold_start_ready) that hands out one job, the worker.toml's ``[bench] first_job`` (else
  its test_input.json), at the first take. ``PYTHONPROFILEIMPORTTIME=1`` profiles every import; the
  stderr lines are stamped as they arrive and the start is split at the worker's own log lines
  (shared.serving: "setup() started", then "ready in"): before setup (container, interpreter, the
  worker's entry imports), setup (weights, engine start; device init happens inside it), the job loop's
  start (runpod's import, to the first take), the first job (take to its result posted). The same start
  again without the profiler gives the ready time and total as users get them (the profiler's own cost
  is large next to a ~1 s start).

``--profiled-only`` (CI) skips the second start of a model image. Figures go to stdout as a table and to
``--out`` (default ``.bench/results.json``, benchmark ``cold-start-image``); nothing is asserted (CI
records them: .ci/images.sh). docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devkit import manifest
from devkit.bench import cold_start, cold_start_ready, machine
from devkit.bench.results import BenchResult, Figure, Target, table
from shared import serving

REPO = Path(__file__).resolve().parents[2]
PROBE_FILE = REPO / "devkit" / "bench" / "cold_start_probe.py"
#: Where the probe is mounted in the container (read-only, nothing of the image is replaced).
PROBE_IN_IMAGE = "/opt/cold-start-bench/cold_start_probe.py"

#: The worker's log lines the start is split at: shared.serving's SETUP_STARTED (the worker's name cut off)
#: and start_up's "<Worker> ready in <s> s".
SETUP_STARTED = serving.SETUP_STARTED % ""
SETUP_DONE = " ready in "

#: Phase of a worker's start in the image -> its label, and the floor's phase it is compared with.
PHASES = (
    ("before_setup", "container, interpreter, entry imports (imports excluded)", "interpreter"),
    ("imports", "imports (all, lazy included)", "imports"),
    ("setup", "weights, device init, engine start (imports excluded)", "model_load"),
    ("job_loop", "job loop start to first take (imports excluded)", None),
    ("first_job", "first job, take to result (imports excluded)", None),
)


#: Seconds an image may take from `docker run` to its first job done: CI's smoke test's limit (llm-vllm's
#: start took 135 s there with other vLLM engines on the same 2 cores).
START_TIMEOUT_S = 300

#: The floor's phases as the table names them.
FLOOR_NAMES = {"interpreter": "container + interpreter", "imports": "torch import",
               "model_load": "device init + raw safetensors"}


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=120).stdout


def image_env(image: str) -> dict[str, str]:
    """The image's own environment (its Dockerfiles' ENV)."""
    pairs = json.loads(docker("image", "inspect", "--format", "{{json .Config.Env}}", image)) or []
    return dict(pair.split("=", 1) for pair in pairs)


def layer_dirs(image: str) -> list[Path]:
    """The image's layers on this host (overlay2: the lower and upper folders)."""
    data = json.loads(docker("image", "inspect", "--format", "{{json .GraphDriver.Data}}", image)) or {}
    found = [folder for key in ("UpperDir", "LowerDir") for folder in (data.get(key) or "").split(":") if folder]
    return [Path(folder) for folder in found]


def evict_in_image(image: str, folders: list[str]) -> int:
    """Drop the image's weight files from the page cache: a container reads its overlay's lower files, whose
    pages are the host's. Files dropped (0 where the layers cannot be read, e.g. not root)."""
    on_host = [str(layer / folder.lstrip("/")) for layer in layer_dirs(image) for folder in folders]
    return cold_start.evict([path for path in on_host if Path(path).is_dir()])


def weight_folders(image: str) -> list[str]:
    """The weight folders the image's env names (MODEL_PATH, ...), in the image."""
    env = image_env(image)
    return [env[name] for name in cold_start.WEIGHT_ENVS if env.get(name)]


def has_torch(image: str) -> bool:
    done = subprocess.run(["docker", "run", "--rm", image, "python", "-c",
                           "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"],
                          capture_output=True, timeout=120)
    return done.returncode == 0


def floor(image: str, folders: list[str]) -> dict[str, Any]:
    """The probe's floor inside ``image``: container start, ``import torch``, device init, raw load."""
    command = ("docker", "run", "--rm", "--network", "none", "-v", f"{PROBE_FILE}:{PROBE_IN_IMAGE}:ro", image,
               "python", "-X", "importtime", PROBE_IN_IMAGE)
    return cold_start.probe(["floor", *folders], dict(os.environ), command)


def engine(image: str, baseline: str, env: dict[str, str], job_input: dict[str, Any]) -> dict[str, Any]:
    """The worker's raw engine inside ``image`` (``baseline``: worker.toml's "module:function", a file of this
    repo mounted beside the probe), with the worker's env, to ``job_input``'s request done."""
    module, _, function = baseline.partition(":")
    # Profiled as the worker's start is (serve_first_job): by the variable, which the engine core's own
    # process inherits too, where ``-X importtime`` would profile only the first.
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    source = REPO.joinpath(*module.split(".")).with_suffix(".py")
    beside = str(Path(PROBE_IN_IMAGE).with_name(source.name))
    # The worker's container flags (cold_start_ready.image_command): vLLM's engine core needs the shared memory.
    command = ["docker", "run", "--rm", "--network", "host", "--shm-size", "1g",
               "-v", f"{PROBE_FILE}:{PROBE_IN_IMAGE}:ro", "-v", f"{source}:{beside}:ro",
               *[arg for name in sorted(env) for arg in ("--env", name)], image, "python", PROBE_IN_IMAGE]
    # The probe's folder is the script's sys.path[0]: the mounted module imports by its file name.
    return cold_start.probe(["engine", f"{source.stem}:{function}", json.dumps(job_input)],
                            {**os.environ, **env}, command)


def first_job(worker: str) -> dict[str, Any]:
    """The job the image's first take gets: worker.toml's cold-start job, else its test_input.json."""
    declared = manifest.load(worker).first_job
    job_input = declared if declared is not None else json.loads(
        (REPO / "workers" / worker / "test_input.json").read_text())["input"]
    return {"id": "cold-start-image", "input": job_input}


def worker_env(worker: str) -> dict[str, str]:
    """The worker's env as CI's image smoke test gives it (endpoint.toml's, the tiny model's CPU settings;
    the image bakes its own model and adapters, so no local folders)."""
    from devkit.endpoint import WorkerSpec

    return WorkerSpec.from_repo(worker).image_env()


def serve_first_job(image: str, env: dict[str, str], job: dict[str, Any], profile: bool) -> cold_start_ready.Start:
    """``docker run`` of the image's start command to its first job's result, every import profiled or none."""
    # At INFO, whatever endpoint.toml says: the start is split at two INFO lines of the worker's log.
    passed = {**env, "LOG_LEVEL": "INFO", **({"PYTHONPROFILEIMPORTTIME": "1"} if profile else {})}
    runpod_names = cold_start_ready.runpod_env("http://127.0.0.1:0")
    command = cold_start_ready.image_command(image, {**runpod_names, **passed})
    # image_command passes the RUNPOD_ names; the worker's own env goes the same way (values from the
    # docker client's environment, never the command line).
    command[-1:-1] = [arg for name in sorted(passed) for arg in ("--env", name)]
    return cold_start_ready.run_start(command, {**os.environ, **passed}, str(REPO), job, START_TIMEOUT_S)


def split(start: cold_start_ready.Start) -> dict[str, Any]:
    """The start's phases (seconds), imports moved out of each into ``imports``; the heaviest packages."""
    setup_at = next((at for at, line in start.stderr if SETUP_STARTED in line), None)
    ready_at = next((at for at, line in start.stderr if SETUP_DONE in line and setup_at and at >= setup_at), None)
    if setup_at is None or ready_at is None:
        raise RuntimeError("the worker's log has no 'setup() started' / 'ready in' line: did its setup fail?")
    bounds = {"before_setup": (start.spawned, setup_at), "setup": (setup_at, ready_at),
              "job_loop": (ready_at, start.take_at), "first_job": (start.take_at, start.done_at)}
    imports = {phase: 0.0 for phase in bounds}
    per_package: dict[str, float] = {}
    for at, line in start.stderr:
        phase = next((name for name, (begin, end) in bounds.items() if begin <= at < end), "first_job")
        own, cumulative, name = cold_start.profile_line(line)
        if name is None:
            continue
        top = name.strip().split(".")[0]
        per_package[top] = per_package.get(top, 0.0) + own
        if not name.startswith("  "):  # nested imports are inside their parent's cumulative time
            imports[phase] += cumulative
    phases = {phase: end - begin for phase, (begin, end) in bounds.items()}
    excluded = {phase: phases[phase] - imports[phase] for phase in phases}
    excluded["imports"] = sum(imports.values())
    heaviest = dict(sorted(per_package.items(), key=lambda kv: -kv[1])[:cold_start.HEAVIEST])
    return {"total_s": round(start.done_at - start.spawned, 3), "ready_s": round(start.take_at - start.spawned, 3),
            **{key: cold_start.rounded(value) for key, value in (
                ("phases_s", phases), ("split_s", excluded), ("import_s_by_phase", imports),
                ("heaviest_imports_s", heaviest))}}


def measure(worker: str, image: str, unprofiled: bool = True) -> dict[str, Any]:
    """The floor in the image, then the worker's start to its first job done, each from a cold page cache:
    under the import profiler, then (``unprofiled``, always for an image without weights) without it; the
    container start alone (``python -c pass``) too."""
    folders = weight_folders(image)
    measured: dict[str, Any] = {"image": image, "weight_folders": folders}
    spawned = time.time()
    docker("run", "--rm", "--network", "none", image, "python", "-c", "pass")
    measured["container_start_s"] = round(time.time() - spawned, 3)
    # One unrecorded start first: it reads the image's libraries into the page cache, so that every measured
    # run finds them there and only the weights (evicted before each) are cold: the runs' order is no figure.
    serve_first_job(image, worker_env(worker), first_job(worker), profile=False)
    if folders and has_torch(image):
        measured["evicted_files"] = evict_in_image(image, folders)
        measured["floor"] = floor(image, folders)
    else:
        measured["import_runpod_s"] = round(cold_start_ready.image_floor_s(image, str(REPO)), 3)
    baseline = manifest.load(worker).engine_baseline
    if baseline:
        evict_in_image(image, folders)
        measured["engine"] = engine(image, baseline, worker_env(worker), first_job(worker)["input"])
    runs = (("worker", True), ("worker_unprofiled", False)) if unprofiled or not folders else (("worker", True),)
    for name, profile in runs:
        evict_in_image(image, folders)
        start = serve_first_job(image, worker_env(worker), first_job(worker), profile)
        if b'"error"' in start.result[:200]:
            raise RuntimeError(f"{worker}: the first job failed in the image: {start.result[:500]!r}")
        measured[name] = split(start)
    return measured


def figures(worker: str, measured: dict[str, Any]) -> list[Figure]:
    """Start to first job done and each phase against the floor's (both under the import profiler, as in the
    venv's cold-start bench); then the same start with no profiler: its ready time and total as users get them."""
    profiled, plain = measured["worker"], measured.get("worker_unprofiled")
    name = f"{worker} image"
    base = measured.get("floor")
    found = []
    raw = measured.get("engine")
    if base is not None:
        found.append(Figure(f"{name}: start to first job done", profiled["total_s"], "s", base["total_s"], "floor",
                            profiled["total_s"] / base["total_s"], "value / baseline",
                            None if raw else Target("ratio", "<=", cold_start.TARGET_OVER_FLOOR)))
    if raw is not None:
        found.append(Figure(f"{name}: start to first job done, against the raw engine", profiled["total_s"], "s",
                            raw["total_s"], "raw engine, same image, env and request",
                            profiled["total_s"] / raw["total_s"], "value / baseline",
                            Target("ratio", "<=", cold_start.TARGET_OVER_ENGINE)))
    for phase, label, floor_phase in PHASES:
        value = profiled["split_s"][phase]
        if base is None or floor_phase is None:
            found.append(Figure(f"{name}: {label}", value, "s"))
            continue
        baseline = base["split_s"].get(floor_phase, 0.0)
        if floor_phase == "model_load":  # the worker's device init happens inside its setup()
            baseline += base["split_s"].get("cuda_init", 0.0)
        found.append(Figure(f"{name}: {label}", value, "s", baseline, FLOOR_NAMES[floor_phase],
                            value / max(baseline, 1e-3), "value / baseline"))
    if plain is None:
        return found
    if base is None:
        found.append(Figure(f"{name}: ready (docker run to first job take), no profiler", plain["ready_s"], "s",
                            measured["import_runpod_s"], "docker run + import runpod",
                            plain["ready_s"] / measured["import_runpod_s"], "value / baseline",
                            Target("value", "<=", cold_start.READY_TARGET_S)))
    else:
        found.append(Figure(f"{name}: ready (docker run to first job take), no profiler", plain["ready_s"], "s"))
    found.append(Figure(f"{name}: start to first job done, no profiler", plain["total_s"], "s",
                        measured["container_start_s"], "docker run, python -c pass"))
    return found


def run(workers: list[str], registry: str, tag: str, unprofiled: bool = True) -> BenchResult:
    result = BenchResult("cold-start-image")
    failed = []
    for worker in workers:
        try:
            measured = measure(worker, f"{registry}/{worker}:{tag}", unprofiled)
        except Exception as exc:  # one image's failure leaves the others' figures
            failed.append(f"{worker}: {type(exc).__name__}: {exc}")
            print(f"cold start of {worker}'s image failed: {exc}", file=sys.stderr, flush=True)
            continue
        result.details[worker] = measured
        result.figures.extend(figures(worker, measured))
    if failed:
        result.details["failed"] = failed
    return result


def save(result: BenchResult, out: Path) -> None:
    """Into ``out`` (the bench's results file), replacing an earlier result of the same name, keeping others."""
    saved = json.loads(out.read_text()) if out.is_file() else {"machine": machine.describe(), "results": []}
    saved["results"] = [r for r in saved.get("results", []) if r.get("name") != result.name] + [result.to_json()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(saved, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.bench.cold_start_image", description=__doc__.split("\n")[0])
    parser.add_argument("--registry", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--out", type=Path, default=REPO / ".bench" / "results.json")
    parser.add_argument("--profiled-only", action="store_true",
                        help="one start per model image, under the import profiler (CI: half the time)")
    parser.add_argument("workers", nargs="*", help="default: every worker (workers/*/worker.toml)")
    args = parser.parse_args(argv)
    load_before, started = machine.load(), time.perf_counter()
    result = run(args.workers or manifest.worker_names(), args.registry, args.tag, not args.profiled_only)
    result.load_before, result.load_after = load_before, machine.load()
    result.seconds = round(time.perf_counter() - started, 1)
    print(table([result]))
    print(f"load {result.load_before} -> {result.load_after}; {result.seconds} s; results: {args.out}")
    save(result, args.out)
    for failure in result.details.get("failed", []):
        print(f"FAILED {failure}")
    return 1 if result.details.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
