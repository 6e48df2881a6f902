"""Marker lines: the TailEvents tracetree's tail worker logs, picked out of a runtime's output.

The tail worker (`tracetree tail-worker`) writes each event as one console line,
`tracetree-event: {...}`, and an event it could not serialize as `tracetree-error: {...}`. A
workerd or wrangler log mixes those with everything else the runtime and the workers print;
this module finds them. The marker may follow a prefix a log collector adds (a timestamp, a
process name); the JSON runs to the end of the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import orjson

from .errors import InputError

EVENT_MARKER = b"tracetree-event: "
ERROR_MARKER = b"tracetree-error: "
# The tail worker's note that a batch went to the log instead of the collector: not an event
# and not a lost one (the batch follows as event lines), so readers pass over it.
WARNING_MARKER = b"tracetree-warning: "
_STEM = b"tracetree-"
# Colour codes a terminal-minded runner may wrap a console line in.
_TRAILING_SGR = re.compile(rb"(?:\x1b\[[0-9;]*m)+\s*$")


@dataclass(frozen=True, slots=True)
class Marked:
    """One marker line: what it holds and where its JSON starts (0-based byte offset)."""

    kind: Literal["event", "error"]
    payload: bytes  # the JSON text, without the line end or trailing colour codes
    offset: int


def find_marker(line: bytes) -> Marked | None:
    """The marker line in `line`, or None when it holds neither marker.

    >>> find_marker(b'12:00 tracetree-event: {"a": 1}\\n')
    Marked(kind='event', payload=b'{"a": 1}', offset=23)
    >>> find_marker(b"[ PASS ] gw") is None
    True
    """
    start = line.find(_STEM)
    while start >= 0:
        for marker, kind in ((EVENT_MARKER, "event"), (ERROR_MARKER, "error")):
            if line.startswith(marker, start):
                offset = start + len(marker)
                payload = line[offset:].rstrip(b"\r\n")
                if b"\x1b" in payload:
                    payload = _TRAILING_SGR.sub(b"", payload)
                return Marked(kind, payload, offset)  # type: ignore[arg-type]
        start = line.find(_STEM, start + 1)
    return None


def looks_like_log(lines: list[bytes]) -> bool:
    """True when `lines` (the start of an input) are a log holding marker lines, not JSON.

    A JSON Lines file of events can quote a marker inside a log message, but there the marker
    is inside a JSON string, after a `"`; a log line's prefix (`[tracetree-tail] ` in wrangler's
    output, a timestamp) holds none.
    """
    for line in lines:
        if _STEM in line:
            marked = find_marker(line)
            if marked is not None and b'"' not in line[: marked.offset]:
                return True
    return False


def worker_error(path: str, line: int, payload: bytes) -> InputError:
    """The error a `tracetree-error:` line reports: an event the tail worker could not serialize."""
    try:
        report = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        detail = str(exc).split(":", 1)[0]
        return InputError(path, line, f"the tail worker reported an error, and its line is cut or "
                          f"malformed ({detail})")
    if not isinstance(report, dict):
        return InputError(path, line, "the tail worker reported an error that is not a JSON object")
    where = ", ".join(
        f"{name} {report[key]}"
        for key, name in (("type", "type"), ("invocationId", "invocation"), ("sequence", "sequence"))
        if isinstance(report.get(key), (str, int))
    )
    message = report.get("error")
    text = message if isinstance(message, str) else orjson.dumps(message).decode()
    return InputError(path, line, f"the tail worker could not serialize an event ({where or 'unknown'}): "
                      f"{text}; the event is missing")


def log_lines(path: str, first: int, batch: list[bytes], errors: list[InputError]) -> list[bytes]:
    """The batch with only its event JSON left, line for line, so line numbers stay those of the log.

    A line without a marker becomes blank (which readers skip). A marker line keeps its JSON
    at the same column, the marker and any prefix turned to spaces, so a parse error's column
    is the column in the log. A `tracetree-error:` line, or a marker with nothing after it,
    becomes blank, and its error is appended to `errors`.
    """
    kept: list[bytes] = []
    for number, line in enumerate(batch, start=first):
        marked = find_marker(line) if _STEM in line else None
        if marked is None:
            kept.append(b"\n")
        elif marked.kind == "event" and not marked.payload.isspace() and marked.payload:
            kept.append(b" " * marked.offset + marked.payload + b"\n")
        elif marked.kind == "event":
            errors.append(InputError(path, number, "marker line cut short: no JSON after the marker"))
            kept.append(b"\n")
        else:
            errors.append(worker_error(path, number, marked.payload))
            kept.append(b"\n")
    return kept
