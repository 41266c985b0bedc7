"""Ready time of a worker as RunPod sees it: ``python -m <package>`` spawned to its first job-take request.

The worker runs its real start command (``serve()``: setup, the runpod SDK's job loop) with the
variables RunPod sets in a serverless container (devkit.endpoint.workers) pointed at a stand-in that
answers every job take (``job-take``, or ``job-take-batch`` at a concurrency above 1) with 204 (no job,
as RunPod's job-take does when the queue is empty) and every
ping with 200; the first take's arrival is the moment the worker could have started a job.

``python -m devkit.bench.cold_start_ready <image>`` does the same for a built image: ``docker run`` of its
own start command on the host network (as CI's image smoke test runs it, .ci/container_worker.py) to its
first job take, against ``docker run`` of the same image importing runpod (the same container start).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from typing import Any

#: Seconds a worker may take to send its first job take before the measure gives up.
READY_TIMEOUT_S = 120


class _StandIn(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.first_take = threading.Event()
        self.first_take_at: float | None = None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _StandIn

    def do_GET(self) -> None:
        if "/job-take" in self.path and not self.server.first_take.is_set():
            self.server.first_take_at = time.time()
            self.server.first_take.set()
        self.send_response(204 if "/job-take" in self.path else 200)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per ping would bury the bench's own output


def floor_s(env: dict[str, str], cwd: str) -> float:
    """Seconds a fresh interpreter takes to import the runpod SDK and exit: what any SDK worker pays first."""
    spawned = time.time()
    subprocess.run([sys.executable, "-c", "import runpod"], cwd=cwd, env=env, check=True, timeout=READY_TIMEOUT_S,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - spawned


def runpod_env(base_url: str) -> dict[str, str]:
    """The variables a serverless container gets from RunPod, pointed at ``base_url``."""
    return {
        "RUNPOD_WEBHOOK_GET_JOB": f"{base_url}/job-take/$ID",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base_url}/job-done/$RUNPOD_POD_ID/$ID",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base_url}/job-stream/$RUNPOD_POD_ID/$ID",
        "RUNPOD_WEBHOOK_PING": f"{base_url}/ping/$RUNPOD_POD_ID",
        "RUNPOD_POD_ID": "cold-start",
        "RUNPOD_ENDPOINT_ID": "cold-start",
        "RUNPOD_AI_API_KEY": "local-worker",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
    }


def ready_s(package: str, env: dict[str, str], cwd: str) -> float:
    """Seconds from spawning ``python -m package`` to its first job take; the worker is stopped after."""
    state = os.path.join(env.get("TMPDIR", "/tmp"), f"cold-start-ready-{os.getpid()}")
    return command_ready_s([sys.executable, "-m", package], {**env, "WORKER_STATE_DIR": state}, cwd)


def image_command(image: str, env: dict[str, str]) -> list[str]:
    """``docker run`` of ``image``'s own start command, with RunPod's variables (their values passed through
    the docker client's environment, as .ci/container_worker.py does) on the host network."""
    names = sorted(name for name in env if name.startswith("RUNPOD_"))
    return ["docker", "run", "--rm", "--network", "host", "--shm-size", "1g",
            *(arg for name in names for arg in ("--env", name)), image]


def image_ready_s(image: str, cwd: str) -> float:
    """Seconds from ``docker run`` of a pulled image to its first job take (the container start included)."""
    env = {**os.environ, **runpod_env("http://127.0.0.1:0")}  # only the names matter here
    return command_ready_s(image_command(image, env), dict(os.environ), cwd)


def image_floor_s(image: str, cwd: str) -> float:
    """Seconds ``docker run`` of the same image takes to import the runpod SDK and exit (same container start)."""
    spawned = time.time()
    subprocess.run(["docker", "run", "--rm", image, "python", "-c", "import runpod"], cwd=cwd, check=True,
                   timeout=READY_TIMEOUT_S, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - spawned


def command_ready_s(command: list[str], env: dict[str, str], cwd: str) -> float:
    """Seconds from spawning ``command`` (a worker's start) to its first job take; stopped after."""
    server = _StandIn()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    full_env = {**env, **runpod_env(f"http://127.0.0.1:{server.server_address[1]}")}
    spawned = time.time()
    process = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        while not server.first_take.wait(0.01):
            if process.poll() is not None:
                raise RuntimeError(f"{command[-1]} exited ({process.returncode}) before its first job take: "
                                   + process.stderr.read()[-2000:])
            if time.time() - spawned > READY_TIMEOUT_S:
                raise RuntimeError(f"{command[-1]} took no job within {READY_TIMEOUT_S} s")
        return server.first_take_at - spawned
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    # python -m devkit.bench.cold_start_ready <image>: a pulled worker image's ready time, in CI's engine.
    import json

    image = sys.argv[1]
    ready, floor = image_ready_s(image, os.getcwd()), image_floor_s(image, os.getcwd())
    print(json.dumps({"image": image, "ready_s": round(ready, 3), "import_runpod_s": round(floor, 3),
                      "ratio": round(ready / floor, 2)}))
