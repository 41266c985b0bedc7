"""worker_llm_vllm.compile_cache: the compile cache goes to the network volume only when one is there, writable."""

from __future__ import annotations

from worker_llm_vllm import compile_cache


def test_an_attached_volume_holds_the_cache(tmp_path):
    env: dict[str, str] = {}
    assert compile_cache.place(env, volume=tmp_path) == str(tmp_path / compile_cache.CACHE_FOLDER)
    assert env[compile_cache.CACHE_ENV] == str(tmp_path / compile_cache.CACHE_FOLDER)
    assert (tmp_path / compile_cache.CACHE_FOLDER).is_dir()
    assert list((tmp_path / compile_cache.CACHE_FOLDER).iterdir()) == []  # the write check leaves nothing


def test_without_a_volume_vllm_keeps_its_default(tmp_path):
    env: dict[str, str] = {}
    assert compile_cache.place(env, volume=tmp_path / "absent") is None
    assert compile_cache.CACHE_ENV not in env


def test_the_endpoints_own_setting_is_kept(tmp_path):
    env = {compile_cache.CACHE_ENV: "/elsewhere"}
    assert compile_cache.place(env, volume=tmp_path) is None
    assert env[compile_cache.CACHE_ENV] == "/elsewhere"


def test_a_volume_that_refuses_the_write_leaves_vllms_default(tmp_path):
    (tmp_path / compile_cache.CACHE_FOLDER).write_text("not a folder")  # refused as root too, unlike chmod
    env: dict[str, str] = {}
    assert compile_cache.place(env, volume=tmp_path) is None
    assert compile_cache.CACHE_ENV not in env


def test_a_nearly_full_volume_leaves_vllms_default(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_cache, "MIN_FREE_BYTES", 1 << 62)
    env: dict[str, str] = {}
    assert compile_cache.place(env, volume=tmp_path) is None
    assert compile_cache.CACHE_ENV not in env
