"""Structured output on the native input: vLLM's constrained decoding makes even a random tiny model's text
match the constraint (a JSON schema, a regex, a list of choices)."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.vllm

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}},
          "required": ["ok", "n"], "additionalProperties": False}


def test_a_json_schema_constraint_yields_json_that_validates(run):
    [result] = run({"prompt": "JSON:", "max_tokens": 64, "seed": 1, "structured_outputs": {"json": SCHEMA}})
    value = json.loads(result["text"])
    assert set(value) == {"ok", "n"} and isinstance(value["ok"], bool) and isinstance(value["n"], int)


def test_a_choice_constraint_yields_one_of_the_choices_streamed_too(run):
    request = {"messages": [{"role": "user", "content": "Pick"}], "temperature": 1.0, "seed": 5,
               "structured_outputs": {"choice": ["yes", "no", "maybe"]}}
    [whole] = run(request)
    assert whole["text"] in ("yes", "no", "maybe")
    chunks = run({**request, "stream": True})
    assert "".join(chunk["text"] for chunk in chunks) == whole["text"]


def test_a_regex_constraint_yields_a_matching_text(run):
    [result] = run({"prompt": "Code:", "max_tokens": 16, "structured_outputs": {"regex": "[A-Z]{3}-[0-9]{2}"}})
    assert re.fullmatch("[A-Z]{3}-[0-9]{2}", result["text"])


def test_an_invalid_json_schema_is_bad_input_naming_it(fail):
    error = fail({"prompt": "JSON:", "structured_outputs": {"json": {"type": "nonsense"}}})
    assert error["code"] == "BAD_INPUT"
    assert [p["field"] for p in error["problems"]] == ["structured_outputs.json"], error


def test_two_constraints_at_once_are_refused(fail):
    error = fail({"prompt": "x", "structured_outputs": {"regex": "a", "choice": ["a"]}})
    assert error["code"] == "BAD_INPUT" and error["problems"][0]["field"] == "structured_outputs"
