"""Ready time of a worker as RunPod sees it: ``python -m <package>`` spawned to its first job-take request.

The worker runs its real start command (``serve()``: setup, the runpod SDK's job loop) with the
variables RunPod sets in a serverless container (devkit.endpoint.workers) pointed at a stand-in that
answers every job take (``job-take``, or ``job-take-batch`` at a concurrency above 1) with 204 (no job,
as RunPod's job-take does when the queue is empty) and every
ping with 200; the first take's arrival is the moment the worker could have started a job.
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
    server = _StandIn()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = os.path.join(env.get("TMPDIR", "/tmp"), f"cold-start-ready-{os.getpid()}")
    full_env = {**env, **runpod_env(f"http://127.0.0.1:{server.server_address[1]}"), "WORKER_STATE_DIR": state}
    spawned = time.time()
    process = subprocess.Popen([sys.executable, "-m", package], cwd=cwd, env=full_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not server.first_take.wait(0.01):
            if process.poll() is not None:
                raise RuntimeError(f"{package} exited ({process.returncode}) before its first job take: "
                                   + process.stderr.read()[-2000:])
            if time.time() - spawned > READY_TIMEOUT_S:
                raise RuntimeError(f"{package} took no job within {READY_TIMEOUT_S} s")
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
