"""Resolving links: which caller span each callee invocation hangs under, from evidence.

A pure function of one trace's invocations, so traces can be resolved in any order, in
parallel, or on another machine. Three passes, in the spirit of Zipkin's SpanNode builder:

1. candidates: every other invocation of the trace owning the span id the onset names, each
   with its evidence (hard constraints that exclude it, soft facts that weigh for or against);
2. propagation: links left with one possible caller are settled, and what they settle (a
   dispatch span's order among its siblings, ancestry) prunes the others, until nothing moves;
3. assignment: the rest are matched together, one callee per dispatch span, by the best total
   weight; each keeps the label its margin earns.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx

from .dispatch import DEFAULT_TABLE, DispatchTable
from .links import Candidate, Evidence, Link, Resolution
from .model import Invocation, Span, Trace, millis

# Predictable mode derives invocation ids from a process-wide counter: each 64-bit half is
# 0x2a2a2a2a2a2a2a2a XOR the counter (server.c++, "predictable" entropy source).
_COUNTER_MASK = 0x2A2A2A2A2A2A2A2A
_SEQUENTIAL_LIMIT = 1 << 32  # a sequential span id is a small counter; a random one is 64-bit

# Weights of soft evidence. A heuristic link needs its total to beat the next best
# assignment by MARGIN: two independent facts, or one attribute match.
W_NAME_FITS = 2.0
W_NAME_MISFITS = -2.0
W_OPEN_AT_ONSET = 1.0
W_CLOSED_BEFORE = -4.0
W_ATTRIBUTE = 3.0
W_NEAREST = 1.0
MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class ResolveOptions:
    """How to resolve: the dispatch table, and the upstream rule for comparison."""

    naive: bool = False
    dispatch: DispatchTable = DEFAULT_TABLE
    margin: float = MARGIN


@dataclass(frozen=True, slots=True)
class TraceEvidence:
    """Which kinds of ordering evidence a trace's events carry."""

    creation_order: str  # "counter" (predictable-mode ids), "arrival" (file order), or "none"
    sequential_ids: bool  # span ids numbered 1, 2, 3… per invocation
    timestamps: bool  # at least two distinct informative timestamps

    def lacks(self) -> list[str]:
        missing = []
        if self.creation_order == "none":
            missing.append("creation order (file not in arrival order, no predictable-mode ids)")
        if not self.timestamps:
            missing.append("informative timestamps (clock frozen or absent)")
        return missing


@dataclass(slots=True)
class _Timing:
    """Per invocation: sorted sequences and the running maximum of informative stamps."""

    sequences: list[int]
    floor: list[float | None]  # floor[k]: latest informative stamp at or before sequences[k]

    @classmethod
    def of(cls, invocation: Invocation) -> _Timing:
        sequences: list[int] = []
        floor: list[float | None] = []
        best: float | None = None
        for sequence, stamp in invocation.stamps:
            value = millis(stamp)
            if value is not None and (best is None or value > best):
                best = value
            sequences.append(sequence)
            floor.append(best)
        return cls(sequences, floor)

    def opened_no_earlier_than(self, span: Span) -> float | None:
        """A lower bound on when the span opened: the latest stamp of anything before it."""
        k = bisect.bisect_right(self.sequences, span.open_sequence) - 1
        return self.floor[k] if k >= 0 else None


@dataclass(slots=True)
class _Child:
    invocation: Invocation
    trigger: str
    candidates: list[Candidate] = field(default_factory=list)
    pruned: dict[str, list[Evidence]] = field(default_factory=dict)  # invocation id → late evidence

    def all_candidates(self) -> tuple[Candidate, ...]:
        """The candidates with what propagation learned about them appended."""
        return tuple(
            Candidate(c.invocation_id, c.span_id, c.span_name,
                      c.evidence + tuple(self.pruned.get(c.invocation_id, ())))
            for c in self.candidates
        )

    def viable(self) -> list[Candidate]:
        return [c for c in self.candidates if not c.excluded and not self.pruned.get(c.invocation_id)]


def _counter(invocation_id: str) -> int | None:
    if len(invocation_id) != 32:
        return None
    try:
        high = int(invocation_id[:16], 16) ^ _COUNTER_MASK
        low = int(invocation_id[16:], 16) ^ _COUNTER_MASK
    except ValueError:
        return None
    return high if high == low and high < _SEQUENTIAL_LIMIT else None


