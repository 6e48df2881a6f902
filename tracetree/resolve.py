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
import itertools
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
W_RESUMED = -2.0
MARGIN = 2.0
_TIE = 1e-3  # tie-breakers stay far below any evidence weight


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
    arrival_order: bool  # the input is in arrival order (invocations interleave), not grouped
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
    positions: list[int]  # input position of the event with sequences[k]

    @classmethod
    def of(cls, invocation: Invocation) -> _Timing:
        sequences: list[int] = []
        floor: list[float | None] = []
        positions: list[int] = []
        best: float | None = None
        for sequence, stamp, position in invocation.stamps:
            positions.append(position)
            value = millis(stamp)
            if value is not None and (best is None or value > best):
                best = value
            sequences.append(sequence)
            floor.append(best)
        return cls(sequences, floor, positions)

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
    # In arrival order a callee's onset lands inside its caller's run of events, so a trace
    # whose invocations never interleave is sorted (grouped), and its file order says nothing.
    runs = sorted((inv.position, inv.last_position) for inv in invocations)
    arrival = any(later[0] < earlier[1] for earlier, later in itertools.pairwise(runs))
    counters = {inv.invocation_id: _counter(inv.invocation_id) for inv in invocations}
    ranks: dict[str, int] = {}
    if len(invocations) > 1 and all(value is not None for value in counters.values()):
        order = "counter"
        ranks = {key: value for key, value in counters.items() if value is not None}
    elif arrival:
        order = "arrival"
        ranks = {
            inv.invocation_id: inv.onset_position if inv.onset_position is not None else inv.position
            for inv in invocations
        }
    else:
        order = "none"
    span_ids = [sid for inv in invocations for sid, span in inv.spans.items() if not span.top_level]
    sequential = bool(span_ids) and all(looks_sequential(sid) for sid in span_ids)
    stamps = {stamp for inv in invocations for _, stamp, _ in inv.stamps if stamp is not None}
    return TraceEvidence(order, arrival, sequential, len(stamps) > 1), ranks


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
        self._settled_by_owner: dict[str, list[tuple[str, Candidate]]] = {}
        self._callees: dict[str, list[str]] = {}  # settled links, caller → callees
        # Positions relative to the trace's first event: the same events give the same links
        # wherever they sit in a larger input.
        self._base = min((inv.position for inv in trace.invocations.values()), default=0)
        self._size = 1 + max((inv.last_position for inv in trace.invocations.values()), default=0) - self._base

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
        if self.evidence.arrival_order and child.onset_position is not None and not span.top_level:
            facts.extend(self._arrival_evidence(owner, span, child.onset_position))
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

    def _arrival_evidence(self, owner: Invocation, span: Span, onset_position: int) -> list[Evidence]:
        """What arrival order says. A dispatch span's close, and the caller's next event after
        the spanOpen, arrive after the callee's onset in every real capture; the spanOpen itself
        may come either side (real workerd delivers it after), so it is not used."""
        facts = []
        if span.close_position is not None and span.close_position < onset_position:
            facts.append(Evidence("closed-before-onset-arrival",
                                  "its spanClose arrived before the callee's onset", W_CLOSED_BEFORE))
        timing = self.timing[owner.invocation_id]
        k = bisect.bisect_right(timing.sequences, span.open_sequence)
        if k < len(timing.sequences) and timing.positions[k] < onset_position:
            facts.append(Evidence("resumed-before-onset",
                                  "the caller's next event arrived before the callee's onset", W_RESUMED))
        return facts

    def _fits(self, child: _Child, candidate: Candidate) -> bool:
        """Whether a lone candidate is proof: its span fits the trigger and nothing speaks against."""
        names = {item.rule for item in candidate.evidence}
        return "name-fits" in names and not any(item.weight < 0 for item in candidate.evidence)

    # -- pass 2: propagation ---------------------------------------------------------------
    def _settle(self, child: _Child, candidate: Candidate, resolution: Resolution, reason: str) -> None:
        key = child.invocation.invocation_id
        self.settled[key] = (candidate, resolution)
        self._settled_by_owner.setdefault(candidate.invocation_id, []).append((key, candidate))
        self._callees.setdefault(candidate.invocation_id, []).append(key)
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
        # A worklist: settling a link can only prune the callees that share an owner with it,
        # so only those are looked at again (a full rescan per settlement is quadratic).
        watchers: dict[str, list[_Child]] = {}
        for child in self.children.values():
            for candidate in child.candidates:
                watchers.setdefault(candidate.invocation_id, []).append(child)
        work = list(self.children.values())
        queued = {id(child) for child in work}
        while work:
            child = work.pop()
            queued.discard(id(child))
            key = child.invocation.invocation_id
            if key in self.settled:
                continue
            self._prune(child)
            viable = child.viable()
            if len(viable) != 1 or not self._fits(child, viable[0]):
                continue
            ruled_out = len(child.candidates) - 1
            if ruled_out == 0:
                # A sequential id is proof only when its span fits: with a partial capture the
                # real caller may be missing and this owner a namesake.
                self._settle(child, viable[0], Resolution.EXACT,
                             "the only owner of the span id, and its span fits the trigger")
            else:
                self._settle(child, viable[0], Resolution.CAUSAL,
                             f"one candidate left: {ruled_out} ruled out by hard constraints")
            # Who may now be pruned: callees with a candidate in the new caller (dispatch
            # order), or in anything below the settled callee (ancestry).
            for owner in self._subtree(key) | {viable[0].invocation_id}:
                for other in watchers.get(owner, ()):
                    if id(other) not in queued and other.invocation.invocation_id not in self.settled:
                        work.append(other)
                        queued.add(id(other))

    def _subtree(self, key: str) -> set[str]:
        below = {key}
        frontier = [key]
        while frontier:
            current = frontier.pop()
            for child_key in self._callees.get(current, ()):
                if child_key not in below:
                    below.add(child_key)
                    frontier.append(child_key)
        return below

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
                for other_key, other in self._settled_by_owner.get(candidate.invocation_id, ()):
                    other_span = owner.spans[other.span_id]
                    other_rank = self.ranks.get(other_key)
                    # The same span already taken is a capacity question (soft), not order.
                    if other_span is span or other_span.top_level or other_rank is None:
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
                weight = 100.0 + candidate.score + _TIE * self._nearness(child, candidate)
                graph.add_edge(("child", key), slot, weight=weight)
                edges[(key, slot)] = candidate
        for component in nx.connected_components(graph):
            sub = graph.subgraph(component)
            self._assign_component(sub, edges)

    def _nearness(self, child: _Child, candidate: Candidate) -> float:
        """In [0, 1]: a tie-breaker that pairs callees and dispatch spans in the same order.
        Summed over a matching, rank × position is largest when the pairs do not cross
        (the rearrangement inequality), so among equally good arrangements the one where
        earlier callees take earlier-opened spans wins, deterministically."""
        span = self.trace.invocations[candidate.invocation_id].spans[candidate.span_id]
        onset = child.invocation.onset_position
        scale = float(self._size)
        base = self._base
        return ((onset - base if onset is not None else 0) / scale) * ((span.open_position - base) / scale)

    def _choices(self, child: _Child) -> list[Candidate]:
        viable = child.viable()
        return viable if viable else []

    @staticmethod
    def _slot(child_key: str, candidate: Candidate) -> tuple[str, ...]:
        return ("span", candidate.invocation_id, candidate.span_id)

    def _assign_component(self, sub: nx.Graph, edges: dict) -> None:
        # Top-level spans may wake many callees (hibernation): give each child its own copy.
        graph = nx.Graph()
        # Sorted so that the matching, and so the output, never depends on hash order.
        for (a, b, data) in sorted(sub.edges(data=True), key=lambda e: (min(e[0], e[1]), max(e[0], e[1]))):
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
            if margin >= self.options.margin - 10 * _TIE and self._fits(child, chosen):
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
