"""Resolving traces in forked processes gives the links one process gives, candidates aside."""

from __future__ import annotations

import importlib
import os

import pytest
from conftest import CORPUS, needs_corpus

from tracetree.build import Forest, build_file, resolve_forest
from tracetree.events import ReadStats
from tracetree.model import build_traces
from tracetree.resolve import DEFAULT_OPTIONS

# The module, not the `tracetree.build` function the package exports under the same name.
build_module = importlib.import_module("tracetree.build")

STREAM = CORPUS / "train" / "topology-502-d3-f3-ms-arrival-lazy.events.jsonl"


def _decisions(forest: Forest) -> dict[str, tuple]:
    return {key: (link.parent, link.resolution, link.reason, link.owners)
            for key, link in forest.links.items()}


@needs_corpus
def test_forked_resolution_matches_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trace resolved by one of three processes: same links, same order, candidates only counted."""
    serial = build_file(str(STREAM), keep_events=False)
    monkeypatch.setattr(build_module, "_PARALLEL_MIN_INVOCATIONS", 0)
    forked = _count_forks(monkeypatch)
    parallel = build_file(str(STREAM), keep_events=False, keep_candidates=False, jobs=3)
    assert forked == [2]
    assert list(parallel.links) == list(serial.links)
    assert _decisions(parallel) == _decisions(serial)
    assert parallel.evidence == serial.evidence and parallel.ranks == serial.ranks
    assert any(link.candidates for link in serial.links.values())
    assert not any(link.candidates for link in parallel.links.values())


def test_a_failure_in_a_forked_resolver_is_raised_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver error in a child (here the second half of the traces) is raised in the caller."""
    traces = build_traces([
        {"invocationId": f"i{n}", "spanContext": {"traceId": f"t{n}"}, "sequence": 0,
         "event": {"type": "onset", "spanId": f"{n:016x}", "info": {"type": "fetch"}}}
        for n in range(4)
    ], keep_events=False)

    caller = os.getpid()
    real = build_module.resolve_with_evidence

    def broken(trace, options, **kwargs):
        if os.getpid() != caller:
            raise RuntimeError(f"cannot resolve {trace.trace_id}")
        return real(trace, options, **kwargs)

    monkeypatch.setattr(build_module, "_PARALLEL_MIN_INVOCATIONS", 0)
    monkeypatch.setattr(build_module, "resolve_with_evidence", broken)
    forked = _count_forks(monkeypatch)
    with pytest.raises(RuntimeError, match="cannot resolve t2"):
        resolve_forest(traces, DEFAULT_OPTIONS, ReadStats(), keep_candidates=False, jobs=2)
    assert forked == [1]


def _count_forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many resolver processes each resolve_forest call started."""
    counts: list[int] = []
    real = build_module._fork_resolvers

    def counting(*args):
        children = real(*args)
        counts.append(len(children))
        return children

    monkeypatch.setattr(build_module, "_fork_resolvers", counting)
    return counts


def test_parallel_resolution_needs_candidates_dropped() -> None:
    with pytest.raises(ValueError, match="keep_candidates=False"):
        resolve_forest([], DEFAULT_OPTIONS, ReadStats(), jobs=2)


@needs_corpus
def test_a_link_without_candidates_keeps_its_owner_count() -> None:
    """`owners` (the `candidates` number of --format links) survives dropping the evidence."""
    forest = build_file(str(CORPUS / "real" / "upstream-tailtest-predictable.events.jsonl"))
    links = [link for link in forest.links.values() if link.candidates]
    assert links
    for link in links:
        brief = link.without_candidates()
        assert brief.candidates == () and brief.owners == link.owners
        assert brief.unkept == len(link.candidates)


def test_shares_are_consecutive_runs_of_traces_with_about_as_many_invocations() -> None:
    traces = build_traces([
        {"invocationId": f"i{n}-{k}", "spanContext": {"traceId": f"t{n}"}, "sequence": 0,
         "event": {"type": "log"}}
        for n in range(40) for k in range(1 + n % 5)
    ], keep_events=False)
    shares = build_module._shares(traces, 3)
    assert [trace for share in shares for trace in share] == traces
    sizes = [sum(len(trace.invocations) for trace in share) for share in shares]
    assert len(shares) == 3 and max(sizes) - min(sizes) <= 5