def looks_sequential(span_id: str) -> bool:
    try:
        return int(span_id, 16) < _SEQUENTIAL_LIMIT
    except ValueError:
        return False


def trace_evidence(trace: Trace) -> tuple[TraceEvidence, dict[str, int]]:
    """What ordering evidence the trace has, and each invocation's creation rank where known."""
    invocations = list(trace.invocations.values())
    counters = {inv.invocation_id: _counter(inv.invocation_id) for inv in invocations}
    ranks: dict[str, int] = {}
    if len(invocations) > 1 and all(value is not None for value in counters.values()):
        order = "counter"
        ranks = {key: value for key, value in counters.items() if value is not None}
    else:
        # In arrival order a callee's onset lands inside its caller's run of events, so a trace
        # whose invocations never interleave is sorted (grouped), and its file order says nothing.
        spans = sorted((inv.position, inv.last_position) for inv in invocations)
        interleaved = any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))
        order = "arrival" if interleaved else "none"
        if interleaved:
            ranks = {
                inv.invocation_id: inv.onset_position if inv.onset_position is not None else inv.position
                for inv in invocations
            }
    span_ids = [sid for inv in invocations for sid, span in inv.spans.items() if not span.top_level]
    sequential = bool(span_ids) and all(looks_sequential(sid) for sid in span_ids)
    stamps = {stamp for inv in invocations for _, stamp in inv.stamps if stamp is not None}
    return TraceEvidence(order, sequential, len(stamps) > 1), ranks


def resolve_trace(trace: Trace, options: ResolveOptions = ResolveOptions()) -> dict[str, Link]:
    """Decide the link of every invocation of one trace. Pure: depends on nothing else.

    >>> from tracetree.model import build_traces
    >>> def event(inv, seq, body, span=None):
    ...     context = {"traceId": "t"} | ({"spanId": span} if span else {})
    ...     return {"invocationId": inv, "spanContext": context, "sequence": seq,
    ...             "timestamp": "2026-01-01T00:00:00.000Z", "event": body}
    >>> [trace] = build_traces([
    ...     event("a", 0, {"type": "onset", "spanId": "aa", "info": {"type": "fetch"}}),
    ...     event("b", 0, {"type": "onset", "spanId": "bb", "info": {"type": "fetch"}}, "aa"),
    ... ])
    >>> str(resolve_trace(trace)["b"].resolution), resolve_trace(trace)["b"].parent_invocation_id
    ('exact', 'a')
    """
    if options.naive:
        return _resolve_naive(trace)
    return _Resolver(trace, options).run()


def _owners(trace: Trace) -> dict[str, list[Invocation]]:
    owners: dict[str, list[Invocation]] = {}
    for invocation in trace.invocations.values():
        for span_id in invocation.spans:
            owners.setdefault(span_id, []).append(invocation)
    return owners


def _resolve_naive(trace: Trace) -> dict[str, Link]:
    """The upstream helper's rule: index every span id, invocations in order, the last one wins."""
    index: dict[str, Invocation] = {}
    owners = _owners(trace)
    for invocation in sorted(trace.invocations.values(), key=lambda inv: inv.position):
        for span_id in invocation.spans:
            index[span_id] = invocation
    links: dict[str, Link] = {}
    for invocation in trace.invocations.values():
        trigger = invocation.trigger_span_id
        parent = index.get(trigger) if trigger else None
        count = sum(1 for inv in owners.get(trigger or "", []) if inv is not invocation)
        if trigger is None or parent is invocation:
            resolution, reason = Resolution.ROOT, "no caller span (or the upstream rule's self-reference)"
            parent = None
        elif parent is None:
            resolution, reason = Resolution.ORPHAN, "no invocation of the trace owns the caller span"
        else:
            resolution = Resolution.EXACT if count == 1 else Resolution.AMBIGUOUS
            reason = "upstream rule: the last invocation indexed with this span id"
        links[invocation.invocation_id] = Link(
            invocation.invocation_id, trace.trace_id,
            parent.invocation_id if parent else None,
            trigger if parent else None,
            resolution, reason=reason,
        )
    return links


