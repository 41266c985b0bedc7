"""shared.json_limits: strict JSON and the input-shape limits, each refusal naming its rule, and guard's use of them."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared import json_limits
from shared.guard import guard
from shared.json_limits import (
    MAX_ARRAY_ITEMS,
    MAX_DEPTH,
    MAX_KEY_CHARS,
    MAX_OBJECT_KEYS,
    MAX_STRING_CHARS,
    InvalidJson,
    first_problem,
)


def deep(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "path", "named"),
    [
        ({"t": float("nan")}, "t", "nan"),
        ({"t": [1.0, float("inf")]}, "t.1", "inf"),
        ({"t": float("-inf")}, "t", "-inf"),
        ({"p": "ok \ud800"}, "p", "U+D800"),
        ({"\udc00": 1}, "\ufffd", "U+DC00"),
        ({"a": deep(MAX_DEPTH)}, "a" + ".0" * (MAX_DEPTH - 1), "MAX_DEPTH"),
        ({"k" * (MAX_KEY_CHARS + 1): 1}, "k" * 32 + "...", "MAX_KEY_CHARS"),
        ({str(i): 0 for i in range(MAX_OBJECT_KEYS + 1)}, "", "MAX_OBJECT_KEYS"),
        ({"ids": [0] * (MAX_ARRAY_ITEMS + 1)}, "ids", "MAX_ARRAY_ITEMS"),
        ({"s": "x" * (MAX_STRING_CHARS + 1)}, "s", "MAX_STRING_CHARS"),
        ({"b": b"bytes"}, "b", "not a JSON value"),
    ],
)
def test_each_rule_is_refused_at_its_path_naming_the_rule(value, path, named):
    problem = first_problem(value)
    assert problem is not None
    assert problem.path == path
    assert named in problem.reason


def test_values_at_every_limit_pass():
    at_limits = {
        "deep": deep(MAX_DEPTH - 1),  # plus the input object itself: MAX_DEPTH levels
        "k" * MAX_KEY_CHARS: "x" * 1_000,
        "ids": list(range(1_000)),
        "text": "h\u00e9llo \U0001f600",
        "numbers": [0, -1.5e308, 2**80, True, None],
    }
    assert first_problem(at_limits) is None
    assert first_problem({str(i): 0 for i in range(MAX_OBJECT_KEYS)}) is None


def test_a_value_ten_thousand_levels_deep_is_refused_without_recursion():
    problem = first_problem(deep(10_000))
    assert problem is not None and "MAX_DEPTH" in problem.reason


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"a": NaN}', "NaN"),
        ('{"a": Infinity}', "Infinity"),
        ('[-Infinity]', "-Infinity"),
        ("[" * 10_000 + "]" * 10_000, "MAX_DEPTH"),
        ('{"a": 1,}', "not valid JSON"),
        (b'{"a": "\xff"}', "UTF-8"),
    ],
)
def test_loads_refuses_what_is_not_strict_json_with_the_reason(text, named):
    with pytest.raises(InvalidJson, match=named):
        json_limits.loads(text)


def test_loads_reads_strict_json():
    assert json_limits.loads(b'{"a": [1, 2.5, "\\u00e9", null, true]}') == {"a": [1, 2.5, "\u00e9", None, True]}


def test_every_limit_is_listed_by_name():
    assert json_limits.LIMITS == {
        "MAX_DEPTH": MAX_DEPTH, "MAX_OBJECT_KEYS": MAX_OBJECT_KEYS, "MAX_ARRAY_ITEMS": MAX_ARRAY_ITEMS,
        "MAX_KEY_CHARS": MAX_KEY_CHARS, "MAX_STRING_CHARS": MAX_STRING_CHARS,
    }


# --- in the worker: guard refuses before the handler runs ------------------------------------------------


def _never_called(job):
    raise AssertionError("the handler must not see a hostile input")


def _never_called_gen(job):
    raise AssertionError("the handler must not see a hostile input")
    yield


@pytest.mark.parametrize("handler", [_never_called, _never_called_gen])
@pytest.mark.parametrize("hostile", [{"x": float("nan")}, {"prompt": "\ud800"}, deep(10_000)])
def test_guard_fails_a_hostile_input_as_bad_input_naming_the_rule(handler, hostile):
    async def drive():
        result = guard(handler)({"id": "j", "input": hostile})
        if hasattr(result, "__aiter__"):
            return [chunk async for chunk in result]
        return [await result]

    (result,) = asyncio.run(drive())
    envelope = json.loads(result["error"])
    assert envelope["code"] == "BAD_INPUT"
    json.dumps(envelope, allow_nan=False).encode("utf-8")
    reason = envelope["problems"][0]["reason"]
    assert any(word in reason for word in ("RFC 8259", "MAX_DEPTH"))


def test_the_readme_limits_tables_match_the_code(repo):
    from shared import errors

    readme = (repo / "README.md").read_text()
    bounds = {**json_limits.LIMITS, **{name: getattr(errors, name) for name in (
        "MAX_LISTED_PROBLEMS", "MAX_FIELD_CHARS", "MAX_REASON_CHARS", "MAX_ECHO_CHARS", "MAX_MESSAGE_CHARS",
        "MAX_ENVELOPE_CHARS")}}
    for name, value in bounds.items():
        assert f"| `{name}` | {value:,} |" in readme, name
