"""The `tree` format: every trace as a rich Tree, callees under the span that called them.

Walks `assemble(forest)` and never re-orders what it gives. Every string from an event goes
into a `Line` (which makes it safe) and from there into a `rich.text.Text`: never into markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from rich.console import Group
from rich.text import Text
from rich.tree import Tree

from ..assemble import InvocationNode, SpanNode, TraceNode, assemble
from ..build import Forest
from ..links import Link, Resolution
from ..model import Invocation, Span, millis
from .text import Line, clip, short_id

SEP = " · "

# Labels that need the reader's attention, and how they look. Root and exact go unmarked.
LABEL_STYLE: dict[Resolution, str] = {
    Resolution.CAUSAL: "cyan",
    Resolution.HEURISTIC: "yellow",
    Resolution.AMBIGUOUS: "bold red",
    Resolution.ORPHAN: "bold red",
}
LEVEL_STYLE = {"error": "red", "warn": "yellow", "debug": "dim"}

# Span attributes worth a glance, in the order shown; the rest are counted, not shown.
KEY_ATTRIBUTES = (
    "http.request.method",
    "url.full",
    "http.response.status_code",
    "jsrpc.method",
    "objectId",
)
# Event types already shown elsewhere: attributes on the span line, outcome and status on the
# invocation line, structure as the tree itself.
_NOT_LISTED = frozenset({"attributes", "outcome", "return", "onset", "spanOpen", "spanClose"})


# -- describing things ---------------------------------------------------------------------
def _str(value: Any) -> str:
    """A field value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)


def trigger_text(invocation: Invocation) -> str:
    """What started the invocation, e.g. `fetch GET http://x/y`, `jsrpc getCounter`; made safe."""
    if invocation.onset is None:
        return "(onset missing)"
    info = invocation.trigger
    kind = invocation.trigger_type
    parts: list[Any] = [kind]
    if kind == "fetch":
        parts += [info.get("method"), info.get("url")]
    elif kind == "jsrpc":
        top = invocation.top
        parts.append(top.attributes.get("jsrpc.method") if top else None)
    elif kind == "scheduled":
        parts.append(info.get("cron"))
    elif kind == "queue":
        parts.append(info.get("queueName"))
    elif kind == "email":
        parts.append(info.get("rcptTo"))
    elif kind == "hibernatableWebSocket":
        inner = info.get("info")
        parts.append(inner.get("type") if isinstance(inner, dict) else None)
    return clip(" ".join(_str(part) for part in parts if part), 120)


def describe(invocation: Invocation) -> Line:
    """Trigger, entrypoint, script and Durable Object of an invocation."""
    line = Line(trigger_text(invocation), "bold")
    onset = invocation.onset or {}
    entrypoint = onset.get("entrypoint")
    if entrypoint:
        line.add(SEP, "dim").add(clip(_str(entrypoint), 60), "cyan")
    script = onset.get("scriptName")
    if script:
        line.add(SEP, "dim").add("script ", "dim").add(clip(_str(script), 60))
    object_id = onset.get("durableObjectId")
    if object_id:
        line.add(SEP, "dim").add("object ", "dim").add(short_id(_str(object_id)))
    return line


def outcome_line(outcome: str | None, *, missing: str = "no outcome") -> Line:
    if outcome is None:
        return Line(missing, "red")
    return Line(clip(outcome, 40), "green" if outcome == "ok" else "red")


def label_line(link: Link) -> Line:
    """`[heuristic]` and the like; empty for root and exact links, which need no comment."""
    style = LABEL_STYLE.get(link.resolution)
    return Line(f"[{link.resolution.value}]", style) if style else Line()


def _duration(start: float | None, end: float | None) -> str | None:
    if start is None or end is None or end < start:
        return None
    elapsed = end - start
    return f"{elapsed:g} ms" if elapsed < 1000 else f"{elapsed / 1000:.3g} s"


def invocation_duration(invocation: Invocation, clock: bool) -> str | None:
    """Onset to outcome where the clock says something; else the runtime's own wallTime.

    The outcome is an invocation's last event, so its stamp is the latest informative one:
    that holds without the raw events (keep_events=False) too.
    """
    outcome = invocation.outcome
    if outcome is None:
        return None
    if clock and invocation.onset_time is not None:
        # Each stamp is (sequence, informative timestamp or None, …).
        ends = [value for value in (millis(entry[1]) for entry in invocation.stamps) if value is not None]
        shown = _duration(millis(invocation.onset_time), max(ends) if ends else None)
        if shown is not None:
            return shown
    wall = outcome.get("wallTime")
    # Predictable mode reports 0: no information, not an instant invocation.
    if isinstance(wall, (int, float)) and not isinstance(wall, bool) and wall > 0:
        return _duration(0.0, float(wall))
    return None