class _Resolver:
    def __init__(self, trace: Trace, options: ResolveOptions) -> None:
        self.trace = trace
        self.options = options
        self.evidence, self.ranks = trace_evidence(trace)
        self.timing = {key: _Timing.of(inv) for key, inv in trace.invocations.items()}
        self.links: dict[str, Link] = {}
        self.children: dict[str, _Child] = {}
        self.settled: dict[str, tuple[Candidate, Resolution]] = {}

    # -- pass 1: candidates and their evidence ---------------------------------------------
    def run(self) -> dict[str, Link]:
        owners = _owners(self.trace)
        for invocation in self.trace.invocations.values():
            trigger = invocation.trigger_span_id
            key = invocation.invocation_id
            if trigger is None:
                self.links[key] = Link(
                    key, self.trace.trace_id, None, None, Resolution.ROOT,
                    reason="the onset names no caller span" if invocation.onset else
                    "the onset is missing from the input",
                )
                continue
            found = [inv for inv in owners.get(trigger, []) if inv is not invocation]
            if not found:
                self.links[key] = Link(
                    key, self.trace.trace_id, None, None, Resolution.ORPHAN,
                    reason=f"no other invocation of the trace owns span {trigger}",
                )
                continue
            child = _Child(invocation, trigger)
            child.candidates = [self._candidate(invocation, owner, found) for owner in found]
            if len(found) == 1 and not looks_sequential(trigger):
                # A random 64-bit id has one owner in the whole world: nothing to weigh.
                self._settle(child, child.candidates[0], Resolution.EXACT,
                             "the only owner of a random span id")
                continue
            self.children[key] = child
        self._propagate()
        self._assign()
        self._break_cycles()
        return self.links

    def _candidate(self, child: Invocation, owner: Invocation, all_owners: list[Invocation]) -> Candidate:
        span = owner.spans[child.trigger_span_id or ""]
        facts: list[Evidence] = []
        onset = millis(child.onset_time)
        rank_child = self.ranks.get(child.invocation_id)
        rank_owner = self.ranks.get(owner.invocation_id)
        if rank_child is not None and rank_owner is not None and rank_owner > rank_child:
            how = "invocation counter" if self.evidence.creation_order == "counter" else "onset order"
            facts.append(Evidence("created-after-child",
                                  f"created after the callee ({how})", excludes=True))
        opened = self.timing[owner.invocation_id].opened_no_earlier_than(span)
        if opened is not None and onset is not None:
            if opened > onset:
                facts.append(Evidence("opened-after-onset",
                                      f"span opened after the callee's onset (by {opened - onset:g} ms)",
                                      excludes=True))
        closed = millis(span.close_time)
        if closed is not None and onset is not None:
            if closed < onset:
                facts.append(Evidence("closed-before-onset",
                                      f"span closed {onset - closed:g} ms before the callee's onset",
                                      W_CLOSED_BEFORE))
            else:
                facts.append(Evidence("open-at-onset", "span still open at the callee's onset",
                                      W_OPEN_AT_ONSET))
        fits = self.options.dispatch.fits(child.trigger_type, span.name, span.top_level)
        shown = "top-level span" if span.top_level else f"'{span.name}' span"
        if fits is True:
            facts.append(Evidence("name-fits", f"a {shown} dispatches {child.trigger_type} invocations",
                                  W_NAME_FITS))
        elif fits is False:
            facts.append(Evidence("name-misfits",
                                  f"a {shown} does not dispatch {child.trigger_type} invocations",
                                  W_NAME_MISFITS))
        facts.extend(_attribute_evidence(child, span))
        if onset is not None and opened is not None and opened <= onset and len(all_owners) > 1:
            # The nearest preceding dispatch: among owners opened before the onset, the one that
            # opened latest is the likeliest to have just made the call.
            others = [
                self.timing[o.invocation_id].opened_no_earlier_than(o.spans[span.span_id])
                for o in all_owners if o is not owner
            ]
            if all(t is None or t > onset or t < opened for t in others):
                facts.append(Evidence("nearest", "the latest owner opened before the onset",
                                      W_NEAREST))
        return Candidate(owner.invocation_id, span.span_id, span.name, tuple(facts))

    def _fits(self, child: _Child, candidate: Candidate) -> bool:
        """Whether a lone candidate is proof: its span fits the trigger and nothing speaks against."""
        names = {item.rule for item in candidate.evidence}
        return "name-fits" in names and not any(item.weight < 0 for item in candidate.evidence)

    # -- pass 2: propagation ---------------------------------------------------------------
    def _settle(self, child: _Child, candidate: Candidate, resolution: Resolution, reason: str) -> None:
        key = child.invocation.invocation_id
        self.settled[key] = (candidate, resolution)
        self.links[key] = Link(
            key, self.trace.trace_id, candidate.invocation_id, candidate.span_id, resolution,
            child.all_candidates(), reason,
        )

    def _ancestors(self, key: str) -> set[str]:
        seen: set[str] = set()
        while key in self.links and self.links[key].parent_invocation_id and key not in seen:
            seen.add(key)
            key = self.links[key].parent_invocation_id or ""
        seen.add(key)
        return seen

    def _propagate(self) -> None:
        changed = True
        while changed:
            changed = False
            for key, child in list(self.children.items()):
                if key in self.settled:
                    continue
                self._prune(child)
                viable = child.viable()
                if len(viable) == 1 and self._fits(child, viable[0]):
                    ruled_out = len(child.candidates) - 1
                    self._settle(child, viable[0], Resolution.CAUSAL,
                                 f"one candidate left: {ruled_out} ruled out by hard constraints")
                    changed = True

    def _prune(self, child: _Child) -> None:
        """Rule out candidates that settled links make impossible."""
        key = child.invocation.invocation_id
        rank = self.ranks.get(key)
        for candidate in child.candidates:
            if candidate.excluded or child.pruned.get(candidate.invocation_id):
                continue
            late: list[Evidence] = []
            if key in self._ancestors(candidate.invocation_id):
                late.append(Evidence("descendant", "a descendant of the callee (would be a cycle)",
                                     excludes=True))
            owner = self.trace.invocations[candidate.invocation_id]
            span = owner.spans[candidate.span_id]
            if rank is not None and not span.top_level:
                for other_key, (other, _) in self.settled.items():
                    if other.invocation_id != candidate.invocation_id or other_key == key:
                        continue
                    other_span = owner.spans[other.span_id]
                    other_rank = self.ranks.get(other_key)
                    if other_span.top_level or other_rank is None:
                        continue
                    if (other_rank < rank) != (other_span.open_sequence < span.open_sequence):
                        late.append(Evidence(
                            "dispatch-order",
                            f"its span {other.span_id} dispatched a callee created "
                            f"{'before' if other_rank < rank else 'after'} this one, so dispatch "
                            "spans and callees would come in different orders",
                            excludes=True))
                        break
            if late:
                child.pruned[candidate.invocation_id] = late

    # -- pass 3: assignment ----------------------------------------------------------------
    def _assign(self) -> None:
        open_children = [c for k, c in self.children.items() if k not in self.settled]
        if not open_children:
            return
        taken = {
            (cand.invocation_id, cand.span_id)
            for cand, _ in self.settled.values()
            if not self.trace.invocations[cand.invocation_id].spans[cand.span_id].top_level
        }
        graph = nx.Graph()
        edges: dict[tuple[str, tuple[str, ...]], Candidate] = {}
        for child in open_children:
            key = child.invocation.invocation_id
            graph.add_node(("child", key))
            for candidate in self._choices(child):
                slot = self._slot(key, candidate)
                if slot[1:] in taken:
                    continue
                weight = 100.0 + candidate.score
                graph.add_edge(("child", key), slot, weight=weight)
                edges[(key, slot)] = candidate
        for component in nx.connected_components(graph):
            sub = graph.subgraph(component)
            self._assign_component(sub, edges)

    def _choices(self, child: _Child) -> list[Candidate]:
        viable = child.viable()
        return viable if viable else []

    @staticmethod
    def _slot(child_key: str, candidate: Candidate) -> tuple[str, ...]:
        return ("span", candidate.invocation_id, candidate.span_id)

    def _assign_component(self, sub: nx.Graph, edges: dict) -> None:
        # Top-level spans may wake many callees (hibernation): give each child its own copy.
        graph = nx.Graph()
        for (a, b, data) in sub.edges(data=True):
            child, slot = (a, b) if a[0] == "child" else (b, a)
            candidate = edges[(child[1], slot)]
            owner = self.trace.invocations[candidate.invocation_id]
            if owner.spans[candidate.span_id].top_level:
                slot = ("top", child[1], *slot[1:])
            graph.add_edge(child, slot, weight=data["weight"])
            edges[(child[1], slot)] = candidate
        children = [n for n in sub.nodes if n[0] == "child"]
        matching = _matching(graph)
        total = _weight(graph, matching)
        for node in children:
            key = node[1]
            child = self.children[key]
            slot = matching.get(node)
            viable = child.viable()
            if slot is None:
                if viable:
                    best = max(viable, key=lambda c: c.score)
                    self._settle(child, best, Resolution.AMBIGUOUS,
                                 "every fitting dispatch span is taken by a better-placed callee")
                else:
                    self._settle_orphan(child)
                continue
            chosen = edges[(key, slot)]
            if len(viable) == 1:
                resolution = Resolution.HEURISTIC if self._fits(child, chosen) else Resolution.AMBIGUOUS
                reason = ("one candidate left, but its span does not clearly fit the trigger"
                          if resolution is Resolution.AMBIGUOUS else
                          "one candidate left once other callees took their dispatch spans")
                self._settle(child, chosen, resolution, reason)
                continue
            reduced = graph.copy()
            reduced.remove_edge(node, slot)
            margin = total - _weight(reduced, _matching(reduced))
            if margin >= self.options.margin and self._fits(child, chosen):
                self._settle(child, chosen, Resolution.HEURISTIC,
                             f"best overall fit, ahead of the next arrangement by {margin:g}")
            else:
                self._settle(child, chosen, Resolution.AMBIGUOUS,
                             f"best overall fit, but only by {margin:g}: evidence does not separate "
                             "the candidates")

    def _settle_orphan(self, child: _Child) -> None:
        key = child.invocation.invocation_id
        self.links[key] = Link(
            key, self.trace.trace_id, None, None, Resolution.ORPHAN, child.all_candidates(),
            f"all {len(child.candidates)} owners of span {child.trigger} are ruled out",
        )

    def _break_cycles(self) -> None:
        """Without creation order or timestamps a chain of choices could loop: cut the weakest link."""
        graph = nx.DiGraph(
            (key, link.parent_invocation_id) for key, link in self.links.items()
            if link.parent_invocation_id
        )
        strength = {r: n for n, r in enumerate(Resolution)}
        while True:
            try:
                cycle = nx.find_cycle(graph)
            except nx.NetworkXNoCycle:
                return
            weakest = max((edge[0] for edge in cycle), key=lambda k: strength[self.links[k].resolution])
            link = self.links[weakest]
            self.links[weakest] = Link(
                link.invocation_id, link.trace_id, None, None, Resolution.ORPHAN, link.candidates,
                "every remaining choice would make a cycle of callers",
            )
            graph.remove_edge(weakest, link.parent_invocation_id)


