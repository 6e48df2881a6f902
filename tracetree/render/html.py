"""The `html` format: one self-contained page per build or diff, to open in any browser, offline.

The page is three inlined parts: the data, as JSON in a `<script type="application/json">`
block; the UI, vanilla JS and CSS shipped beside this module in `assets/` and read at render
time; and a Content-Security-Policy that allows exactly those two inline blocks and nothing
else (no network, no other script), so the report works air-gapped and cannot be made to fetch
or run anything. Strings from events reach the page only inside the JSON block (escaped so they
cannot end it) and are put on screen with `textContent`, never parsed as HTML.

Trees are sent flat (a node list with child indices), never nested: call chains can nest deeper
than JSON encoders or the browser's stack go, and a flat list lets the page draw a collapsed
subtree only when it is opened.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from ..assemble import InvocationNode, SpanNode, TraceNode, assemble
from ..build import Forest
from ..diff import Change, ChangeKind, Tree, path_of
from ..diff import InvocationNode as DiffInvocation
from ..diff import SpanNode as DiffSpan
from ..links import Candidate, Link
from ..model import Invocation, Span, Trace, millis
from ..resolve import TraceEvidence
from .diff import count_line, describe
from .text import clip, safe_text
from .tree import describe as describe_invocation
from .tree import event_line, invocation_duration, invocation_outcome, invocation_status

# Strings longer than this are cut in the embedded data (a 20 KB log line stays readable in the
# panel, and a stream full of them still makes a report a browser opens quickly).
VALUE_LIMIT = 2000
# Lists longer than this, and values nested deeper, are cut the same way.
ITEM_LIMIT = 200
DEPTH_LIMIT = 24
# Candidates shown per link: the chosen one and the best of the rest. A trace of thousands of
# invocations with sequential span ids gives a callee thousands of candidates; the page counts
# those left out instead of carrying them (`--explain` lists every one).
CANDIDATE_LIMIT = 12
# A trace whose tree has at most this many rows opens fully expanded; a larger one shows its
# root invocations and opens the rest on click.
EXPAND_LIMIT = 400
# With more traces than this, every trace starts closed: only its heading line is drawn.
OPEN_LIMIT = 30

_CHANGED = frozenset({
    ChangeKind.RESOLUTION_CHANGED, ChangeKind.ONSET_CHANGED, ChangeKind.OUTCOME_CHANGED,
    ChangeKind.SPAN_RENAMED, ChangeKind.ATTRIBUTE_ADDED, ChangeKind.ATTRIBUTE_REMOVED,
    ChangeKind.ATTRIBUTE_CHANGED, ChangeKind.EVENT_ADDED, ChangeKind.EVENT_REMOVED,
    ChangeKind.EVENT_CHANGED,
})
# How each kind of change marks the node it is about, on (actual side, expected side).
_MARK: dict[ChangeKind, tuple[str | None, str | None]] = {
    ChangeKind.INVOCATION_MOVED: ("moved", "moved"),
    ChangeKind.INVOCATION_ADDED: ("added", None),
    ChangeKind.SPAN_ADDED: ("added", None),
    ChangeKind.INVOCATION_REMOVED: (None, "removed"),
    ChangeKind.SPAN_REMOVED: (None, "removed"),
    **{kind: ("changed", "changed") for kind in _CHANGED},
}


@dataclass(frozen=True, slots=True)
class HtmlOptions:
    """How much of a forest the page opens at first, and how much of each value it carries."""

    title: str = "tracetree report"
    expand_limit: int = EXPAND_LIMIT
    open_limit: int = OPEN_LIMIT
    value_limit: int = VALUE_LIMIT


# -- the page -------------------------------------------------------------------------------------


def _asset(name: str) -> str:
    return (resources.files("tracetree.render") / "assets" / name).read_text(encoding="utf-8")


def script_json(value: Any) -> bytes:
    """JSON that can sit inside a `<script>` element: `<`, `>` and `&` escaped (so no `</script>`
    or `<!--` can end or change the element), and U+2028/2029 too (line breaks to older JS).

    Those characters only occur inside JSON strings, where the escapes mean the same.

    >>> script_json({"m": "</script><b>&"})
    b'{"m":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = orjson.dumps(value)
    for raw, escaped in ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
                         ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page(data: dict[str, Any], title: str) -> bytes:
    """The whole HTML document: data, style and script inlined, nothing fetched."""
    css, js = _asset("report.css"), _asset("report.js")
    # Our own files: a closing tag in them would end the element early.
    assert "</style" not in css.lower() and "</script" not in js.lower()
    policy = (f"default-src 'none'; script-src {_csp_hash(js)}; style-src {_csp_hash(css)}; "
              "img-src data:; base-uri 'none'; form-action 'none'")
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{html.escape(policy, quote=False)}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(safe_text(title))}</title>\n<style>{css}</style>\n</head>\n<body>\n"
        "<noscript>This report needs JavaScript to draw its trees (it fetches nothing).</noscript>\n"
        "<div id=\"app\"></div>\n<script type=\"application/json\" id=\"tracetree-data\">"
    )
    tail = f"</script>\n<script>{js}</script>\n</body>\n</html>\n"
    return head.encode() + script_json(data) + tail.encode()


