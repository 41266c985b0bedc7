"""endpoint.toml: profiles as presets, overrides, the checks that keep bad or secret config out."""

from __future__ import annotations

import re

import pytest

from devkit import endpoint_config
from devkit.endpoint_config import PROFILES, ConfigError, for_worker, load, worker_names

BASE = """
name = "demo"
profile = "{profile}"
[gpu]
types = ["NVIDIA GeForce RTX 4090"]
"""


@pytest.fixture
def write(tmp_path):
    def write(text: str):
        path = tmp_path / "endpoint.toml"
        path.write_text(text)
        return path

    return write


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_named_profile_is_a_preset_for_the_scaling(write, profile):
    config = load(write(BASE.format(profile=profile)))
    assert config.effective_scaling() == PROFILES[profile]


def test_the_seed_profiles_keep_their_meaning():
    assert PROFILES["latency-sensitive"].min_workers >= 1  # a warm worker: no cold start on the first job
    assert PROFILES["development"].min_workers == PROFILES["cost-optimised"].min_workers == 0
    assert PROFILES["cost-optimised"].execution_timeout > PROFILES["latency-sensitive"].execution_timeout


def test_the_profiles_carry_the_seeds_numbers():
    # The seed design doc, "Example Configurations" (min, max, idle s, execution timeout s).
    numbers = {name: (p.min_workers, p.max_workers, p.idle_timeout, p.execution_timeout)
               for name, p in PROFILES.items()}
    assert numbers == {"development": (0, 1, 30, 300), "latency-sensitive": (2, 10, 120, 60),
                       "cost-optimised": (0, 5, 60, 300)}
    assert PROFILES["cost-optimised"].flashboot is True


def test_a_scaling_override_changes_one_knob_and_keeps_the_rest(write):
    config = load(write(BASE.format(profile="cost-optimised") + "[scaling]\nmax_workers = 7\n"))
    assert config.effective_scaling() == PROFILES["cost-optimised"].model_copy(update={"max_workers": 7})


def test_min_workers_above_max_workers_is_refused_with_the_file_named(write):
    path = write(BASE.format(profile="latency-sensitive") + "[scaling]\nmax_workers = 0\n")
    with pytest.raises(ConfigError, match="max_workers"):
        load(path)
    path = write(BASE.format(profile="development") + "[scaling]\nmin_workers = 2\n")
    with pytest.raises(ConfigError, match=r"endpoint.toml.*min_workers \(2\) is above max_workers \(1\)"):
        load(path)


def test_an_unknown_scaling_knob_is_refused(write):
    with pytest.raises(ConfigError, match="max_wrkers"):
        load(write(BASE.format(profile="development") + "[scaling]\nmax_wrkers = 3\n"))


@pytest.mark.parametrize(("table", "extra", "field"), [
    ("[gpu]", "typs = []", "gpu.typs"),
    ("[container]", "disk = 20", "container.disk"),
    ("[placement]", "datacenters = []", "placement.datacenters"),
    ("[scaler]", "kind = 'QUEUE_DELAY'", "scaler.kind"),
    ("", "template_id = 'x'", "template_id"),
])
def test_an_unknown_key_in_any_table_is_refused_naming_file_and_field(write, table, extra, field):
    text = BASE.format(profile="development")
    text = text.replace("[gpu]", f"[gpu]\n{extra}") if table == "[gpu]" else (
        f"{extra}\n{text}" if not table else f"{text}{table}\n{extra}\n")
    with pytest.raises(ConfigError, match=rf"endpoint\.toml: {re.escape(field)}: Extra inputs are not permitted"):
        load(write(text))


@pytest.mark.parametrize(("extra", "message"), [
    ("[gpu]\ncount = 9", "gpu.count: Input should be less than or equal to 8"),
    ("[container]\ndisk_gb = 2", "container.disk_gb: Input should be greater than or equal to 5"),
    ("[scaler]\nvalue = 0.1", "scaler: Value error, value: QUEUE_DELAY takes 0.5 to 3600 seconds, not 0.1"),
    ("[scaler]\ntype = 'REQUEST_COUNT'\nvalue = 2.5", "REQUEST_COUNT takes a whole 1 to 1000, not 2.5"),
    ("[scaling]\nidle_timeout = 4000", "scaling.idle_timeout: Input should be less than or equal to 3600"),
    ("[gpu]\nmin_cuda_version = '12'", "gpu.min_cuda_version: String should match pattern"),
])
def test_an_out_of_range_value_is_refused_naming_the_field(write, extra, message):
    text = BASE.format(profile="development")
    if extra.startswith("[gpu]"):
        text = text.replace("[gpu]", extra)
    else:
        text += extra + "\n"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(write(text))


