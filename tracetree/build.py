"""The pipeline: events → model → resolved links, as one call."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .events import ProgressCallback, ReadStats, read_events, read_lean_events
from .links import Link, Resolution
from .model import ModelBuilder, Trace
from .resolve import DEFAULT_OPTIONS, ResolveOptions, TraceEvidence, resolve_with_evidence


@dataclass(slots=True)
class Forest:
    """Every trace of the input, each invocation's link, and what the input looked like."""

    traces: list[Trace]
    links: dict[str, Link]
    evidence: dict[str, TraceEvidence] = field(default_factory=dict)  # by trace id
    ranks: dict[str, dict[str, int]] = field(default_factory=dict)  # trace id → creation ranks
    stats: ReadStats = field(default_factory=ReadStats)
    naive: bool = False

    def counts(self) -> dict[str, int]:
        """Links by resolution label, every label present (zero when unused)."""
        result = {label.value: 0 for label in Resolution}
        for link in self.links.values():
            result[link.resolution.value] += 1
        return result

    def flagged(self) -> list[Link]:
        return [link for link in self.links.values() if link.resolution.flagged]

    def tally(self) -> Tally:
        invocations = [inv for trace in self.traces for inv in trace.invocations.values()]
        return Tally(len(self.traces), len(invocations), self.counts(),
                     sum(1 for inv in invocations if inv.events_missing), self.stats)


@dataclass(slots=True)
class Tally:
    """What a build's summary and --strict say: counts, without the forest they count."""

    traces: int
    invocations: int
    links: dict[str, int]  # by resolution label, every label present
    events_missing: int  # invocations with events missing
    stats: ReadStats  # events read, redeliveries, lines skipped

    @property
    def flagged(self) -> int:
        """Links --strict fails on."""
        return sum(count for label, count in self.links.items() if Resolution(label).flagged)


_Resolved = tuple[dict[str, Link], TraceEvidence, dict[str, int]]


def resolve_forest(
    traces: list[Trace],
    options: ResolveOptions,
    stats: ReadStats,
    *,
    keep_candidates: bool = True,
    jobs: int = 1,
) -> Forest:
    """Resolve every trace. Without `keep_candidates`, links keep their decision, label, reason
    and owner count but not the candidates' evidence (what --explain prints); only then may
    `jobs` > 1 resolve traces in that many processes (forked, where the platform forks)."""
    if jobs > 1 and keep_candidates:
        raise ValueError("jobs > 1 needs keep_candidates=False: candidates are costly to send back")
    shares = _shares(traces, jobs) if jobs > 1 and _may_fork(traces) else [traces]
    children = _fork_resolvers(shares[1:], options)
    own = shares[0]  # this process's share; each child took another
    resolved = {trace.trace_id: _resolve(trace, options, keep_candidates) for trace in own}
    for process, receiver in children:
        answer = receiver.recv()
        process.join()
        if isinstance(answer, BaseException):
            raise answer
        resolved.update(answer)
    links: dict[str, Link] = {}
    evidence: dict[str, TraceEvidence] = {}
    ranks: dict[str, dict[str, int]] = {}
    for trace in traces:  # the same order whoever resolved what
        trace_links, evidence[trace.trace_id], ranks[trace.trace_id] = resolved.pop(trace.trace_id)
        links.update(trace_links)
    return Forest(traces, links, evidence, ranks, stats, options.naive)


def _resolve(trace: Trace, options: ResolveOptions, keep_candidates: bool) -> _Resolved:
    return resolve_with_evidence(trace, options, keep_candidates=keep_candidates)


# Below this many invocations a fork costs more than it saves.
_PARALLEL_MIN_INVOCATIONS = 5_000


def _shares(traces: list[Trace], jobs: int) -> list[list[Trace]]:
    """The traces cut into `jobs` runs of consecutive traces with about as many invocations each.

    Each process still ends up writing to (so copying) most memory pages of the model: the
    objects of any run of traces are spread over the heap, and reference counts change as
    they are read. Resolving in N processes can take up to N times the model's memory."""
    total = sum(len(trace.invocations) for trace in traces)
    shares: list[list[Trace]] = [[]]
    done = 0
    for trace in traces:
        if done >= total * len(shares) / jobs and len(shares) < jobs:
            shares.append([])
        shares[-1].append(trace)
        done += len(trace.invocations)
    return shares


