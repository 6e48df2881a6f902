"""The canonical tree document (`tracetree build --format json`): made to be committed and diffed.

One JSON object: every trace as a tree of invocations and spans, in the order `assemble` decides,
with identifiers replaced by labels derived from that order and clock readings replaced by a
placeholder, so the same behaviour gives the same bytes. Every event read is in it somewhere.
docs/document.md describes the shape; docs/tree-document.schema.json is its JSON Schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .assemble import InvocationNode, SpanNode, TraceNode, assemble_parsed, assemble_trace, trace_order
from .build import Forest
from .depth import deep_trees
from .errors import InputError
from .fields import CLOCK_FIELDS, ID_FAMILIES
from .jsonio import json_type, read_json_file
from .links import Link
from .model import Invocation, Span, Trace, parsed_events

DOCUMENT_FORMAT = 1

# What a normalized clock reading becomes. A string, whatever the original type, so that a
# document never looks as if it held a real reading.
PLACEHOLDER = "<normalized>"

# Label prefixes of families that are not spans, invocations or traces.
_PREFIX = {"do": "do", "ray": "ray", "version": "version", "preview": "preview"}
_KINDS = ("id", "clock")


@dataclass(frozen=True, slots=True)
class Normalization:
    """Which fields the document normalizes.

    A field name matches an object key anywhere in an event (`timestamp`, `durableObjectId`), a
    key under a named parent (`scriptVersion.id`), or the `name` of a `{name, value}` pair such
    as a span attribute (`objectId`, `jsrpc.caller_span_id`). Names in `clocks` have their values
    replaced by PLACEHOLDER; the other names are identifiers, replaced by stable labels.
    """

    fields: frozenset[str] = frozenset()
    clocks: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.clocks <= self.fields:
            raise ValueError(f"clock fields not normalized: {', '.join(sorted(self.clocks - self.fields))}")

    @classmethod
    def none(cls) -> Normalization:
        """Normalize nothing: ids and clock readings as received (`--raw`)."""
        return cls()

    @classmethod
    def from_options(
        cls, normalize: Iterable[str] = (), keep: Iterable[str] = (), *, raw: bool = False
    ) -> Normalization:
        """The normalization for command-line options, starting from the default (or none with `raw`).

        Each `--normalize FIELD[:KIND]` adds a field; KIND is `id` (values become labels, equal
        values equal labels) or `clock` (values become PLACEHOLDER); without KIND a field is a
        clock if tracetree knows it as one, else an id. Each `--keep FIELD` removes a field.
        Raises ValueError naming the bad option.

        >>> sorted(Normalization.from_options(["cf-ray", "date:clock"], raw=True).fields)
        ['cf-ray', 'date']
        >>> "timestamp" in Normalization.from_options(keep=["timestamp"]).fields
        False
        """
        base = cls.none() if raw else DEFAULT_NORMALIZATION
        return base.adjusted(normalize, keep)

    def adjusted(self, normalize: Iterable[str] = (), keep: Iterable[str] = ()) -> Normalization:
        """This normalization with fields added (`FIELD[:KIND]`) and removed (`FIELD`)."""
        fields, clocks = set(self.fields), set(self.clocks)
        for option in normalize:
            # The kind follows the last colon, so a name with a colon can be given as NAME:id.
            name, colon, kind = option.rpartition(":")
            name, kind = (name.strip(), kind.strip()) if colon else (kind.strip(), "")
            if not name:
                raise ValueError(f"--normalize {option!r}: no field name")
            if kind and kind not in _KINDS:
                raise ValueError(f"--normalize {option!r}: kind must be 'id' or 'clock', not {kind!r}")
            fields.add(name)
            clocks.discard(name)
            if kind == "clock" or (not kind and name in CLOCK_FIELDS):
                clocks.add(name)
        for name in keep:
            name = name.strip()
            if name not in fields:
                shown = ", ".join(sorted(fields)) or "none"
                raise ValueError(f"--keep {name!r}: not a normalized field (normalized: {shown})")
            fields.discard(name)
            clocks.discard(name)
        return Normalization(frozenset(fields), frozenset(clocks))


DEFAULT_NORMALIZATION = Normalization(frozenset(ID_FAMILIES) | CLOCK_FIELDS, CLOCK_FIELDS)


# -- the order things appear in the document ----------------------------------------------------
# Labels are numbered in the order their nodes appear in the dumped text. Keys are sorted there,
# so a span's `callees` come before its child `spans`, and an invocation's `span` before its
# `unattached` spans; these walks follow that order.


def invocations_in_text_order(tree: TraceNode) -> Iterator[InvocationNode]:
    """Every invocation node of the trace, in the order the document's text shows them."""
    for root in tree.roots:
        yield from _invocations_in_text_order(root)


