"""The pipeline: events → model → resolved links, as one call."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .events import ProgressCallback, ReadStats, read_events
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


def resolve_forest(traces: list[Trace], options: ResolveOptions, stats: ReadStats) -> Forest:
    links: dict[str, Link] = {}
    evidence: dict[str, TraceEvidence] = {}
    ranks: dict[str, dict[str, int]] = {}
    for trace in traces:
        trace_links, evidence[trace.trace_id], ranks[trace.trace_id] = resolve_with_evidence(trace, options)
        links.update(trace_links)
    return Forest(traces, links, evidence, ranks, stats, options.naive)


def build(
    events: Iterable[Any],
    *,
    options: ResolveOptions = DEFAULT_OPTIONS,
    lenient: bool = False,
    keep_events: bool = True,
) -> Forest:
    """A forest from TailEvent dicts already in memory, in arrival order."""
    builder = ModelBuilder(keep_events=keep_events, lenient=lenient)
    with _collector_paused():
        for line, event in enumerate(events, start=1):
            builder.add(event, "<events>", line)
        return resolve_forest(builder.finish(), options, builder.stats)


def build_file(
    paths: str | Sequence[str],
    *,
    options: ResolveOptions = DEFAULT_OPTIONS,
    lenient: bool = False,
    keep_events: bool = True,
    progress: ProgressCallback | None = None,
    from_log: bool | None = None,
) -> Forest:
    """A forest from JSONL / JSON-array / .gz files (`-` is stdin), merged in the order given.

    Malformed input raises InputError naming file and line; with `lenient` such lines are
    skipped and counted in `forest.stats.skipped`. A file may be a runtime's log holding the
    tail worker's marker lines: detected, or forced with `from_log` (see `read_events`).
    """
    if isinstance(paths, str):
        paths = [paths]
    builder = ModelBuilder(keep_events=keep_events, lenient=lenient)
    with _collector_paused():
        # One stats object: lines the reader skips and events the builder skips count together.
        builder.add_all(read_events(paths, lenient=lenient, stats=builder.stats, progress=progress,
                                    from_log=from_log))
        return resolve_forest(builder.finish(), options, builder.stats)


@contextmanager
def _collector_paused() -> Iterator[None]:
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
