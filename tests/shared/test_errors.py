"""shared.errors: the error tree, every code path of the envelope, its reader, and exception mapping."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from shared import errors
from shared.errors import (
    BadInput,
    DeviceFailure,
    FieldProblem,
    GpuOutOfMemory,
    InputTooLarge,
    JobTimeout,
    NotReady,
    OutputTooLarge,
    UploadFailed,
    WorkerError,
    classify,
    read_envelope,
)


def envelope(result: dict) -> dict:
    assert isinstance(result["error"], str), "runpod-python 299: a non-string error can show as COMPLETED"
    return json.loads(result["error"])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadInput.field("x", "bad"), "BAD_INPUT"),
        (InputTooLarge("image", 11, 10), "INPUT_TOO_LARGE"),
        (OutputTooLarge("too big"), "OUTPUT_TOO_LARGE"),
        (UploadFailed("bucket down"), "UPLOAD_FAILED"),
        (GpuOutOfMemory("oom"), "GPU_OUT_OF_MEMORY"),
        (JobTimeout("slow"), "TIMEOUT"),
        (NotReady("no model"), "NOT_READY"),
        (DeviceFailure("dead"), "DEVICE_FAILURE"),
        (WorkerError("boom"), "INTERNAL"),
    ],
)
def test_each_error_type_has_its_stable_code_in_the_envelope(error, code):
    assert error.code == code
    assert code in errors.CODES
    assert json.loads(error.to_job_error())["code"] == code


def test_codes_are_unique():
    assert len(set(errors.CODES)) == len(errors.CODES)


def _subclasses(kind):
    return {kind, *(sub for direct in kind.__subclasses__() for sub in _subclasses(direct))}


def test_every_worker_error_subclass_in_shared_is_in_the_documented_tree():
    assert {kind for kind in _subclasses(WorkerError) if kind.__module__.startswith("shared.")} == set(
        errors.ERROR_TYPES)


def test_a_workers_own_error_type_only_specialises_a_documented_one(monkeypatch):
    """A worker may narrow a documented type (llm-vllm's EngineSettingsError is a StartupError) but never adds a
    code, status or retry rule of its own: the README's table stays the whole contract."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "workers" / "llm-vllm"))
    importlib.import_module("worker_llm_vllm.settings")  # a worker's own type exists whatever ran before
    own = {kind for kind in _subclasses(WorkerError) if not kind.__module__.startswith("shared.")}
    assert own, "no worker-defined error type was found to check"
    for kind in own:
        documented = next(base for base in kind.__mro__ if base in errors.ERROR_TYPES)
        assert (kind.code, kind.http_status, kind.retryable) == (
            documented.code, documented.http_status, documented.retryable), kind


def test_internal_is_not_retryable_and_every_retryable_code_is_a_5xx():
    # README, "Errors": RunPod never retries a FAILED job, so the flag is the client's only guide; an
    # unanticipated failure most likely repeats on the same input.
    assert (WorkerError.code, WorkerError.retryable, WorkerError.http_status) == ("INTERNAL", False, 500)
    assert json.loads(WorkerError("boom").to_job_error())["retryable"] is False
    assert all(500 <= kind.http_status < 600 for kind in errors.ERROR_TYPES if kind.retryable)


def test_types_sharing_a_code_share_its_http_status():
    for kind in errors.ERROR_TYPES:
        assert errors.HTTP_STATUS[kind.code] == kind.http_status


def test_read_envelope_reads_back_what_the_worker_wrote():
    problems = [FieldProblem(f"f{i}", "bad", i) for i in range(errors.MAX_LISTED_PROBLEMS + 3)]
    read = read_envelope(BadInput(problems).to_job_error())
    assert (read.code, read.retryable, read.more_problems) == ("BAD_INPUT", False, 3)
    assert read.problems == tuple(problems[: errors.MAX_LISTED_PROBLEMS])
    assert read_envelope(GpuOutOfMemory("oom").envelope()).retryable is True


@pytest.mark.parametrize("error", ["plain text", '{"error_type": "ValueError", "error_message": "x"}', "[1]",
                                   '{"code": 1, "message": "m"}', None])
def test_read_envelope_is_none_for_anything_but_an_envelope(error):
    assert read_envelope(error) is None


def test_an_engine_mapper_types_its_engine_exceptions_and_leaves_the_rest():
    class EngineDied(Exception):
        pass

    def engine_error(exc):
        return DeviceFailure("engine died") if isinstance(exc, EngineDied) else None

    assert classify(EngineDied(), engine_error).code == "DEVICE_FAILURE"
    assert classify(TimeoutError(), engine_error).code == "TIMEOUT"
    assert classify(BadInput.field("x", "bad"), engine_error).code == "BAD_INPUT"


def test_bad_input_lists_every_problem_with_field_and_reason():
    error = BadInput([FieldProblem("a", "too small", 0), FieldProblem("b.0", "unknown field")])
    body = error.envelope()
    assert body["problems"] == [
        {"field": "a", "reason": "too small", "value": 0},
        {"field": "b.0", "reason": "unknown field"},
    ]
    assert "a: too small" in body["message"] and "b.0: unknown field" in body["message"]


def test_bad_input_without_problems_is_refused():
    with pytest.raises(ValueError):
        BadInput([])


def test_long_offending_values_are_truncated_in_the_envelope():
    error = BadInput.field("prompt", "too long", "x" * 10_000)
    assert len(error.envelope()["problems"][0]["value"]) < 300


def test_input_too_large_names_field_size_and_limit():
    body = InputTooLarge("image", 2048, 1024).envelope()
    assert body["problems"][0]["field"] == "image"
    assert "2048" in body["message"] and "1024" in body["message"]


def test_unexpected_exception_becomes_internal_with_a_safe_message():
    error = classify(KeyError("secret-internal-detail"))
    assert error.code == "INTERNAL"
    assert "secret-internal-detail" not in error.message


def test_cuda_oom_becomes_gpu_out_of_memory_and_frees_the_cache(monkeypatch):
    freed = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append(True))
    error = classify(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert error.code == "GPU_OUT_OF_MEMORY" and error.retryable
    assert freed == [True]


def test_accelerator_error_asks_for_the_worker_to_be_replaced():
    error = classify(torch.AcceleratorError("device-side assert"))
    assert error.code == "DEVICE_FAILURE" and error.replace_worker


def test_timeout_error_becomes_timeout():
    assert classify(TimeoutError()).code == "TIMEOUT"


def test_a_refusal_lists_at_most_max_listed_problems_and_counts_the_rest():
    error = BadInput([FieldProblem(f"field{i}", "unknown field") for i in range(5_000)])
    body = envelope({"error": error.to_job_error()})
    assert len(body["problems"]) == errors.MAX_LISTED_PROBLEMS
    assert body["more_problems"] == 5_000 - errors.MAX_LISTED_PROBLEMS
    assert body["message"].endswith(f"; and {5_000 - errors.MAX_LISTED_PROBLEMS} more")
    assert len(body["message"]) <= errors.MAX_MESSAGE_CHARS + 3


@pytest.mark.parametrize(
    ("value", "echoed"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (10**5000, "an integer of 16610 bits"),
        ("x" * 10_000, "x" * errors.MAX_ECHO_CHARS + "..."),
        ("a\ud800b", "a?b"),
        ({"a": "dict"}, None),
        (2.5, 2.5),
        (True, True),
    ],
    ids=["nan", "inf", "-inf", "huge-int", "long-str", "surrogate", "dict", "float", "bool"],
)
def test_an_echoed_value_is_cut_to_a_bounded_strict_json_form(value, echoed):
    body = envelope({"error": BadInput.field("f", "bad", value).to_job_error()})
    assert body["problems"][0].get("value") == echoed


def test_the_envelope_is_bounded_strict_ascii_json_whatever_the_problems_hold():
    huge = "\U0001f600" * 100_000  # each character becomes 12 ASCII characters in JSON
    problems = [FieldProblem(huge + "\ud800", huge, huge) for _ in range(50)]
    text = BadInput(problems).to_job_error()
    assert len(text) <= errors.MAX_ENVELOPE_CHARS
    assert text.isascii()
    body = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the envelope"))
    assert body["problems"] and body["more_problems"] == 50 - len(body["problems"])
    assert len(body["problems"][0]["field"]) <= errors.MAX_FIELD_CHARS + 3


def test_a_long_message_of_any_error_is_cut():
    body = json.loads(WorkerError("m" * 100_000).to_job_error())
    assert len(body["message"]) == errors.MAX_MESSAGE_CHARS + 3


def test_the_message_is_bounded_where_the_error_is_made_so_its_log_line_is_too():
    error = BadInput([FieldProblem("k" * 70_000, "unknown field") for _ in range(30)])
    assert len(error.message) <= errors.MAX_MESSAGE_CHARS + 3
    assert str(error) == error.message
