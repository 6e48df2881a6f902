"""Links of a large input in several processes, each reading the whole input and resolving one
share of its traces; the parent puts their links back in input order.

Traces are independent (the resolver is a pure function of one trace's events), so a share's
links are exactly those one process finds for the same traces. Every process reads and checks
every line, so each meets the same errors and skips, and numbers events by the same input
positions; but it models only its own traces, so the processes together hold about the model
one process would. (Forking once the whole model is built would not: a child writes to most
pages it inherits, as reference counts change when it reads, and so copies them.)

Where the platform forks safely (Linux) the processes are forked when the work starts, before
anything is read, so they inherit only the imported code (and the calling script is not run
again in them, as spawning does: it re-imports `__main__`); elsewhere they are spawned.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from .build import Tally, collector_paused, resolve_forest
from .errors import TracetreeError
from .events import ProgressCallback, read_lean_events
from .model import ModelBuilder
from .render.links import trace_links
from .resolve import DEFAULT_OPTIONS, ResolveOptions

# Below this much input, starting another interpreter costs more than it saves.
MIN_BYTES = 16 * 2**20


@dataclass(slots=True)
class LinkedShare:
    """One share's traces as `--format links` lines, each trace's with where it first appears."""

    blocks: list[tuple[int, bytes]]  # (input position of the trace's first event, its lines)
    tally: Tally


def can_share(paths: Sequence[str], jobs: int) -> bool:
    """Whether to resolve in shares: more than one job, inputs every process can read again
    (not stdin), and enough of them to repay starting the processes."""
    if jobs < 2 or any(path == "-" for path in paths):
        return False
    try:
        return sum(Path(path).stat().st_size for path in paths) >= MIN_BYTES
    except OSError:
        return False  # the reader will say what is wrong with it, with the usual message


def link_in_shares(
    paths: Sequence[str],
    jobs: int,
    *,
    options: ResolveOptions = DEFAULT_OPTIONS,
    lenient: bool = False,
    progress: ProgressCallback | None = None,
    from_log: bool | None = None,
) -> tuple[list[bytes], Tally]:
    """`--format links` lines of every trace, in input order, resolved in `jobs` processes (this
    one among them), and the tally of the whole. InputError as a single process raises it."""
    paths = list(paths)
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool:
        others = [pool.submit(link_share, paths, (index, jobs), options, lenient, from_log)
                  for index in range(1, jobs)]
        try:
            shares = [link_share(paths, (0, jobs), options, lenient, from_log, progress)]
        except BaseException:
            # Every process meets the same bad line at about the same point, so leaving the pool
            # (which waits for them) is quick; shares not started yet are dropped.
            for future in others:
                future.cancel()
            raise
        try:
            shares.extend(future.result() for future in others)
        except BrokenProcessPool as exc:  # killed (out of memory, a signal): say so, no traceback
            raise TracetreeError(f"a process resolving a share of the traces stopped: {exc}; "
                                 "`-j 1` resolves in this process alone") from None
    blocks = sorted((block for share in shares for block in share.blocks), key=lambda block: block[0])
    return [lines for _, lines in blocks], _whole(share.tally for share in shares)


def link_share(
    paths: list[str],
    share: tuple[int, int],
    options: ResolveOptions,
    lenient: bool,
    from_log: bool | None,
    progress: ProgressCallback | None = None,
) -> LinkedShare:
    """Read the whole input, model and resolve the traces of `share` (k, n): one process's part."""
    builder = ModelBuilder(keep_events=False, lenient=lenient, share=share)
    with collector_paused():
        builder.add_lean(read_lean_events(paths, lenient=lenient, stats=builder.stats, progress=progress,
                                          from_log=from_log))
        forest = resolve_forest(builder.finish(), options, builder.stats, keep_candidates=False)
        blocks = [(next(iter(trace.invocations.values())).position, trace_links(trace, forest.links))
                  for trace in forest.traces]
    return LinkedShare(blocks, forest.tally())


def _whole(tallies: Iterable[Tally]) -> Tally:
    """The shares' tallies as one: traces, invocations, links and redeliveries add up; events
    read and lines skipped are the same in every share (each reads everything)."""
    first, *rest = tallies
    whole = Tally(first.traces, first.invocations, dict(first.links), first.events_missing, first.stats)
    for tally in rest:
        whole.traces += tally.traces
        whole.invocations += tally.invocations
        whole.events_missing += tally.events_missing
        whole.stats.duplicates += tally.stats.duplicates
        for label, count in tally.links.items():
            whole.links[label] += count
    return whole