def test_a_cuda_set_and_a_cuda_floor_exclude_each_other(write):
    text = BASE.format(profile="development").replace(
        "[gpu]", "[gpu]\nmin_cuda_version = '12.8'\nallowed_cuda_versions = ['12.8']")
    with pytest.raises(ConfigError, match="allowed_cuda_versions and min_cuda_version exclude each other"):
        load(write(text))


def test_the_cuda_floor_defaults_to_the_cuda_version_of_the_workers_base_image(tmp_path, monkeypatch):
    monkeypatch.setattr(endpoint_config, "WORKERS_DIR", tmp_path)
    (tmp_path / "demo").mkdir()
    path = tmp_path / "demo" / "endpoint.toml"
    path.write_text(BASE.format(profile="development"))
    assert load(path).min_cuda_version() is None  # no Dockerfile, no CUDA named: no constraint
    (tmp_path / "demo" / "Dockerfile").write_text("ARG BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04\n")
    assert load(path).min_cuda_version() == "12.8"
    (tmp_path / "demo" / "Dockerfile").write_text("ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime\n")
    assert load(path).min_cuda_version() == "12.8"
    path.write_text(BASE.format(profile="development").replace("[gpu]", "[gpu]\nallowed_cuda_versions = ['12.9']"))
    assert load(path).min_cuda_version() is None  # an exact set replaces the floor


def test_the_repo_workers_cuda_floors(monkeypatch):
    monkeypatch.setattr(endpoint_config, "WORKERS_DIR", endpoint_config.REPO / "workers")
    floors = {name: for_worker(name).min_cuda_version() for name in worker_names()}
    assert floors == {"llm-hf": "12.8", "llm-vllm": "12.8", "progress-demo": None, "sdxl": "12.8"}


def test_an_unknown_profile_is_refused(write):
    with pytest.raises(ConfigError, match="profile"):
        load(write(BASE.format(profile="turbo")))


def test_a_secret_value_in_env_is_refused(write):
    with pytest.raises(ConfigError, match="HF_TOKEN: looks like a secret"):
        load(write(BASE.format(profile="development") + '[env]\nHF_TOKEN = "hf_abc123"\n'))


def test_a_runpod_secret_reference_in_env_is_accepted(write):
    config = load(write(BASE.format(profile="development") + '[env]\nHF_TOKEN = "{{ RUNPOD_SECRET_hf }}"\n'))
    assert config.env == {"HF_TOKEN": "{{ RUNPOD_SECRET_hf }}"}


def test_the_image_defaults_to_registry_name_and_tag(write, monkeypatch):
    config = load(write(BASE.format(profile="development")))
    monkeypatch.setenv("REGISTRY", "ghcr.io/acme/")
    monkeypatch.setenv("TAG", "abc123")
    assert config.image_ref() == "ghcr.io/acme/demo:abc123"
    assert config.image_ref("docker.io/me", "v2") == "docker.io/me/demo:v2"
    monkeypatch.delenv("TAG")
    assert config.image_ref() == "ghcr.io/acme/demo:dev"  # docker-bake.hcl's default TAG


def test_an_image_named_in_the_file_wins_and_no_registry_is_an_error(write, monkeypatch):
    monkeypatch.delenv("REGISTRY", raising=False)
    with pytest.raises(ConfigError, match=r"set `image` in endpoint\.toml or the REGISTRY env var"):
        load(write(BASE.format(profile="development"))).image_ref()
    pinned = load(write('image = "docker.io/x/y@sha256:00"\n' + BASE.format(profile="development")))
    assert pinned.image_ref("ignored") == "docker.io/x/y@sha256:00"


def test_a_broken_file_is_a_config_error_naming_it(write):
    path = write("name = \n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load(path)


def test_every_committed_worker_config_loads(monkeypatch):
    monkeypatch.setattr(endpoint_config, "WORKERS_DIR", endpoint_config.REPO / "workers")
    assert "progress-demo" in worker_names()
    for name in worker_names():
        config = for_worker(name)
        assert config.name == name  # the folder and the endpoint name agree
        config.effective_scaling()
