"""shared.serving: setup once before the job loop, fail fast on bad startup, the SDK's options."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap

import pytest

from shared import serving


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
def test_bad_max_concurrency_is_refused(monkeypatch, raw):
    monkeypatch.setenv("MAX_CONCURRENCY", raw)
    with pytest.raises(ValueError, match="MAX_CONCURRENCY"):
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


def test_failed_setup_exits_non_zero_without_starting_the_loop(monkeypatch, capsys):
    import runpod

    monkeypatch.setattr(runpod.serverless, "start", lambda config: pytest.fail("job loop started"))
    with pytest.raises(SystemExit) as info:
        serving.serve(Recorder(fail=FileNotFoundError("/model/config.json")))
    assert info.value.code == serving.STARTUP_FAILURE_EXIT
    assert f"{serving.STARTUP_FAILURE_MARKER} FileNotFoundError: /model/config.json" in capsys.readouterr().err


def test_failed_setup_in_a_real_process_exits_with_the_reason_last(tmp_path):
    package = tmp_path / "broken_worker"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        textwrap.dedent(
            """
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
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "broken_worker"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == serving.STARTUP_FAILURE_EXIT
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == f"{serving.STARTUP_FAILURE_MARKER} RuntimeError: weights missing at /model"
    assert "Traceback" in done.stderr  # the full story stays in the worker log


def test_importing_serving_does_not_import_runpod_or_torch():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, shared.serving, shared.errors, shared.validation, shared.encoding;"
         "print(sorted(m for m in ('runpod', 'torch', 'PIL') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert done.stdout.strip() == "[]"
