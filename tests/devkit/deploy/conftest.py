"""Deploy's tests run against devkit.deploy.standin: RunPod REST v2 on 127.0.0.1, checking every request."""

from __future__ import annotations

import pytest

from devkit.client.retry import RetryPolicy
from devkit.deploy.__main__ import main
from devkit.deploy.standin import API_KEY, RunPodV2, StandIn


@pytest.fixture(scope="session")
def _standin():
    with StandIn() as standin:
        yield standin


@pytest.fixture
def runpod(_standin, monkeypatch) -> RunPodV2:
    """The stand-in's account, emptied, with RUNPOD_API_KEY / RUNPOD_REST_URL pointing the code at it."""
    _standin.state.reset()
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    monkeypatch.setenv("RUNPOD_REST_URL", _standin.url)
    monkeypatch.setenv("REGISTRY", "docker.io/acme")
    monkeypatch.setenv("TAG", "v1")
    for name in ("LLM_HF", "LLM_VLLM", "SDXL", "DEMO", "BIG"):
        monkeypatch.delenv(f"{name}_MODEL_DIR", raising=False)
        monkeypatch.delenv(f"{name}_EXTRAS_DIR", raising=False)
    return _standin.state


@pytest.fixture
def workers_dir(tmp_path, monkeypatch):
    """Point endpoint_config at a scratch workers/ folder; returns write(name, endpoint_toml, model_toml=None)."""
    import devkit.endpoint_config as endpoint_config

    monkeypatch.setattr(endpoint_config, "WORKERS_DIR", tmp_path)

    def write(name: str, text: str, model_toml: str | None = None, dockerfile: str | None = None) -> None:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "endpoint.toml").write_text(text)
        if model_toml is not None:
            (tmp_path / name / "model.toml").write_text(model_toml)
        if dockerfile is not None:
            (tmp_path / name / "Dockerfile").write_text(dockerfile)

    return write


#: A worker of the scratch workers/ folder: two GPU types of two pools, a CUDA 12.8 base, a secret reference.
DEMO_TOML = """
name = "demo"
profile = "development"
[gpu]
types = ["NVIDIA RTX A4000", "NVIDIA GeForce RTX 4090"]
[container]
disk_gb = 12
[env]
LOG_LEVEL = "INFO"
HF_TOKEN = "{{ RUNPOD_SECRET_hf_token }}"
[scaling]
max_workers = 2
"""
CUDA_DOCKERFILE = "ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime\nFROM ${BASE_IMAGE}\n"


@pytest.fixture
def demo_toml() -> str:
    return DEMO_TOML


@pytest.fixture
def demo(workers_dir):
    """The scratch folder with the demo worker written; returns the writer, to change it."""
    workers_dir("demo", DEMO_TOML, dockerfile=CUDA_DOCKERFILE)
    return workers_dir


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def deploy(capsys, sleeps):
    """Run the deploy CLI in-process: ``deploy("deploy", "--dry-run")`` -> (exit status, stdout + stderr).
    Backoff sleeps are recorded, not slept; ``answer=`` is what undeploy's question gets."""

    def run(*argv: str, answer: str | None = None) -> tuple[int, str]:
        ask = (lambda prompt: answer) if answer is not None else None
        status = main(list(argv), retry=RetryPolicy(attempts=4, sleep=sleeps.append), ask=ask)
        out = capsys.readouterr()
        return status, out.out + out.err

    return run
