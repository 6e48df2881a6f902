"""OpenTelemetry export: a forest as OTLP traces (ExportTraceServiceRequest), as JSON or protobuf.

Each invocation becomes a SERVER span (its top-level span), each of its spans a child span,
and each callee invocation a child of the span that dispatched it, as tracetree resolved the
link. Span ids are derived from (trace, invocation, span), so they are unique in the output
even where the input's collide; the original ids and how each link was decided are kept as
`tracetree.*` attributes. The JSON follows OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/):
ids as hex, 64-bit integers as decimal strings, enums as integers. Binary protobuf is in
otlp_proto.py, sending in otlp_http.py.

>>> import tracetree
>>> from tracetree.otlp import forest_to_otlp
>>> forest_to_otlp(tracetree.build([]))
{'resourceSpans': []}
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata
from typing import Any

import orjson

from .assemble import InvocationNode, SpanNode, TraceNode, assemble
from .build import Forest, collector_paused
from .links import Link, Resolution
from .model import Invocation, Span, parsed_events
from .render.tree import trigger_text

try:
    _VERSION = metadata.version("tracetree")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    _VERSION = "0"

SCOPE = {"name": "tracetree", "version": _VERSION}

# Spans per ExportTraceServiceRequest by default: receivers cap a request's size (the OTel
# Collector's HTTP receiver at 20 MiB by default), and a span with its events is ~1-2 KB.
DEFAULT_BATCH_SPANS = 5000

# AnyValue nesting kept as structure; deeper values are sent as their JSON text. Protobuf
# parsers refuse messages nested past 100 levels, and a log message can nest arbitrarily.
MAX_VALUE_DEPTH = 8

# One step of the ordinal clock used where a trace's timestamps carry no information.
ORDINAL_STEP_NS = 1_000

_INT64 = (-(2**63), 2**63 - 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class SpanKind(enum.IntEnum):
    """OTLP `Span.SpanKind`; the JSON encoding writes enums as integers."""

    INTERNAL = 1  # a span inside an invocation
    SERVER = 2  # an invocation's top-level span: it handled a request or event
    CLIENT = 3  # a span that dispatched another invocation of the capture


class StatusCode(enum.IntEnum):
    """OTLP `Status.StatusCode`."""

    UNSET = 0  # no outcome reported
    OK = 1  # the runtime reported `ok`
    ERROR = 2  # any other outcome (exception, canceled, exceededCpu, …)


class Timing(str, enum.Enum):
    """Where a span's times come from: the `tracetree.timing` attribute."""

    MEASURED = "measured"  # its opening and closing events carried informative timestamps
    # Predictable mode stamps spanOpen with the epoch (and some events carry no stamp): such
    # an instant is the latest informative stamp of the invocation before it, a lower bound.
    INFERRED = "inferred"
    # The trace's clock carries no information (frozen, epoch or absent): times are the
    # events' order, one microsecond a step, with callees laid out inside their caller's span.
    ORDINAL = "ordinal"

    def __str__(self) -> str:
        return self.value


# -- ids -----------------------------------------------------------------------------------------


def _is_hex(value: str, length: int) -> bool:
    if len(value) != length:
        return False
    try:
        return int(value, 16) != 0  # all zeros is an invalid id in OTLP
    except ValueError:
        return False


def otlp_trace_id(trace_id: str) -> str:
    """The 32-hex OTLP trace id for an input traceId: itself (lowercased) when it is one, zero-
    padded when it is 16 hex digits (workerd drops zero high bits), else a digest of it.

    >>> otlp_trace_id("2A2A2A2A2A2A2A2A2A2A2A2A2A2A2A2A")
    '2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a'
    >>> otlp_trace_id("00000000000000ab")
    '000000000000000000000000000000ab'
    >>> len(otlp_trace_id("t1"))
    32
    """
    lowered = trace_id.lower()
    if _is_hex(lowered, 32) and lowered.isascii():
        return lowered
    if _is_hex(lowered, 16) and lowered.isascii():
        return "0" * 16 + lowered
    key = b"trace\x1f" + trace_id.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def derived_span_id(trace_id: str, invocation_id: str, span_id: str, salt: int = 0) -> str:
    """A 16-hex span id from (trace, invocation, span): the same input always gives the same id."""
    key = "\x1f".join((trace_id, invocation_id, span_id, str(salt))).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(key, digest_size=8).hexdigest()
    return digest if int(digest, 16) != 0 else derived_span_id(trace_id, invocation_id, span_id, salt + 1)


