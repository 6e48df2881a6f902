"""Links: how each invocation hangs in its trace, and how sure tracetree is of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Resolution(str, enum.Enum):
    """How a link was decided. `exact` and `causal` are promises: never wrong."""

    ROOT = "root"  # the onset names no caller span: a top-level invocation
    EXACT = "exact"  # one invocation of the trace owns the caller span id, and nothing contradicts it
    CAUSAL = "causal"  # several owners, one left after hard constraints and ordering evidence
    HEURISTIC = "heuristic"  # several possible; soft evidence chose one with a clear margin
    AMBIGUOUS = "ambiguous"  # evidence could not separate candidates: attached to the best, flagged
    ORPHAN = "orphan"  # no invocation of the trace can own the caller span: shown as a root, flagged

    def __str__(self) -> str:
        return self.value

    @property
    def certain(self) -> bool:
        return self in (Resolution.ROOT, Resolution.EXACT, Resolution.CAUSAL)

    @property
    def flagged(self) -> bool:
        """Links `--strict` fails on."""
        return self in (Resolution.AMBIGUOUS, Resolution.ORPHAN)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact about a candidate: what it says, and how much it weighs (negative: against)."""

    rule: str  # a stable identifier, e.g. "name-fits", "created-after-child"
    detail: str  # the fact as a reviewer would read it
    weight: float = 0.0
    excludes: bool = False  # a hard constraint: this candidate cannot be the caller


@dataclass(frozen=True, slots=True)
class Candidate:
    """An invocation of the trace that owns the span id a callee's onset names."""

    invocation_id: str
    span_id: str
    span_name: str
    evidence: tuple[Evidence, ...] = ()
    # Derived from the evidence once, at construction: the resolver asks for them constantly.
    excluded: bool = field(init=False, compare=False)
    score: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        excluded = False
        score = 0.0
        for item in self.evidence:
            excluded = excluded or item.excludes
            score += item.weight
        object.__setattr__(self, "excluded", excluded)
        object.__setattr__(self, "score", score)

    def with_evidence(self, more: tuple[Evidence, ...]) -> Candidate:
        return Candidate(self.invocation_id, self.span_id, self.span_name, self.evidence + more)


@dataclass(frozen=True, slots=True)
class Link:
    """The decision for one invocation: its caller span (if any) and why."""

    invocation_id: str
    trace_id: str
    parent_invocation_id: str | None
    parent_span_id: str | None
    resolution: Resolution
    # The invocations other than the callee that own the span id its onset names, each with
    # its evidence; except those created after the callee, only counted (creation order alone
    # rules them out, and in a large trace they are most owners of a sequential id).
    candidates: tuple[Candidate, ...] = ()
    reason: str = ""  # one sentence: why this resolution
    later_owners: int = 0
    # Candidates weighed but not kept (resolved with keep_candidates=False): counted only.
    unkept: int = 0

    @property
    def owners(self) -> int:
        """How many other invocations of the trace own the span id the onset names."""
        return len(self.candidates) + self.later_owners + self.unkept

    def without_candidates(self) -> Link:
        """The decision without its candidates' evidence (what --explain prints): small to keep
        and cheap to send between processes; `owners` is unchanged."""
        if not self.candidates:
            return self
        # Built directly rather than with dataclasses.replace, whose field-by-field
        # introspection cost more than the rest of this method on every link of a large input.
        return Link(self.invocation_id, self.trace_id, self.parent_invocation_id, self.parent_span_id,
                    self.resolution, candidates=(), reason=self.reason, later_owners=self.later_owners,
                    unkept=self.unkept + len(self.candidates))

    @property
    def parent(self) -> tuple[str, str] | None:
        if self.parent_invocation_id is None or self.parent_span_id is None:
            return None
        return (self.parent_invocation_id, self.parent_span_id)