# -- values ----------------------------------------------------------------------------------------


def clipped(value: Any, limit: int = VALUE_LIMIT, depth: int = 0) -> Any:
    """A received value cut to show: long strings end in `… (N more characters)`, long lists and
    deep nesting are cut, and every string is made safe (control characters shown escaped)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return safe_text(value, multiline=True)
        return safe_text(value[:limit], multiline=True) + f"… ({len(value) - limit} more characters)"
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    if depth >= DEPTH_LIMIT:
        return "… (nested deeper)"
    if isinstance(value, dict):
        out = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= ITEM_LIMIT:
                out["…"] = f"{len(value) - ITEM_LIMIT} more keys"
                break
            out[clip(str(key), 200)] = clipped(item, limit, depth + 1)
        return out
    if isinstance(value, list):
        items = [clipped(item, limit, depth + 1) for item in value[:ITEM_LIMIT]]
        if len(value) > ITEM_LIMIT:
            items.append(f"… {len(value) - ITEM_LIMIT} more items")
        return items
    return safe_text(repr(value))


# -- the build report ------------------------------------------------------------------------------


class _Axis:
    """Where each event of a trace sits on its waterfall: per invocation, sequence → x.

    With informative timestamps x is milliseconds since the trace's first reading, each event at
    the latest reading at or before it (a `spanOpen` stamped at the epoch opened no earlier than
    the event before it). Without them x is the event's rank in the trace's arrival order.
    """

    def __init__(self, trace: Trace, timed: bool) -> None:
        self.timed = timed
        self.x: dict[str, dict[int, float]] = {}
        invocations = list(trace.invocations.values())
        if timed:
            readings = [value for inv in invocations for _, stamp, _ in inv.stamps
                        if (value := millis(stamp)) is not None]
            base = min(readings) if readings else 0.0
            for inv in invocations:
                self.x[inv.invocation_id] = _floors(inv, base)
        else:
            positions = sorted(position for inv in invocations for _, _, position in inv.stamps)
            rank = {position: index for index, position in enumerate(positions)}
            for inv in invocations:
                self.x[inv.invocation_id] = {seq: float(rank[pos]) for seq, _, pos in inv.stamps}
        ends = [value for xs in self.x.values() for value in xs.values()]
        self.end = max(ends) if ends else 0.0

    def of(self, invocation: Invocation, sequence: int | None) -> float | None:
        if sequence is None:
            return None
        return self.x.get(invocation.invocation_id, {}).get(sequence)

    def lane(self, invocation: Invocation) -> list[float] | None:
        xs = self.x.get(invocation.invocation_id)
        if not xs:
            return None
        return [min(xs.values()), max(xs.values())]


def _floors(invocation: Invocation, base: float) -> dict[int, float]:
    """sequence → the latest informative reading at or before it (the first reading for events
    before any), relative to `base`."""
    values: list[float | None] = []
    best: float | None = None
    for _, stamp, _ in invocation.stamps:
        value = millis(stamp)
        if value is not None and (best is None or value > best):
            best = value
        values.append(best)
    first = next((value for value in values if value is not None), base)
    return {seq: (value if value is not None else first) - base
            for (seq, _, _), value in zip(invocation.stamps, values, strict=True)}


def _clock_note(evidence: TraceEvidence | None, timed: bool) -> str:
    if timed:
        return "time axis: milliseconds since the trace's first event (a span opened at the epoch " \
               "is placed at the reading before it)"
    note = ("ordinal layout: this trace's clock says nothing (frozen, or every reading at the epoch), "
            "so bars show the order events arrived in, not how long anything took")
    if evidence is not None and evidence.creation_order == "none":
        note += "; the file is grouped by invocation, so across invocations that order is file order"
    return note


class _BuildData:
    """A forest as the page's data: per trace, a flat list of invocation and span nodes."""

    def __init__(self, forest: Forest, options: HtmlOptions) -> None:
        self.forest = forest
        self.options = options
        self.strings: dict[str, int] = {}  # the current trace's string table

    def data(self) -> dict[str, Any]:
        trees = assemble(self.forest)
        traces = [self.trace(number, tree) for number, tree in enumerate(trees, start=1)]
        counts = self.forest.counts()
        return {
            "kind": "build",
            "title": safe_text(self.options.title),
            "summary": {
                "traces": len(traces),
                "invocations": sum(len(tree.trace.invocations) for tree in trees),
                "links": counts,
                "resolver": "naive" if self.forest.naive else "evidence",
            },
            "expandLimit": self.options.expand_limit,
            "open": len(traces) <= self.options.open_limit,
            "traces": traces,
        }

    def trace(self, number: int, tree: TraceNode) -> dict[str, Any]:
        trace = tree.trace
        # Evidence reads the same across the candidates of a trace ("span still open at the
        # callee's onset" for most of them): each text is sent once, candidates point at it.
        self.strings: dict[str, int] = {}
        evidence = self.forest.evidence.get(trace.trace_id)
        timed = evidence.timestamps if evidence is not None else False
        axis = _Axis(trace, timed)
        nodes: list[dict[str, Any]] = []
        roots: list[int] = []
        # Pre-order with an explicit stack (chains can be deeper than recursion goes); a node's
        # children are pushed in reverse, so each lands in its parent's list in order.
        stack: list[tuple[InvocationNode | SpanNode, int, Invocation | None]] = [
            (root, -1, None) for root in reversed(tree.roots)]
        while stack:
            item, parent, owner = stack.pop()
            index = len(nodes)
            if isinstance(item, InvocationNode):
                node, children = self.invocation(item, trace, axis)
                owner = item.invocation
            else:
                assert owner is not None
                node, children = self.span(item, owner, axis)
            node["c"] = []
            nodes.append(node)
            if parent < 0:
                roots.append(index)
            else:
                nodes[parent]["c"].append(index)
            stack.extend((child, index, owner) for child in reversed(children))
        # How many flagged and non-exact links each subtree holds: the filters show only those.
        for node in reversed(nodes):
            own = node.get("link", {}).get("r")
            node["nf"] = int(own in ("ambiguous", "orphan")) + sum(nodes[c]["nf"] for c in node["c"])
            node["nx"] = int(own not in (None, "root", "exact")) + sum(nodes[c]["nx"] for c in node["c"])
        for node in nodes:
            _drop_defaults(node)
        return {
            "n": number,
            "id": safe_text(trace.trace_id),
            "timed": timed,
            "clock": _clock_note(evidence, timed),
            "lacks": evidence.lacks() if evidence is not None else [],
            "end": axis.end,
            "invocations": len(trace.invocations),
            "roots": roots,
            "nodes": nodes,
            "strings": list(self.strings),
        }

    def string(self, text: str) -> int:
        """The index of `text` in the trace's string table."""
        return self.strings.setdefault(text, len(self.strings))

    def invocation(
        self, node: InvocationNode, trace: Trace, axis: _Axis
    ) -> tuple[dict[str, Any], list[InvocationNode | SpanNode]]:
        invocation, limit = node.invocation, self.options.value_limit
        top = node.top
        defects = []
        if invocation.events_missing:
            defects.append(f"events missing: {invocation.events_missing}")
        if invocation.duplicates:
            defects.append(f"duplicates: {len(invocation.duplicates)}")
        if invocation.onset is None:
            defects.append("onset missing")
        if invocation.outcome is None:
            defects.append("no outcome")
        unclosed = sum(1 for span in invocation.spans.values() if not span.top_level and not span.closed)
        if unclosed:
            defects.append(f"unclosed spans: {unclosed}")
        out: dict[str, Any] = {
            "k": "i",
            "id": safe_text(invocation.invocation_id),
            "label": describe_invocation(invocation).plain,
            "outcome": _clipped(invocation_outcome(invocation), 60),
            "status": invocation_status(invocation),
            "duration": invocation_duration(invocation, axis.timed),
            "x": axis.lane(invocation),
            "defects": defects,
            "onset": clipped({k: v for k, v in (invocation.onset or {}).items() if k != "type"}, limit),
            "link": self.link(node.link, trace),
            "attrs": clipped(top.span.attributes, limit) if top else {},
            "events": self.events(top.span, invocation, axis) if top else [],
            "stray": [self.event(event, invocation, axis) for event in invocation.stray],
            "span": safe_text(top.span.span_id) if top else None,
        }
        children: list[InvocationNode | SpanNode] = []
        if top is not None:
            children += top.spans
            children += top.callees
        children += node.loose
        return out, children

    def link(self, link: Link, trace: Trace) -> dict[str, Any]:
        def describe(invocation_id: str) -> str:
            other = trace.invocations.get(invocation_id)
            return describe_invocation(other).plain if other is not None else "(not in the trace)"

        chosen = (link.parent_invocation_id, link.parent_span_id)
        candidates = []
        # Compact, as a trace of n invocations with sequential span ids can hold n² of them:
        # [state, invocation id (its node says what it is), span id, span name, score,
        #  [[rule, detail, weight, excludes], …]] with names, rules and details in the string table.
        def rank(candidate: Candidate) -> tuple[int, float]:
            if (candidate.invocation_id, candidate.span_id) == chosen:
                return (0, 0.0)
            return (2 if candidate.excluded else 1, -candidate.score)

        ordered = sorted(link.candidates, key=rank)
        shown, left_out = ordered[:CANDIDATE_LIMIT], ordered[CANDIDATE_LIMIT:]
        for candidate in shown:
            state = ("chosen" if (candidate.invocation_id, candidate.span_id) == chosen
                     else "excluded" if candidate.excluded else "possible")
            candidates.append([
                state, safe_text(candidate.invocation_id), safe_text(candidate.span_id),
                self.string(clip(candidate.span_name, 200)), candidate.score,
                [[self.string(item.rule), self.string(clip(item.detail, 400)), item.weight,
                  int(item.excludes)] for item in candidate.evidence],
            ])
        return {
            "r": link.resolution.value,
            "reason": clip(link.reason, 600),
            "caller": [safe_text(link.parent_invocation_id), safe_text(link.parent_span_id)]
            if link.parent_invocation_id and link.parent_span_id else None,
            "callerLabel": describe(link.parent_invocation_id) if link.parent_invocation_id else None,
            "candidates": candidates,
            # [how many, how many of them excluded by a hard constraint]
            "more": [len(left_out), sum(1 for candidate in left_out if candidate.excluded)]
            if left_out else None,
            "later": link.later_owners,
        }

    def span(
        self, node: SpanNode, owner: Invocation, axis: _Axis
    ) -> tuple[dict[str, Any], list[InvocationNode | SpanNode]]:
        span = node.span
        x0 = axis.of(owner, span.open_sequence)
        x1 = axis.of(owner, span.close_sequence)
        if x1 is None and x0 is not None:
            lane = axis.lane(owner)
            x1 = lane[1] if lane else x0
        out = {
            "k": "s",
            "id": safe_text(span.span_id),
            "name": clip(span.name, 200) if span.name else "(unnamed span)",
            "outcome": span.outcome,
            "unclosed": not span.closed,
            "duration": _span_duration(span) if axis.timed else None,
            "x": [x0, x1] if x0 is not None else None,
            "attrs": clipped(span.attributes, self.options.value_limit),
            "events": self.events(span, owner, axis),
            "parentMissing": span.parent_span_id if span.parent_span_id and
            span.parent_span_id not in owner.spans else None,
        }
        return out, [*node.spans, *node.callees]

    def events(self, span: Span, owner: Invocation, axis: _Axis) -> list[dict[str, Any]]:
        return [self.event(event, owner, axis) for event in span.events
                if (event.get("event") or {}).get("type") != "attributes"]

    def event(self, event: dict[str, Any], owner: Invocation, axis: _Axis) -> dict[str, Any]:
        body = event.get("event") if isinstance(event.get("event"), dict) else {}
        kind = body.get("type")
        line = event_line(event)
        sequence = event.get("sequence")
        return {
            "type": clip(str(kind), 60),
            "level": clip(str(body.get("level")), 20) if kind == "log" else None,
            "text": line.plain if line is not None else clip(str(kind), 60),
            "marker": line is not None,  # logs, exceptions, diagnostics: drawn on the bar
            "x": axis.of(owner, sequence if isinstance(sequence, int) else None),
            "sequence": sequence if isinstance(sequence, int) else None,
            "body": clipped({k: v for k, v in body.items() if k != "type"}, self.options.value_limit),
        }