def _invocations_in_text_order(node: InvocationNode) -> Iterator[InvocationNode]:
    yield node
    for span_node in _own_span_roots(node):
        yield from _callees_in_text_order(span_node)


def _callees_in_text_order(span_node: SpanNode) -> Iterator[InvocationNode]:
    for callee in span_node.callees:
        yield from _invocations_in_text_order(callee)
    for child in span_node.spans:
        yield from _callees_in_text_order(child)


def _own_span_roots(node: InvocationNode) -> list[SpanNode]:
    return ([node.top] if node.top else []) + node.loose


def _spans_in_text_order(span_node: SpanNode) -> Iterator[SpanNode]:
    yield span_node
    for child in span_node.spans:
        yield from _spans_in_text_order(child)


@dataclass(frozen=True, slots=True)
class _Opaque:
    """An id that names nothing in the document: numbered once the text order is known."""

    family: str
    key: tuple[Any, ...]


class _Labeller:
    """Raw ids → labels: traces t1…, invocations i1… within their trace, spans i1.s0….

    A span id is not an identity (predictable mode reuses them in every invocation), so it is
    labelled as the span it names where it appears: a `spanId` names a span of the invocation the
    event belongs to; a caller span id (the onset's, `jsrpc.caller_span_id`) names the span the
    link resolved to. Ids that name nothing known get family labels (`span?1`, `do1`).

    Trace and invocation labels are known for the whole document (an id may name an invocation
    of another trace); span labels only for the trace being written (a span id is looked up in
    its own invocation, or in its caller's, of the same trace), which keeps memory to a trace.
    """

    def __init__(self) -> None:
        self.traces: dict[str, str] = {}
        self.invocations: dict[str, tuple[str, str]] = {}  # id → (trace id, label)
        self.spans: dict[tuple[str, str], str] = {}  # (invocation id, span id) → label: one trace's

    def add_trace(self, trace_id: str, number: int, invocation_ids: Iterable[str]) -> None:
        """Label a trace t{number}, and its invocations i1… in the order given (text order)."""
        self.traces[trace_id] = f"t{number}"
        for index, invocation_id in enumerate(invocation_ids, start=1):
            self.invocations[invocation_id] = (trace_id, f"i{index}")

    def enter(self, tree: TraceNode) -> None:
        """Label the spans of the trace about to be written (those of the last one are let go)."""
        self.spans = {}
        for node in invocations_in_text_order(tree):
            invocation = node.invocation
            label = self.invocations[invocation.invocation_id][1]
            # s0 is the top-level span; the others count from s1 (no s0 without an onset).
            count = 1
            for root_span in _own_span_roots(node):
                for span_node in _spans_in_text_order(root_span):
                    span = span_node.span
                    if span.top_level and span.span_id == invocation.top_span_id:
                        suffix = 0
                    else:
                        suffix, count = count, count + 1
                    self.spans[(invocation.invocation_id, span.span_id)] = f"{label}.s{suffix}"

    def caller(self, value: Any, scope: _Scope) -> Any:
        """A caller span id: a span of the invocation the link resolved as the caller."""
        link = scope.link
        if link is not None and link.parent_invocation_id is not None:
            found = self.spans.get((link.parent_invocation_id, value))
            if found is not None:
                return found
        return _Opaque("span", (scope.trace.trace_id, value))

    def label(self, field: str, value: Any, scope: _Scope) -> Any:
        """The label of one id value found in `field`, relative to where it was found."""
        family = ID_FAMILIES.get(field)
        if not isinstance(value, str):
            # Ids are strings: a number or a boolean names nothing, and gets a stand-in.
            stand_in = "span" if family == "caller" else family or field
            return _Opaque(stand_in, ("json", orjson.dumps(value).decode()))
        key = value
        if family == "invocation":
            found = self.invocations.get(key)
            if found is None:
                return _Opaque("invocation", (key,))
            trace_id, label = found
            return label if trace_id == scope.trace.trace_id else f"{self.traces[trace_id]}.{label}"
        if family == "trace":
            return self.traces.get(key) or _Opaque("trace", (key,))
        if family == "span":
            if scope.invocation is not None:
                own = self.spans.get((scope.invocation.invocation_id, key))
                if own is not None:
                    return own
            return _Opaque("span", (scope.trace.trace_id, key))
        if family == "caller":
            return self.caller(key, scope)
        return _Opaque(family or field, (key,))


