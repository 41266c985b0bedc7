"""The image cold-start bench: a start through the real job loop is split at the worker's log lines; figures."""

from __future__ import annotations

import json
import sys

import pytest

from devkit.bench import cold_start_image, cold_start_ready
from devkit.bench.through_endpoint import REPO, worker_env


@pytest.fixture(scope="module")
def profiled_start(tmp_path_factory) -> cold_start_ready.Start:
    """progress-demo's real start command (serve(), the SDK's job loop) given its first job by the stand-in,
    every import profiled, as the bench runs an image's start command (here in this venv, no Docker)."""
    env = {**worker_env("progress-demo"), "LOG_LEVEL": "INFO", "PYTHONPROFILEIMPORTTIME": "1",
           "WORKER_STATE_DIR": str(tmp_path_factory.mktemp("state"))}
    job = cold_start_image.first_job("progress-demo")
    return cold_start_ready.run_start([sys.executable, "-m", "worker_progress_demo"], env, str(REPO), job)


def test_the_stand_in_hands_the_first_take_its_job_and_records_its_result(profiled_start):
    assert profiled_start.spawned < profiled_start.take_at < profiled_start.done_at
    # progress-demo's output, as the SDK posts it to job-done (its handler streams: the aggregate).
    assert "output" in json.loads(profiled_start.result)


def test_a_profiled_start_is_split_at_the_workers_log_lines_into_phases_and_imports(profiled_start):
    split = cold_start_image.split(profiled_start)
    assert set(split["phases_s"]) == {"before_setup", "setup", "job_loop", "first_job"}
    assert split["total_s"] == pytest.approx(sum(split["phases_s"].values()), abs=0.01)
    # The entry imports (shared.serving, pydantic) come before setup(); runpod is the job loop's.
    assert split["import_s_by_phase"]["before_setup"] > 0 and split["import_s_by_phase"]["job_loop"] > 0
    assert "runpod" in split["heaviest_imports_s"] or "aiohttp" in split["heaviest_imports_s"]
    assert split["split_s"]["imports"] == pytest.approx(sum(split["import_s_by_phase"].values()), abs=0.01)


def test_a_start_whose_log_never_says_setup_started_is_refused():
    start = cold_start_ready.Start(spawned=0.0, take_at=2.0, done_at=3.0, stderr=[(1.0, "INFO | something else")])
    with pytest.raises(RuntimeError, match="setup"):
        cold_start_image.split(start)


def _split(imports: float, setup: float) -> dict:
    return {"total_s": 4.0, "ready_s": 3.5, "split_s": {"before_setup": 0.2, "imports": imports, "setup": setup,
                                                        "job_loop": 0.05, "first_job": 0.3}}


def test_figures_compare_a_model_image_with_its_floor_in_the_same_image():
    measured = {"container_start_s": 0.3, "worker": _split(3.0, 0.5), "worker_unprofiled": _split(2.0, 0.4),
                "floor": {"total_s": 2.0, "split_s": {"interpreter": 0.4, "imports": 1.5, "cuda_init": 0.1,
                                                      "model_load": 0.15}}}
    found = {f.measure: f for f in cold_start_image.figures("llm-hf", measured)}
    assert found["llm-hf image: start to first job done"].ratio == 2.0
    assert found["llm-hf image: start to first job done"].met is False
    assert found["llm-hf image: imports (all, lazy included)"].baseline == 1.5
    # The worker's device init is inside its setup(): compared with the floor's device init + raw load.
    assert found["llm-hf image: weights, device init, engine start (imports excluded)"].baseline == 0.25
    assert found["llm-hf image: first job, take to result (imports excluded)"].baseline is None


def test_an_image_with_an_engine_baseline_is_held_to_its_engine_in_the_same_image():
    measured = {"container_start_s": 0.3, "worker": _split(3.0, 0.5),
                "floor": {"total_s": 2.0, "split_s": {"interpreter": 0.4, "imports": 1.5, "model_load": 0.15}},
                "engine": {"total_s": 3.2, "split_s": {"imports": 2.8, "model_load": 0.3}}}
    found = {f.measure: f for f in cold_start_image.figures("llm-vllm", measured)}
    assert found["llm-vllm image: start to first job done"].target is None
    against = found["llm-vllm image: start to first job done, against the raw engine"]
    assert (against.baseline, against.ratio, against.target.bound) == (3.2, 4.0 / 3.2, 1.05)


def test_the_engine_baseline_runs_in_the_image_with_the_workers_env_and_its_module_beside_the_probe(monkeypatch):
    ran = {}
    monkeypatch.setattr(cold_start_image.cold_start, "probe",
                        lambda args, env, command: ran.update(args=args, env=env, command=command) or {})
    cold_start_image.engine("img", "devkit.bench.vllm_raw_probe:cold_start", {"ENFORCE_EAGER": "true"},
                            {"prompt": "Hi", "max_tokens": 2})
    assert ran["args"] == ["engine", "vllm_raw_probe:cold_start", '{"prompt": "Hi", "max_tokens": 2}']
    mounted = f"{REPO}/devkit/bench/vllm_raw_probe.py:/opt/cold-start-bench/vllm_raw_probe.py:ro"
    assert mounted in ran["command"] and {"ENFORCE_EAGER", "PYTHONPROFILEIMPORTTIME"} <= set(ran["command"])
    assert ran["env"]["ENFORCE_EAGER"] == "true" and ran["env"]["PYTHONPROFILEIMPORTTIME"] == "1"


def test_figures_of_an_image_without_weights_hold_its_ready_time_to_the_target():
    measured = {"container_start_s": 0.3, "import_runpod_s": 1.0, "worker": _split(1.0, 0.0),
                "worker_unprofiled": _split(0.6, 0.0)}
    found = {f.measure: f for f in cold_start_image.figures("progress-demo", measured)}
    ready = found["progress-demo image: ready (docker run to first job take), no profiler"]
    assert ready.value == 3.5 and ready.baseline_name == "docker run + import runpod"
    assert ready.target.bound == 0.5 and ready.met is False