def invocation_status(invocation: Invocation) -> str | None:
    """The HTTP status a fetch invocation returned, when its `return` event was kept."""
    top = invocation.top
    for event in top.events if top else ():
        body = event.get("event") or {}
        info = body.get("info")
        if body.get("type") == "return" and isinstance(info, dict) and "statusCode" in info:
            return clip(_str(info["statusCode"]), 10)
    return None


def invocation_outcome(invocation: Invocation) -> str | None:
    if invocation.outcome is None:
        return None
    value = invocation.outcome.get("outcome")
    return value if isinstance(value, str) else _str(value)


def invocation_label(node: InvocationNode, clock: bool) -> Text:
    """Description, outcome, status, duration, link label, stream defects and short id."""
    invocation = node.invocation
    line = describe(invocation).add("  ").extend(outcome_line(invocation_outcome(invocation)))
    status = invocation_status(invocation)
    if status is not None:
        line.add(" ").add(status, "dim")
    duration = invocation_duration(invocation, clock)
    if duration is not None:
        line.add(SEP, "dim").add(duration)
    label = label_line(node.link)
    if label:
        line.add("  ").extend(label)
    if invocation.events_missing:
        line.add("  ").add(f"events missing: {invocation.events_missing}", "bold red")
    if invocation.duplicates:
        line.add("  ").add(f"duplicates: {len(invocation.duplicates)}", "yellow")
    unclosed = sum(1 for span in invocation.spans.values() if not span.top_level and not span.closed)
    if unclosed:
        line.add("  ").add(f"unclosed: {unclosed}", "yellow")
    return line.add("  ").add(short_id(invocation.invocation_id), "dim").text()


def _attributes(span: Span, line: Line) -> None:
    shown = 0
    for name in KEY_ATTRIBUTES:
        if name in span.attributes:
            value = _str(span.attributes[name])
            line.add(" ").add(short_id(value) if name == "objectId" else clip(value, 80), "dim")
            shown += 1
    rest = [name for name in span.attributes if name not in KEY_ATTRIBUTES]
    if not shown:
        # No well-known attribute: a glimpse of the span's own ones says what it is about.
        for name in rest[:2]:
            line.add(" ").add(f"{clip(name, 40)}={clip(_str(span.attributes[name]), 40)}", "dim")
        rest = rest[2:]
    if rest:
        line.add(" ").add(f"+{len(rest)} attrs", "dim")


def span_line(span: Span, clock: bool = True) -> Line:
    line = Line(clip(span.name, 80), "bold") if span.name else Line("(unnamed span)", "dim")
    _attributes(span, line)
    line.add("  ")
    if span.closed:
        line.extend(outcome_line(span.outcome, missing="closed"))
        duration = _duration(millis(span.open_time), millis(span.close_time)) if clock else None
        if duration is not None:
            line.add(SEP, "dim").add(duration)
    else:
        line.add("unclosed", "yellow")
    return line.add("  ").add(short_id(span.span_id), "dim")


def span_label(span: Span, clock: bool = True) -> Text:
    """Name, key attributes, outcome (or `unclosed`), duration where known, short span id."""
    return span_line(span, clock).text()


def _message(value: Any) -> str:
    """A log message: console.log's arguments joined by spaces, strings unquoted."""
    if isinstance(value, list):
        return " ".join(_str(item) for item in value)
    return _str(value)


def event_line(event: dict[str, Any]) -> Line | None:
    """One line for a log, exception or other event; None for those shown elsewhere."""
    body = event.get("event") or {}
    kind = body.get("type")
    if kind in _NOT_LISTED:
        return None
    if kind == "log":
        level = _str(body.get("level") or "log")
        line = Line(clip(level, 12), LEVEL_STYLE.get(level, "blue"))
        if body.get("truncated"):  # said before the message, which the terminal's edge may cut
            line.add(" (truncated)", "dim")
        return line.add(" ").add(clip(_message(body.get("message")), 160))
    if kind == "exception":
        message = f"{_str(body.get('name') or 'Error')}: {_str(body.get('message') or '')}"
        return Line("exception ", "bold red").add(clip(message, 160))
    if kind == "diagnosticChannel":
        return Line("diagnosticChannel ", "dim").add(clip(_str(body.get("channel") or ""), 80))
    if kind == "streamDiagnostic":
        diagnostic = body.get("diagnostic")
        detail = _str(diagnostic) if not isinstance(diagnostic, dict) else " ".join(
            _str(diagnostic.get(key)) for key in ("diagnosticsType", "count") if key in diagnostic
        )
        return Line("stream diagnostic ", "bold red").add(clip(detail, 80))
    # A type this version does not know: shown by name, so nothing is silently dropped.
    return Line(clip(_str(kind), 40), "dim").add(" event", "dim")


