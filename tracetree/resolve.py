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
import functools
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

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
W_RESUMED = -2.0
MARGIN = 2.0
_TIE = 1e-3  # tie-breakers stay far below any evidence weight
_FORBIDDEN = -1e9  # an edge that does not exist, in the assignment matrix

_OPEN_AT_ONSET = Evidence("open-at-onset", "span still open at the callee's onset", W_OPEN_AT_ONSET)
_CLOSED_BEFORE = Evidence("closed-before-onset", "span closed before the callee's onset", W_CLOSED_BEFORE)
_CLOSED_BEFORE_ARRIVAL = Evidence(
    "closed-before-onset-arrival", "its spanClose arrived before the callee's onset", W_CLOSED_BEFORE)
_RESUMED_BEFORE_ONSET = Evidence(
    "resumed-before-onset", "the caller's next event arrived before the callee's onset", W_RESUMED)


@dataclass(frozen=True, slots=True)
class ResolveOptions:
    """How to resolve: the dispatch table, and the upstream rule for comparison."""

    naive: bool = False
    dispatch: DispatchTable = DEFAULT_TABLE
    margin: float = MARGIN
    # The capture may lack invocations (workers without a tail consumer): a callee's real
    # caller may be missing while another invocation owns the same sequential span id, so no
    # link through a sequential id can be proven. Implied for a trace holding such an orphan.
    partial: bool = False


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


_NEVER = float("-inf")  # no informative stamp: below any, so max() needs no test for None


@dataclass(slots=True)
class _Timing:
    """Per invocation: its stamps in sequence order, in columns."""

    sequences: tuple[int, ...]
    # floor[k]: the latest informative stamp (ms) at or before sequences[k], or _NEVER. Running
    # maxima, once per invocation: a long-lived invocation opens thousands of spans.
    floor: list[float]
    positions: tuple[int, ...]  # input position of the event with sequences[k]

    @classmethod
    def of(cls, invocation: Invocation) -> _Timing:
        if not invocation.stamps:
            return cls((), [], ())
        sequences, stamps, positions = zip(*invocation.stamps, strict=True)
        values = (_NEVER if value is None else value for value in map(millis, stamps))
        return cls(sequences, list(itertools.accumulate(values, max)), positions)

    def facts(self, owner: Invocation, span: Span) -> _SpanFacts:
        k = bisect.bisect_right(self.sequences, span.open_sequence)
        opened = self.floor[k - 1] if k else _NEVER  # the latest stamp of anything before it
        return _SpanFacts(
            owner, span, owner.invocation_id, span.name, span.parent_span_id is None, span.attributes,
            None if opened == _NEVER else opened, millis(span.close_time), span.close_position,
            self.positions[k] if k < len(self.positions) else None,
        )


@dataclass(slots=True)
class _SpanFacts:
    """A candidate span and what its invocation says about when it ran, read once per span: in a
    trace of colliding ids one span is weighed for many callees, and reading it from one object
    rather than from the model's dicts was much of the cost."""

    owner: Invocation
    span: Span
    invocation_id: str
    name: str
    top_level: bool
    attributes: dict[str, Any]
    opened: float | None  # a lower bound on when it opened: the latest stamp of anything before it
    closed: float | None  # ms, where the clock says something
    close_position: int | None
    resumed: int | None  # input position of its invocation's next event after the spanOpen
    order: float | None = None  # its tie-breaking order, once the assignment asks (`_span_order`)


@dataclass(slots=True)
class _Callee:
    """What the candidates of one callee are weighed against, read once."""

    trigger: str  # the caller span id its onset names
    trigger_type: str
    onset: float | None  # ms, where the clock says something
    position: int | None  # of its onset in the input
    ties: tuple[tuple[str, object, str], ...]  # (caller span attribute, the callee's value, label)

    @classmethod
    def of(cls, invocation: Invocation) -> _Callee:
        top = invocation.top
        onset = invocation.onset or {}
        pairs = (
            ("url.full", invocation.trigger.get("url"), "URL"),
            ("jsrpc.method", top.attributes.get("jsrpc.method") if top else None, "RPC method"),
            ("objectId", onset.get("durableObjectId"), "Durable Object id"),
        )
        return cls(
            invocation.trigger_span_id or "", invocation.trigger_type, millis(invocation.onset_time),
            invocation.onset_position,
            tuple(pair for pair in pairs if pair[1] is not None and pair[1] != ""),
        )