def _drop_defaults(node: dict[str, Any]) -> None:
    """Leave out what a node or event would say by default (none, no, empty): the page reads a
    missing key as that. Children (`c`) stay: every node has a list of them."""
    for key in [key for key, value in node.items()
                if value is None or value is False or (key != "c" and value in ([], {}))
                or (key in ("nf", "nx") and value == 0)]:
        del node[key]
    for event in node.get("events", ()):
        _drop_defaults(event)


def _clipped(text: str | None, width: int) -> str | None:
    return None if text is None else clip(text, width)


def _span_duration(span: Span) -> str | None:
    start, end = millis(span.open_time), millis(span.close_time)
    if start is None or end is None or end < start:
        return None
    return f"{end - start:g} ms"


def render_forest_html(forest: Forest, *, options: HtmlOptions = HtmlOptions()) -> bytes:
    """Every trace of a forest (built with its events kept) as one self-contained HTML page.

    Raises ValueError for a forest built with keep_events=False: a page without its logs and
    exceptions would look complete and not be.

    >>> from tracetree.build import build
    >>> onset = {"invocationId": "a", "spanContext": {"traceId": "t"}, "sequence": 0,
    ...          "event": {"type": "onset", "spanId": "f00d", "info": {"type": "fetch"}}}
    >>> render_forest_html(build([onset])).startswith(b"<!DOCTYPE html>")
    True
    """
    for trace in forest.traces:
        for invocation in trace.invocations.values():
            if invocation.stamps and not invocation.events:
                raise ValueError("the HTML report needs every event: build with keep_events=True")
    return page(_BuildData(forest, options).data(), options.title)