class _Numbering:
    """Replaces every _Opaque by its label, numbered per family in the order of the dumped text.

    One instance walks the document's parts in text order (keys sorted, traces last), so the
    numbers come out the same whether the document is built whole or written trace by trace."""

    def __init__(self) -> None:
        self.numbers: dict[str, dict[tuple[Any, ...], int]] = {}

    def name(self, token: _Opaque) -> str:
        seen = self.numbers.setdefault(token.family, {})
        number = seen.setdefault(token.key, len(seen) + 1)
        if token.family in ("span", "invocation", "trace"):
            return f"{token.family}?{number}"
        prefix = _PREFIX.get(token.family)
        return f"{prefix}{number}" if prefix else f"{token.family}#{number}"

    def walk(self, value: Any) -> Any:
        if isinstance(value, _Opaque):
            return self.name(value)
        if isinstance(value, dict):
            for key in sorted(value):
                value[key] = self.walk(value[key])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                value[index] = self.walk(item)
        return value


# -- building the document ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a value belongs to: ids in it are labelled relative to this trace and invocation."""

    trace: Trace
    invocation: Invocation | None = None
    link: Link | None = None


class _Writer:
    """Turns assembled trees into document nodes, normalizing every value on the way."""

    def __init__(self, labeller: _Labeller, normalization: Normalization) -> None:
        self.labels = labeller
        self.fields = normalization.fields
        self.clocks = normalization.clocks

    # -- values ------------------------------------------------------------------------------
    def normalize(self, value: Any, scope: _Scope, parent: str | None = None) -> Any:
        """A copy of a received value with normalized fields replaced, at any depth."""
        if isinstance(value, dict):
            pair = value.get("name") if "value" in value else None
            out: dict[str, Any] = {}
            for key, item in value.items():
                field = self._field(key, parent)
                if field is not None:
                    out[key] = self.replace(field, item, scope)
                elif key == "value" and isinstance(pair, str) and pair in self.fields:
                    out[key] = self.replace(pair, item, scope)
                else:
                    out[key] = self.normalize(item, scope, key)
            return out
        if isinstance(value, list):
            return [self.normalize(item, scope, parent) for item in value]
        return value

    def _field(self, key: str, parent: str | None) -> str | None:
        if key in self.fields:
            return key
        if parent is not None and f"{parent}.{key}" in self.fields:
            return f"{parent}.{key}"
        return None

    def replace(self, field: str, value: Any, scope: _Scope) -> Any:
        """The normalized form of one field's value: a placeholder, a label, or (null) itself."""
        if value is None:
            return None  # absence is behaviour, not a reading
        if field in self.clocks:
            return PLACEHOLDER
        if isinstance(value, list):
            return [self.replace(field, item, scope) for item in value]
        if isinstance(value, dict):
            return self.normalize(value, scope, field)
        return self.labels.label(field, value, scope)

    def raw_id(self, node: dict[str, Any], field: str, value: str) -> dict[str, Any]:
        """The node with its raw id added under `field`, unless normalized: its `id` label stands in."""
        if field not in self.fields:
            node[field] = value
        return node

    def residue(
        self, event: dict[str, Any], scope: _Scope, host: Span | None, *,
        drop_body: Iterable[str] = (), lift_body: bool = False,
        drop_span_id: bool | None = None, shown: set[tuple[int, int]] | None = None,
    ) -> dict[str, Any]:
        """An event as received, minus what its place in the tree already shows, normalized.

        Its invocation and trace are shown by where it sits; its spanContext.spanId when it is
        the span it sits on (or, for drop_span_id, the parent it is nested under); body fields
        in drop_body (or all but `type` with lift_body) when the node shows them.
        """
        invocation = scope.invocation
        out = dict(event)
        if invocation is not None and out.get("invocationId") == invocation.invocation_id:
            del out["invocationId"]
        context = dict(out.get("spanContext") or {})
        if context.get("traceId") == scope.trace.trace_id:
            del context["traceId"]
        if "spanId" in context:
            if drop_span_id is None:
                drop_span_id = host is not None and context["spanId"] == host.span_id
            if drop_span_id:
                del context["spanId"]
        if context:
            out["spanContext"] = context
        else:
            out.pop("spanContext", None)
        body = out.get("event")
        if isinstance(body, dict):
            if lift_body:
                body = {"type": body["type"]} if "type" in body else {}
            else:
                body = {key: value for key, value in body.items() if key not in drop_body}
            if shown is not None and isinstance(body.get("info"), list):
                # Attribute pairs the merged `attributes` shows (the last setting of each name).
                kept = [item for index, item in enumerate(body["info"]) if (id(event), index) not in shown]
                if kept:
                    body["info"] = kept
                else:
                    del body["info"]
            if body:
                out["event"] = body
            else:
                del out["event"]
        return self.normalize(out, scope)

    # -- nodes -------------------------------------------------------------------------------
    def trace(self, tree: TraceNode) -> dict[str, Any]:
        trace = tree.trace
        node = {
            "id": self.labels.traces[trace.trace_id],
            "roots": [self.invocation(root, trace) for root in tree.roots],
        }
        return self.raw_id(node, "traceId", trace.trace_id)

    def invocation(self, node: InvocationNode, trace: Trace) -> dict[str, Any]:
        invocation, link = node.invocation, node.link
        scope = _Scope(trace, invocation, link)
        top = node.top
        onset = outcome = None
        if invocation.onset is not None:
            onset = self.normalize(
                {k: v for k, v in invocation.onset.items() if k not in ("type", "spanId")}, scope)
        if invocation.outcome is not None:
            outcome = self.normalize({k: v for k, v in invocation.outcome.items() if k != "type"}, scope)
        node_out = {
            "id": self.labels.invocations[invocation.invocation_id][1],
            "onset": onset,
            "outcome": outcome,
            "link": self.link(link, scope),
            "flags": self.flags(invocation),
            "span": self.span(top, scope, nested=True) if top is not None else None,
            "unattached": [self.span(loose, scope, nested=False) for loose in node.loose],
            "stray": [self.event(event, scope, None) for event in invocation.stray],
        }
        return self.raw_id(node_out, "invocationId", invocation.invocation_id)

    def link(self, link: Link, scope: _Scope) -> dict[str, Any]:
        trigger = scope.invocation.trigger_span_id if scope.invocation else None
        if trigger is None or "spanId" not in self.fields:
            caller_span_id: Any = trigger
        elif "spanId" in self.clocks:
            caller_span_id = PLACEHOLDER
        else:
            caller_span_id = self.labels.caller(trigger, scope)
        return {
            "resolution": link.resolution.value,
            "caller": self.labels.spans.get(link.parent) if link.parent else None,
            "callerSpanId": caller_span_id,
            "candidates": link.owners,
        }

    def flags(self, invocation: Invocation) -> dict[str, Any]:
        """What is wrong with the invocation's events; empty when nothing is."""
        flags: dict[str, Any] = {}
        if invocation.events_missing:
            flags["eventsMissing"] = invocation.events_missing
        runs = invocation.missing_runs
        if runs:
            # A lone missing sequence is its number; a run of them is [first, last].
            flags["missingSequences"] = [first if first == last else [first, last] for first, last in runs]
        if invocation.duplicates:
            flags["duplicates"] = len(invocation.duplicates)
        if invocation.onset is None:
            flags["onsetMissing"] = True
        if invocation.outcome is None:
            flags["outcomeMissing"] = True
        unclosed = sum(1 for span in invocation.spans.values() if _unclosed(span, invocation))
        if unclosed:
            flags["unclosed"] = unclosed
        return flags

    def span(self, node: SpanNode, scope: _Scope, *, nested: bool) -> dict[str, Any]:
        span, invocation = node.span, scope.invocation
        assert invocation is not None
        top = span.top_level and span.span_id == invocation.top_span_id
        outcome = span.outcome
        if outcome is None and top and invocation.outcome is not None:
            # The top-level span ends with the invocation: its outcome is the invocation's.
            value = invocation.outcome.get("outcome")
            outcome = value if isinstance(value, str) else None
        opened = span.open_event
        if opened is None:
            open_residue: dict[str, Any] | None = None
        elif top:
            # The onset opened it: its body is the invocation's `onset`, its caller the link's.
            body = opened.get("event")
            lifted = tuple(body) if isinstance(body, dict) else ()
            open_residue = self.residue(opened, scope, span, drop_body=lifted, drop_span_id=True)
        else:
            name_shown = isinstance((opened.get("event") or {}).get("name"), str)
            drop = ("type", "spanId", "name") if name_shown else ("type", "spanId")
            open_residue = self.residue(opened, scope, span, drop_body=drop, drop_span_id=nested)
        close_residue = None
        if span.close_event is not None:
            drop = ("type", "outcome") if span.outcome is not None else ("type",)
            close_residue = self.residue(span.close_event, scope, span, drop_body=drop)
        shown = _attributes_shown(span)
        node_out = {
            "id": self.labels.spans[(invocation.invocation_id, span.span_id)],
            "name": span.name,
            "open": open_residue,
            "close": close_residue,
            "outcome": outcome,
            "unclosed": _unclosed(span, invocation),
            "attributes": self.normalize(span.attributes, scope),
            "events": [self.event(event, scope, span, shown) for event in span.events],
            "spans": [self.span(child, scope, nested=True) for child in node.spans],
            "callees": [self.invocation(callee, scope.trace) for callee in node.callees],
        }
        return self.raw_id(node_out, "spanId", span.span_id)

    def event(self, event: dict[str, Any], scope: _Scope, host: Span | None,
              shown: set[tuple[int, int]] | None = None) -> dict[str, Any]:
        """An event of a span's `events` (or an invocation's `stray`)."""
        invocation = scope.invocation
        body = event.get("event")
        if invocation is not None and event is invocation.outcome_event:
            return self.residue(event, scope, host, lift_body=True)  # shown as the invocation's outcome
        if host is not None and isinstance(body, dict) and body.get("type") == "attributes":
            return self.residue(event, scope, host, shown=shown)
        return self.residue(event, scope, host)