# Stands for the top-level span of an invocation whose onset never arrived.
_NO_ONSET = "\x00onset-missing"


class _Ids:
    """Span ids for one trace, unique within it: a (vanishingly rare) digest collision is
    resolved by re-deriving with a salt, in walk order, so the output stays deterministic."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.by_key: dict[tuple[str, str], str] = {}
        self.used: set[str] = set()

    def of(self, invocation_id: str, span_id: str) -> str:
        key = (invocation_id, span_id)
        found = self.by_key.get(key)
        if found is not None:
            return found
        salt = 0
        value = derived_span_id(self.trace_id, invocation_id, span_id)
        while value in self.used:
            salt += 1
            value = derived_span_id(self.trace_id, invocation_id, span_id, salt)
        self.used.add(value)
        self.by_key[key] = value
        return value


# -- values --------------------------------------------------------------------------------------


def any_value(value: Any, depth: int = 0) -> dict[str, Any]:
    """A JSON value as an OTLP/JSON AnyValue: typed, int64 as a decimal string.

    >>> any_value(3), any_value(True), any_value(None)
    ({'intValue': '3'}, {'boolValue': True}, {})
    >>> any_value(["a", 1.5])
    {'arrayValue': {'values': [{'stringValue': 'a'}, {'doubleValue': 1.5}]}}
    """
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}  # past int64: kept exactly, as text
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if depth >= MAX_VALUE_DEPTH:
        return {"stringValue": _json_text(value)}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(item, depth + 1) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [
            {"key": str(key), "value": any_value(item, depth + 1)} for key, item in value.items()
        ]}}
    return {"stringValue": str(value)}


def _json_text(value: Any) -> str:
    """A value as compact JSON text (strings as they are)."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):  # nested deeper than orjson goes (254 levels)
        return orjson.dumps(_cut(value, 200), default=str).decode()


def _cut(value: Any, depth: int) -> Any:
    """The value with whatever lies deeper than `depth` levels replaced by "…"."""
    if depth <= 0 and isinstance(value, (list, dict)):
        return "…"
    if isinstance(value, list):
        return [_cut(item, depth - 1) for item in value]
    if isinstance(value, dict):
        return {str(key): _cut(item, depth - 1) for key, item in value.items()}
    return value


def _attributes(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in pairs.items()]


def _log_message(value: Any) -> str:
    """console.log's arguments joined by spaces, strings as they are."""
    if isinstance(value, list):
        return " ".join(_json_text(item) for item in value)
    return _json_text(value)


# -- time ----------------------------------------------------------------------------------------

_NANOS_CACHE: dict[str, int | None] = {}