def _may_fork(traces: list[Trace]) -> bool:
    """Not where the platform does not fork, nor while other threads run (a fork copies only
    the calling thread), nor for inputs too small to repay a fork."""
    return (
        hasattr(os, "fork") and sys.platform != "darwin" and threading.active_count() == 1
        and sum(len(trace.invocations) for trace in traces) >= _PARALLEL_MIN_INVOCATIONS
    )


def _fork_resolvers(shares: list[list[Trace]], options: ResolveOptions) -> list[tuple[Any, Any]]:
    """Start one forked process per share of traces: each trace is a pure function of its own
    events, and a forked child inherits the model, so nothing is sent to it and only the
    (small, candidate-free) links come back."""
    if not shares:
        return []
    import multiprocessing

    # Imported once here, not once per process: an input this large has contested links.
    import scipy.optimize  # noqa: F401

    context = multiprocessing.get_context("fork")
    children = []
    for share in shares:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_resolve_share, args=(share, options, sender), daemon=True)
        process.start()
        sender.close()
        children.append((process, receiver))
    return children


def _resolve_share(traces: list[Trace], options: ResolveOptions, sender: Any) -> None:
    """In a forked child: resolve these traces and send the links back (or the exception)."""
    try:
        answer: Any = {trace.trace_id: _resolve(trace, options, False) for trace in traces}
    except BaseException as exc:  # re-raised in the parent, as if resolved there
        answer = exc
    sender.send(answer)
    sender.close()


def available_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def build(
    events: Iterable[Any],
    *,
    options: ResolveOptions = DEFAULT_OPTIONS,
    lenient: bool = False,
    keep_events: bool = True,
) -> Forest:
    """A forest from TailEvent dicts already in memory, in arrival order."""
    builder = ModelBuilder(keep_events=keep_events, lenient=lenient)
    with collector_paused():
        for line, event in enumerate(events, start=1):
            builder.add(event, "<events>", line)
        return resolve_forest(builder.finish(), options, builder.stats)


def build_file(
    paths: str | Sequence[str],
    *,
    options: ResolveOptions = DEFAULT_OPTIONS,
    lenient: bool = False,
    keep_events: bool = True,
    raw_events: bool = False,
    keep_candidates: bool = True,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
    from_log: bool | None = None,
) -> Forest:
    """A forest from JSONL / JSON-array / .gz files (`-` is stdin), merged in the order given.

    Malformed input raises InputError naming file and line; with `lenient` such lines are
    skipped and counted in `forest.stats.skipped`. A file may be a runtime's log holding the
    tail worker's marker lines: detected, or forced with `from_log` (see `read_events`).
    `keep_candidates` and `jobs`: as for `resolve_forest`. With `raw_events` the events are
    kept as the bytes of their JSON text, parsed a trace at a time by `model.parsed_events`
    (the tree document does so): for a large capture, a few times less memory.
    """
    if isinstance(paths, str):
        paths = [paths]
    builder = ModelBuilder(keep_events=keep_events or raw_events, lenient=lenient, raw_events=raw_events)
    with collector_paused():
        # One stats object: lines the reader skips and events the builder skips count together.
        if keep_events and not raw_events:
            builder.add_all(read_events(paths, lenient=lenient, stats=builder.stats, progress=progress,
                                        from_log=from_log))
        else:  # only the fields the model reads, decoded in C (and the bytes, with raw_events)
            builder.add_lean(read_lean_events(paths, lenient=lenient, stats=builder.stats, progress=progress,
                                              from_log=from_log, kept=raw_events))
        return resolve_forest(builder.finish(), options, builder.stats,
                              keep_candidates=keep_candidates, jobs=jobs)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the forest grows.

    Building allocates millions of long-lived dicts and lists and frees none of them, the worst
    case for the generational collector: each full pass rescans everything built so far, which
    made reading a large capture several times slower than parsing it. The model holds no
    reference cycles, so nothing is left for the collector to find."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
