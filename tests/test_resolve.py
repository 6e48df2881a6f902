"""Resolving links: which caller span each callee hangs under, and how sure tracetree says it is."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from conftest import CORPUS, corpus_streams, ev, needs_corpus, truth_of

from tracetree.build import Forest, build, build_file
from tracetree.resolve import ResolveOptions

NAIVE = ResolveOptions(naive=True)
REAL_PREDICTABLE = CORPUS / "real" / "upstream-tailtest-predictable.events.jsonl"


def pid(counter: int) -> str:
    """A predictable-mode invocation id: 0x2a2a… XOR the process-wide counter in each 64-bit half."""
    return f"{0x2A2A2A2A2A2A2A2A ^ counter:016x}" * 2


def ts(ms: int) -> str:
    return f"2026-01-01T00:00:00.{ms:03d}Z"


def onset(inv, top, trigger_type="fetch", *, caller_span=None, at=0, **extra):
    return ev(inv, 0, {"type": "onset", "executionModel": "stateless", "spanId": top,
                       "info": {"type": trigger_type}, **extra}, span=caller_span, ts=ts(at))


def opens(inv, seq, span_id, name, parent, *, at=0):
    return ev(inv, seq, {"type": "spanOpen", "name": name, "spanId": span_id}, span=parent, ts=ts(at))


def link_of(forest: Forest, key: str):
    link = forest.links[key]
    return str(link.resolution), link.parent_invocation_id, link.parent_span_id


S1, S2 = "0000000000000001", "0000000000000002"
A_TOP, B_TOP, C_TOP = "a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3"


# -- one hand-built trace per resolution label ---------------------------------------------------

def test_root_for_an_onset_naming_no_caller_span():
    """An invocation whose onset names no caller span is a root, with no parent."""
    forest = build([onset("a", A_TOP, "custom")])
    assert link_of(forest, "a") == ("root", None, None)


def test_exact_for_the_only_owner_of_a_random_span_id():
    """A callee naming a random span id that exactly one invocation opened hangs under it, labelled exact."""
    forest = build([
        onset("a", A_TOP, "custom"),
        opens("a", 1, "5eed5eed5eed5eed", "fetch", A_TOP),
        onset("b", B_TOP, caller_span="5eed5eed5eed5eed"),
    ])
    assert link_of(forest, "b") == ("exact", "a", "5eed5eed5eed5eed")


def test_exact_for_hibernation_wake_up_naming_callers_top_level_span():
    """A hibernation wake-up naming the accepting request's top-level span id hangs under it, exact."""
    forest = build([
        onset("a", A_TOP, "fetch"),
        opens("a", 1, S1, "fetch", A_TOP),  # sequential ids elsewhere do not matter
        onset("b", B_TOP, "hibernatableWebSocket", caller_span=A_TOP, at=5),
        onset("c", C_TOP, "hibernatableWebSocket", caller_span=A_TOP, at=9),
    ])
    assert link_of(forest, "b") == ("exact", "a", A_TOP)
    assert link_of(forest, "c") == ("exact", "a", A_TOP)


def test_causal_when_hard_constraints_leave_one_owner():
    """Of two owners of a colliding span id, one created after the callee is ruled out: causal."""
    a, b, c = pid(1), pid(2), pid(3)
    forest = build([
        onset(a, A_TOP, "custom"),
        onset(b, B_TOP, caller_span=S1, at=1),
        opens(a, 1, S1, "fetch", A_TOP),
        onset(c, C_TOP, caller_span=S2, at=2),
        opens(a, 2, S2, "fetch", A_TOP),
        opens(c, 1, S1, "fetch", C_TOP, at=3),  # c also owns span 1, but c was created after b
    ])
    assert link_of(forest, b) == ("causal", a, S1)
    # c is counted among the owners, but creation order rules it out before any weighing.
    link = forest.links[b]
    assert [cand.invocation_id for cand in link.candidates] == [a]
    assert (link.later_owners, link.owners) == (1, 2)


def _two_owner_trace(other_name: str):
    """a calls c; both own span 2; b names span 2. No creation order (plain ids, grouped file)."""
    return [
        onset("a", A_TOP, "custom"),
        opens("a", 1, S1, "jsRpcCall", A_TOP, at=1),
        opens("a", 2, S2, "fetch", A_TOP, at=10),
        onset("b", B_TOP, "fetch", caller_span=S2, at=20),
        onset("c", C_TOP, "jsrpc", caller_span=S1, at=2),
        opens("c", 1, S1, "kv_get", C_TOP, at=3),
        opens("c", 2, S2, other_name, C_TOP, at=5),
    ]


def test_heuristic_when_soft_evidence_clearly_separates_owners():
    """Two owners, only one whose span name dispatches the callee's trigger: heuristic, under that one."""
    forest = build(_two_owner_trace("jsRpcCall"))
    assert forest.evidence["t1"].creation_order == "none"
    assert link_of(forest, "b") == ("heuristic", "a", S2)


def test_ambiguous_when_evidence_does_not_separate_owners():
    """Two owners whose spans fit equally well: attached to one of them, flagged ambiguous."""
    forest = build(_two_owner_trace("fetch"))
    resolution, parent, span = link_of(forest, "b")
    assert (resolution, span) == ("ambiguous", S2)
    assert parent in {"a", "c"}
    assert {cand.invocation_id for cand in forest.links["b"].candidates} == {"a", "c"}
    assert [link.invocation_id for link in forest.flagged()] == ["b"]


