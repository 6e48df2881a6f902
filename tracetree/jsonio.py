"""JSON files and JSON values as a user reads them: one reader, one way to name a type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .errors import InputError


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, as a message to a user says it ("an object")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def read_json_file(path: str | Path) -> Any:
    """The JSON value a file holds; InputError names the file (and the line of a syntax error)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(name, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = data.count(b"\n", 0, exc.pos) + 1
        raise InputError(name, line, f"malformed JSON: {str(exc).split(':', 1)[0]}") from None
