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
