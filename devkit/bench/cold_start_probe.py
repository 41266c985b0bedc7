"""Child process of the cold-start benchmark: a worker's start path, phase by phase, or the floor.

``python -X importtime -m devkit.bench.cold_start_probe worker <package> '<job input json>'`` does what
``serve()`` does before its first job (import the worker's ``__main__``, start the weights prefetch,
CUDA init, ``setup()``, import the job loop, unless ``--no-job-loop`` follows: a machine without runpod)
and then runs one job through the guarded handler.
``... engine <module:function> '<job input json>'`` runs a worker's raw engine with no worker around it (its
worker.toml ``[bench] engine_baseline``: a function of the job input and `mark` returning the phases' times).
``... floor <folder>...`` imports torch and loads every safetensors file of the folders raw. Each phase
prints a marker line on stderr, where ``-X importtime`` writes too, so the parent can split import time
by phase; the result is one stdout line after ``RESULT``. The floor needs nothing of this repo: the image
cold-start bench (devkit.bench.cold_start_image) runs this file alone inside a worker image.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import time

MARK = "cold-start-phase:"
#: Last argument of ``worker`` on a machine without runpod (the GPU script's): the job loop's import is skipped.
NO_JOB_LOOP = "--no-job-loop"
#: Prefix of the stdout line holding the result (workers may print to stdout too).
RESULT = "cold-start-result:"


def mark(phase: str) -> float:
    # One write, newline included: a thread importing meanwhile (-X importtime writes its lines from C)
    # must not land between the marker and its newline.
    sys.stderr.write(f"{MARK} {phase}\n")
    sys.stderr.flush()
    return time.time()


def cuda_init() -> None:
    if "torch" not in sys.modules:
        return
    torch = sys.modules["torch"]
    if torch.cuda.is_available():
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()


def find_worker(module):
    """The worker class ``__main__`` hands to serve(): the one class with setup() and handler()."""
    found = [v for v in vars(module).values()
             if inspect.isclass(v) and hasattr(v, "setup") and hasattr(v, "handler")]
    if len(found) != 1:
        raise RuntimeError(f"{module.__name__}: expected one worker class, found {found}")
    return found[0]


def worker(package: str, job_input: dict, with_job_loop: bool = True) -> dict:
    from devkit.bench.jobs import drain  # here, so the floor also runs as a lone file inside a worker image

    times = {"imports": mark("imports")}
    main = importlib.import_module(f"{package}.__main__")
    kind = find_worker(main)
    # Without the job loop (no runpod), progress updates, which the SDK posts, go nowhere, as in the GPU
    # script's in-process runs.
    dropped = not with_job_loop and "send_progress" in inspect.signature(kind).parameters
    instance = kind(send_progress=lambda job, update: None) if dropped else kind()
    from shared import prefetch  # what serve() starts before setup(): the weights read while it imports

    prefetch.start(getattr(instance, "weight_folders", ()))
    times["cuda_init"] = mark("cuda_init")
    cuda_init()
    times["model_load"] = mark("model_load")
    instance.setup()
    times["job_loop_import"] = mark("job_loop_import")
    if with_job_loop:
        from shared import job_loop  # noqa: F401  (what serve() imports before the loop: runpod)
    from shared.guard import guard

    times["first_job"] = mark("first_job")
    output = asyncio.run(drain(guard(instance.handler)({"id": "cold-start", "input": job_input})))
    times["end"] = mark("end")
    failed = output and isinstance(output, list) and isinstance(output[-1], dict) and "error" in output[-1]
    if failed or (isinstance(output, dict) and "error" in output):
        raise RuntimeError(f"the first job failed: {str(output)[:500]}")
    return times


def floor(model_dirs: list[str]) -> dict:
    from pathlib import Path

    times = {"imports": mark("imports")}
    import torch
    from safetensors.torch import load_file

    device = "cuda" if torch.cuda.is_available() else "cpu"
    times["cuda_init"] = mark("cuda_init")
    cuda_init()
    times["model_load"] = mark("model_load")
    files = sorted(f for folder in model_dirs for f in Path(folder).rglob("*.safetensors"))
    tensors = [load_file(f, device=device) for f in files]
    if device == "cuda":
        torch.cuda.synchronize()
    times["end"] = mark("end")
    times["files"] = len(files)
    times["bytes"] = sum(f.stat().st_size for f in files)
    del tensors
    return times


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "worker":
        result = worker(sys.argv[2], json.loads(sys.argv[3]), with_job_loop=NO_JOB_LOOP not in sys.argv[4:])
    elif kind == "engine":
        module, _, function = sys.argv[2].partition(":")
        result = getattr(importlib.import_module(module), function)(json.loads(sys.argv[3]), mark)
    else:
        result = floor(sys.argv[2:])
    print(RESULT, json.dumps(result), flush=True)
