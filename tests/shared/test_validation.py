"""shared.validation: typed inputs, all-field errors, schema and generated docs."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from shared.errors import BadInput
from shared.validation import WorkerInput, json_schema, markdown_table, parse


class Message(WorkerInput):
    role: Literal["user", "assistant"]
    content: str


class Example(WorkerInput):
    steps: int = Field(10, ge=1, le=50, description="How many steps.")
    name: str = Field(description="Who.", max_length=8)
    messages: list[Message] = Field(default_factory=list, max_length=4)


def test_valid_input_gets_defaults():
    parsed = parse(Example, {"name": "ada"})
    assert parsed.steps == 10 and parsed.messages == []


def test_several_bad_fields_are_all_reported_with_paths():
    with pytest.raises(BadInput) as info:
        parse(Example, {"steps": 0, "nmae": "typo", "messages": [{"role": "robot", "content": "hi"}]})
    problems = {p.field: p for p in info.value.problems}
    assert set(problems) == {"steps", "name", "nmae", "messages.0.role"}
    assert problems["nmae"].reason == "unknown field"
    assert problems["steps"].value == 0
    assert problems["messages.0.role"].value == "robot"
    assert "required" in problems["name"].reason.lower()


def test_non_object_input_is_bad_input():
    with pytest.raises(BadInput) as info:
        parse(Example, ["not", "an", "object"])
    assert info.value.problems[0].field == "input"


def test_prefix_is_prepended_to_field_paths():
    with pytest.raises(BadInput) as info:
        parse(Example, {"name": "x", "steps": 99}, prefix="openai_input")
    assert info.value.problems[0].field == "openai_input.steps"


def test_json_schema_carries_bounds_defaults_and_refuses_extras():
    schema = json_schema(Example)
    steps = schema["properties"]["steps"]
    assert (steps["minimum"], steps["maximum"], steps["default"]) == (1, 50, 10)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name"]


def test_markdown_table_documents_every_field_with_limits():
    table = markdown_table(Example)
    assert "| `steps` | integer | 10 | >= 1, <= 50 | How many steps. |" in table
    assert "| `name` | string | required | max length 8 | Who. |" in table
    assert "`messages`" in table


def test_loose_boolean_problems_names_non_booleans_in_a_foreign_lax_model_nested_ones_too():
    from pydantic import BaseModel

    from shared.validation import loose_boolean_problems

    class Options(BaseModel):
        include_usage: bool = False

    class Foreign(BaseModel):  # lax, as vLLM's request models are
        stream: bool | None = False
        echo: bool = False
        stream_options: Options | None = None
        n: int = 1

    body = {"stream": "true", "echo": None, "stream_options": {"include_usage": 1}, "n": "2"}
    problems = loose_boolean_problems(Foreign, body, prefix="openai_input")
    assert [(p.field, p.value) for p in problems] == [
        ("openai_input.stream", "true"), ("openai_input.echo", None), ("openai_input.stream_options.include_usage", 1)]
    assert loose_boolean_problems(Foreign, {"stream": None, "echo": True, "stream_options": None}) == []