def unix_nanos(timestamp: str | None) -> int | None:
    """Nanoseconds since the epoch of an ISO timestamp, exactly (no float rounding); None when
    absent, unreadable, or outside what OTLP carries (1970 itself, the epoch, says nothing).

    >>> unix_nanos("2026-11-25T00:46:26.409Z")
    1795567586409000000
    """
    if timestamp is None:
        return None
    if timestamp in _NANOS_CACHE:
        return _NANOS_CACHE[timestamp]
    try:
        text = timestamp[:-1] + "+00:00" if timestamp.endswith("Z") else timestamp
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        value: int | None = (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    except (ValueError, OverflowError):
        value = None
    if value is not None and not 0 < value <= _INT64[1]:
        value = None  # before 1970 or after 2262: no instant an OTLP receiver takes
    if len(_NANOS_CACHE) < 100_000:
        _NANOS_CACHE[timestamp] = value
    return value


@dataclass(slots=True)
class _Clock:
    """The instant of every event of a trace: (invocation id, sequence) → unix nanos."""

    ordinal: bool
    times: dict[tuple[str, int], int] = field(default_factory=dict)
    # (invocation id, sequence) of events whose own stamp carried information.
    measured: set[tuple[str, int]] = field(default_factory=set)

    def at(self, invocation_id: str, sequence: int | None, default: int) -> int:
        if sequence is None:
            return default
        return self.times.get((invocation_id, sequence), default)


def _trace_clock(tree: TraceNode) -> _Clock:
    """Per event, an instant; non-decreasing in sequence order within each invocation.

    Where the trace has two or more distinct informative stamps, an event's instant is the
    latest informative stamp at or before it in its invocation (the first one, for events
    before any), so epoch-stamped spanOpens get a lower bound rather than 1970. Where it has
    fewer, the clock says nothing: events are laid out in order, each callee inside the span
    that dispatched it, one step apart.
    """
    # The rule of resolve.trace_evidence (two distinct informative stamps), on the instants
    # OTLP can carry: an unreadable or out-of-range stamp says no more than the epoch does.
    stamps = {
        value for node in _invocation_nodes(tree) for _, stamp, _ in node.invocation.stamps
        if (value := unix_nanos(stamp)) is not None and value > 0
    }
    if len(stamps) > 1:
        return _wall_clock(tree, min(stamps))
    return _ordinal_clock(tree, min(stamps) if stamps else 0)


def _wall_clock(tree: TraceNode, earliest: int) -> _Clock:
    clock = _Clock(ordinal=False)
    # Invocations in tree order, callers first: one without any informative stamp starts
    # where the span that dispatched it starts.
    for node, host_time in _walk_with_host(tree, clock, earliest):
        invocation = node.invocation
        key = invocation.invocation_id
        values = [unix_nanos(stamp) for _, stamp, _ in invocation.stamps]
        known = [value for value in values if value is not None and value > 0]
        current = known[0] if known else host_time
        for (sequence, _, _), value in zip(invocation.stamps, values, strict=True):
            if value is not None and value > 0:
                if value >= current:
                    clock.measured.add((key, sequence))
                current = max(current, value)
            clock.times[(key, sequence)] = current
    return clock


def _walk_with_host(tree: TraceNode, clock: _Clock, earliest: int) -> Iterator[tuple[InvocationNode, int]]:
    """Invocation nodes, callers before callees, each with its host span's start time."""
    stack: list[tuple[InvocationNode, int]] = [(root, earliest) for root in reversed(tree.roots)]
    while stack:
        node, host_time = stack.pop()
        yield node, host_time
        for span_node in reversed(_span_nodes(node)):
            if span_node.callees:
                start = clock.at(node.invocation.invocation_id, span_node.span.open_sequence, host_time)
                stack.extend((callee, start) for callee in reversed(span_node.callees))


def _ordinal_clock(tree: TraceNode, base: int) -> _Clock:
    clock = _Clock(ordinal=True)
    tick = 0
    # An explicit stack of (invocation, its events' sequences, position, callees by sequence):
    # a call chain can nest deeper than Python's recursion limit.
    stack: list[tuple[str, list[int], list[int], dict[int, list[InvocationNode]]]] = []

    def push(node: InvocationNode) -> None:
        sequences = [sequence for sequence, _, _ in node.invocation.stamps]
        callees: dict[int, list[InvocationNode]] = {}
        for span_node in _span_nodes(node):
            if span_node.callees:
                callees.setdefault(span_node.span.open_sequence, []).extend(span_node.callees)
        stack.append((node.invocation.invocation_id, sequences, [0], callees))

    for root in tree.roots:
        push(root)
        while stack:
            key, sequences, position, callees = stack[-1]
            if position[0] >= len(sequences):
                stack.pop()
                continue
            sequence = sequences[position[0]]
            position[0] += 1
            tick += 1
            clock.times[(key, sequence)] = base + tick * ORDINAL_STEP_NS
            for callee in reversed(callees.get(sequence, ())):
                push(callee)
    return clock


# -- the tree as spans ---------------------------------------------------------------------------


def _span_nodes(node: InvocationNode) -> list[SpanNode]:
    """Every span node of an invocation, parents before children."""
    found: list[SpanNode] = []
    stack = [*reversed(node.loose), *([node.top] if node.top else [])]
    while stack:
        span_node = stack.pop()
        found.append(span_node)
        stack.extend(reversed(span_node.spans))
    return found


def _invocation_nodes(tree: TraceNode) -> Iterator[InvocationNode]:
    stack = list(reversed(tree.roots))
    while stack:
        node = stack.pop()
        yield node
        for span_node in reversed(_span_nodes(node)):
            stack.extend(reversed(span_node.callees))


def _resource(invocation: Invocation) -> dict[str, Any]:
    """Resource attributes of an invocation's worker: service.name is its scriptName, else its
    entrypoint (captures from `workerd test` name no script), else `unknown_service`."""
    onset = invocation.onset or {}
    script, entrypoint = onset.get("scriptName"), onset.get("entrypoint")
    name = script if isinstance(script, str) and script else (
        entrypoint if isinstance(entrypoint, str) and entrypoint else "unknown_service")
    attributes: dict[str, Any] = {"service.name": name, "cloud.provider": "cloudflare"}
    namespace = onset.get("dispatchNamespace")
    if isinstance(namespace, str) and namespace:
        attributes["service.namespace"] = namespace
    version = onset.get("scriptVersion")
    if isinstance(version, dict):
        if isinstance(version.get("id"), str):
            attributes["service.version"] = version["id"]
        for part in ("tag", "message"):
            if version.get(part) is not None:
                attributes[f"cloudflare.script_version.{part}"] = version[part]
    tags = onset.get("scriptTags")
    if isinstance(tags, list) and tags:
        attributes["cloudflare.script_tags"] = tags
    return attributes


def _status(outcome: Any, detail: str | None = None) -> dict[str, Any]:
    if outcome is None:
        return {}  # UNSET: OTLP/JSON leaves default values out
    if outcome == "ok":
        return {"code": int(StatusCode.OK)}
    message = _json_text(outcome)
    if detail:
        message += f": {detail}"
    return {"code": int(StatusCode.ERROR), "message": message}


def _event(event: dict[str, Any], time: int, *, stray: bool = False) -> dict[str, Any] | None:
    """A span event for a log, exception or other TailEvent; None for what the span itself shows."""
    body = event.get("event")
    if not isinstance(body, dict):
        return None
    kind = body.get("type")
    attributes: dict[str, Any] = {}
    if kind == "log":
        name = "log"
        attributes["log.level"] = body.get("level")
        attributes["log.message"] = _log_message(body.get("message"))
        for key, value in body.items():
            if key not in ("type", "level", "message"):
                attributes[f"log.{key}"] = value
    elif kind == "exception":
        # OpenTelemetry's semantic conventions for exceptions recorded as span events.
        name = "exception"
        attributes["exception.type"] = body.get("name")
        attributes["exception.message"] = body.get("message")
        if body.get("stack") is not None:
            attributes["exception.stacktrace"] = body.get("stack")
        for key, value in body.items():
            if key not in ("type", "name", "message", "stack"):
                attributes[f"exception.{key}"] = value
    else:
        # return, diagnosticChannel, streamDiagnostic, and types newer runtimes add: by their
        # type, fields as they are, so nothing is dropped.
        name = _json_text(kind) if kind is not None else "event"
        attributes.update((key, value) for key, value in body.items() if key != "type")
    if stray:
        attributes["tracetree.stray"] = True
    attributes["tracetree.sequence"] = event.get("sequence")
    return {
        "timeUnixNano": str(time),
        "name": name,
        "attributes": _attributes({key: value for key, value in attributes.items() if value is not None}),
    }


def _exception_text(span: Span) -> str | None:
    for event in span.events:
        body = event.get("event") or {}
        if body.get("type") == "exception":
            return f"{_json_text(body.get('name') or 'Error')}: {_json_text(body.get('message') or '')}"
    return None


class _TraceWriter:
    """The OTLP spans of one assembled trace, grouped by resource."""

    def __init__(self, tree: TraceNode, forest: Forest) -> None:
        self.tree = tree
        self.forest = forest
        self.trace_id = otlp_trace_id(tree.trace.trace_id)
        self.ids = _Ids(tree.trace.trace_id)
        self.clock = _trace_clock(tree)
        self.spans: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (resource attributes, span)

    def write(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        parents: dict[int, str] = {}  # id(InvocationNode) → the OTLP id of the span that called it
        for node in _invocation_nodes(self.tree):
            self._invocation(node, parents.get(id(node)), parents)
        return self.spans

    def _id(self, invocation: Invocation, span: Span | None) -> str:
        return self.ids.of(invocation.invocation_id, span.span_id if span is not None else _NO_ONSET)

    def _times(
        self, invocation: Invocation, span: Span | None, start_default: int
    ) -> tuple[int, int, Timing]:
        key = invocation.invocation_id
        clock = self.clock
        last = invocation.stamps[-1][0] if invocation.stamps else None
        if span is None or span.top_level:
            first = invocation.stamps[0][0] if invocation.stamps else None
            start_seq = span.open_sequence if span is not None else first
            end_seq = last  # the top-level span lasts until the invocation's last event
        else:
            start_seq = span.open_sequence
            end_seq = span.close_sequence if span.close_sequence is not None else last
        start = clock.at(key, start_seq, start_default)
        end = max(start, clock.at(key, end_seq, start))
        if clock.ordinal:
            timing = Timing.ORDINAL
        elif (key, start_seq) in clock.measured and (key, end_seq) in clock.measured:
            timing = Timing.MEASURED
        else:
            timing = Timing.INFERRED
        return start, end, timing

    def _invocation(self, node: InvocationNode, parent_id: str | None, parents: dict[int, str]) -> None:
        invocation = node.invocation
        resource = _resource(invocation)
        top = node.top
        top_id = self._id(invocation, top.span if top else None)
        start_default = self.clock.times.get((invocation.invocation_id, invocation.stamps[0][0]), 0) \
            if invocation.stamps else 0
        start, end, timing = self._times(invocation, top.span if top else None, start_default)
        attributes = self._invocation_attributes(invocation, node.link, top.span if top else None, timing)
        outcome = (invocation.outcome or {}).get("outcome")
        span_events: list[dict[str, Any]] = []
        if top is not None:
            span_events = self._events(invocation, top.span, start)
        span_events += [
            made for event in invocation.stray
            if (made := _event(event, self._event_time(invocation, event, start), stray=True))
        ]
        server = {
            "traceId": self.trace_id,
            "spanId": top_id,
            **({"parentSpanId": parent_id} if parent_id else {}),
            "name": trigger_text(invocation),
            "kind": int(SpanKind.SERVER),
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": _attributes(attributes),
            "events": span_events,
            "status": _status(outcome, _exception_text(top.span) if top else None),
        }
        links = self._candidate_links(node.link)
        if links:
            server["links"] = links
        self.spans.append((resource, server))
        # Spans of the invocation, parents first, as assembled (cycles already broken); loose
        # ones (their parent never opened) hang from the top-level span.
        parent_of: dict[int, str] = {id(span_node): top_id for span_node in node.loose}
        loose = {id(span_node) for span_node in node.loose}
        for span_node in _span_nodes(node):
            if span_node is top:
                span_id = top_id
            else:
                span_id = self._id(invocation, span_node.span)
                self._span(invocation, span_node, span_id, parent_of[id(span_node)], resource,
                           loose=id(span_node) in loose)
            for child in span_node.spans:
                parent_of[id(child)] = span_id
            for callee in span_node.callees:
                parents[id(callee)] = span_id

    def _invocation_attributes(
        self, invocation: Invocation, link: Link, top: Span | None, timing: Timing
    ) -> dict[str, Any]:
        onset = invocation.onset or {}
        attributes: dict[str, Any] = {}
        info = invocation.trigger
        if invocation.trigger_type == "fetch":
            attributes["http.request.method"] = info.get("method")
            attributes["url.full"] = info.get("url")
            status = _return_status(top)
            if status is not None:
                attributes["http.response.status_code"] = status
        for key, value in info.items():
            if key != "type":
                attributes[f"cloudflare.trigger.{key}"] = value
        attributes["cloudflare.trigger.type"] = invocation.trigger_type
        for key, name in (("executionModel", "execution_model"), ("entrypoint", "entrypoint"),
                          ("durableObjectId", "durable_object_id"), ("scriptName", "script_name")):
            attributes[f"cloudflare.{name}"] = onset.get(key)
        extra = onset.get("attributes")
        if isinstance(extra, list):
            attributes.update(
                (item["name"], item.get("value")) for item in extra
                if isinstance(item, dict) and isinstance(item.get("name"), str)
            )
        if top is not None:
            attributes.update(top.attributes)
        outcome = invocation.outcome or {}
        attributes["cloudflare.outcome"] = outcome.get("outcome")
        attributes["cloudflare.cpu_time_ms"] = outcome.get("cpuTime")
        attributes["cloudflare.wall_time_ms"] = outcome.get("wallTime")
        attributes.update(self._link_attributes(invocation, link, top))
        attributes["tracetree.timing"] = str(timing)
        if invocation.onset is None:
            attributes["tracetree.onset_missing"] = True
        if invocation.outcome is None:
            attributes["tracetree.outcome_missing"] = True
        if invocation.events_missing:
            attributes["tracetree.events_missing"] = invocation.events_missing
        if invocation.duplicates:
            attributes["tracetree.duplicates"] = len(invocation.duplicates)
        return {key: value for key, value in attributes.items() if value is not None}

    def _link_attributes(self, invocation: Invocation, link: Link, top: Span | None) -> dict[str, Any]:
        """The original ids and how the link was decided: what tracetree knows that OTLP cannot say."""
        trace_id = self.tree.trace.trace_id
        attributes: dict[str, Any] = {
            "tracetree.trace_id": trace_id,
            "tracetree.invocation_id": invocation.invocation_id,
            "tracetree.span_id": top.span_id if top is not None else None,
            "tracetree.resolution": link.resolution.value,
            "tracetree.reason": link.reason or None,
            "tracetree.candidates": link.owners if invocation.trigger_span_id else None,
            "tracetree.trigger_span_id": invocation.trigger_span_id,
            "tracetree.parent_invocation_id": link.parent_invocation_id,
        }
        if link.resolution.flagged:
            attributes["tracetree.flagged"] = True
        if self.forest.naive:
            attributes["tracetree.resolver"] = "naive"
        return attributes

    def _candidate_links(self, link: Link) -> list[dict[str, Any]]:
        """OTLP links to the other spans that could have called this invocation, for links that
        are not certain: a viewer can jump to the alternatives the evidence weighed."""
        if link.resolution.certain or link.resolution == Resolution.ORPHAN:
            return []
        invocations = self.tree.trace.invocations
        found = []
        for candidate in link.candidates:
            if candidate.excluded or candidate.invocation_id == link.parent_invocation_id:
                continue  # ruled out by a hard constraint, or the chosen caller itself
            owner = invocations.get(candidate.invocation_id)
            if owner is None or candidate.span_id not in owner.spans:
                continue
            found.append({
                "traceId": self.trace_id,
                "spanId": self.ids.of(candidate.invocation_id, candidate.span_id),
                "attributes": _attributes({
                    "tracetree.link": "candidate caller",
                    "tracetree.score": float(candidate.score),
                }),
            })
        return found

    def _span(
        self, invocation: Invocation, node: SpanNode, span_id: str, parent_id: str,
        resource: dict[str, Any], *, loose: bool,
    ) -> None:
        span = node.span
        default = self.clock.at(invocation.invocation_id, span.open_sequence, 0)
        start, end, timing = self._times(invocation, span, default)
        attributes: dict[str, Any] = dict(_open_info_attributes(span))
        attributes.update(span.attributes)
        attributes["tracetree.invocation_id"] = invocation.invocation_id
        attributes["tracetree.span_id"] = span.span_id
        attributes["tracetree.timing"] = str(timing)
        if loose:
            attributes["tracetree.parent_span_id"] = span.parent_span_id
            attributes["tracetree.parent_missing"] = True
        if not span.closed:
            attributes["tracetree.unclosed"] = True
        self.spans.append((resource, {
            "traceId": self.trace_id,
            "spanId": span_id,
            "parentSpanId": parent_id,
            "name": span.name or "(unnamed span)",
            "kind": int(SpanKind.CLIENT if node.callees else SpanKind.INTERNAL),
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": _attributes({key: value for key, value in attributes.items() if value is not None}),
            "events": self._events(invocation, span, start),
            "status": _status(span.outcome, _exception_text(span)),
        }))

    def _event_time(self, invocation: Invocation, event: dict[str, Any], default: int) -> int:
        sequence = event.get("sequence")
        known = sequence if isinstance(sequence, int) else None
        return self.clock.at(invocation.invocation_id, known, default)

    def _events(self, invocation: Invocation, span: Span, start: int) -> list[dict[str, Any]]:
        made = []
        for event in span.events:
            body = event.get("event") or {}
            if body.get("type") == "attributes" or event is invocation.outcome_event:
                continue  # shown as the span's attributes, and as its status
            item = _event(event, self._event_time(invocation, event, start))
            if item is not None:
                made.append(item)
        return made


def _open_info_attributes(span: Span) -> dict[str, Any]:
    """What a spanOpen's `info` says: attribute pairs as attributes, other fields by name."""
    body = (span.open_event or {}).get("event") or {}
    info = body.get("info") if isinstance(body, dict) else None
    if not isinstance(info, dict):
        return {}
    if info.get("type") == "attributes" and isinstance(info.get("info"), list):
        return {item["name"]: item.get("value") for item in info["info"]
                if isinstance(item, dict) and isinstance(item.get("name"), str)}
    return {f"cloudflare.span_info.{key}": value for key, value in info.items()}


def _return_status(top: Span | None) -> int | None:
    for event in top.events if top else ():
        body = event.get("event") or {}
        info = body.get("info")
        if body.get("type") == "return" and isinstance(info, dict):
            status = info.get("statusCode")
            if isinstance(status, int) and not isinstance(status, bool):
                return status
    return None


# -- requests ------------------------------------------------------------------------------------


def _request(spans: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """One ExportTraceServiceRequest: a ResourceSpans per distinct resource, first seen first."""
    groups: dict[bytes, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for resource, span in spans:
        key = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        group = groups.get(key)
        if group is None:
            group = groups[key] = (resource, [])
        group[1].append(span)
    return {"resourceSpans": [
        {"resource": {"attributes": _attributes(resource)},
         "scopeSpans": [{"scope": dict(SCOPE), "spans": members}]}
        for resource, members in groups.values()
    ]}


def iter_requests(
    forest: Forest, *, batch_spans: int = DEFAULT_BATCH_SPANS
) -> Iterator[tuple[dict[str, Any], int]]:
    """The forest as OTLP/JSON ExportTraceServiceRequests of whole traces, each with its span
    count: traces are gathered until a request holds `batch_spans` spans (0: no limit); a
    larger trace goes alone. Traces in tracetree's order (by time, then content)."""
    pending: list[tuple[dict[str, Any], dict[str, Any]]] = []
    # The collector paused while trees and spans are made (as build pauses it): they are
    # millions of long-lived dicts, the worst case for its full passes, and hold no cycles.
    with collector_paused():
        trees = assemble(forest)
    for tree in trees:
        with collector_paused(), parsed_events(tree.trace):  # events kept as text: parsed per trace
            spans = _TraceWriter(tree, forest).write()
        if pending and batch_spans and len(pending) + len(spans) > batch_spans:
            yield _request(pending), len(pending)
            pending = []
        pending.extend(spans)
    if pending:
        yield _request(pending), len(pending)


def forest_to_otlp(forest: Forest) -> dict[str, Any]:
    """The whole forest as one OTLP/JSON ExportTraceServiceRequest (a dict ready for JSON)."""
    requests = [request for request, _ in iter_requests(forest, batch_spans=0)]
    return requests[0] if requests else {"resourceSpans": []}


def dumps_json(request: dict[str, Any]) -> bytes:
    """OTLP/JSON bytes of a request."""
    return orjson.dumps(request)
