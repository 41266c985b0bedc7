"""shared.prefetch: the weight files a worker declares are read in the background; nothing there fails a start."""

from __future__ import annotations

import logging

import pytest

from shared import prefetch


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"a" * 3000)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"b" * 5000)
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(prefetch, "CHUNK_BYTES", 1024)  # several reads per file


def test_weight_files_lists_every_safetensors_file_under_each_folder_once(model_folder):
    files = list(prefetch.weight_files([model_folder, model_folder / "unet"]))
    assert [f.relative_to(model_folder).as_posix() for f in files] == [
        "model.safetensors", "unet/diffusion_pytorch_model.safetensors"]


def test_weight_files_of_a_missing_folder_is_nothing(tmp_path):
    assert list(prefetch.weight_files([tmp_path / "absent"])) == []


def test_start_reads_every_file_of_the_declared_folders(model_folder, monkeypatch, small_chunks, caplog):
    monkeypatch.setenv("MODEL_PATH", str(model_folder))
    monkeypatch.delenv("VAE_PATH", raising=False)
    with caplog.at_level(logging.INFO, logger="shared.prefetch"):
        thread = prefetch.start(["MODEL_PATH", "VAE_PATH"])
        assert thread is not None and thread.daemon  # never holds the process's exit
        thread.join()
    assert "from 2 files" in caplog.text


def test_read_all_returns_the_bytes_read(model_folder, small_chunks):
    assert prefetch.read_all(list(prefetch.weight_files([model_folder])), None) == 8000


def test_read_all_stops_at_the_memory_budget(model_folder, small_chunks):
    assert prefetch.read_all(list(prefetch.weight_files([model_folder])), 2048) == 2048


def test_an_unreadable_file_is_skipped_not_raised(model_folder, tmp_path, small_chunks):
    files = [tmp_path / "gone.safetensors", *prefetch.weight_files([model_folder])]
    assert prefetch.read_all(files, None) == 8000


@pytest.mark.parametrize("value", ["", "/no/such/folder"])
def test_a_missing_or_unset_folder_starts_nothing(monkeypatch, value):
    monkeypatch.setenv("MODEL_PATH", value)
    assert prefetch.start(["MODEL_PATH"]) is None  # setup() reports the folder, not the prefetch


def test_weights_prefetch_0_turns_it_off(model_folder, monkeypatch):
    monkeypatch.setenv("MODEL_PATH", str(model_folder))
    monkeypatch.setenv(prefetch.PREFETCH_ENV, "0")
    assert prefetch.start(["MODEL_PATH"]) is None


def test_the_budget_is_a_share_of_the_memory_available():
    with open("/proc/meminfo", encoding="ascii") as lines:
        available = next(int(line.split()[1]) * 1024 for line in lines if line.startswith("MemAvailable:"))
    assert 0 < prefetch._budget() <= available * prefetch.MEMORY_SHARE * 1.5  # memory moves between the reads
