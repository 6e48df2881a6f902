"""Assembling the forest into ordered trees: the one place that decides sibling order.

Renderers and the canonical document all walk these nodes, so the order a user reads in the
terminal is the order committed in a fixture. Siblings go by time (creation order where the
stream has it), then by a stable content key, never by random ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import Forest
from .links import Link
from .model import Invocation, Span, Trace, millis
from .resolve import trace_evidence


@dataclass(slots=True, eq=False)
class SpanNode:
    span: Span
    spans: list[SpanNode] = field(default_factory=list)  # child spans, in creation order
    callees: list[InvocationNode] = field(default_factory=list)  # invocations this span caused


@dataclass(slots=True, eq=False)
class InvocationNode:
    invocation: Invocation
    link: Link
    top: SpanNode | None  # None when the onset is missing
    # Spans whose parent was never opened in this invocation (a stream cut short): kept here.
    loose: list[SpanNode] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class TraceNode:
    trace: Trace
    roots: list[InvocationNode]  # root invocations, orphans included


def content_key(invocation: Invocation) -> tuple[str, ...]:
    """What an invocation is, independent of ids and clocks: for stable sibling order."""
    onset = invocation.onset or {}
    trigger = invocation.trigger
    return (
        invocation.trigger_type,
        str(onset.get("entrypoint") or ""),
        str(onset.get("scriptName") or ""),
        str(trigger.get("method") or ""),
        str(trigger.get("url") or ""),
        str((invocation.top.attributes.get("jsrpc.method") if invocation.top else "") or ""),
        str(trigger.get("cron") or ""),
    )


def _time_key(invocation: Invocation, rank: int | None) -> tuple[float, float]:
    onset = millis(invocation.onset_time)
    return (onset if onset is not None else float("inf"), rank if rank is not None else 0)


def assemble_trace(trace: Trace, links: dict[str, Link]) -> TraceNode:
    _, ranks = trace_evidence(trace)
    nodes: dict[str, InvocationNode] = {}
    span_nodes: dict[tuple[str, str], SpanNode] = {}
    for key, invocation in trace.invocations.items():
        top: SpanNode | None = None
        loose: list[SpanNode] = []
        for span in sorted(invocation.spans.values(), key=lambda s: s.open_sequence):
            span_nodes[(key, span.span_id)] = SpanNode(span)
        for span in sorted(invocation.spans.values(), key=lambda s: s.open_sequence):
            node = span_nodes[(key, span.span_id)]
            if span.top_level:
                if top is None and span.span_id == invocation.top_span_id:
                    top = node
                continue
            parent = span_nodes.get((key, span.parent_span_id or ""))
            if parent is None or parent is node:
                loose.append(node)
            else:
                parent.spans.append(node)
        nodes[key] = InvocationNode(invocation, links[key], top, loose)

    roots: list[InvocationNode] = []
    ordered = sorted(
        nodes.values(),
        key=lambda n: (_time_key(n.invocation, ranks.get(n.invocation.invocation_id)),
                       content_key(n.invocation)),
    )
    for node in ordered:
        parent = node.link.parent
        host = span_nodes.get(parent) if parent else None
        if host is None:
            roots.append(node)
        else:
            host.callees.append(node)
    return TraceNode(trace, roots)


def assemble(forest: Forest) -> list[TraceNode]:
    """Every trace as a tree, traces ordered by their first root's time, then content."""
    trees = [assemble_trace(trace, forest.links) for trace in forest.traces]

    def trace_key(tree: TraceNode) -> tuple:
        first = tree.roots[0].invocation if tree.roots else None
        if first is None:
            return ((float("inf"), 0), ())
        return (_time_key(first, None), content_key(first))

    return sorted(trees, key=trace_key)
