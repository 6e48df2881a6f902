"""Assembling the forest into ordered trees: the one place that decides sibling order.

Renderers and the canonical document all walk these nodes, so the order a user reads in the
terminal is the order committed in a fixture. Siblings go by time (creation order where the
stream has it), then by a stable content key, never by random ids.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .build import Forest
from .fields import VOLATILE_FIELDS
from .links import Link
from .model import Invocation, Span, Trace, millis, parsed_events
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
    signature: str = ""  # what the whole trace holds, without ids: orders traces stably


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


def _place(nodes: list, parent_of: Callable[[Any], Any]) -> list:
    """Attach each node under its parent, in the order given; return those left as roots.

    A node is attached only once its parent is itself placed, so parents that name each other
    (a cycle, from malformed input or the upstream rule's links) cannot hide a node: each cycle
    is broken at one of its members, which becomes a root. `parent_of` returns the parent
    node (attaching is the caller's job, through the returned pairs) or None."""
    roots = []
    placed: set[int] = set()
    waiting = list(nodes)
    while waiting:
        progress = False
        still = []
        for node in waiting:
            parent = parent_of(node)
            if parent is None:
                roots.append((node, None))
                placed.add(id(node))
                progress = True
            elif id(parent) in placed:
                roots.append((node, parent))
                placed.add(id(node))
                progress = True
            else:
                still.append(node)
        if not progress:
            # Only cycles (and chains hanging from them) are left: break a cycle at a member,
            # found by following parents from the earliest waiting node until one repeats
            # (a node merely hanging from a cycle keeps its parent).
            seen: set[int] = set()
            member = still[0]
            while id(member) not in seen:
                seen.add(id(member))
                member = parent_of(member)
            roots.append((member, None))
            placed.add(id(member))
            still = [node for node in still if node is not member]
        waiting = still
    return roots


def assemble_trace(trace: Trace, links: dict[str, Link], ranks: dict[str, int] | None = None) -> TraceNode:
    """One trace as a tree in which every invocation and every span appears exactly once."""
    if ranks is None:
        ranks = trace_evidence(trace)[1]
    nodes: dict[str, InvocationNode] = {}
    span_nodes: dict[tuple[str, str], SpanNode] = {}
    for key, invocation in trace.invocations.items():
        spans = sorted(invocation.spans.values(), key=lambda s: s.open_sequence)
        own = [SpanNode(span) for span in spans]
        for node in own:
            span_nodes[(key, node.span.span_id)] = node
        top = span_nodes.get((key, invocation.top_span_id or ""))

        def parent_span(node: SpanNode, key: str = key, top: SpanNode | None = top) -> SpanNode | None:
            if node is top or node.span.parent_span_id is None:
                return None
            parent = span_nodes.get((key, node.span.parent_span_id))
            return None if parent is node else parent

        loose: list[SpanNode] = []
        for node, parent in _place(own, parent_span):
            if parent is not None:
                parent.spans.append(node)
            elif node is not top:
                loose.append(node)  # its parent was never opened here, or a cycle
        nodes[key] = InvocationNode(invocation, links[key], top, loose)

    roots: list[InvocationNode] = []

    def host_span(node: InvocationNode) -> SpanNode | None:
        parent = node.link.parent
        return span_nodes.get(parent) if parent else None

    owner_of = {id(span_node): nodes[key] for (key, _), span_node in span_nodes.items()}
    for node, host in _place(list(nodes.values()), lambda n: _host_owner(n, host_span, owner_of)):
        if host is None:
            roots.append(node)
        else:
            span = host_span(node)
            assert span is not None
            span.callees.append(node)
    # Siblings by time, then content, then the shape of everything below them: only truly
    # identical subtrees are left in input order, and for those the order changes nothing.
    signatures: dict[int, str] = {}
    _sign_all(roots, signatures)

    def sibling_key(node: InvocationNode) -> tuple:
        invocation = node.invocation
        return (_time_key(invocation, ranks.get(invocation.invocation_id)), content_key(invocation),
                signatures[id(node)])

    for span_node in span_nodes.values():
        if len(span_node.callees) > 1:
            span_node.callees.sort(key=sibling_key)
    roots.sort(key=sibling_key)
    return TraceNode(trace, roots, "".join(sorted(signatures[id(node)] for node in roots)))


def _host_owner(
    node: InvocationNode,
    host_span: Callable[[InvocationNode], SpanNode | None],
    owner_of: dict[int, InvocationNode],
) -> InvocationNode | None:
    span = host_span(node)
    if span is None:
        return None
    owner = owner_of[id(span)]
    return None if owner is node else owner


def _sign_all(roots: list[InvocationNode], signatures: dict[int, str]) -> None:
    """A digest of what each invocation and everything below it hold: no ids, no clocks.

    Iterative, children before parents: a call chain can be deeper than Python's recursion
    limit, and digests keep each signature small however much lies below."""
    order: list[InvocationNode | SpanNode] = []
    stack: list[InvocationNode | SpanNode] = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        if isinstance(node, InvocationNode):
            stack.extend(([node.top] if node.top else []) + node.loose)
        else:
            stack.extend(node.spans)
            stack.extend(node.callees)
    for node in reversed(order):
        if isinstance(node, InvocationNode):
            invocation = node.invocation
            outcome = (invocation.outcome or {}).get("outcome")
            parts = [repr(content_key(invocation)), node.link.resolution.value, repr(outcome),
                     _stable(invocation.trigger)]
            parts.extend(signatures[id(span)] for span in ([node.top] if node.top else []) + node.loose)
        else:
            span = node.span
            parts = [repr(span.name), _stable(span.attributes), str(span.outcome)]
            # Attributes events are already in span.attributes, where volatile values are left out.
            parts.extend(_stable(body) for event in span.events
                         if (body := event.get("event") or {}).get("type") != "attributes")
            parts.extend(signatures[id(child)] for child in node.spans)
            parts.extend(sorted(signatures[id(callee)] for callee in node.callees))
        signatures[id(node)] = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def _stable(mapping: dict[str, Any]) -> str:
    """Keys and values of a mapping, values of volatile fields left out; long text by checksum."""
    items = []
    for key in sorted(mapping):
        value = None if key in VOLATILE_FIELDS else mapping[key]
        if isinstance(value, (dict, list)):
            try:
                value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)
            except TypeError:  # nested deeper than orjson goes (a log message can be)
                value = _flat(value)
        text = repr(value)
        items.append(f"{key}={text if len(text) <= 64 else zlib.crc32(text.encode())}")
    return "{" + ";".join(items) + "}"


def _flat(value: Any) -> str:
    """A stable text of a value of any depth, without recursion."""
    tokens: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            tokens.append("{")
            stack.append("}")
            for key in sorted(item, reverse=True):
                stack.extend((item[key], f"{key}:"))
        elif isinstance(item, list):
            tokens.append("[")
            stack.append("]")
            stack.extend(reversed(item))
        else:
            tokens.append(repr(item))
    return ",".join(tokens)


def assemble(forest: Forest) -> list[TraceNode]:
    """Every trace as a tree. Traces go by their first root's time, then by what they hold
    (every invocation's content key), so neither ids nor how the input interleaved traces
    changes the order."""
    return sorted((assemble_parsed(forest, trace) for trace in forest.traces), key=trace_order)


def assemble_parsed(forest: Forest, trace: Trace) -> TraceNode:
    """One trace of the forest as a tree, its events parsed meanwhile where the model keeps them
    as text (sibling order weighs what the events hold; see model.parsed_events)."""
    with parsed_events(trace):
        return assemble_trace(trace, forest.links, forest.ranks.get(trace.trace_id))


def trace_order(tree: TraceNode) -> tuple[Any, ...]:
    """Where a trace goes among the others: by its first root's time, then by what it holds."""
    first = tree.roots[0].invocation if tree.roots else None
    start = _time_key(first, None)[0] if first is not None else float("inf")
    return (start, tree.signature)
