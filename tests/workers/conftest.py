"""Property-based hostile inputs shared by every worker's tests (issue 19): jobs generated from the worker's own
JSON Schema (hypothesis-jsonschema), then spoilt with what a hostile client sends, and the checks every answer
must pass whatever the input.

`hostile_budget` runs each property twice over: a few derandomized examples in every ``make test``, and a long
random run behind the ``fuzz`` marker (``pytest -m fuzz tests/workers``).
"""

from __future__ import annotations

import copy
import json
import math
import types
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from shared import errors, json_limits

#: Examples per property in the default run, and in the ``fuzz`` run.
QUICK_EXAMPLES = 12
FUZZ_EXAMPLES = 400

_NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
_SURROGATES = st.builds(lambda head, lone, tail: head + lone + tail, st.text(max_size=4),
                        st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]), st.text(max_size=4))
_WRONG_TYPES = st.sampled_from(["true", "yes", 1, 0, -1, None, "", [], {}, 2**64, 10**400, 1e308, -0.0, [None]])
#: Field names a hostile client sends: unknown, too long to echo, not valid Unicode.
_NAMES = st.one_of(st.sampled_from(["colour", "k" * 70_000, "k" * (json_limits.MAX_KEY_CHARS + 1), "\ud800"]),
                   st.text(max_size=12))


def _nested(levels: int, as_object: bool) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = {"a": value} if as_object else [value]
    return value


_DEEP = st.builds(_nested, st.integers(2, 3 * json_limits.MAX_DEPTH) | st.just(10_000), st.booleans())
_HUGE = st.sampled_from(["huge string", "huge list", "many keys", "very long list"]).map(
    lambda kind: {
        "huge string": lambda: "x" * 300_000,
        "huge list": lambda: [1.5] * 20_000,
        "many keys": lambda: {f"k{i}": i for i in range(json_limits.MAX_OBJECT_KEYS + 1)},
        "very long list": lambda: [0] * (json_limits.MAX_ARRAY_ITEMS + 1),
    }[kind]()
)
HOSTILE_VALUES = st.one_of(_NON_FINITE, _SURROGATES, _WRONG_TYPES, _DEEP, _HUGE)


def openai_request_fields(route: str) -> set[str]:
    """The fields of an OpenAI request to ``route`` as the official ``openai`` client sends them (its request
    parameters, ``stream`` included), plus the shared sampling fields (``top_k``, ``min_tokens``, ...) that
    clients send with ``extra_body`` to vLLM-compatible servers."""
    from openai.types import completion_create_params
    from openai.types.chat import completion_create_params as chat_create_params

    from shared.llm.inputs import Sampling
    from shared.llm.openai import CHAT_ROUTE

    params = (chat_create_params if route == CHAT_ROUTE else completion_create_params).CompletionCreateParamsStreaming
    return set(params.__required_keys__ | params.__optional_keys__ | Sampling.model_fields.keys())


def restricted(schema: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """``schema`` with only the ``fields`` it has among its properties (and its required ones among them): valid
    instances carry no other field (`inputs` spoils them with unknown ones)."""
    schema = copy.deepcopy(schema)
    schema["properties"] = {name: prop for name, prop in schema["properties"].items() if name in fields}
    schema["additionalProperties"] = False
    schema["required"] = [name for name in schema.get("required", []) if name in fields]
    return schema


def capped(schema: dict[str, Any], caps: dict[str, dict[str, Any]], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``schema`` with tighter bounds on the fields that cost time (tokens, pixels, steps), so a quick run stays
    quick; each cap applies to every non-null branch of the field. ``required`` fields are always generated."""
    schema = copy.deepcopy(schema)
    for name, overrides in caps.items():
        field = schema["properties"][name]
        for branch in field.get("anyOf", [field]):
            if branch.get("type") != "null":
                branch.update(overrides)
    schema["required"] = sorted(set(schema.get("required", [])) | set(required))
    return schema


@st.composite
def _spoilt(draw, valid: st.SearchStrategy[dict[str, Any]], fields: list[str]) -> Any:
    """A valid instance with one hostile change: a field's value, an extra field, thousands of unknown fields,
    or the whole input replaced."""
    instance = dict(draw(valid))
    how = draw(st.sampled_from(["field", "extra field", "unknown fields", "whole input"]))
    if how == "field":
        instance[draw(st.sampled_from(fields))] = draw(HOSTILE_VALUES)
    elif how == "extra field":
        instance[draw(_NAMES)] = draw(HOSTILE_VALUES | st.integers())
    elif how == "unknown fields":
        instance.update({f"unknown_{i}": i for i in range(draw(st.integers(30, 5_000)))})
    else:
        return draw(HOSTILE_VALUES)
    return instance


def inputs(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid instances of ``schema``, and each spoilt by a hostile change."""
    from hypothesis_jsonschema import from_schema  # builds strategies at import: only once a test needs it

    valid = from_schema(schema)
    return st.one_of(valid, _spoilt(valid, sorted(schema["properties"])))


def openai_jobs(route: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Jobs as RunPod delivers an OpenAI route: ``openai_input`` from ``schema`` (valid or spoilt), and now and
    then a hostile route or wrapper."""
    body = inputs(schema)
    return st.one_of(
        body.map(lambda openai_input: {"openai_route": route, "openai_input": openai_input}),
        st.fixed_dictionaries({"openai_route": HOSTILE_VALUES, "openai_input": body}),
        st.fixed_dictionaries({"openai_route": st.just(route), "openai_input": body, "extra": HOSTILE_VALUES}),
    )


def check_answer(answer: Any) -> None:
    """What every answer must be, whatever the input: strict JSON that encodes as UTF-8 (the SDK posts it,
    the endpoint hands it on), and a failure is a typed, bounded error, never INTERNAL."""
    json.dumps(answer, allow_nan=False, ensure_ascii=False).encode("utf-8")
    for part in answer if isinstance(answer, list) else [answer]:
        if isinstance(part, dict) and "error" in part:
            assert isinstance(part["error"], str) and len(part["error"]) <= errors.MAX_ENVELOPE_CHARS
            envelope = json.loads(part["error"])
            assert envelope["code"] != "INTERNAL", envelope


@pytest.fixture(scope="session")
def hostile() -> types.SimpleNamespace:
    """The strategies and the answer check above: ``hostile.inputs(schema)``, ``hostile.check_answer(...)``."""
    return types.SimpleNamespace(inputs=inputs, openai_jobs=openai_jobs, capped=capped, restricted=restricted,
                                 openai_request_fields=openai_request_fields, check_answer=check_answer)


@pytest.fixture(
    params=[pytest.param(QUICK_EXAMPLES, id="quick"), pytest.param(FUZZ_EXAMPLES, id="fuzz", marks=pytest.mark.fuzz)]
)
def hostile_budget(request) -> settings:
    """Hypothesis settings of one run: the quick one is derandomized (the same examples every run) and has no
    deadline (no timed assertions); the fuzz one draws fresh examples."""
    return settings(
        max_examples=request.param,
        deadline=None,
        derandomize=request.param == QUICK_EXAMPLES,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
