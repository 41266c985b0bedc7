"""Start each pushed worker image behind the local endpoint; it must answer its test_input.json.

    python .ci/smoke_images.py --registry 127.0.0.1:5000/workers --tag ci progress-demo llm-hf ...

The image is run by the digest the registry gave it (what a RunPod endpoint pulls), as a worker process
of devkit.endpoint.LocalEndpoint (see container_worker.py): the job goes in through the public
/run API, the container takes it through the runpod SDK's real job loop, and /status must come back
COMPLETED with an output. Prints one line per worker; exits non-zero on the first failure.
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
    env = {key: value for key, value in spec.env.items() if key != "MODEL_PATH"}
    return dataclasses.replace(
        spec, module="container_worker", pythonpath=(CI_DIR,),
        env={**env, "CI_WORKER_IMAGE": image, "CI_CONTAINER_ENV": ",".join(sorted(env))},
    )


def answer(name: str, image: str, timeout: float) -> dict:
    body = json.loads((WORKERS / name / "test_input.json").read_text())
    started = time.monotonic()
    with LocalEndpoint([container_spec(name, image)]) as endpoint:
        endpoint.wait_ready(name, timeout=timeout)
        ready = time.monotonic() - started
        with httpx.Client(base_url=f"{endpoint.base_url}/v2/{name}", timeout=30) as client:
            job = client.post("/run", json=body).raise_for_status().json()
            deadline = time.monotonic() + timeout
            while (status := client.get(f"/status/{job['id']}").raise_for_status().json())["status"] not in TERMINAL:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: job {job['id']} still {status['status']} after {timeout:.0f} s")
                time.sleep(0.2)
    status["ready_s"] = ready
    status["total_s"] = time.monotonic() - started
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
        status = answer(name, image, args.timeout)
        if status["status"] != "COMPLETED" or status.get("output") in (None, [], {}):
            print(f"FAIL {name}: {json.dumps(status)[:2000]}", file=sys.stderr)
            return 1
        print(f"ok   {name}: COMPLETED through the job loop, ready in {status['ready_s']:.1f} s, "
              f"job done in {status['total_s'] - status['ready_s']:.1f} s, "
              f"output {len(json.dumps(status['output']))} bytes ({image})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
