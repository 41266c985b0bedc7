"""`python -m worker_llm_vllm` as the image runs it: a startup failure no restart fixes is answered to every job, one a
restart may fix exits non-zero once and is answered on the repeat, and a dying engine ends the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shared.serving import STARTUP_FAILURE_EXIT, STARTUP_FAILURE_MARKER, STATE_DIR_ENV
from worker_llm_vllm.worker import ENGINE_DIED_EXIT

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[3]
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "ENFORCE_EAGER": "true"}


#: The SDK's one-shot mode (no RUNPOD_WEBHOOK_GET_JOB): one job through the same handler, exit 1 if it failed.
ONE_JOB = ["--test_input", '{"input": {"prompt": "hi", "max_tokens": 2}}']


def worker_env(tmp_path: Path, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "MODEL_PATH"}
    return {**base, "PYTHONPATH": f"{REPO / 'workers/llm-vllm'}{os.pathsep}{REPO / 'shared'}",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true",
            STATE_DIR_ENV: str(tmp_path / "container"), **env}


def start_worker(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen:
    """The worker; its stdout (the SDK's log) is kept only when it runs one job (``args``) to its end."""
    return subprocess.Popen([sys.executable, "-m", "worker_llm_vllm", *args], cwd=tmp_path,
                            env=worker_env(tmp_path, **env), stdout=subprocess.PIPE if args else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def failure_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith(STARTUP_FAILURE_MARKER)]
    return line


def answered_not_ready(worker: subprocess.Popen, timeout: float) -> str:
    """Run the worker's one job to its end: it must fail with NOT_READY; the failure line is returned."""
    stdout, stderr = worker.communicate(timeout=timeout)
    assert worker.returncode == 1, stderr[-3000:]  # the job failed; the process did not exit for a restart
    assert "NOT_READY" in stdout + stderr
    return failure_line(stderr)


def test_missing_model_path_answers_the_job_not_ready_with_the_fix(tmp_path):
    line = answered_not_ready(start_worker(tmp_path, *ONE_JOB, MODEL_PATH=str(tmp_path / "no-such-model")), 120)
    assert "MODEL_PATH=" in line and "is not a folder" in line and "set MODEL_PATH to the folder" in line


def test_invalid_engine_settings_are_answered_to_the_job_naming_the_variables(tmp_path, tiny_llm_dir):
    worker = start_worker(tmp_path, *ONE_JOB, MODEL_PATH=str(tiny_llm_dir), MAX_NUM_SEQS="many", DTYPE="float8",
                          VLLM_EXTRA_ARGS="--no-such-option 1")
    line = answered_not_ready(worker, 180)
    assert "invalid engine settings" in line and "MAX_NUM_SEQS='many'" in line and "DTYPE='float8'" in line
    assert "VLLM_EXTRA_ARGS='--no-such-option 1': unrecognized arguments: --no-such-option" in line
    assert "change or unset the variables named" in line


def test_engine_that_cannot_get_its_memory_exits_then_answers_jobs_suggesting_the_settings(tmp_path, tiny_llm_dir):
    # More KV cache than the machine has: the engine core fails its memory check at start. vLLM reports it from
    # its engine process, so its type does not say "no restart fixes this": the first start exits for one.
    env = {"MODEL_PATH": str(tiny_llm_dir), **ENGINE_ENV, "VLLM_CPU_KVCACHE_SPACE": "100000"}
    worker = start_worker(tmp_path, *ONE_JOB, **env)
    _, stderr = worker.communicate(timeout=240)
    assert worker.returncode == STARTUP_FAILURE_EXIT
    line = failure_line(stderr)
    assert "the vLLM engine failed to start" in line
    assert "MAX_MODEL_LEN" in line and "GPU_MEMORY_UTILIZATION" in line and "VLLM_CPU_KVCACHE_SPACE" in line
    assert "less than requested memory for kv" in stderr  # vLLM's root cause is in the same log
    # The platform's restart, same container: the same failure is answered to the job instead.
    again = answered_not_ready(start_worker(tmp_path, *ONE_JOB, **env), 240)
    assert "setup failed again after the platform restarted this worker" in again
    assert "VLLM_CPU_KVCACHE_SPACE" in again


def test_engine_that_dies_while_serving_ends_the_worker_with_the_reason(tmp_path, tiny_llm_dir):
    # The job loop polls a port where nothing listens: the worker idles, serving, until the engine dies.
    worker = start_worker(tmp_path, MODEL_PATH=str(tiny_llm_dir), RUNPOD_POD_ID="pod",
                          RUNPOD_WEBHOOK_GET_JOB="http://127.0.0.1:9/job-take/$ID", **ENGINE_ENV)
    try:
        engine_core = wait_for_engine_core(worker, timeout=240)
        engine_core.send_signal(signal.SIGKILL)
        _, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == ENGINE_DIED_EXIT
    assert f"llm-vllm: exiting with status {ENGINE_DIED_EXIT}: the vLLM engine core stopped" in stderr
    assert "EngineCore exited with code -9" in stderr


def wait_for_engine_core(worker: subprocess.Popen, timeout: float) -> psutil.Process:
    """The engine core process of a worker that finished its startup."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = worker.stderr.readline()
        if not line and worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode} before serving:\n{''.join(lines[-30:])}")
        lines.append(line)
        if "VllmWorker ready in" in line:
            break
    else:
        pytest.fail("the worker did not finish its startup in time")
    cores = [p for p in psutil.Process(worker.pid).children(recursive=True) if "EngineCore" in _title(p)]
    assert len(cores) == 1, [(_title(p), p.pid) for p in psutil.Process(worker.pid).children(recursive=True)]
    return cores[0]


def _title(process: psutil.Process) -> str:
    try:
        return process.name() + " " + " ".join(process.cmdline())
    except psutil.Error:
        return ""