def _matching(graph: nx.Graph) -> dict:
    pairs = nx.max_weight_matching(graph, maxcardinality=True)
    result = {}
    for a, b in pairs:
        result[a] = b
        result[b] = a
    return result


def _weight(graph: nx.Graph, matching: dict) -> float:
    return sum(graph[a][b]["weight"] for a, b in matching.items() if a[0] == "child")


def _attribute_evidence(child: Invocation, span: Span) -> Iterable[Evidence]:
    """Attributes that tie a caller span to a callee: the URL, the RPC method, the object id."""
    trigger = child.trigger
    top = child.top
    pairs = (
        ("url.full", trigger.get("url"), "URL"),
        ("jsrpc.method", top.attributes.get("jsrpc.method") if top else None, "RPC method"),
        ("objectId", (child.onset or {}).get("durableObjectId"), "Durable Object id"),
    )
    for name, theirs, label in pairs:
        ours = span.attributes.get(name)
        if ours is None or theirs is None or ours == "" or theirs == "":
            continue
        if ours == theirs:
            yield Evidence(f"{name}-matches", f"{label} matches ({_short(ours)})", W_ATTRIBUTE)
        else:
            yield Evidence(f"{name}-differs",
                           f"{label} differs ({_short(ours)} vs {_short(theirs)})", -W_ATTRIBUTE)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"