# -- walking the assembled tree ------------------------------------------------------------
def _sequence(event: dict[str, Any]) -> int:
    value = event.get("sequence")
    return value if isinstance(value, int) else 0


def _content(node: SpanNode) -> Iterable[SpanNode | dict[str, Any]]:
    """A span's child spans and its events, interleaved by sequence.

    Both lists are already in sequence order (assemble orders spans, the model orders
    events); merging them keeps each list's order and only decides where logs fall.
    """
    spans, events = node.spans, node.span.events
    if not events or not spans:
        return spans or events
    merged: list[SpanNode | dict[str, Any]] = []
    k = 0
    for event in events:
        sequence = _sequence(event)
        while k < len(spans) and spans[k].span.open_sequence < sequence:
            merged.append(spans[k])
            k += 1
        merged.append(event)
    merged.extend(spans[k:])
    return merged


# Nodes whose branch exists but whose content is still to be added.
_Pending = list[tuple[Tree, SpanNode | InvocationNode]]


def _fill(branch: Tree, node: SpanNode, clock: bool, pending: _Pending) -> None:
    """Add a span's content to `branch`; child spans and callees are queued on `pending`."""
    for item in _content(node):
        if isinstance(item, SpanNode):
            pending.append((branch.add(span_label(item.span, clock)), item))
        else:
            line = event_line(item)
            if line is not None:
                branch.add(line.text())
    for callee in node.callees:
        pending.append((branch.add(invocation_label(callee, clock)), callee))


def _fill_invocation(branch: Tree, node: InvocationNode, clock: bool, pending: _Pending) -> None:
    """Add an invocation's content: its top-level span's, then spans and events that lost their place."""
    if node.top is not None:
        _fill(branch, node.top, clock, pending)
    for loose in node.loose:
        line = span_line(loose.span, clock).add("  ")
        line.add(f"(parent span {clip(loose.span.parent_span_id or '', 20)} never opened)", "yellow")
        pending.append((branch.add(line.text()), loose))
    for event in node.invocation.stray:
        line = event_line(event)
        if line is None:  # a structural event that could not be applied: still shown, by type
            kind = (event.get("event") or {}).get("type")
            line = Line(clip(_str(kind), 40), "dim").add(" event", "dim")
        aimed = (event.get("spanContext") or {}).get("spanId")
        line.add("  ").add(f"(stray: aimed at span {clip(_str(aimed), 20)})", "yellow")
        branch.add(line.text())


def trace_tree(number: int, node: TraceNode, clock: bool) -> Tree:
    """One trace as a Tree; built with an explicit stack, as call chains can be very deep."""
    count = len(node.trace.invocations)
    label = Line(f"trace {number}", "bold").add(f"{SEP}{count} invocation{'s' if count != 1 else ''}  ")
    tree = Tree(label.add(short_id(node.trace.trace_id), "dim").text(), guide_style="dim")
    # Each branch is created in its parent's order before it is filled, so the order in which
    # the stack fills them never changes the order shown.
    pending: _Pending = [(tree.add(invocation_label(root, clock)), root) for root in node.roots]
    while pending:
        branch, item = pending.pop()
        if isinstance(item, InvocationNode):
            _fill_invocation(branch, item, clock, pending)
        else:
            _fill(branch, item, clock, pending)
    return tree


def render_tree(forest: Forest) -> Group:
    """Every trace as a tree, in assemble's order, one after the other."""
    trees: list[Any] = []
    for number, node in enumerate(assemble(forest), start=1):
        evidence = forest.evidence.get(node.trace.trace_id)
        # Durations only where the trace's clock ticks: a frozen clock would say "0 ms".
        clock = evidence.timestamps if evidence is not None else True
        trees.append(trace_tree(number, node, clock))
    if not trees:
        trees.append(Text("no traces in the input", "dim"))
    return Group(*trees)
