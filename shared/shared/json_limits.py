"""Strict JSON (RFC 8259) and the limits on an input's shape, checked before any field is looked at.

Every job input is held to these rules twice with the same code: at the local endpoint's door (a
request body that breaks one gets HTTP 400) and in the worker, by ``shared.guard.guard`` (a job can
reach a worker however it was sent; it fails BAD_INPUT naming the rule). Why each rule exists:

- **No NaN, Infinity or -Infinity.** RFC 8259 section 6 has no such numbers; Python's ``json`` reads
  and writes them by default, but a strict writer (the job take, RunPod's platform, most clients)
  cannot send them on, so a job holding one could never be handed to a worker and would hang.
- **Valid Unicode.** RFC 8259 section 8.2: a lone surrogate (``"\\ud800"``) is not a character; the
  same job take refuses to encode it.
- **Bounded shape.** Depth, keys per object, items per array, key length and string length each have
  one number below. Each is far above what any worker's input needs (the fields' own limits speak
  first), so these only stop inputs no worker could use, before they cost parsing, validation or an
  error message the size of the input.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

#: Nesting levels of objects and arrays in a job input (the input itself is level 1). The deepest
#: input a worker reads (llm messages' content parts, a tool's JSON Schema) is far shallower; Python's
#: JSON reader itself gives up near 1,000 levels.
MAX_DEPTH = 64
#: Keys in one object. No worker input has more than a few dozen fields.
MAX_OBJECT_KEYS = 1_000
#: Items in one array: room for a prompt given as token ids as long as the largest context
#: (shared.llm.inputs.MAX_TOKENS_LIMIT = 131,072).
MAX_ARRAY_ITEMS = 200_000
#: Characters in one object key (field names are short identifiers).
MAX_KEY_CHARS = 256
#: Characters in one string: above every field's own limit (the largest, sdxl's 8 MB img2img image, is
#: about 10.7 M base64 characters), below RunPod's largest request payload (/runsync, 20 MB).
MAX_STRING_CHARS = 16 * 1024 * 1024

#: The limits by name, for docs and tests.
LIMITS = {
    "MAX_DEPTH": MAX_DEPTH,
    "MAX_OBJECT_KEYS": MAX_OBJECT_KEYS,
    "MAX_ARRAY_ITEMS": MAX_ARRAY_ITEMS,
    "MAX_KEY_CHARS": MAX_KEY_CHARS,
    "MAX_STRING_CHARS": MAX_STRING_CHARS,
}

_SURROGATE = re.compile("[\ud800-\udfff]")
#: A key as it appears in a problem's path: enough to recognise it.
_PATH_KEY_CHARS = 32


@dataclass(frozen=True)
class ShapeProblem:
    """Why a value is refused: ``path`` is the dotted path inside it ("" = the value itself)."""

    path: str
    reason: str

    def field(self, root: str = "input") -> str:
        """The path as a field name, ``root`` standing for the value itself."""
        return self.path or root


class InvalidJson(ValueError):
    """A JSON text that is not strict JSON, or nests past MAX_DEPTH; the message says why."""


def loads(raw: bytes | str) -> Any:
    """Parse a JSON text strictly: RFC 8259 syntax, no NaN/Infinity, nesting too deep refused cleanly.

    Python's reader recurses once per level and raises RecursionError near 1,000 levels (a plain-text
    HTTP 500 if nobody catches it); here it is the MAX_DEPTH refusal like any shallower excess.
    """
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidJson(_too_deep()) from None
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"is not valid UTF-8 (RFC 8259 section 8.1): {exc.reason} at byte {exc.start}") from None
    except InvalidJson:
        raise
    except ValueError as exc:  # json.JSONDecodeError, and ints past Python's digit limit
        raise InvalidJson(f"is not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise InvalidJson(f"holds {name}, which JSON has no number for (RFC 8259 section 6)")


def first_problem(value: Any, path: str = "") -> ShapeProblem | None:
    """The first rule ``value`` (a parsed JSON value) breaks, walking it breadth-first, or None.

    Iterative, so a deep value costs no recursion; it stops at the first problem, so a hostile value
    costs at most one walk.
    """
    level: list[tuple[str, Any]] = [(path, value)]
    depth = 0
    while level:
        depth += 1
        below: list[tuple[str, Any]] = []
        for where, item in level:
            if isinstance(item, dict | list | tuple) and depth > MAX_DEPTH:
                return ShapeProblem(where, _too_deep())
            problem = _scalar_problem(item) if not isinstance(item, dict | list | tuple) else _size_problem(item)
            if problem is not None:
                return ShapeProblem(where, problem)
            if isinstance(item, dict):
                for key, child in item.items():
                    key_problem = _key_problem(key)
                    if key_problem is not None:
                        return ShapeProblem(_join(where, key), key_problem)
                    below.append((_join(where, key), child))
            elif isinstance(item, list | tuple):
                below.extend((_join(where, str(index)), child) for index, child in enumerate(item))
        level = below
    return None


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is {value}, which JSON has no number for (RFC 8259 section 6)"
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            return f"is {len(value)} characters, over the limit of {MAX_STRING_CHARS} (MAX_STRING_CHARS)"
        return _unicode_problem(value)
    return f"is a {type(value).__name__}, not a JSON value"


def _size_problem(container: dict | list | tuple) -> str | None:
    if isinstance(container, dict):
        if len(container) > MAX_OBJECT_KEYS:
            return f"has {len(container)} keys, over the limit of {MAX_OBJECT_KEYS} (MAX_OBJECT_KEYS)"
    elif len(container) > MAX_ARRAY_ITEMS:
        return f"has {len(container)} items, over the limit of {MAX_ARRAY_ITEMS} (MAX_ARRAY_ITEMS)"
    return None


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"is a {type(key).__name__} key; JSON object keys are strings"
    if len(key) > MAX_KEY_CHARS:
        return f"is a key of {len(key)} characters, over the limit of {MAX_KEY_CHARS} (MAX_KEY_CHARS)"
    return _unicode_problem(key)


def _unicode_problem(text: str) -> str | None:
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (f"holds a lone surrogate U+{ord(found.group()):04X} at character {found.start()}; JSON text must be "
            "valid Unicode (RFC 8259 section 8.2)")


def _too_deep() -> str:
    return f"nests deeper than the limit of {MAX_DEPTH} levels (MAX_DEPTH)"


def _join(path: str, key: str) -> str:
    shown = key if len(key) <= _PATH_KEY_CHARS else key[:_PATH_KEY_CHARS] + "..."
    shown = _SURROGATE.sub("\ufffd", shown)  # a path is echoed to the client: keep it valid Unicode
    return f"{path}.{shown}" if path else shown
