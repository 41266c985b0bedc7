"""shared.serving: setup once before the job loop, a failed startup on RunPod's rules, the SDK's options."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import subprocess
import sys

import pytest

from shared import serving
from shared.errors import StartupError


class Recorder:
    max_concurrency = 3

    def __init__(self, fail: Exception | None = None):
        self.fail = fail
        self.events: list[str] = []

    def setup(self) -> None:
        self.events.append("setup")
        if self.fail:
            raise self.fail

    def handler(self, job):
        self.events.append("job")
        return {"echo": job["input"]}


def test_concurrency_defaults_to_the_workers_own_value(monkeypatch):
    monkeypatch.delenv("MAX_CONCURRENCY", raising=False)
    modifier = serving.runpod_config(Recorder())["concurrency_modifier"]
    assert modifier(1) == 3 and modifier(7) == 3


def test_max_concurrency_env_overrides_the_default(monkeypatch):
    monkeypatch.setenv("MAX_CONCURRENCY", "12")
    assert serving.runpod_config(Recorder())["concurrency_modifier"](1) == 12


@pytest.mark.parametrize("raw", ["0", "-2", "many", "1.5"])
def test_bad_max_concurrency_is_a_startup_error(monkeypatch, raw):
    monkeypatch.setenv("MAX_CONCURRENCY", raw)
    with pytest.raises(StartupError, match="MAX_CONCURRENCY"):
        serving.runpod_config(Recorder())


def test_config_streams_aggregate_and_guards_the_handler(monkeypatch):
    monkeypatch.delenv("MAX_CONCURRENCY", raising=False)
    config = serving.runpod_config(Recorder())
    assert config["return_aggregate_stream"] is True
    assert inspect.iscoroutinefunction(config["handler"])
    assert asyncio.run(config["handler"]({"id": "j", "input": {"a": 1}})) == {"echo": {"a": 1}}


def test_serve_runs_setup_once_before_starting_the_job_loop(monkeypatch):
    import runpod

    worker = Recorder()
    started = []
    monkeypatch.setattr(runpod.serverless, "start", lambda config: started.append((list(worker.events), config)))
    serving.serve(worker)
    assert len(started) == 1
    events_at_start, config = started[0]
    assert events_at_start == ["setup"]
    assert set(config) >= {"handler", "return_aggregate_stream", "concurrency_modifier"}



def test_serve_starts_the_weights_prefetch_of_the_declared_folders_before_setup(monkeypatch):
    import runpod

    worker = Recorder()
    worker.weight_folders = ("MODEL_PATH", "VAE_PATH")
    monkeypatch.setattr(serving.prefetch, "start", lambda envs: worker.events.append(("prefetch", tuple(envs))))
    monkeypatch.setattr(runpod.serverless, "start", lambda config: None)
    serving.serve(worker)
    assert worker.events == [("prefetch", ("MODEL_PATH", "VAE_PATH")), "setup"]

@pytest.fixture
def state_dir(monkeypatch, tmp_path):
    """A fresh container disk for the startup failure marker."""
    monkeypatch.setenv(serving.STATE_DIR_ENV, str(tmp_path))
    return tmp_path


def start_capturing(monkeypatch) -> list[dict]:
    import runpod

    started: list[dict] = []
    monkeypatch.setattr(runpod.serverless, "start", started.append)
    return started


def answer(config: dict, job_id: str = "j") -> dict:
    return asyncio.run(config["handler"]({"id": job_id, "input": {"a": 1}}))


def test_a_startup_error_keeps_the_worker_in_the_job_loop_answering_not_ready_with_cause_and_fix(
        monkeypatch, state_dir, capsys, caplog):
    worker = Recorder(fail=StartupError("MODEL_PATH=/m is not a folder", "set MODEL_PATH to the weights' folder"))
    started = start_capturing(monkeypatch)
    serving.serve(worker)
    [config] = started
    assert worker.events == ["setup"]
    caplog.clear()
    answers = [answer(config, f"job-{n}") for n in range(3)]
    for result in answers:
        assert set(result) == {"error"}
        envelope = json.loads(result["error"])
        assert envelope == {"code": "NOT_READY", "retryable": False,
                            "message": "MODEL_PATH=/m is not a folder; set MODEL_PATH to the weights' folder"}
    assert worker.events == ["setup"]  # the worker's own handler never runs
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []  # said once, at startup, not per job
    assert capsys.readouterr().err.count(serving.STARTUP_FAILURE_MARKER) == 1
    assert list(state_dir.iterdir()) == []  # nothing for a restart to find: none is needed


def test_a_bad_max_concurrency_is_answered_to_every_job_naming_the_variable(monkeypatch, state_dir):
    monkeypatch.setenv("MAX_CONCURRENCY", "0")
    worker = Recorder()
    started = start_capturing(monkeypatch)
    serving.serve(worker)
    envelope = json.loads(answer(started[0])["error"])
    assert envelope["code"] == "NOT_READY"
    assert "MAX_CONCURRENCY must be a whole number >= 1, got '0'; set MAX_CONCURRENCY to" in envelope["message"]
    assert worker.events == []


def test_a_failure_a_restart_may_fix_exits_non_zero_and_leaves_a_marker(monkeypatch, state_dir, capsys):
    monkeypatch.setattr(__import__("runpod").serverless, "start", lambda config: pytest.fail("job loop started"))
    worker = Recorder(fail=OSError(5, "Input/output error"))
    with pytest.raises(SystemExit) as info:
        serving.serve(worker)
    assert info.value.code == serving.STARTUP_FAILURE_EXIT
    assert f"{serving.STARTUP_FAILURE_MARKER} OSError: [Errno 5] Input/output error" in capsys.readouterr().err
    assert serving.failure_marker(worker).read_text() == "OSError: [Errno 5] Input/output error"


def test_the_same_failure_after_a_restart_answers_jobs_instead_of_exiting_again(monkeypatch, state_dir):
    worker = Recorder(fail=RuntimeError("CUDA driver initialization failed"))
    with pytest.raises(SystemExit):
        serving.serve(worker)
    started = start_capturing(monkeypatch)
    serving.serve(worker)  # the platform's restart, same container
    envelope = json.loads(answer(started[0])["error"])
    assert envelope["code"] == "NOT_READY" and envelope["retryable"] is False
    assert "setup failed again after the platform restarted this worker" in envelope["message"]
    assert "RuntimeError: CUDA driver initialization failed" in envelope["message"]
    assert "a restart does not fix it" in envelope["message"]


def test_a_setup_that_succeeds_after_a_restart_serves_and_clears_the_marker(monkeypatch, state_dir):
    worker = Recorder(fail=OSError("flaky mount"))
    with pytest.raises(SystemExit):
        serving.serve(worker)
    worker.fail = None
    started = start_capturing(monkeypatch)
    serving.serve(worker)
    assert answer(started[0]) == {"echo": {"a": 1}}
    assert not serving.failure_marker(worker).exists()  # a later hiccup gets its own restart


def test_the_marker_is_per_container(monkeypatch, tmp_path):
    worker = Recorder(fail=OSError("flaky mount"))
    monkeypatch.setenv(serving.STATE_DIR_ENV, str(tmp_path / "first"))
    with pytest.raises(SystemExit):
        serving.serve(worker)
    monkeypatch.setenv(serving.STATE_DIR_ENV, str(tmp_path / "second"))  # a new worker: a new, clean disk
    with pytest.raises(SystemExit):
        serving.serve(worker)


BROKEN_WORKER = """
from shared.serving import serve