@dataclass(slots=True)
class _Child:
    invocation: Invocation
    trigger: str
    candidates: list[Candidate] = field(default_factory=list)
    later: int = 0  # owners created after the callee: ruled out, not weighed
    spans: list[_SpanFacts] = field(default_factory=list)  # the candidates' spans, in the same order
    pruned: dict[str, list[Evidence]] = field(default_factory=dict)  # invocation id → late evidence
    # How many candidates are neither excluded nor pruned: asked after every prune, and
    # counting them anew each time was quadratic in a trace of thousands of colliding callees.
    alive: int = field(init=False)
    _by_owner: dict[str, int] | None = field(init=False, default=None)  # invocation id → index

    def __post_init__(self) -> None:
        self.alive = sum(1 for c in self.candidates if not c.excluded)

    def prune(self, candidate: Candidate, late: list[Evidence]) -> None:
        self.pruned[candidate.invocation_id] = late
        self.alive -= 1

    def in_owners(self, owners: set[str]) -> list[int]:
        """Which candidates are in these invocations (one span each at most), in order."""
        if self._by_owner is None:
            self._by_owner = {c.invocation_id: n for n, c in enumerate(self.candidates)}
        index = self._by_owner
        return sorted(index[owner] for owner in owners if owner in index)

    def all_candidates(self) -> tuple[Candidate, ...]:
        """The candidates with what propagation learned about them appended."""
        return tuple(
            c.with_evidence(tuple(self.pruned[c.invocation_id])) if c.invocation_id in self.pruned else c
            for c in self.candidates
        )

    def viable(self) -> list[Candidate]:
        return [c for c, _ in self.viable_spans()]

    def viable_spans(self) -> list[tuple[Candidate, _SpanFacts]]:
        return [(c, facts) for c, facts in zip(self.candidates, self.spans, strict=True)
                if not c.excluded and c.invocation_id not in self.pruned]


def _counter(invocation_id: str) -> int | None:
    if len(invocation_id) != 32:
        return None
    try:
        high = int(invocation_id[:16], 16) ^ _COUNTER_MASK
        low = int(invocation_id[16:], 16) ^ _COUNTER_MASK
    except ValueError:
        return None
    return high if high == low and high < _SEQUENTIAL_LIMIT else None


@functools.lru_cache(maxsize=1 << 12)  # sequential ids repeat in every invocation of a trace
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
    counters: dict[str, int] = {}
    for inv in invocations:  # until one id is not a predictable-mode counter
        counter = _counter(inv.invocation_id)
        if counter is None:
            break
        counters[inv.invocation_id] = counter
    ranks: dict[str, int] = {}
    if invocations and len(counters) == len(invocations):
        order = "counter"
        ranks = counters
    elif arrival:
        order = "arrival"
        ranks = {
            inv.invocation_id: inv.onset_position if inv.onset_position is not None else inv.position
            for inv in invocations
        }
    else:
        order = "none"
    span_ids = [sid for inv in invocations for sid, span in inv.spans.items()
                if span.parent_span_id is not None]  # not top-level
    sequential = bool(span_ids) and all(map(looks_sequential, span_ids))
    return TraceEvidence(order, arrival, sequential, _two_stamps(invocations)), ranks


def _two_stamps(invocations: list[Invocation]) -> bool:
    """Whether the invocations hold at least two distinct informative timestamps."""
    first = None
    for invocation in invocations:
        for _, stamp, _ in invocation.stamps:
            if stamp is not None and stamp != first:
                if first is not None:
                    return True
                first = stamp
    return False


DEFAULT_OPTIONS = ResolveOptions()


def resolve_trace(trace: Trace, options: ResolveOptions = DEFAULT_OPTIONS) -> dict[str, Link]:
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
    return resolve_with_evidence(trace, options)[0]