def _unclosed(span: Span, invocation: Invocation) -> bool:
    """Never closed: a span without spanClose; the top-level span when the outcome never came."""
    if span.closed:
        return False
    top = span.top_level and span.span_id == invocation.top_span_id
    return not (top and invocation.outcome is not None)


def _attributes_shown(span: Span) -> set[tuple[int, int]]:
    """(id of event, index in info) of the attribute pairs the merged map shows: each name's last."""
    last: dict[str, tuple[int, int]] = {}
    for event in span.events:
        body = event.get("event") or {}
        if body.get("type") != "attributes" or not isinstance(body.get("info"), list):
            continue
        for index, item in enumerate(body["info"]):
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                if set(item) == {"name", "value"}:
                    last[item["name"]] = (id(event), index)
                else:
                    last.pop(item["name"], None)  # extra keys the map cannot show: keep the pair
    return set(last.values())


def _summary(forest: Forest) -> dict[str, Any]:
    invocations = [inv for trace in forest.traces for inv in trace.invocations.values()]
    return {
        "traces": len(forest.traces),
        "invocations": len(invocations),
        "spans": sum(len(inv.spans) for inv in invocations),
        "events": forest.stats.events,
        "duplicates": forest.stats.duplicates,
        "strays": sum(len(inv.stray) for inv in invocations),
        "skipped": forest.stats.skipped,
        "links": forest.counts(),
        "resolver": "naive" if forest.naive else "evidence",
    }


