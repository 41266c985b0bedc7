"""`python -m llm_vllm` as the image runs it: startup failures and a dying engine end the process non-zero,
with the reason on stderr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llm_vllm.worker import ENGINE_DIED_EXIT
from shared.serving import STARTUP_FAILURE_EXIT, STARTUP_FAILURE_MARKER

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[3]
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "ENFORCE_EAGER": "true"}


def worker_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "MODEL_PATH"}
    return {**base, "PYTHONPATH": f"{REPO / 'workers/llm-vllm'}{os.pathsep}{REPO / 'shared'}",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true", **env}


def start_worker(tmp_path: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llm_vllm"], cwd=tmp_path, env=worker_env(**env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def failure_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith(STARTUP_FAILURE_MARKER)]
    return line


def test_missing_model_path_exits_with_the_startup_failure_status(tmp_path):
    worker = start_worker(tmp_path, MODEL_PATH=str(tmp_path / "no-such-model"))
    _, stderr = worker.communicate(timeout=120)
    assert worker.returncode == STARTUP_FAILURE_EXIT
    assert "NotReady: MODEL_PATH=" in failure_line(stderr) and "is not a folder" in failure_line(stderr)


def test_invalid_engine_setting_exits_naming_the_variable(tmp_path, tiny_llm_dir):
    worker = start_worker(tmp_path, MODEL_PATH=str(tiny_llm_dir), MAX_NUM_SEQS="many", DTYPE="float8")
    _, stderr = worker.communicate(timeout=180)
    assert worker.returncode == STARTUP_FAILURE_EXIT
    line = failure_line(stderr)
    assert "EngineSettingsError" in line and "MAX_NUM_SEQS='many'" in line and "DTYPE='float8'" in line


def test_engine_that_cannot_get_its_memory_exits_suggesting_the_settings_to_change(tmp_path, tiny_llm_dir):
    # More KV cache than the machine has: the engine core fails its memory check at start.
    worker = start_worker(tmp_path, MODEL_PATH=str(tiny_llm_dir), **{**ENGINE_ENV, "VLLM_CPU_KVCACHE_SPACE": "100000"})
    _, stderr = worker.communicate(timeout=240)
    assert worker.returncode == STARTUP_FAILURE_EXIT
    line = failure_line(stderr)
    assert "the vLLM engine failed to start" in line
    assert "MAX_MODEL_LEN" in line and "GPU_MEMORY_UTILIZATION" in line and "VLLM_CPU_KVCACHE_SPACE" in line
    assert "less than requested memory for kv" in stderr  # vLLM's root cause is in the same log


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