def resolve_with_evidence(
    trace: Trace, options: ResolveOptions = DEFAULT_OPTIONS, *, keep_candidates: bool = True
) -> tuple[dict[str, Link], TraceEvidence, dict[str, int]]:
    """resolve_trace, and the trace's ordering evidence and creation ranks it used. Without
    `keep_candidates` the links hold the same decisions, but their candidates only as a
    count (`Link.without_candidates`)."""
    if options.naive:
        evidence, ranks = trace_evidence(trace)
        return _resolve_naive(trace), evidence, ranks
    resolver = _Resolver(trace, options, keep_candidates=keep_candidates)
    links = resolver.run()
    if resolver.contradicted:
        # Dispatch order contradicted itself: some caller is missing (a partial capture), and
        # pruning by order would depend on which link happened to settle first. Resolve again
        # without it; the result is then capped as on any partial capture.
        resolver = _Resolver(trace, options, use_order=False, keep_candidates=keep_candidates)
        links = resolver.run()
    return links, resolver.evidence, resolver.ranks


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
    def __init__(
        self, trace: Trace, options: ResolveOptions, *, use_order: bool = True, keep_candidates: bool = True
    ) -> None:
        self.trace = trace
        self.options = options
        # Whether links keep their candidates' evidence, or only count them: the decisions
        # read the candidates here, never from the links.
        self.keep_candidates = keep_candidates
        # Whether settled links prune their siblings by dispatch order; off after a contradiction.
        self.use_order = use_order
        self.contradicted = False
        self.evidence, self.ranks = trace_evidence(trace)
        self._names: dict[tuple[str, str, bool], Evidence | None] = {}
        self._timings: dict[str, _Timing] = {}  # built on first use: most owners never need one
        self._span_facts: dict[str, list[_SpanFacts]] = {}  # span id → its owners' spans of that id
        self.links: dict[str, Link] = {}
        self.children: dict[str, _Child] = {}
        self.settled: dict[str, tuple[Candidate, Resolution]] = {}
        self._settled_by_owner: dict[str, list[tuple[str, Candidate]]] = {}
        self._callees: dict[str, list[str]] = {}  # settled links, caller → callees
        self._orders: tuple[dict[str, float], Callable[[Invocation, Span], float]] | None = None

    # -- pass 1: candidates and their evidence ---------------------------------------------
    def run(self) -> dict[str, Link]:
        # Each span id's owners in creation order, sorted once per trace rather than per callee
        # (the sort is stable, so dropping the callee afterwards gives the same order).
        owners = {span_id: sorted(found, key=self._creation_key) if len(found) > 1 else found
                  for span_id, found in _owners(self.trace).items()}
        owner_ranks: dict[str, list[int]] = {}  # span id → its owners' creation ranks, in that order
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
            everyone = owners.get(trigger, [])
            # The callee itself is among them where it numbers its own spans alike.
            count = len(everyone) - (trigger in invocation.spans)
            if not count:
                self.links[key] = Link(
                    key, self.trace.trace_id, None, None, Resolution.ORPHAN,
                    reason=f"no other invocation of the trace owns span {trigger}",
                )
                continue
            callee = _Callee.of(invocation)
            if count == 1 and not looks_sequential(trigger):
                # A random 64-bit id has one owner in the whole world: nothing to weigh.
                spans = [facts for facts in self._spans(trigger, everyone, len(everyone))
                         if facts.owner is not invocation]
                child = _Child(invocation, trigger, self._candidates(callee, spans), spans=spans)
                self._settle(child, child.candidates[0], Resolution.EXACT,
                             "the only owner of a random span id")
                continue
            rank = self.ranks.get(key)
            later = 0
            if rank is not None:
                # Creation order alone rules out owners created after the callee: they are
                # counted, not weighed (in a large trace most owners of a sequential id).
                # Where the callee has a rank every invocation has one, and it leads the
                # creation key, so the earlier owners are a prefix: found by bisection.
                ranks = owner_ranks.get(trigger)
                if ranks is None:
                    ranks = owner_ranks[trigger] = [self.ranks[inv.invocation_id] for inv in everyone]
                spans = self._spans(trigger, everyone, bisect.bisect_left(ranks, rank))
                later = count - len(spans)
            else:
                spans = [facts for facts in self._spans(trigger, everyone, len(everyone))
                         if facts.owner is not invocation]
            child = _Child(invocation, trigger, self._candidates(callee, spans), later, spans)
            self.children[key] = child
        if self.use_order and not self._order_consistent():
            self.contradicted = True
            return self.links
        self._propagate()
        if self.use_order and any(
            key in self.links and self.links[key].resolution is Resolution.ORPHAN and any(
                item.rule == "dispatch-order" for late in child.pruned.values() for item in late)
            for key, child in self.children.items()
        ):
            self.contradicted = True
            return self.links
        self._assign()
        self._cap_if_partial()
        if self.evidence.creation_order == "none":
            # With creation order every caller is older than its callee: no cycle can form.
            self._break_cycles()
        return self.links

    def _spans(self, span_id: str, owners: list[Invocation], count: int) -> list[_SpanFacts]:
        """The spans with this id of the first `count` owners, each read once per trace."""
        known = self._span_facts.setdefault(span_id, [])
        for owner in owners[len(known):count]:
            known.append(self._timing(owner).facts(owner, owner.spans[span_id]))
        return known[:count]

    def _candidates(self, child: _Callee, spans: list[_SpanFacts]) -> list[Candidate]:
        """Each owner's span with the evidence for and against it. One loop per callee: where
        span ids collide this runs for every pair of invocations, so what depends on the
        callee alone is read once, and what depends on the span alone is kept across callees."""
        onset, position, ties = child.onset, child.position, child.ties
        arrival = self.evidence.arrival_order and position is not None
        names = self._names
        candidates = []
        for facts in spans:
            opened = facts.opened
            if opened is not None and onset is not None and opened > onset:
                # Ruled out: the soft evidence would change nothing, and is the costly part.
                candidates.append(Candidate(facts.invocation_id, child.trigger, facts.name, (Evidence(
                    "opened-after-onset", f"span opened after the callee's onset (by {opened - onset:g} ms)",
                    excludes=True),)))
                continue
            evidence: list[Evidence] = []
            closed = facts.closed
            if closed is not None and onset is not None:
                evidence.append(_CLOSED_BEFORE if closed < onset else _OPEN_AT_ONSET)
            if arrival and not facts.top_level:
                # What arrival order says. A dispatch span's close, and the caller's next event
                # after the spanOpen, arrive after the callee's onset in every real capture;
                # the spanOpen itself may come either side (real workerd delivers it after),
                # so it is not used.
                if facts.close_position is not None and facts.close_position < position:
                    evidence.append(_CLOSED_BEFORE_ARRIVAL)
                if facts.resumed is not None and facts.resumed < position:
                    evidence.append(_RESUMED_BEFORE_ONSET)
            name_key = (child.trigger_type, facts.name, facts.top_level)
            name_fact = names[name_key] if name_key in names else self._name_evidence(*name_key)
            if name_fact is not None:
                evidence.append(name_fact)
            if ties and facts.attributes:
                evidence.extend(_attribute_evidence(ties, facts.attributes))
            candidates.append(Candidate(facts.invocation_id, child.trigger, facts.name, tuple(evidence)))
        return candidates

    def _name_evidence(self, trigger_type: str, name: str, top_level: bool) -> Evidence | None:
        """Whether the span's name fits the trigger, from the dispatch table; one object per pair."""
        fits = self.options.dispatch.fits(trigger_type, name, top_level)
        shown = "top-level span" if top_level else f"'{name}' span"
        fact = None if fits is None else (
            Evidence("name-fits", f"a {shown} dispatches {trigger_type} invocations", W_NAME_FITS)
            if fits else
            Evidence("name-misfits", f"a {shown} does not dispatch {trigger_type} invocations",
                     W_NAME_MISFITS))
        self._names[(trigger_type, name, top_level)] = fact
        return fact

    def _timing(self, invocation: Invocation) -> _Timing:
        timing = self._timings.get(invocation.invocation_id)
        if timing is None:
            timing = self._timings[invocation.invocation_id] = _Timing.of(invocation)
        return timing

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
        self.links[key] = self._link(
            child, candidate.invocation_id, candidate.span_id, resolution, reason)

    def _link(
        self, child: _Child, caller: str | None, span_id: str | None, resolution: Resolution, reason: str
    ) -> Link:
        if self.keep_candidates:
            return Link(child.invocation.invocation_id, self.trace.trace_id, caller, span_id, resolution,
                        child.all_candidates(), reason, child.later)
        return Link(child.invocation.invocation_id, self.trace.trace_id, caller, span_id, resolution,
                    (), reason, child.later, unkept=len(child.candidates))

    def _propagate(self) -> None:
        # A worklist: settling a link can only prune the callees that share an owner with it,
        # so only those are looked at again (a full rescan per settlement is quadratic).
        # Each queued child also keeps the owners whose settled callees changed since it was
        # last pruned: only its candidates in those can have become impossible (None: weigh
        # all). Rescanning every candidate was quadratic where thousands share a span id.
        watchers: dict[str, list[_Child]] = {}
        for child in self.children.values():
            for candidate in child.candidates:
                watchers.setdefault(candidate.invocation_id, []).append(child)
        work = list(self.children.values())
        queued: dict[int, set[str] | None] = {id(child): None for child in work}
        while work:
            child = work.pop()
            changed = queued.pop(id(child))
            key = child.invocation.invocation_id
            if key in self.settled:
                continue
            self._prune(child, range(len(child.candidates)) if changed is None else child.in_owners(changed))
            if child.alive != 1:
                continue
            viable = child.viable()
            if not self._fits(child, viable[0]):
                continue
            ruled_out = len(child.candidates) - 1 + child.later
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
                    if id(other) in queued:
                        changed = queued[id(other)]
                        if changed is not None:
                            changed.add(owner)
                    elif other.invocation.invocation_id not in self.settled:
                        work.append(other)
                        queued[id(other)] = {owner}

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

    def _prune(self, child: _Child, indices: Iterable[int]) -> None:
        """Rule out those of the child's candidates that settled links make impossible."""
        key = child.invocation.invocation_id
        rank = self.ranks.get(key)
        below: set[str] | None = None  # the child and its settled callees, theirs…: read once
        for n in indices:
            candidate = child.candidates[n]
            if candidate.excluded or candidate.invocation_id in child.pruned:
                continue
            late: list[Evidence] = []
            if below is None:
                below = self._subtree(key)
            if candidate.invocation_id in below:
                late.append(Evidence("descendant", "a descendant of the callee (would be a cycle)",
                                     excludes=True))
            owner, span = child.spans[n].owner, child.spans[n].span
            if self.use_order and rank is not None and not span.top_level:
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
                child.prune(candidate, late)

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
        # Children compete only through a shared dispatch span: solve each group apart.
        options: dict[str, list[tuple[tuple[str, ...], Candidate, float]]] = {}
        sharing: dict[tuple[str, ...], list[str]] = {}  # dispatch span → children that may take it
        for child in open_children:
            key = child.invocation.invocation_id
            choices = options[key] = []
            order = self._invocation_order(key)
            for candidate, facts in child.viable_spans():
                if facts.top_level:
                    # Top-level spans may wake many callees (hibernation): a slot per callee.
                    slot: tuple[str, ...] = ("top", key, candidate.invocation_id)
                else:
                    if (candidate.invocation_id, candidate.span_id) in taken:
                        continue
                    slot = ("span", candidate.invocation_id, candidate.span_id)
                    sharing.setdefault(slot, []).append(key)
                weight = 100.0 + candidate.score + _TIE * (order * self._span_order(facts))
                choices.append((slot, candidate, weight))
        for keys in _groups(options, sharing):
            keys.sort(key=lambda k: self._creation_key(self.children[k].invocation))  # deterministic
            self._assign_group(keys, options)

    def _invocation_order(self, key: str) -> float:
        """The callee's half of a tie-breaker, order(callee) × order(span) in [0, 1], that
        pairs callees and dispatch spans in the same order.

        Summed over a matching, order(callee) × order(span) is largest when the pairs do not
        cross (the rearrangement inequality), so among equally good arrangements the one where
        earlier callees take earlier-opened spans wins, deterministically. Orders are ordinals
        within the trace, from arrival where the input has it (other traces interleaved
        between change nothing), else from creation rank, onset time and id: never from the
        order of a sorted file."""
        if self._orders is None:
            self._orders = self._tie_orders()
        return self._orders[0][key]

    def _span_order(self, facts: _SpanFacts) -> float:
        # A dispatch span is weighed for every callee that may take it: its order is kept.
        if facts.order is None:
            if self._orders is None:
                self._orders = self._tie_orders()
            facts.order = self._orders[1](facts.owner, facts.span)
        return facts.order

    def _creation_key(self, inv: Invocation) -> tuple:
        """Creation order as far as the trace shows it, then the id: never the order of a file
        sorted some other way."""
        if self.evidence.arrival_order:
            return (self.ranks.get(inv.invocation_id, inv.position),)
        onset = millis(inv.onset_time)
        return (self.ranks.get(inv.invocation_id, 1 << 62), onset if onset is not None else 0.0,
                inv.invocation_id)

    def _tie_orders(self) -> tuple[dict[str, float], Callable[[Invocation, Span], float]]:
        invocations = list(self.trace.invocations.values())
        count = float(len(invocations))
        if self.evidence.arrival_order:
            ordinals = sorted([position for inv in invocations for _, _, position in inv.stamps])
            scale = float(len(ordinals) or 1)
            by_arrival = {
                inv.invocation_id: bisect.bisect_left(ordinals, inv.onset_position or inv.position) / scale
                for inv in invocations
            }
            return by_arrival, lambda _owner, span: bisect.bisect_left(ordinals, span.open_position) / scale

        # From 1, not 0: a zero would make every choice of the first callee tie.
        order = {inv.invocation_id: (n + 1) / count
                 for n, inv in enumerate(sorted(invocations, key=self._creation_key))}

        def span_order(owner: Invocation, span: Span) -> float:
            return order[owner.invocation_id] + span.open_sequence / (1.0 + len(owner.stamps)) / count

        return order, span_order

    def _assign_group(self, keys: list[str], options: dict) -> None:
        """Best total weight, one callee per dispatch span; each link's label from its margin:
        how much the best arrangement loses if this link is forbidden."""
        slots: dict[tuple[str, ...], int] = {}
        weights: dict[tuple[int, int], float] = {}
        edges: dict[tuple[int, int], Candidate] = {}  # a row's candidates have distinct slots
        for row, key in enumerate(keys):
            for slot, candidate, weight in options[key]:
                edge = (row, slots.setdefault(slot, len(slots)))
                weights[edge] = weight
                edges[edge] = candidate
        problem = _Assignment(len(keys), len(slots), weights)
        total, assigned = problem.solve()
        for row, key in enumerate(keys):
            child = self.children[key]
            column = assigned.get(row)
            if column is None:
                viable = child.viable()
                if viable:
                    best = max(viable, key=lambda c: c.score)
                    self._settle(child, best, Resolution.AMBIGUOUS,
                                 "every fitting dispatch span is taken by a better-placed callee")
                else:
                    self._settle_orphan(child)
                continue
            chosen = edges[(row, column)]
            if len(options[key]) == 1 and child.alive == 1:
                resolution = Resolution.HEURISTIC if self._fits(child, chosen) else Resolution.AMBIGUOUS
                reason = ("one candidate left, but its span does not clearly fit the trigger"
                          if resolution is Resolution.AMBIGUOUS else
                          "one candidate left once other callees took their dispatch spans")
                self._settle(child, chosen, resolution, reason)
                continue
            margin = self._margin(problem, row, column, total)
            if margin >= self.options.margin - 10 * _TIE and self._fits(child, chosen):
                self._settle(child, chosen, Resolution.HEURISTIC,
                             f"best overall fit, ahead of the next arrangement by {margin:.1f}")
            else:
                self._settle(child, chosen, Resolution.AMBIGUOUS,
                             f"best overall fit, but only by {margin:.1f}: evidence does not "
                             "separate the candidates")

    def _margin(self, problem: _Assignment, row: int, column: int, total: float) -> float:
        """How much the best arrangement loses if this row may not take this column.

        When no other row could take the column, vacating it helps nobody, so the loss is at
        least the row's lead over its own next choice: if that lead already clears the margin
        no second solve is needed (the common case, and the costly part)."""
        if not problem.contested(column):
            lead = problem.lead(row, column)
            if lead >= self.options.margin:
                return lead
        return total - problem.solve(forbid=(row, column))[0]

    def _order_consistent(self) -> bool:
        """Whether the callees that hard constraints alone pin to one span keep dispatch order:
        per caller, callees created later hang under spans opened later."""
        pinned: dict[str, list[tuple[int, int]]] = {}
        for key, child in self.children.items():
            rank = self.ranks.get(key)
            if rank is None or child.alive != 1:
                continue
            viable = child.viable()
            if not self._fits(child, viable[0]):
                continue
            span = self.trace.invocations[viable[0].invocation_id].spans[viable[0].span_id]
            if not span.top_level:
                pinned.setdefault(viable[0].invocation_id, []).append((rank, span.open_sequence))
        for pairs in pinned.values():
            pairs.sort()
            if any(later[1] < earlier[1] for earlier, later in itertools.pairwise(pairs)):
                return False
        return True

    def _cap_if_partial(self) -> None:
        """On a partial capture, links through sequential span ids are at most heuristic."""
        partial = self.options.partial or not self.use_order or any(
            link.resolution is Resolution.ORPHAN and link.reason.startswith("no other invocation")
            and looks_sequential(self.trace.invocations[key].trigger_span_id or "")
            for key, link in self.links.items()
        )
        if not partial:
            return
        why = ("declared partial (--partial)" if self.options.partial else
               "the capture looks partial: callees and dispatch spans come in contradicting orders"
               if not self.use_order else
               "the capture looks partial: some callee's caller is missing from it")
        for key, link in self.links.items():
            if link.resolution in (Resolution.EXACT, Resolution.CAUSAL) and link.parent_span_id \
                    and looks_sequential(link.parent_span_id):
                self.links[key] = replace(
                    link, resolution=Resolution.HEURISTIC,
                    reason=f"{link.reason}; but {why}, so a namesake span cannot be ruled out",
                )

    def _settle_orphan(self, child: _Child) -> None:
        key = child.invocation.invocation_id
        self.links[key] = self._link(
            child, None, None, Resolution.ORPHAN,
            f"all {len(child.candidates) + child.later} owners of span {child.trigger} are ruled out",
        )

    def _break_cycles(self) -> None:
        """Without creation order or timestamps a chain of choices could loop: cut the weakest link.

        Each invocation has at most one parent, so following parent pointers finds every cycle
        in linear time."""
        strength = {r: n for n, r in enumerate(Resolution)}
        state: dict[str, int] = {}  # 1: on the current path, 2: known to reach a root
        for start in self.links:
            path: list[str] = []
            key: str | None = start
            while key is not None and state.get(key) is None:
                state[key] = 1
                path.append(key)
                link = self.links.get(key)
                key = link.parent_invocation_id if link else None
            if key is not None and state.get(key) == 1:
                cycle = path[path.index(key):]
                weakest = max(cycle, key=lambda k: strength[self.links[k].resolution])
                link = self.links[weakest]
                self.links[weakest] = Link(
                    link.invocation_id, link.trace_id, None, None, Resolution.ORPHAN, link.candidates,
                    "every remaining choice would make a cycle of callers", link.later_owners, link.unkept,
                )
            for visited in path:
                state[visited] = 2