# -- the diff report -------------------------------------------------------------------------------


def _side(tree: Tree, limit: int) -> tuple[list[dict[str, Any]], list[int], dict[str, int]]:
    """One side of a diff as flat nodes (trace headings, invocations, spans), its roots, and the
    node each path names (as diff.path_of writes paths, in this side's own trace numbers)."""
    nodes: list[dict[str, Any]] = []
    roots: list[int] = []
    where: dict[str, int] = {}
    traces: dict[int, int] = {}
    for invocation in tree.invocations:
        if invocation.caller is None and invocation.trace not in traces:
            traces[invocation.trace] = -1
    for number in sorted(traces):
        traces[number] = len(nodes)
        roots.append(len(nodes))
        where.setdefault(f"trace {number}", len(nodes))
        nodes.append({"k": "t", "label": f"trace {number}", "c": [], "p": -1})
    stack: list[tuple[DiffInvocation | DiffSpan, int, DiffInvocation | None]] = [
        (inv, traces[inv.trace], None) for inv in reversed(tree.invocations) if inv.caller is None]
    while stack:
        item, parent, owner = stack.pop()
        index = len(nodes)
        children: list[DiffInvocation | DiffSpan]
        if isinstance(item, DiffInvocation):
            top = item.top
            path = path_of(item)
            node = {"k": "i", "label": clip(item.label, 300), "outcome": _plain(item.outcome),
                    "resolution": item.resolution, "attrs": clipped(top.attributes, limit) if top else {},
                    "events": _diff_events(top, limit) if top else [],
                    "onset": clipped(item.onset, limit)}
            children = ([*_visible_spans(top), *top.callees] if top is not None else [])
            owner = item
        else:
            assert owner is not None
            path = path_of(owner, item)
            node = {"k": "s", "label": clip(item.label, 300), "outcome": _plain(item.outcome),
                    "attrs": clipped(item.attributes, limit), "events": _diff_events(item, limit)}
            children = [*_visible_spans(item), *item.callees]
        node.update({"c": [], "p": parent, "path": clip(path, 2000)})
        where.setdefault(path, index)
        nodes.append(node)
        nodes[parent]["c"].append(index)
        stack.extend((child, index, owner) for child in reversed(children))
    return nodes, roots, where


