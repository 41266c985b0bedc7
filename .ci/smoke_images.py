"""Start each pushed worker image behind the local endpoint; it must answer its test_input.json.

    python .ci/smoke_images.py --registry 127.0.0.1:5000/workers --tag ci progress-demo llm-hf ...

The image is run by the digest the registry gave it (what a RunPod endpoint pulls), as a worker process
of devkit.endpoint.LocalEndpoint (see container_worker.py): the job goes in through the public
/run API, the container takes it through the runpod SDK's real job loop, and /status must come back
COMPLETED with an output. An image that bakes extra models (model.toml's tables) or LoRA adapters must also
complete a job that uses each (`EXTRA_JOBS`). Prints one line per job; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devkit.endpoint import LocalEndpoint, WorkerSpec

CI_DIR = Path(__file__).resolve().parent
WORKERS = CI_DIR.parent / "workers"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
#: Worker -> {model.toml table: a job only that extra model serves}. The sdxl image must load its baked
#: refiner (REFINER_PATH) to run a `refine` job, and its baked VAE (VAE_PATH) to start at all; the
#: llm-vllm image must serve the tiny adapter CI bakes into /adapters (.ci/extras_dir.py, ADAPTERS_PATH).
EXTRA_JOBS: dict[str, dict[str, dict]] = {
    "sdxl": {"refiner": {"input": {"prompt": "a lighthouse at dusk", "refine": True, "width": 256, "height": 256,
                                   "num_inference_steps": 4, "seed": 7}}},
    "llm-vllm": {"adapters.tiny-lora": {"input": {"prompt": "Hello", "lora": "tiny-lora", "max_tokens": 8}}},
}


def pushed_digest(ref: str) -> str:
    """``repo@sha256:...`` of a pushed image: running it by digest runs exactly what was pushed."""
    repo = ref.rsplit(":", 1)[0]
    digests = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref],
                             check=True, capture_output=True, text=True).stdout
    matching = [d for d in json.loads(digests) if d.startswith(repo + "@")]
    if not matching:
        raise SystemExit(f"{ref} has no digest from {repo}: was it pushed?")
    return matching[0]


def container_spec(name: str, image: str) -> WorkerSpec:
    spec = WorkerSpec.from_repo(name)
    # endpoint.toml's env with the tiny model's CPU settings (WorkerSpec.from_repo); the image bakes its own model.
    env = spec.image_env()
    return dataclasses.replace(
        spec, module="container_worker", pythonpath=(CI_DIR,),
        env={**env, "CI_WORKER_IMAGE": image, "CI_CONTAINER_ENV": ",".join(sorted(env))},
    )


def jobs_of(name: str) -> dict[str, dict]:
    """What the image must answer: its test_input.json, then a job per extra model it bakes."""
    return {"test_input.json": json.loads((WORKERS / name / "test_input.json").read_text()), **EXTRA_JOBS.get(name, {})}


def answer(name: str, image: str, timeout: float, bodies: dict[str, dict]) -> tuple[float, dict[str, dict]]:
    """Seconds until the worker was ready, and each job's final /status (with ``job_s``), in order."""
    started = time.monotonic()
    statuses = {}
    with LocalEndpoint([container_spec(name, image)]) as endpoint:
        endpoint.wait_ready(name, timeout=timeout)
        ready = time.monotonic() - started
        with httpx.Client(base_url=f"{endpoint.base_url}/v2/{name}", timeout=30) as client:
            for label, body in bodies.items():
                submitted = time.monotonic()
                statuses[label] = _wait(client, client.post("/run", json=body).raise_for_status().json()["id"],
                                        f"{name} ({label})", timeout)
                statuses[label]["job_s"] = time.monotonic() - submitted
    return ready, statuses


def _wait(client: httpx.Client, job_id: str, what: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while (status := client.get(f"/status/{job_id}").raise_for_status().json())["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: job {job_id} still {status['status']} after {timeout:.0f} s")
        time.sleep(0.2)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--timeout", type=float, default=300, help="seconds for startup, and for the job")
    parser.add_argument("workers", nargs="+")
    args = parser.parse_args()
    for name in args.workers:
        image = pushed_digest(f"{args.registry}/{name}:{args.tag}")
        ready, statuses = answer(name, image, args.timeout, jobs_of(name))
        for label, status in statuses.items():
            if status["status"] != "COMPLETED" or status.get("output") in (None, [], {}) or not _has_images(status):
                print(f"FAIL {name} ({label}): {json.dumps(status)[:2000]}", file=sys.stderr)
                return 1
            print(f"ok   {name} ({label}): COMPLETED through the job loop, ready in {ready:.1f} s, "
                  f"job done in {status['job_s']:.1f} s, output {len(json.dumps(status['output']))} bytes ({image})")
    return 0


def _has_images(status: dict) -> bool:
    """An image worker's output must hold its images (a refine job that fell back to nothing would not)."""
    output = status["output"]
    return not isinstance(output, dict) or "images" not in output or bool(output["images"])


if __name__ == "__main__":
    sys.exit(main())
