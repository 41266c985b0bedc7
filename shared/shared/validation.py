"""Inputs declared once, as typed pydantic models; parsing into them, their JSON Schema and their docs.

A worker declares ``class Input(WorkerInput)`` with ``Field(ge=, le=, description=)``; everything a
client sees about the input (errors, schema, the table in the worker's README) comes from that class.
Booleans are declared ``StrictBool``: pydantic's lax mode would read ``"true"``, ``1`` or ``"yes"`` as
True, where OpenAI's API (and our schema, ``"type": "boolean"``) accepts only ``true`` and ``false``.
"""

from __future__ import annotations

import json
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import BadInput, FieldProblem

Model = TypeVar("Model", bound=BaseModel)


class WorkerInput(BaseModel):
    """Base of every worker input: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse(model: type[Model], data: Any, *, prefix: str = "") -> Model:
    """Validate ``data`` into ``model`` or raise BadInput listing *every* offending field."""
    if not isinstance(data, dict):
        raise BadInput.field(prefix or "input", f"must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadInput(problems_from(exc, prefix=prefix)) from None


def problems_from(exc: ValidationError, *, prefix: str = "") -> list[FieldProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"])
        field = ".".join(part for part in (prefix, path) if part) or "input"
        value = err.get("input") if err["type"] != "missing" else None
        problems.append(FieldProblem(field, _reason(err), _echo(value)))
    return problems


def _reason(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    message = err["msg"]
    return message.removeprefix("Value error, ")


def _echo(value: Any) -> Any:
    """The offending value, when it is small and JSON-safe enough to help the user."""
    if isinstance(value, (str, int, float, bool)):
        return value
    return None


def loose_boolean_problems(model: type[BaseModel], data: Any, *, prefix: str = "") -> list[FieldProblem]:
    """The fields of ``data`` that ``model`` declares as (optional) booleans but that hold something else.

    For request models that are not ours (vLLM's), whose ``bool`` fields accept ``"true"``, ``1`` or
    ``"yes"``: checked before them, so ``"stream": "true"`` is refused rather than read as a stream.
    Nested models (``stream_options``) are checked too.
    """
    if not isinstance(data, dict):
        return []
    problems = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in data:
            continue
        value, path = data[key], ".".join(part for part in (prefix, key) if part)
        options = typing.get_args(field.annotation) or (field.annotation,)
        if bool in options and not isinstance(value, bool) and not (value is None and type(None) in options):
            problems.append(FieldProblem(path, "must be a boolean (true or false)", value))
        nested = [option for option in options if isinstance(option, type) and issubclass(option, BaseModel)]
        if len(nested) == 1:
            problems += loose_boolean_problems(nested[0], value, prefix=path)
    return problems


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def markdown_table(model: type[BaseModel]) -> str:
    """The input reference of a worker's README, generated from the model."""
    schema = json_schema(model)
    required = set(schema.get("required", []))
    rows = ["| field | type | default | limits | description |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        default = "required" if name in required else json.dumps(prop.get("default"))
        rows.append(
            f"| `{name}` | {_type_of(prop)} | {default} | {_limits_of(prop)} | {prop.get('description', '')} |"
        )
    return "\n".join(rows)


def _type_of(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_of(option) for option in prop["anyOf"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if prop.get("type") == "array" and "items" in prop:
        return f"list of {_type_of(prop['items'])}"
    return prop.get("type", "any")


_LIMIT_WORDS = {
    "minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<",
    "minLength": "min length", "maxLength": "max length", "minItems": "min items", "maxItems": "max items",
    "multipleOf": "multiple of",
}


def _limits_of(prop: dict[str, Any]) -> str:
    limits = [f"{word} {prop[key]}" for key, word in _LIMIT_WORDS.items() if key in prop]
    for option in prop.get("anyOf", []):
        limits.extend(f"{word} {option[key]}" for key, word in _LIMIT_WORDS.items() if key in option)
    return ", ".join(limits)