def _parts(
    forest: Forest, normalization: Normalization
) -> tuple[dict[str, Any], Iterator[dict[str, Any]], _Numbering]:
    """The document's head (everything but its traces), its traces one at a time, and the
    numbering of stand-ins, which has numbered the head's and must number each trace's in turn.

    Each trace is assembled twice, so that memory holds one trace's tree at a time (and its
    events parsed, where the model keeps them as text): once to learn the order of traces
    (assemble's) and every invocation's label, and once more when it is written."""
    for trace in forest.traces:
        for invocation in trace.invocations.values():
            if invocation.stamps and not invocation.events:
                raise ValueError("the tree document needs every event: build with keep_events=True")
    ordered: list[tuple[tuple[Any, ...], Trace, list[str]]] = []
    for trace in forest.traces:
        tree = assemble_parsed(forest, trace)
        ordered.append((trace_order(tree), trace,
                        [node.invocation.invocation_id for node in invocations_in_text_order(tree)]))
    ordered.sort(key=lambda item: item[0])  # stable, as assemble's sort
    labeller = _Labeller()
    for number, (_, trace, invocation_ids) in enumerate(ordered, start=1):
        labeller.add_trace(trace.trace_id, number, invocation_ids)
    numbering = _Numbering()
    head = numbering.walk({
        "format": DOCUMENT_FORMAT,
        "normalized": sorted(normalization.fields),
        "summary": _summary(forest),
    })
    traces = [trace for _, trace, _ in ordered]
    return head, _trace_parts(forest, traces, _Writer(labeller, normalization)), numbering


