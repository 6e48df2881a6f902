"""The model: TailEvents grouped into invocations of spans, invocations grouped into traces."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import orjson

from .errors import InputError
from .events import LeanItem, ReadStats, loads_line
from .jsonio import json_type

# Event types whose place in the model is structural; every other type (log, exception,
# diagnosticChannel, return, outcome, streamDiagnostic, and types newer runtimes add) is kept
# on the span it is aimed at, as received.
STRUCTURAL = frozenset({"onset", "spanOpen", "spanClose", "attributes"})

# Predictable mode stamps every spanOpen with the epoch: such a stamp says nothing.
EPOCH = "1970-01-01T00:00:00.000Z"


@dataclass(slots=True, eq=False)
class Span:
    """One span of an invocation: its top-level span (opened by the onset) or a spanOpen.

    Keyed by (traceId, invocationId, spanId); `span_id` alone is never an identity.
    """

    span_id: str
    name: str
    parent_span_id: str | None  # None for the top-level span
    open_sequence: int
    open_time: str | None  # as received; None when the stream's stamp carries no information
    open_event: dict[str, Any] | None = None  # the raw TailEvent that opened it
    open_position: int = 0  # index of the opening event in the whole input (arrival order)
    close_sequence: int | None = None
    close_time: str | None = None
    close_event: dict[str, Any] | None = None
    close_position: int | None = None
    outcome: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # Every non-structural TailEvent aimed at this span, and its `attributes` events, in
    # sequence order, as received. Empty when the model was built with keep_events=False.
    events: list[dict[str, Any]] = field(default_factory=list)
    children: list[Span] = field(default_factory=list)

    @property
    def top_level(self) -> bool:
        return self.parent_span_id is None

    @property
    def closed(self) -> bool:
        return self.close_sequence is not None


@dataclass(slots=True, eq=False)
class Invocation:
    """The events sharing one invocationId, ordered by `sequence`."""

    invocation_id: str
    trace_id: str
    position: int  # index of its first event in the whole input: arrival order where it has one
    onset: dict[str, Any] | None = None  # the onset's `event` body; None if the onset is missing
    onset_position: int | None = None
    onset_time: str | None = None
    trigger_span_id: str | None = None  # the onset's spanContext.spanId: the caller's span
    top_span_id: str | None = None
    spans: dict[str, Span] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None
    outcome_event: dict[str, Any] | None = None  # the kept event that set `outcome` (the last one)
    # (sequence, timestamp or None, input position) of every event, in sequence order: for
    # gaps, and for bounds on when each span opened.
    stamps: list[tuple[int, str | None, int]] = field(default_factory=list)
    last_position: int = 0
    duplicates: list[int] = field(default_factory=list)  # sequences seen more than once
    dropped: int = 0  # events streamDiagnostic says were dropped
    # Events that name a span this invocation never opened, second onsets, second closes:
    # kept (with keep_events), shown on the top-level span.
    stray: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # all, in sequence order (kept)
    # (With ModelBuilder's raw_events, every kept event above is the bytes of its JSON text
    # until `parsed_events` parses them.)

    @property
    def top(self) -> Span | None:
        return self.spans.get(self.top_span_id) if self.top_span_id else None

    @property
    def trigger(self) -> dict[str, Any]:
        info = (self.onset or {}).get("info")
        return info if isinstance(info, dict) else {}

    @property
    def trigger_type(self) -> str:
        value = self.trigger.get("type")
        return value if isinstance(value, str) else "unknown"

    @property
    def missing_runs(self) -> list[tuple[int, int]]:
        """Runs (first, last) of sequence numbers never received below the highest one seen:
        events lost in transit. Runs, not numbers: one corrupt sequence (2**63, say) must not
        cost memory in proportion to the gap it leaves."""
        runs: list[tuple[int, int]] = []
        expected = 0
        for sequence in sorted({sequence for sequence, _, _ in self.stamps}):
            if sequence > expected:
                runs.append((expected, sequence - 1))
            expected = sequence + 1
        return runs

    @property
    def events_missing(self) -> int:
        """Events lost: dropped events still use up sequence numbers, so a streamDiagnostic's
        count and the gaps it explains are the same events, counted once."""
        return max(sum(last - first + 1 for first, last in self.missing_runs), self.dropped)


@dataclass(slots=True, eq=False)
class Trace:
    """The invocations sharing one traceId, in order of first appearance."""

    trace_id: str
    invocations: dict[str, Invocation] = field(default_factory=dict)


# Event types whose fields the model reads, and so checks on the way in.
_CHECKED = frozenset({"onset", "spanOpen", "spanClose", "attributes"})


def _well_formed(kind: str, body_span_id: object, span_id: str | None, info_is_list: bool) -> bool:
    """Whether an event of a _CHECKED kind has the fields the model reads: the body's spanId,
    the spanContext's, and an attributes event's `info`."""
    if kind == "onset":
        return type(body_span_id) is str
    if kind == "spanOpen":
        return type(body_span_id) is str and span_id is not None
    if kind == "attributes":
        return span_id is not None and info_is_list
    return span_id is not None  # spanClose


def _lean_well_formed(kind: str, body: Any, span_id: str | None) -> bool:
    """_well_formed for a lean event (events.LeanEvent), whose `info` is the raw JSON text."""
    if kind not in _CHECKED:
        return True
    info = body.info
    return _well_formed(kind, body.spanId, span_id, kind == "attributes" and memoryview(info)[:1] == b"[")


# One event as the layout needs it: (sequence, position, type, timestamp, spanContext.spanId,
# the `event` body if the layout reads it, the whole TailEvent if events are kept).
_Entry = tuple[int, int, str, "str | None", "str | None", "dict[str, Any] | None", "dict[str, Any] | None"]
_BODY_NEEDED = frozenset({"onset", "spanOpen", "spanClose", "attributes", "outcome", "streamDiagnostic"})
_AT_TOP = frozenset({"outcome", "return", "exception", "log"})


def _by_sequence(item: _Entry) -> tuple[int, int]:
    return (item[0], item[1])


@dataclass(slots=True, eq=False)
class _Pending:
    """One invocation while events arrive: the next sequence to lay out, and what waits."""

    invocation: Invocation
    expected: int = 0  # every sequence below it is laid out
    queue: list[_Entry] = field(default_factory=list)  # events after a gap or out of order
    unattached: bool = False  # a spanOpen named a parent not (yet) opened


def _lean_body(kind: str, body: Any, span_id: str | None) -> dict[str, Any] | None:
    """What the layout reads of a lean event's body (events.LeanEvent, types already checked),
    or None when the whole event is needed: a body the model keeps or reads more of, or an
    event _well_formed would refuse (parsed whole, it gets add()'s message)."""
    if span_id is None:
        return None
    if kind == "spanOpen":
        return {"type": kind, "spanId": body.spanId, "name": body.name} if body.spanId is not None else None
    if kind == "spanClose":
        return {"type": kind, "outcome": body.outcome}
    if kind == "attributes" and body.info:
        info = orjson.loads(memoryview(body.info))
        return {"type": kind, "info": info} if type(info) is list else None
    return None


def _changes_trace(path: str, line: int, invocation_id: str, first: str, now: str) -> InputError:
    return InputError(path, line, f"invocation {invocation_id} changes traceId from {first} to {now}")


def _need(value: Any, kind: type, what: str, path: str, line: int) -> Any:
    if not isinstance(value, kind):
        found = "missing" if value is None else json_type(value)
        wanted = {str: "a string", int: "an integer", dict: "an object"}[kind]
        raise InputError(path, line, f"{what} must be {wanted}, found {found}")
    return value


class ModelBuilder:
    """Turns TailEvents (in any order) into traces; `finish()` gives the traces.

    Each invocation's events are laid out in sequence order, so neither arrival order nor
    interleaving across invocations matters to the shape. Real streams deliver an invocation's
    events in sequence order, so an event is laid out as it arrives when it is the next one
    expected; from the first one out of order on, the invocation's events wait for finish().
    """

    def __init__(
        self, *, keep_events: bool = True, lenient: bool = False, raw_events: bool = False,
        share: tuple[int, int] | None = None,
    ) -> None:
        """`share` = (k, n): model only the traces whose id falls in share k of n (see `owns`),
        reading and checking every event all the same: n builders over the same input, one per
        share, give the traces of one builder, the same errors and skips, and events at the same
        input positions. Each share can then be resolved in its own process."""
        if raw_events and not keep_events:
            raise ValueError("raw_events says how events are kept: it needs keep_events=True")
        self.share = share
        self._owned: dict[str, bool] = {}  # trace id → whether in this share
        self._foreign: dict[str, str] = {}  # invocation id → trace id, for invocations of other shares
        self.keep_events = keep_events
        # Kept events as the bytes of their JSON text (from add_lean), parsed per trace by
        # parsed_events when read: a few times less memory than dicts for a large capture.
        self.raw_events = raw_events
        self.lenient = lenient
        self.stats = ReadStats()
        self._traces: dict[str, Trace] = {}
        self._pending: dict[str, _Pending] = {}  # invocationId → its layout so far
        self._stamps: dict[str, str] = {}
        self._position = 0

    def owns(self, trace_id: str) -> bool:
        """Whether the trace is in this builder's share (always, without a share)."""
        if self.share is None:
            return True
        mine = self._owned.get(trace_id)
        if mine is None:
            index, count = self.share
            # crc32, not hash(): the same in every process (str hashes are salted per process).
            mine = self._owned[trace_id] = zlib.crc32(trace_id.encode()) % count == index
        return mine

    def add(self, event: Any, path: str = "<events>", line: int = 0) -> None:
        """Take one TailEvent; a malformed one raises InputError, or is skipped when lenient."""
        try:
            self._add(event, path, line)
        except InputError as error:
            if not self.lenient:
                raise
            self.stats.skip(error)

    def add_all(self, events: Iterable[tuple[Any, str, int]]) -> None:
        if self.lenient:
            for event, path, line in events:
                self.add(event, path, line)
            return
        add = self._add  # the hot loop: no per-event wrapper when errors simply propagate
        for event, path, line in events:
            add(event, path, line)

    def _add(self, event: Any, path: str, line: int, kept: bytes | None = None) -> None:
        """As add, raising; `kept` is what to keep of the event instead of the dict (its bytes)."""
        # The hot path: one event per call, a million calls for a large capture. Well-formed
        # events pass a handful of type checks; anything else goes to _reject for its message.
        try:
            invocation_id = event["invocationId"]
            context = event["spanContext"]
            trace_id = context["traceId"]
            sequence = event["sequence"]
            body = event["event"]
            kind = body["type"]
            span_id = context.get("spanId")
            timestamp = event.get("timestamp")
        except (KeyError, TypeError, AttributeError):
            self._reject(event, path, line)
        if (
            type(invocation_id) is not str or type(trace_id) is not str or type(kind) is not str
            or type(sequence) is not int or sequence < 0
            or (span_id is not None and type(span_id) is not str)
            or (timestamp is not None and type(timestamp) is not str)
            or (kind in _CHECKED
                and not _well_formed(kind, body.get("spanId"), span_id, type(body.get("info")) is list))
        ):
            self._reject(event, path, line)
        if self.share is not None and not self.owns(trace_id):
            self._count_foreign(invocation_id, trace_id, path, line)
            return
        self._take(invocation_id, trace_id, sequence, kind, timestamp, span_id,
                   body if kind in _BODY_NEEDED else None,
                   (event if kept is None else kept) if self.keep_events else None, path, line)

    def add_lean(self, batches: Iterable[tuple[str, list[tuple[Any, int]]]]) -> None:
        """Take batches from events.read_lean_events (the builder keeps no events, or keeps
        them as bytes with raw_events): lean events straight from their typed fields, the rest
        (and kinds whose body the model keeps) parsed whole, as `add` takes them."""
        if self.keep_events and not self.raw_events:
            raise ValueError("lean events carry only what the model reads: keep_events must be False, "
                             "or raw_events True")
        if self.lenient:
            for path, batch in batches:
                for value, line in batch:
                    if type(value) is tuple:
                        self._take_lean_leniently(value, path, line)
                    else:
                        self.add(value, path, line)
            return
        # The hot loop (a million events): one call per event besides the layout's own.
        add, take, take_whole, owns, count_foreign = (
            self._add, self._take, self._take_whole, self.owns, self._count_foreign)
        raw, share = self.raw_events, self.share
        for path, batch in batches:
            for value, line in batch:
                if type(value) is not tuple:
                    add(value, path, line)
                    continue
                event = value[0]
                body = event.event
                kind = body.type
                context = event.spanContext
                if share is not None and not owns(context.traceId):
                    # Another share's: counted, once checked (what it holds is read there).
                    if _lean_well_formed(kind, body, context.spanId):
                        count_foreign(event.invocationId, context.traceId, path, line)
                    else:
                        take_whole(value, path, line)  # the full path says what is wrong
                    continue
                lean_body = None
                if kind in _BODY_NEEDED:
                    lean_body = _lean_body(kind, body, context.spanId)
                    if lean_body is None:
                        take_whole(value, path, line)
                        continue
                take(event.invocationId, context.traceId, event.sequence, kind, event.timestamp,
                     context.spanId, lean_body, value[1] if raw else None, path, line)

    def _take_lean(self, item: LeanItem, path: str, line: int) -> None:
        event = item[0]
        context = event.spanContext
        kind = event.event.type
        if not self.owns(context.traceId):
            if _lean_well_formed(kind, event.event, context.spanId):
                self._count_foreign(event.invocationId, context.traceId, path, line)
            else:
                self._take_whole(item, path, line)
            return
        lean_body = None
        if kind in _BODY_NEEDED:
            lean_body = _lean_body(kind, event.event, context.spanId)
            if lean_body is None:
                self._take_whole(item, path, line)
                return
        self._take(event.invocationId, context.traceId, event.sequence, kind, event.timestamp,
                   context.spanId, lean_body, item[1] if self.raw_events else None, path, line)

    def _take_whole(self, item: LeanItem, path: str, line: int) -> None:
        """The event parsed whole, as `add` takes it: for bodies the model keeps (onset,
        outcome) or reads more of (streamDiagnostic), and for malformed events."""
        self._add(loads_line(item[1], path, line), path, line, item[1] if self.raw_events else None)

    def _take_lean_leniently(self, item: LeanItem, path: str, line: int) -> None:
        try:
            self._take_lean(item, path, line)
        except InputError as error:
            self.stats.skip(error)

    def _take(
        self, invocation_id: str, trace_id: str, sequence: int, kind: str, timestamp: str | None,
        span_id: str | None, body: dict[str, Any] | None, event: dict[str, Any] | None, path: str,
        line: int,
    ) -> None:
        """Place one well-formed event of this share in its invocation (or queue it)."""
        if timestamp is not None:
            # A million events carry a few tens of thousands of distinct stamps: keep one copy.
            timestamp = self._stamps.setdefault(timestamp, timestamp)
        pending = self._pending.get(invocation_id)
        if pending is None:
            if invocation_id in self._foreign:  # first seen in another share's trace
                raise _changes_trace(path, line, invocation_id, self._foreign[invocation_id], trace_id)
            invocation = Invocation(invocation_id, trace_id, self._position)
            pending = self._pending[invocation_id] = _Pending(invocation)
            trace = self._traces.get(trace_id)
            if trace is None:
                trace = self._traces[trace_id] = Trace(trace_id)
            trace.invocations[invocation_id] = invocation
        invocation = pending.invocation
        if invocation.trace_id != trace_id:
            raise _changes_trace(path, line, invocation_id, invocation.trace_id, trace_id)
        position = self._position
        if kind == "onset":
            invocation.onset_position = position
        invocation.last_position = position
        self._position = position + 1
        expected = pending.expected
        if sequence < expected:
            # Every sequence below the next expected one is laid out: this is a redelivery.
            self._duplicate(invocation, sequence)
            return
        # Without keep_events only what the layout reads is held, and the parsed event (with
        # its log messages) can be freed now: memory stays near the size of the structure.
        entry = (sequence, position, kind, timestamp, span_id, body, event)
        if sequence == expected and not pending.queue:
            pending.expected = expected + 1
            self._place(pending, entry)
        else:
            pending.queue.append(entry)

    def _count_foreign(self, invocation_id: str, trace_id: str, path: str, line: int) -> None:
        """An event of another share's trace: it takes its input position, and its invocation
        is remembered, so an invocation that changes trace is caught in every share alike."""
        pending = self._pending.get(invocation_id)
        if pending is not None:
            first = pending.invocation.trace_id
        else:
            first = self._foreign.setdefault(invocation_id, trace_id)
        if first != trace_id:
            raise _changes_trace(path, line, invocation_id, first, trace_id)
        self._position += 1

    @staticmethod
    def _reject(event: Any, path: str, line: int) -> NoReturn:
        """Raise the InputError that says what is wrong with a malformed event."""
        if not isinstance(event, dict):
            raise InputError(path, line, f"expected a TailEvent object, found {json_type(event)}")
        _need(event.get("invocationId"), str, "invocationId", path, line)
        context = _need(event.get("spanContext"), dict, "spanContext", path, line)
        _need(context.get("traceId"), str, "spanContext.traceId", path, line)
        sequence = event.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            shown = orjson.dumps(sequence).decode()
            found = "missing" if sequence is None else f"{json_type(sequence)} ({shown})"
            raise InputError(path, line, f"sequence must be a non-negative integer, found {found}")
        body = _need(event.get("event"), dict, "event", path, line)
        kind = _need(body.get("type"), str, "event.type", path, line)
        timestamp = event.get("timestamp")
        if timestamp is not None:
            _need(timestamp, str, "timestamp", path, line)
        span_id = context.get("spanId")
        if span_id is not None:
            _need(span_id, str, "spanContext.spanId", path, line)
        if kind in ("onset", "spanOpen"):
            _need(body.get("spanId"), str, f"{kind} event.spanId", path, line)
        if kind == "spanOpen":
            _need(span_id, str, "spanOpen spanContext.spanId (the parent span)", path, line)
        if kind in ("spanClose", "attributes"):
            _need(span_id, str, f"{kind} spanContext.spanId", path, line)
        if kind == "attributes":
            raise InputError(path, line, "attributes event.info must be a list of {name, value}")
        raise InputError(path, line, "malformed TailEvent")  # unreachable in practice

    def finish(self) -> list[Trace]:
        """Lay out what waits (events out of order); traces in order of first appearance."""
        self.stats.events = self._position
        pending_all, self._pending = self._pending, {}
        for pending in pending_all.values():
            invocation = pending.invocation
            if pending.queue:
                pending.queue.sort(key=_by_sequence)
                last = pending.expected - 1  # the queue holds no sequence below the expected one
                for entry in pending.queue:
                    if entry[0] == last:
                        self._duplicate(invocation, last)
                        continue
                    last = entry[0]
                    self._place(pending, entry)
                pending.queue = []
            if invocation.duplicates:
                invocation.duplicates.sort()  # in sequence order, however they arrived
            if pending.unattached:
                self._attach_late_parents(invocation.spans)
        return list(self._traces.values())

    def _duplicate(self, invocation: Invocation, sequence: int) -> None:
        """Same invocation and sequence twice: a redelivery. Counted, not applied again."""
        invocation.duplicates.append(sequence)
        self.stats.duplicates += 1

    def _place(self, pending: _Pending, entry: _Entry) -> None:
        """Lay out one event, the next in its invocation's sequence order."""
        sequence, position, kind, timestamp, aimed, body, event = entry
        invocation = pending.invocation
        spans = invocation.spans
        informative = timestamp if timestamp != EPOCH else None
        invocation.stamps.append((sequence, informative, position))
        if event is not None:
            invocation.events.append(event)
        if kind == "onset":
            if invocation.onset is not None:
                self._stray(invocation, event)  # a second onset: kept, not applied
                return
            invocation.onset = body
            invocation.onset_time = informative
            invocation.trigger_span_id = aimed
            top_id = body["spanId"]
            invocation.top_span_id = top_id
            spans[top_id] = Span(
                top_id, invocation.trigger_type, None, sequence, informative,
                open_event=event, open_position=position,
            )
        elif kind == "spanOpen":
            span_id = body["spanId"]
            if span_id in spans:
                self._stray(invocation, event)  # reuse of an id inside one invocation: kept
                return
            name = body.get("name")
            span = spans[span_id] = Span(
                span_id, name if isinstance(name, str) else "", aimed, sequence, informative,
                open_event=event, open_position=position,
            )
            parent = spans.get(aimed)
            if parent is not None:
                parent.children.append(span)
            else:
                pending.unattached = True
        else:
            span = spans.get(aimed) if aimed else None
            if span is None and kind in _AT_TOP:
                span = invocation.top  # these are aimed at the top-level span anyway
            if kind == "outcome":
                invocation.outcome = body
                invocation.outcome_event = event
            elif kind == "streamDiagnostic":
                count = (body.get("diagnostic") or {}).get("count")
                invocation.dropped += count if isinstance(count, int) else 1
            if span is None:
                self._stray(invocation, event)
                return
            if kind == "spanClose":
                if span.close_sequence is not None:
                    self._stray(invocation, event)
                    return
                span.close_sequence = sequence
                span.close_time = informative
                span.close_event = event
                span.close_position = position
                outcome = body.get("outcome")
                span.outcome = outcome if isinstance(outcome, str) else None
                return
            if kind == "attributes":
                for item in body["info"]:
                    if isinstance(item, dict) and isinstance(item.get("name"), str):
                        span.attributes[item["name"]] = item.get("value")
            if event is not None:
                span.events.append(event)

    @staticmethod
    def _attach_late_parents(spans: dict[str, Span]) -> None:
        """A spanOpen may name a parent opened later in sequence (never in workerd, but cheap
        to honour): attach such spans now that every span is known, unless that would make
        a span its own ancestor (malformed parents naming each other)."""
        attached = {id(child) for span in spans.values() for child in span.children}
        for span in spans.values():
            if span.parent_span_id is None or id(span) in attached:
                continue
            parent = spans.get(span.parent_span_id)
            if parent is not None and not _is_ancestor(span, parent, spans):
                parent.children.append(span)
                attached.add(id(span))

    @staticmethod
    def _stray(invocation: Invocation, event: dict[str, Any] | None) -> None:
        if event is not None:  # None without keep_events: nothing downstream reads strays then
            invocation.stray.append(event)


@contextmanager
def parsed_events(trace: Trace) -> Iterator[None]:
    """Within the block, the trace's kept events are dicts, also where the model keeps them as
    the bytes of their JSON text (ModelBuilder's raw_events); afterwards they are bytes again.

    One trace at a time: a large capture's events as dicts would take several times the memory
    of its text. Each event is parsed once per block (an event sits in its invocation's `events`
    and in its span's), and a model whose events are dicts already is left as it is."""
    saved: list[tuple[Invocation, list[Any], list[Any], Any, list[tuple[Span, list[Any], Any, Any]]]] = []
    for invocation in trace.invocations.values():
        if not any(type(event) is bytes for event in invocation.events):
            continue
        spans = [(span, span.events, span.open_event, span.close_event) for span in invocation.spans.values()]
        saved.append((invocation, invocation.events, invocation.stray, invocation.outcome_event, spans))
        # Every kept event is in the invocation's `events`: parse those, the rest are the same objects.
        parsed = {id(event): orjson.loads(event) if type(event) is bytes else event
                  for event in invocation.events}
        invocation.events = [parsed[id(event)] for event in invocation.events]
        invocation.stray = [parsed[id(event)] for event in invocation.stray]
        invocation.outcome_event = parsed.get(id(invocation.outcome_event))
        for span, events, opened, closed in spans:
            span.events = [parsed[id(event)] for event in events]
            span.open_event = parsed.get(id(opened))
            span.close_event = parsed.get(id(closed))
    try:
        yield
    finally:
        for invocation, events, stray, outcome_event, spans in saved:
            invocation.events, invocation.stray, invocation.outcome_event = events, stray, outcome_event
            for span, span_events, opened, closed in spans:
                span.events, span.open_event, span.close_event = span_events, opened, closed


def _is_ancestor(span: Span, other: Span, spans: dict[str, Span]) -> bool:
    """Whether `span` is `other` or above it in the chain of parents."""
    seen: set[str] = set()
    current: Span | None = other
    while current is not None and current.span_id not in seen:
        if current is span:
            return True
        seen.add(current.span_id)
        current = spans.get(current.parent_span_id) if current.parent_span_id else None
    return False


def build_traces(
    events: Iterable[Any], *, keep_events: bool = True, lenient: bool = False
) -> list[Trace]:
    """Traces from TailEvent dicts (already parsed), in order of first appearance.

    >>> onset = {"invocationId": "a", "spanContext": {"traceId": "t"}, "sequence": 0,
    ...          "timestamp": "2026-01-01T00:00:00.000Z",
    ...          "event": {"type": "onset", "spanId": "f00d", "info": {"type": "fetch"}}}
    >>> [trace] = build_traces([onset])
    >>> trace.invocations["a"].top.name
    'fetch'
    """
    builder = ModelBuilder(keep_events=keep_events, lenient=lenient)
    for line, event in enumerate(events, start=1):
        builder.add(event, "<events>", line)
    return builder.finish()


_TIME_CACHE: dict[str, float] = {}


def millis(timestamp: str | None) -> float | None:
    """Milliseconds since the epoch of an ISO timestamp; None when absent or unreadable."""
    if timestamp is None:
        return None
    value = _TIME_CACHE.get(timestamp)
    if value is None:
        try:
            text = timestamp[:-1] + "+00:00" if timestamp.endswith("Z") else timestamp
            value = datetime.fromisoformat(text).timestamp() * 1000.0
        except ValueError:
            return None
        if len(_TIME_CACHE) < 1_000_000:
            _TIME_CACHE[timestamp] = value
    return value