def _groups(
    options: dict[str, list[tuple[tuple[str, ...], Candidate, float]]],
    sharing: dict[tuple[str, ...], list[str]],
) -> Iterator[list[str]]:
    """Children connected through dispatch spans they could both take (connected components)."""
    seen: set[str] = set()
    visited: set[tuple[str, ...]] = set()  # each slot's sharers are walked once, not once per sharer
    for start in options:
        if start in seen:
            continue
        seen.add(start)
        group, frontier = [start], [start]
        while frontier:
            key = frontier.pop()
            for slot, _, _ in options[key]:
                if slot in visited:
                    continue
                visited.add(slot)
                for other in sharing.get(slot, ()):
                    if other not in seen:
                        seen.add(other)
                        group.append(other)
                        frontier.append(other)
        yield group


class _Assignment:
    """A maximum-weight matching of rows (callees) to columns (dispatch spans) over the given
    edges, rows free to stay unmatched; solved again with one edge forbidden for each margin.

    scipy's linear_sum_assignment (compiled) instead of networkx's pure-Python matching: the
    margins need one solve per link, and this is the resolver's hot path. The weight matrix is
    built once per group, and a margin's solve forbids its edge in place: in a trace of
    thousands of colliding callees, rebuilding it per solve was most of the time.
    """

    def __init__(self, rows: int, columns: int, weights: dict[tuple[int, int], float]) -> None:
        self.rows, self.columns, self.weights = rows, columns, weights
        self._by_row: dict[int, list[float]] = {}
        self._rows_per_column: Counter[int] = Counter()
        for (row, column), weight in weights.items():
            self._by_row.setdefault(row, []).append(weight)
            self._rows_per_column[column] += 1
        self._matrix: Any = None

    def contested(self, column: int) -> bool:
        """Whether more than one row could take the column."""
        return self._rows_per_column[column] > 1

    def lead(self, row: int, column: int) -> float:
        """The row's weight on the column over its next best choice (or staying unmatched)."""
        mine = self.weights[(row, column)]
        others = list(self._by_row[row])
        others.remove(mine)
        return mine - max(others, default=0.0)

    def solve(self, forbid: tuple[int, int] | None = None) -> tuple[float, dict[int, int]]:
        """The best total weight and row → column, without the `forbid` edge if given."""
        if self.rows == 0:
            return 0.0, {}
        if self.rows == 1:
            # One callee alone (the common case): its best edge (the first of equals), if any
            # beats staying unmatched.
            best: tuple[tuple[int, int], float] | None = None
            for edge, weight in self.weights.items():
                if edge != forbid and (best is None or weight > best[1]):
                    best = (edge, weight)
            if best is None or best[1] <= 0:
                return 0.0, {}
            return best[1], {0: best[0][1]}
        from scipy.optimize import linear_sum_assignment

        matrix = self._weight_matrix()
        if forbid is not None:
            saved, matrix[forbid] = matrix[forbid], _FORBIDDEN
        try:
            row_index, column_index = linear_sum_assignment(matrix, maximize=True)
        finally:
            if forbid is not None:
                matrix[forbid] = saved
        # Read back as Python numbers in one go (indexing numpy one scalar at a time cost more
        # than the solve on large groups); summed in row order, one by one, as floats.
        values = matrix[row_index, column_index].tolist()
        assigned: dict[int, int] = {}
        total = 0.0
        for row, column, value in zip(row_index.tolist(), column_index.tolist(), values, strict=True):
            if column < self.columns and value > _FORBIDDEN and (row, column) != forbid:
                assigned[row] = column
                total += value
        return total, assigned

    def _weight_matrix(self) -> Any:
        if self._matrix is None:
            import numpy as np  # imported here: most inputs never need more than one row

            # One private "unmatched" column per row, worth 0; missing edges are forbidden. Filled
            # through a flat view: most groups are tiny, and numpy's per-call cost dominated.
            width = self.columns + self.rows
            matrix = np.full((self.rows, width), _FORBIDDEN)
            flat = matrix.ravel()
            flat[[row * width + column for row, column in self.weights]] = list(self.weights.values())
            flat[self.columns::width + 1] = 0.0  # (row, columns + row), every row
            self._matrix = matrix
        return self._matrix


def _attribute_evidence(
    ties: tuple[tuple[str, object, str], ...], attributes: dict[str, Any]
) -> Iterable[Evidence]:
    """Attributes that tie a caller span to a callee: the URL, the RPC method, the object id."""
    for name, theirs, label in ties:
        ours = attributes.get(name)
        if ours is None or ours == "":
            continue
        if type(ours) is str and type(theirs) is str:  # as they always are in real streams
            yield _known_tie_fact(name, ours, theirs, label)
        else:
            yield _tie_fact(name, ours, theirs, label)


def _tie_fact(name: str, ours: object, theirs: object, label: str) -> Evidence:
    if ours == theirs:
        return Evidence(f"{name}-matches", f"{label} matches ({_short(ours)})", W_ATTRIBUTE)
    return Evidence(f"{name}-differs", f"{label} differs ({_short(ours)} vs {_short(theirs)})", -W_ATTRIBUTE)


# The same URLs and methods meet again and again: each fact is written once. Strings only:
# other values equal as keys (1, 1.0, True) would not read alike.
_known_tie_fact = functools.lru_cache(maxsize=1 << 12)(_tie_fact)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"