def test_ambiguous_when_the_only_owner_does_not_fit_the_trigger():
    """A lone owner of a sequential span id whose span cannot dispatch the trigger: attached, flagged."""
    forest = build([
        onset("a", A_TOP, "custom"),
        opens("a", 1, S1, "kv_get", A_TOP),
        onset("b", B_TOP, "fetch", caller_span=S1, at=1),
    ])
    assert link_of(forest, "b") == ("ambiguous", "a", S1)


def test_orphan_when_no_invocation_owns_the_caller_span():
    """A callee naming a span no invocation of the trace opened is an orphan, shown without parent."""
    forest = build([
        onset("a", A_TOP, "custom"),
        opens("a", 1, S1, "fetch", A_TOP),
        onset("b", B_TOP, caller_span="0000000000000009"),
    ])
    assert link_of(forest, "b") == ("orphan", None, None)
    assert forest.counts() == {"root": 1, "exact": 0, "causal": 0, "heuristic": 0, "ambiguous": 0,
                               "orphan": 1}


def test_orphan_when_the_caller_is_in_another_trace():
    """A span opened in another trace never adopts a callee: links stay inside one trace."""
    forest = build([
        onset("a", A_TOP, "custom"),
        opens("a", 1, "5eed5eed5eed5eed", "fetch", A_TOP),
        {**onset("b", B_TOP, caller_span="5eed5eed5eed5eed"),
         "spanContext": {"traceId": "t2", "spanId": "5eed5eed5eed5eed"}},
    ])
    assert link_of(forest, "b") == ("orphan", None, None)


# -- the real captures -----------------------------------------------------------------------------

@cache
def forest_of(path: Path, naive: bool) -> Forest:
    return build_file(str(path), options=NAIVE if naive else ResolveOptions(), keep_events=False)


def wrong_links(path: Path, naive: bool, *, children_only: bool = False) -> dict[str, tuple]:
    """Invocations whose link differs from the truth: id → (what tracetree said, the truth)."""
    links = forest_of(path, naive).links
    wrong = {}
    for key, truth in truth_of(path).items():
        expected = (truth["parentInvocationId"], truth["parentSpanId"])
        if children_only and expected[0] is None:
            continue
        link = links.get(key)
        got = (link.parent_invocation_id, link.parent_span_id, str(link.resolution)) if link else None
        if got is None or got[:2] != expected:
            wrong[key] = (got, expected)
    return wrong


def child_links(path: Path) -> int:
    return sum(1 for truth in truth_of(path).values() if truth["parentInvocationId"] is not None)


@pytest.mark.parametrize("stream", corpus_streams("real"))
def test_real_capture_every_link_right(stream):
    """Every invocation of each real workerd capture hangs under its true caller span (roots as roots)."""
    assert set(forest_of(stream, False).links) == set(truth_of(stream))
    assert wrong_links(stream, False) == {}
    assert child_links(stream) == 23


def _method(forest: Forest, key: str) -> str | None:
    for trace in forest.traces:
        if key in trace.invocations:
            top = trace.invocations[key].top
            return top.attributes.get("jsrpc.method") if top else None
    return None


@needs_corpus
def test_real_predictable_collisions_naive_wrong_default_right():
    """The upstream rule mis-links nonFunctionProperty under getCounter and testDispose under leak;
    tracetree links both to their true callers."""
    stream = REAL_PREDICTABLE
    naive = forest_of(stream, True)
    naive_wrong = wrong_links(stream, True)
    assert {(_method(naive, key), _method(naive, got[0])) for key, (got, _) in naive_wrong.items()} == {
        ("nonFunctionProperty", "getCounter"), ("testDispose", "leak")}
    default = forest_of(stream, False)
    truth = truth_of(stream)
    for key in naive_wrong:
        link = default.links[key]
        assert (link.parent_invocation_id, link.parent_span_id) == (
            truth[key]["parentInvocationId"], truth[key]["parentSpanId"])


# -- the training streams --------------------------------------------------------------------------

TRAIN = corpus_streams("train")
WORKERD_TRAIN = [p for p in TRAIN if p.values[0] is None or p.values[0].name.startswith("workerd-")]


@pytest.mark.parametrize("stream", TRAIN)
def test_train_certain_labels_never_wrong(stream):
    """Every link labelled root, exact or causal agrees with the truth."""
    forest = forest_of(stream, False)
    wrong = {key: w for key, w in wrong_links(stream, False).items()
             if key in forest.links and forest.links[key].resolution.certain}
    assert wrong == {}


@pytest.mark.parametrize("stream", WORKERD_TRAIN)
def test_train_workerd_streams_fully_right(stream):
    """Every link of the streams replayed from workerd's own test is right."""
    assert wrong_links(stream, False) == {}


@pytest.mark.parametrize("stream", TRAIN)
def test_train_never_below_naive(stream):
    """On no stream does tracetree get fewer child links right than the upstream rule."""
    total = child_links(stream)
    default_right = total - len(wrong_links(stream, False, children_only=True))
    naive_right = total - len(wrong_links(stream, True, children_only=True))
    assert default_right >= naive_right, (default_right, naive_right, total)


@needs_corpus
def test_train_overall_at_least_95_percent_right():
    """Across all training streams at least 95% of child links hang under their true caller span."""
    streams = sorted((CORPUS / "train").glob("*.events.jsonl"))
    assert streams
    total = sum(child_links(s) for s in streams)
    right = total - sum(len(wrong_links(s, False, children_only=True)) for s in streams)
    assert right / total >= 0.95, f"{right}/{total} child links right"
