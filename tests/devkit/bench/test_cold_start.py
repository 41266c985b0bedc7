"""Cold start: import time is split by phase from -X importtime, and the floor probe runs for real."""

from __future__ import annotations

import os
import textwrap

from devkit.bench import cold_start
from devkit.bench.cold_start_probe import MARK

IMPORTTIME = textwrap.dedent(
    f"""\
    import time: self [us] | cumulative | imported package
    import time:     10000 |      10000 | site
    {MARK} imports
    import time:     20000 |      20000 |   numpy.core
    import time:     30000 |      50000 | numpy
    {MARK} model_load
    import time:     40000 |      40000 |     torch._dynamo
    import time:     60000 |     100000 | transformers
    {MARK} end
    """
)


def test_imports_are_counted_once_per_phase_and_by_package():
    per_phase, per_package = cold_start._imports_by_phase(IMPORTTIME)
    assert per_phase == {"interpreter": 0.01, "imports": 0.05, "model_load": 0.1}
    assert per_package == {"transformers": 0.06, "numpy": 0.05, "torch": 0.04, "site": 0.01}


def test_the_floor_probe_loads_every_weight_file(tiny_llm_dir):
    measured = cold_start.probe(["floor", str(tiny_llm_dir)], dict(os.environ))
    assert measured["files"] == 1 and measured["bytes"] > 0
    assert set(measured["phases_s"]) == {"interpreter", "imports", "cuda_init", "model_load"}
    assert measured["total_s"] > 0 and "torch" in measured["heaviest_imports_s"]


def test_the_floor_probe_loads_the_files_of_every_folder(tiny_llm_dir, tmp_path):
    other = tmp_path / "vae"
    other.mkdir()
    (other / "diffusion_pytorch_model.safetensors").write_bytes(
        next(tiny_llm_dir.rglob("*.safetensors")).read_bytes())
    measured = cold_start.probe(["floor", str(tiny_llm_dir), str(other)], dict(os.environ))
    assert measured["files"] == 2


def test_weight_folders_are_the_existing_folders_the_env_names(tmp_path):
    (tmp_path / "model").mkdir()
    env = {"MODEL_PATH": str(tmp_path / "model"), "VAE_PATH": str(tmp_path / "absent"), "REFINER_PATH": ""}
    assert cold_start.weight_folders(env) == [str(tmp_path / "model")]


def test_evict_drops_every_file_of_the_folders_and_skips_missing_ones(tiny_llm_dir, tmp_path):
    files = sum(1 for f in tiny_llm_dir.rglob("*") if f.is_file())
    assert cold_start.evict([str(tiny_llm_dir), str(tmp_path / "absent")]) == files


def test_figures_compare_each_phase_with_the_floors_and_the_prefetch_with_none():
    split = {"interpreter": 0.05, "imports": 3.0, "cuda_init": 0.0, "model_load": 0.5, "job_loop_import": 0.0,
             "first_job": 0.2}
    measured = {"floor": {"total_s": 1.0, "split_s": {"interpreter": 0.05, "imports": 0.9, "cuda_init": 0.0,
                                                     "model_load": 0.05}},
                "worker": {"total_s": 4.0, "split_s": split},
                "worker_without_prefetch": {"total_s": 5.0, "split_s": split}}
    found = {f.measure: f for f in cold_start.figures("llm-hf", measured)}
    assert found["llm-hf: start to first job done"].ratio == 4.0
    assert found["llm-hf: start to first job done"].met is False
    assert found["llm-hf: imports (all, lazy included)"].baseline == 0.9
    assert found["llm-hf: weights / engine start (imports excluded)"].ratio == 10.0
    assert found["llm-hf: first job (imports excluded)"].baseline is None
    assert found["llm-hf: start to first job done, weights prefetch on"].ratio == 0.8


def test_a_worker_with_an_engine_baseline_is_held_to_it_not_to_the_weights_floor():
    split = {"interpreter": 0.05, "imports": 12.0, "model_load": 2.0, "job_loop_import": 0.1, "first_job": 0.1}
    measured = {"floor": {"total_s": 2.0, "split_s": {"imports": 1.0, "model_load": 0.1}},
                "worker": {"total_s": 14.0, "split_s": split},
                "engine": {"total_s": 12.5, "split_s": {"interpreter": 0.05, "imports": 10.0, "model_load": 2.0,
                                                        "first_job": 0.1}}}
    found = {f.measure: f for f in cold_start.figures("llm-vllm", measured)}
    assert found["llm-vllm: start to first job done"].target is None
    against = found["llm-vllm: start to first job done, against the raw engine"]
    assert (against.baseline, against.ratio, against.met) == (12.5, 14.0 / 12.5, False)
    assert found["llm-vllm: imports, against the raw engine"].ratio == 1.2
    assert found["llm-vllm: engine start (imports excluded), against the raw engine"].ratio == 1.0


def test_the_engine_probe_runs_a_workers_raw_engine_phase_by_phase(tmp_path):
    module = tmp_path / "fake_engine.py"
    module.write_text("def cold_start(job, mark):\n"
                      "    times = {'imports': mark('imports')}\n"
                      "    times['model_load'] = mark('model_load')\n"
                      "    times['first_job'] = mark('first_job')\n"
                      "    assert job == {'prompt': 'Hi', 'max_tokens': 2}\n"
                      "    times['end'] = mark('end')\n"
                      "    return times\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    measured = cold_start.probe(["engine", "fake_engine:cold_start", '{"prompt": "Hi", "max_tokens": 2}'], env)
    assert set(measured["phases_s"]) == {"interpreter", "imports", "model_load", "first_job"}
    assert measured["total_s"] > 0


def test_ready_is_measured_from_the_start_command_to_the_first_job_take():
    # ready_s raises unless the real `python -m worker_progress_demo` reached the SDK's job take (single or batch).
    figure = cold_start.ready_figure("progress-demo")
    assert figure.value > 0 and figure.baseline > 0 and figure.baseline_name == "import runpod"
    assert figure.target is not None and figure.target.bound == cold_start.READY_TARGET_S


def test_the_image_mode_runs_the_images_own_command_with_runpods_variables_by_name():
    from devkit.bench import cold_start_ready

    env = {**cold_start_ready.runpod_env("http://127.0.0.1:9"), "HOME": "/root"}
    command = cold_start_ready.image_command("registry/workers/progress-demo@sha256:abc", env)
    assert command[:3] == ["docker", "run", "--rm"] and command[-1] == "registry/workers/progress-demo@sha256:abc"
    assert "--network" in command and command[command.index("--network") + 1] == "host"
    passed = [command[i + 1] for i, arg in enumerate(command) if arg == "--env"]
    assert passed == sorted(cold_start_ready.runpod_env("x"))  # names only: values stay out of the command line