def _visible_spans(span: DiffSpan) -> list[DiffInvocation | DiffSpan]:
    """Child spans, with synthetic ones (a shape's stand-ins) skipped over: what they hold shows."""
    out: list[DiffInvocation | DiffSpan] = []
    pending = list(reversed(span.spans))
    while pending:
        child = pending.pop()
        if child.synthetic:
            out.extend(child.callees)
            pending.extend(reversed(child.spans))
        else:
            out.append(child)
    return out


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else clipped(value)


def _diff_events(span: DiffSpan, limit: int) -> list[dict[str, Any]]:
    out = []
    for kind, content in span.events:
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError:
            value = content
        out.append({"type": clip(kind, 60), "body": clipped(value, limit)})
    return out


def _anchor(path: str | None, where: dict[str, int]) -> tuple[int, bool]:
    """The node a change's path names on one side: (index, exact), or the nearest existing place
    above it (exact False: an added node has no place on the expected side, only a parent), or -1."""
    if not path:
        return -1, False
    parts = path.split(" › ")
    for cut in range(len(parts), 0, -1):
        found = where.get(" › ".join(parts[:cut]))
        if found is not None:
            return found, cut == len(parts)
    return -1, False


def render_diff_html(
    expected: Tree, actual: Tree, changes: list[Change], *, expected_name: str = "expected",
    actual_name: str = "actual", title: str | None = None, value_limit: int = VALUE_LIMIT,
) -> bytes:
    """Both trees side by side, changed nodes marked, and the list of changes, each linked to its
    place on both sides: one self-contained HTML page."""
    left, left_roots, left_where = _side(expected, value_limit)
    right, right_roots, right_where = _side(actual, value_limit)
    items = []
    for change in changes:
        said = describe(change)
        # A change's path names the actual side (in its trace numbers); other_path names the
        # expected side in its own.
        on_actual, exact_actual = _anchor(change.path, right_where)
        on_expected, exact_expected = _anchor(change.other_path or change.path, left_where)
        mark_actual, mark_expected = _MARK.get(change.kind, ("changed", "changed"))
        index = len(items)
        if on_actual >= 0 and exact_actual and mark_actual:
            right[on_actual].setdefault("marks", []).append([mark_actual, index])
        if on_expected >= 0 and exact_expected and mark_expected:
            left[on_expected].setdefault("marks", []).append([mark_expected, index])
        items.append({
            "kind": change.kind.value,
            "sentence": said.sentence,
            "place": said.place,
            "actual": on_actual, "actualExact": exact_actual,
            "expected": on_expected, "expectedExact": exact_expected,
        })
    expected_shown, actual_shown = (_display(expected_name), _display(actual_name))
    data = {
        "kind": "diff",
        "title": safe_text(title or f"{expected_shown} → {actual_shown}"),
        "expectedName": expected_shown,
        "actualName": actual_shown,
        "summary": count_line(changes) if changes else "no differences",
        "changes": items,
        "expected": {"nodes": left, "roots": left_roots},
        "actual": {"nodes": right, "roots": right_roots},
    }
    return page(data, data["title"])


def _display(name: str) -> str:
    return "stdin" if name == "-" else clip(name, 300)


def report_data(page_bytes: bytes) -> dict[str, Any]:
    """The data block of a page this module wrote, parsed: for tests and tools."""
    start = page_bytes.index(b'id="tracetree-data">') + len(b'id="tracetree-data">')
    end = page_bytes.index(b"</script>", start)
    return orjson.loads(page_bytes[start:end])