class Broken:
    max_concurrency = 1
    def setup(self):
        raise RuntimeError("weights missing at /model")
    def handler(self, job):
        return None

if __name__ == "__main__":
    serve(Broken())
"""


def test_failed_setup_in_a_real_process_exits_then_answers_jobs_when_restarted(tmp_path):
    package = tmp_path / "broken_worker"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(BROKEN_WORKER)
    env = {**os.environ, serving.STATE_DIR_ENV: str(tmp_path / "container")}

    def run() -> subprocess.CompletedProcess:
        # --test_input: the SDK's one-shot mode runs one job through the same handler, then exits 1 if it failed.
        return subprocess.run([sys.executable, "-m", "broken_worker", "--test_input", '{"input": {"x": 1}}'],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    first = run()
    assert first.returncode == serving.STARTUP_FAILURE_EXIT
    last_line = first.stderr.strip().splitlines()[-1]
    assert last_line == (f"{serving.STARTUP_FAILURE_MARKER} RuntimeError: weights missing at /model "
                         "(exiting: a restart may fix it)")
    assert "Traceback" in first.stderr  # the full story stays in the worker log

    again = run()
    assert again.returncode == 1  # the job failed; the process did not exit for a restart
    assert "setup failed again after the platform restarted this worker" in again.stderr
    assert "NOT_READY" in again.stdout + again.stderr


def test_importing_serving_or_the_author_api_does_not_import_runpod_torch_or_pil():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, shared.serving, shared.errors, shared.validation, shared.encoding,"
         " shared.authoring;"
         "print(sorted(m for m in ('runpod', 'torch', 'PIL') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert done.stdout.strip() == "[]"
