"""`python -m devkit.endpoint`'s API key: from RUNPOD_API_KEY, or --api-key with a warning, never printed."""

from __future__ import annotations

import shlex

from devkit.endpoint.__main__ import API_KEY_ENV, api_key_of, curl_line, parse_args


def test_the_key_comes_from_runpod_api_key(capsys):
    assert API_KEY_ENV == "RUNPOD_API_KEY"
    assert api_key_of(parse_args([]), {"RUNPOD_API_KEY": "from-env"}) == "from-env"
    assert capsys.readouterr().err == ""


def test_no_key_in_the_environment_means_no_auth():
    assert api_key_of(parse_args([]), {}) is None
    assert api_key_of(parse_args([]), {"RUNPOD_API_KEY": "  "}) is None


def test_a_command_line_key_still_works_with_a_warning_that_does_not_show_it(capsys):
    assert api_key_of(parse_args(["--api-key", "cli-secret"]), {"RUNPOD_API_KEY": "env"}) == "cli-secret"
    warning = capsys.readouterr().err
    assert "RUNPOD_API_KEY" in warning and "ps" in warning
    assert "cli-secret" not in warning


def test_the_curl_line_sends_the_key_from_the_shell_never_the_key_itself():
    args = shlex.split(curl_line("http://127.0.0.1:8000", "progress-demo", needs_key=True))
    assert "Authorization: Bearer $RUNPOD_API_KEY" in args
    assert not any("Authorization" in arg for arg in shlex.split(curl_line("http://x", "progress-demo", False)))
