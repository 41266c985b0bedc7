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

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Seconds a worker may take to send its first job take before the measure gives up.
READY_TIMEOUT_S = 120


#: Seconds a take or a job-stop poll is held open once the one job is out (RunPod's job-take holds too; a 204
#: answered at once would have the worker's loop spin on the cores its first job needs).
HOLD_S = 0.5


class _StandIn(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, job: dict[str, Any] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.job = job
        self.first_take = threading.Event()
        self.first_take_at: float | None = None
        self.job_done = threading.Event()
        self.job_done_at: float | None = None
        self.job_done_body = b""


class _Handler(http.server.BaseHTTPRequestHandler):
    """RunPod's job API as a worker sees it: the first take gets ``server.job`` (if any), every later take
    and job-stop poll is held, then answered 204 (nothing); job-done is recorded; pings and streams 200."""

    server: _StandIn

    def do_GET(self) -> None:
        if "/job-take" in self.path and not self.server.first_take.is_set():
            self.server.first_take_at = time.time()
            self.server.first_take.set()
            if self.server.job is not None:
                batch = "/job-take-batch" in self.path  # the SDK's batch take answers a list
                self._reply(200, json.dumps([self.server.job] if batch else self.server.job).encode())
                return
            self._reply(204)
            return
        if "/job-take" in self.path or "/job-stop" in self.path:
            time.sleep(HOLD_S)
            self._reply(204)
            return
        self._reply(200)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/job-done" in self.path and not self.server.job_done.is_set():
            self.server.job_done_at = time.time()
            self.server.job_done_body = body
            self.server.job_done.set()
        self._reply(200)

    def _reply(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a held take whose worker was stopped
            self.wfile.write(body)

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
    started = run_start(command, env, cwd)
    return started.take_at - started.spawned


@dataclass
class Start:
    """What one start of a worker showed: host times (``time.time()``) of its spawn, first job take and
    (given a job) that job's result, each stderr line with its arrival time, and the job's result body."""

    spawned: float
    take_at: float
    done_at: float | None = None
    stderr: list[tuple[float, str]] = field(default_factory=list)
    result: bytes = b""


def run_start(command: list[str], env: dict[str, str], cwd: str, job: dict[str, Any] | None = None,
              timeout_s: float = READY_TIMEOUT_S) -> Start:
    """Spawn ``command`` (a worker's start) against the stand-in job API; return at its first job take, or,
    given ``job`` (``{"id", "input"}``, handed out at that take), once the job's result is posted; stopped after.

    Its stderr is read as it comes, each line stamped on arrival (the worker's log and, under
    ``PYTHONPROFILEIMPORTTIME``, its import profile), so the caller can split the start at the log's lines.
    """
    server = _StandIn(job)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    full_env = {**env, **runpod_env(f"http://127.0.0.1:{server.server_address[1]}")}
    lines: list[tuple[float, str]] = []
    spawned = time.time()
    process = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    reader = threading.Thread(target=_stamp, args=(process.stderr, lines), daemon=True)
    reader.start()
    waited = server.first_take if job is None else server.job_done
    try:
        while not waited.wait(0.01):
            if process.poll() is not None:
                reader.join(timeout=5)
                tail = "\n".join(line for _, line in lines[-40:])
                raise RuntimeError(f"{command[-1]} exited ({process.returncode}) before "
                                   f"{'its first job take' if job is None else 'its first job was done'}: {tail}")
            if time.time() - spawned > timeout_s:
                raise RuntimeError(f"{command[-1]} took or finished no job within {timeout_s:.0f} s")
        return Start(spawned, server.first_take_at, server.job_done_at, lines, server.job_done_body)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        server.shutdown()
        server.server_close()


def _stamp(stream: Any, lines: list[tuple[float, str]]) -> None:
    for line in stream:
        lines.append((time.time(), line.rstrip("\n")))


if __name__ == "__main__":
    # python -m devkit.bench.cold_start_ready <image>: a pulled worker image's ready time, in CI's engine.
    image = sys.argv[1]
    ready, floor = image_ready_s(image, os.getcwd()), image_floor_s(image, os.getcwd())
    print(json.dumps({"image": image, "ready_s": round(ready, 3), "import_runpod_s": round(floor, 3),
                      "ratio": round(ready / floor, 2)}))