def _trace_parts(forest: Forest, traces: list[Trace], writer: _Writer) -> Iterator[dict[str, Any]]:
    for trace in traces:
        with parsed_events(trace):
            tree = assemble_trace(trace, forest.links, forest.ranks.get(trace.trace_id))
            writer.labels.enter(tree)
            yield writer.trace(tree)


def to_document(forest: Forest, *, normalization: Normalization = DEFAULT_NORMALIZATION) -> dict[str, Any]:
    """The canonical document of a forest built with its events kept (keep_events=True).

    Raises ValueError for a forest built with keep_events=False: its events are gone, and a
    document that silently lost them would compare equal to one that has them.
    """
    with deep_trees("cannot write the tree document; --format links still works"):
        head, traces, numbering = _parts(forest, normalization)
        head["traces"] = [numbering.walk(trace) for trace in traces]
        return head


def write_document(
    forest: Forest, out: BinaryIO, *, normalization: Normalization = DEFAULT_NORMALIZATION
) -> None:
    """Write the document's bytes (those of dumps_document(to_document(...))) trace by trace:
    memory holds one trace's part of the document at a time, not the whole of it."""
    with deep_trees("cannot write the tree document; --format links still works"):
        _write_parts(forest, out, normalization)


def _write_parts(forest: Forest, out: BinaryIO, normalization: Normalization) -> None:
    head, traces, numbering = _parts(forest, normalization)
    head["traces"] = []
    text = dumps_document(head)
    cut = text.rindex(b'"traces": []')
    first = True
    for trace in traces:
        if first:
            out.write(text[:cut] + b'"traces": [\n')
        # Stand-ins are numbered as the serializer meets them: in text order, without a walk.
        block = dumps_document(trace, stand_ins=numbering.name)[:-1]
        out.write((b"" if first else b",\n") + b"\n".join(b"    " + line for line in block.split(b"\n")))
        first = False
    out.write(text if first else b"\n  ]\n}\n")


# -- bytes ---------------------------------------------------------------------------------------


def dumps_document(document: dict[str, Any], *, stand_ins: Callable[[Any], str] | None = None) -> bytes:
    """The document as committed: two-space indent, keys sorted, UTF-8, one trailing newline.
    `stand_ins` names each _Opaque left in it, called in text order."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    if stand_ins is not None:
        option |= orjson.OPT_PASSTHROUGH_DATACLASS  # _Opaque is a dataclass: to `stand_ins`
    try:
        return orjson.dumps(document, default=stand_ins, option=option) + b"\n"
    except orjson.JSONEncodeError as error:
        if "recursion" not in str(error).lower():
            raise
    # orjson stops at 255 levels of nesting (about 50 chained invocations); a deeper tree still
    # gets a document, in the same layout (integers and strings are written alike).
    with deep_trees("cannot write the tree document; --format links still works"):
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=stand_ins)
    return text.encode() + b"\n"


def load_document(path: str | Path) -> dict[str, Any]:
    """A document written by dumps_document; InputError names the file and what is wrong."""
    return checked_document(read_json_file(path), str(path))


def checked_document(document: Any, name: str) -> dict[str, Any]:
    """A parsed JSON value, if it is a tree document this tracetree reads; else InputError."""
    if not isinstance(document, dict):
        raise InputError(name, None, f"not a tracetree document: expected a JSON object, found "
                                     f"{json_type(document)}")
    if "format" not in document:
        raise InputError(name, None, 'not a tracetree document: no "format" field')
    version = document["format"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(name, None, f'"format" must be an integer, found {json_type(version)}')
    if version != DOCUMENT_FORMAT:
        raise InputError(name, None, f"document format {version} is not supported "
                                     f"(this tracetree reads format {DOCUMENT_FORMAT})")
    if not isinstance(document.get("traces"), list):
        raise InputError(name, None, f'"traces" must be a list, found {json_type(document.get("traces"))}')
    return document
