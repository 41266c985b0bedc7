"""shared.settings: bounded numbers and baked folders from environment variables, refused as StartupError."""

from __future__ import annotations

import pytest

from shared import settings
from shared.errors import NotReady, StartupError


def test_unset_or_blank_number_gives_the_default(monkeypatch):
    monkeypatch.delenv("KNOB", raising=False)
    assert settings.number("KNOB", 7, minimum=1) == 7
    monkeypatch.setenv("KNOB", "  ")
    assert settings.number("KNOB", 7, minimum=1) == 7
    assert settings.number("KNOB", None, minimum=1) is None


def test_number_within_bounds_is_parsed_as_its_kind(monkeypatch):
    monkeypatch.setenv("KNOB", "12")
    assert settings.number("KNOB", 1, minimum=1, maximum=12) == 12
    monkeypatch.setenv("KNOB", "0.25")
    assert settings.number("KNOB", 1.0, minimum=0.0, maximum=1.0, kind=float) == 0.25


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("0", int, "KNOB must be a whole number between 1 and 10, got '0'"),
        ("11", int, "KNOB must be a whole number between 1 and 10, got '11'"),
        ("1.5", int, "KNOB must be a whole number between 1 and 10, got '1.5'"),
        ("many", int, "KNOB must be a whole number between 1 and 10, got 'many'"),
        ("nan", float, "KNOB must be a number between 1 and 10, got 'nan'"),
        ("inf", float, "KNOB must be a number between 1 and 10, got 'inf'"),
    ],
)
def test_bad_number_names_the_variable_its_bounds_and_the_value(monkeypatch, raw, kind, expected):
    monkeypatch.setenv("KNOB", raw)
    with pytest.raises(StartupError) as info:
        settings.number("KNOB", 1, minimum=1, maximum=10, kind=kind)
    assert info.value.cause == expected
    assert "set KNOB to" in info.value.fix and "between 1 and 10" in info.value.fix
    assert info.value.code == "NOT_READY" and info.value.retryable is False


def test_number_without_maximum_says_its_minimum(monkeypatch):
    monkeypatch.setenv("KNOB", "-1")
    with pytest.raises(StartupError, match="KNOB must be a whole number >= 1, got '-1'"):
        settings.number("KNOB", 1, minimum=1)


def test_required_folder_unset_is_a_startup_error_saying_what_to_set(monkeypatch):
    monkeypatch.delenv("MODEL_PATH", raising=False)
    with pytest.raises(StartupError, match="MODEL_PATH is not set; set it to the folder") as info:
        settings.folder("MODEL_PATH")
    assert isinstance(info.value, NotReady)


def test_optional_folder_unset_is_none(monkeypatch):
    monkeypatch.setenv("VAE_PATH", "")
    assert settings.folder("VAE_PATH", required=False) is None


def test_folder_that_is_missing_or_lacks_its_file_is_a_startup_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "absent"))
    with pytest.raises(StartupError, match=r"is not a folder.*bake the weights into the image"):
        settings.folder("MODEL_PATH")
    monkeypatch.setenv("MODEL_PATH", str(tmp_path))
    with pytest.raises(StartupError, match=r"holds no model \(no config.json\)"):
        settings.folder("MODEL_PATH", holds="config.json")
    (tmp_path / "config.json").write_text("{}")
    assert settings.folder("MODEL_PATH", holds="config.json") == tmp_path
