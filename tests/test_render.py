"""The human-readable outputs: the tree, the explanation and the stderr summary, as a user sees them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from conftest import ev
from rich.console import Console

from tracetree.build import Forest, build, build_file
from tracetree.links import Resolution
from tracetree.render.explain import render_explain
from tracetree.render.summary import render_summary
from tracetree.render.text import clip, safe_text, short_id
from tracetree.render.tree import render_tree

SPAN = "0000000000000001"
GUIDES = set("│├└─ ")


def show(renderable: Any, *, color: bool = False) -> str:
    """What a terminal would receive: forced terminal, 120 columns, colour only when asked."""
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system="truecolor" if color else None)
    console.print(renderable)
    return out.getvalue()


def caller(inv: str, top: str, *, method: str | None = None, ts: str | None = None) -> list[dict[str, Any]]:
    """A fetch invocation whose one jsRpcCall span (id 1) may dispatch a callee."""
    bodies: list[tuple[dict[str, Any], str]] = [
        ({"type": "onset", "spanId": top, "info": {"type": "fetch", "method": "GET", "url": f"http://x/{inv}"}},
         ""),
        ({"type": "spanOpen", "name": "jsRpcCall", "spanId": SPAN}, top),
    ]
    if method:
        bodies.append(({"type": "attributes", "info": [{"name": "jsrpc.method", "value": method}]}, SPAN))
    bodies += [
        ({"type": "spanClose", "outcome": "ok"}, SPAN),
        ({"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, top),
    ]
    stamp = {"ts": ts} if ts else {}
    return [ev(inv, seq, body, span=span or None, **stamp) for seq, (body, span) in enumerate(bodies)]


def callee(inv: str, top: str, method: str, *, trigger: str | None = SPAN) -> list[dict[str, Any]]:
    """A jsrpc invocation of entrypoint Svc, called from span `trigger`."""
    return [
        ev(inv, 0, {"type": "onset", "spanId": top, "entrypoint": "Svc", "info": {"type": "jsrpc"}},
           span=trigger),
        ev(inv, 1, {"type": "attributes", "info": [{"name": "jsrpc.method", "value": method}]}, span=top),
        ev(inv, 2, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span=top),
    ]


def with_log(message: Any, **extra: Any) -> Forest:
    """One fetch invocation that logs `message` from its top-level span."""
    top = "f00df00df00df00d"
    return build([
        ev("a", 0, {"type": "onset", "spanId": top, "info": {"type": "fetch", "method": "GET", "url": "http://x/"}}),
        ev("a", 1, {"type": "log", "level": "info", "message": message, **extra}, span=top),
        ev("a", 2, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span=top),
    ])


def unclear_events() -> list[dict[str, Any]]:
    """Two fetches own span 1; one jsrpc callee names it; another names a span nobody owns."""
    return (
        caller("a", "aaaaaaaaaaaaaaaa", method="m") + caller("b", "bbbbbbbbbbbbbbbb", method="n")
        + callee("c", "cccccccccccccccc", "m")
        + callee("d", "dddddddddddddddd", "m", trigger="00000000000000ff")
    )


def unclear_forest() -> Forest:
    return build(unclear_events())


def label_column(line: str) -> int:
    """Where a tree line's label starts, after the guides."""
    return next((n for n, char in enumerate(line) if char not in GUIDES), len(line))


def parent_line(lines: list[str], index: int) -> str:
    """The line of the node a tree line hangs under."""
    column = label_column(lines[index])
    return next(line for line in reversed(lines[:index]) if label_column(line) < column)


def test_callee_hangs_under_the_caller_span_that_dispatched_it(corpus: Path) -> None:
    """In the real predictable capture each jsrpc callee is shown under its caller's own jsRpcCall span."""
    forest = build_file(str(corpus / "real" / "upstream-tailtest-predictable.events.jsonl"))
    lines = show(render_tree(forest)).splitlines()
    # The two span-id collisions upstream gets wrong, and a plain call.
    for method in ("getCounter", "nonFunctionProperty", "testDispose", "leak"):
        [index] = [n for n, line in enumerate(lines) if f"jsrpc {method} · MyService" in line]
        parent = parent_line(lines, index)
        assert f"jsRpcCall {method} " in parent, (method, parent)
        # The caller span is the caller's, not a span of another callee: it hangs under a session.
        assert "jsRpcSession" in parent_line(lines, lines.index(parent))


def test_non_exact_labels_are_shown_on_the_callee_line() -> None:
    """Every link that is not root or exact shows its label in brackets on the callee's line."""
    forest = unclear_forest()
    lines = show(render_tree(forest)).splitlines()
    labels = {link.invocation_id: link.resolution for link in forest.links.values()}
    assert labels["d"] is Resolution.ORPHAN
    assert labels["c"] not in (Resolution.ROOT, Resolution.EXACT)
    for inv, resolution in labels.items():
        [line] = [line for line in lines if line.rstrip().endswith(short_id(inv))]
        if resolution in (Resolution.ROOT, Resolution.EXACT):
            assert "[" not in line
        else:
            assert f"[{resolution.value}]" in line


def test_invocation_line_reads_as_trigger_entrypoint_outcome() -> None:
    """A jsrpc callee reads `jsrpc <method> · <entrypoint>` with its outcome, under the caller's span."""
    forest = build(caller("a", "aaaaaaaaaaaaaaaa", method="getCounter", ts="2026-01-01T00:00:00.000Z")
                   + callee("c", "cccccccccccccccc", "getCounter"))
    lines = show(render_tree(forest)).splitlines()
    assert lines[0].startswith("trace 1 · 2 invocations")
    [index] = [n for n, line in enumerate(lines) if "jsrpc getCounter · Svc  ok" in line]
    assert "jsRpcCall getCounter" in parent_line(lines, index)
    assert "fetch GET http://x/a" in lines[1]


def test_markup_in_a_log_message_is_printed_literally() -> None:
    """Rich markup inside a log message is shown as typed, not interpreted."""
    forest = with_log(["[bold red]x[/] and [link=http://evil]y[/link] :smile:"])
    out = show(render_tree(forest), color=True)
    assert "[bold red]x[/] and [link=http://evil]y[/link] :smile:" in out
    assert "\x1b]8;" not in out  # no hyperlink was made


def test_escape_sequences_in_a_log_message_are_shown_escaped() -> None:
    """ESC, CR, C1 and bidi controls in a log are shown as visible escapes; none reach the terminal raw."""
    message = "a\x1b[31mred\x1b[0m b\x1b]0;pwned\x07 c\rd \x9b2J e\u202eevil"
    plain = show(render_tree(with_log([message])))
    assert "\x1b" not in plain and "\r" not in plain and "\x9b" not in plain and "\u202e" not in plain
    assert "a\\x1b[31mred\\x1b[0m b\\x1b]0;pwned\\x07 c\\rd \\x9b2J e\\u202eevil" in plain
    coloured = show(render_tree(with_log([message])), color=True)
    assert "\x1b[31mred" not in coloured and "\x1b]0;" not in coloured and "\x07" not in coloured


def test_untrusted_urls_and_names_are_escaped_too() -> None:
    """Control characters in a URL, an entrypoint or a span name are escaped like log messages."""
    top = "f00df00df00df00d"
    forest = build([
        ev("a", 0, {"type": "onset", "spanId": top, "entrypoint": "E\x1b[2J",
                    "info": {"type": "fetch", "method": "GET", "url": "http://x/\x1b[1m[b]"}}),
        ev("a", 1, {"type": "spanOpen", "name": "n\x1b[5m", "spanId": SPAN}, span=top),
    ])
    out = show(render_tree(forest))
    assert "\x1b" not in out
    assert "E\\x1b[2J" in out and "http://x/\\x1b[1m[b]" in out and "n\\x1b[5m" in out


def test_safe_text_escapes_controls_and_keeps_text() -> None:
    """safe_text turns C0, C1, DEL and bidi controls into escapes and leaves ordinary text alone."""
    assert safe_text("plain é ü 日本 [b] \\n") == "plain é ü 日本 [b] \\n"
    assert safe_text("\x00\x1b\x7f\x85\u2028\u2066") == "\\x00\\x1b\\x7f\\x85\\u2028\\u2066"
    assert safe_text("a\nb\tc") == "a\\nb\\tc"
    assert safe_text("a\nb\tc\r", multiline=True) == "a\nb\tc\\r"


def test_long_messages_are_cut_to_one_line() -> None:
    """A long, multi-line log message is shown on one line, cut with an ellipsis."""
    out = show(render_tree(with_log("x" * 5000 + "\nsecond line", truncated=True)))
    [line] = [line for line in out.splitlines() if "info" in line]
    assert "…" in line and "(truncated)" in line and "second line" not in out
    assert len(clip("y" * 300, 50)) == 50


def test_missing_duplicate_and_unclosed_are_marked() -> None:
    """An invocation with a sequence gap, a redelivered event and an unclosed span says so."""
    top = "f00df00df00df00d"
    forest = build([
        ev("a", 0, {"type": "onset", "spanId": top, "info": {"type": "fetch", "method": "GET", "url": "http://x/"}}),
        ev("a", 1, {"type": "spanOpen", "name": "kv_get", "spanId": SPAN}, span=top),
        ev("a", 1, {"type": "spanOpen", "name": "kv_get", "spanId": SPAN}, span=top),
        ev("a", 3, {"type": "outcome", "outcome": "exceededCpu", "cpuTime": 0, "wallTime": 0}, span=top),
    ])
    out = show(render_tree(forest))
    assert "events missing: 1" in out and "duplicates: 1" in out and "unclosed: 1" in out
    assert "exceededCpu" in out
    assert "kv_get  unclosed" in out


def test_duration_only_when_the_clock_says_something() -> None:
    """Onset-to-outcome time is shown for a ticking clock and left out for a frozen one."""
    def stream(end: str) -> Forest:
        top = "f00df00df00df00d"
        return build([
            ev("a", 0, {"type": "onset", "spanId": top, "info": {"type": "scheduled", "cron": "* * * * *"}},
               ts="2026-01-01T00:00:00.000Z"),
            ev("a", 1, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span=top, ts=end),
        ])
    assert "scheduled * * * * *  ok · 42 ms" in show(render_tree(stream("2026-01-01T00:00:00.042Z")))
    frozen = show(render_tree(stream("2026-01-01T00:00:00.000Z")))
    assert "scheduled * * * * *  ok  " in frozen and " ms" not in frozen


def test_unknown_event_types_are_shown_not_dropped() -> None:
    """An event type this version does not know appears by name under its span."""
    top = "f00df00df00df00d"
    forest = build([
        ev("a", 0, {"type": "onset", "spanId": top, "info": {"type": "hibernatableWebSocket",
                                                            "info": {"type": "message"}}}),
        ev("a", 1, {"type": "fancyNewThing", "x": 1}, span=top),
    ])
    out = show(render_tree(forest))
    assert "hibernatableWebSocket message" in out and "fancyNewThing event" in out


def test_explain_lists_candidates_and_evidence() -> None:
    """Explain shows each unclear callee with its reason, every candidate and every piece of evidence."""
    forest = unclear_forest()
    out = show(render_explain(forest))
    link = forest.links["c"]
    assert link.reason and link.reason in out
    assert len(link.candidates) == 2
    for candidate in link.candidates:
        assert short_id(candidate.invocation_id) in out
        for item in candidate.evidence:
            assert item.detail in out
    chosen = [line for line in out.splitlines() if "▶ chosen" in line]
    assert len(chosen) == 1 and short_id(link.parent_invocation_id or "") in chosen[0]
    assert f"[{link.resolution.value}]" in out and "[orphan]" in out
    assert "ordering evidence lacking: " in out


def test_explain_marks_excluded_candidates() -> None:
    """A candidate ruled out by a hard constraint is marked EXCLUDED, with the constraint shown."""
    # b's span opens a second after c's onset: b cannot have made the call.
    forest = build(caller("a", "aaaaaaaaaaaaaaaa", ts="2026-01-01T00:00:00.000Z")
                   + caller("b", "bbbbbbbbbbbbbbbb", ts="2026-01-01T00:00:02.000Z")
                   + [dict(event, timestamp="2026-01-01T00:00:01.000Z")
                      for event in callee("c", "cccccccccccccccc", "m")])
    link = forest.links["c"]
    excluded = [c for c in link.candidates if c.excluded]
    if not excluded or link.resolution in (Resolution.ROOT, Resolution.EXACT):
        pytest.skip(f"the resolver no longer reports this as an excluded candidate: {link}")
    out = show(render_explain(forest))
    [line] = [line for line in out.splitlines() if "EXCLUDED" in line]
    assert short_id(excluded[0].invocation_id) in line
    assert "excludes " in out


def test_explain_says_so_when_nothing_needs_explaining() -> None:
    """With only root and exact links, explain is one line saying so."""
    forest = build(caller("a", "aaaaaaaaaaaaaaaa") + callee("c", "cccccccccccccccc", "m",
                                                            trigger="aaaaaaaaaaaaaaaa"))
    assert {link.resolution for link in forest.links.values()} <= {Resolution.ROOT, Resolution.EXACT}
    assert show(render_explain(forest)).strip() == "every link is exact or root: nothing to explain"


def test_summary_counts_what_was_built() -> None:
    """The summary counts traces, invocations, links by label, duplicates, skipped lines and gaps."""
    events = unclear_events()
    # A redelivered onset, a line that is no TailEvent, and an invocation whose first 3 events are lost.
    events += [events[0], {"not": "an event"}, ev("e", 3, {"type": "outcome", "outcome": "ok"}, trace="t2")]
    forest = build(events, lenient=True)
    first, note = render_summary(forest).splitlines()
    counts = forest.counts()
    assert first.startswith("2 traces, 5 invocations · links: ")
    for label, count in counts.items():
        assert (f"{count} {label}" in first) == bool(count)
    assert "1 duplicate ·" in first and "1 line skipped" in first and "1 with events missing" in first
    assert note.startswith("skipped: <events>:") and "invocationId" in note
    assert "\n" not in render_summary(forest, skipped_note=False)


def test_summary_is_one_line_for_clean_input() -> None:
    """Clean input gives one line with zero duplicates, skips and gaps."""
    summary = render_summary(build(caller("a", "aaaaaaaaaaaaaaaa")))
    assert summary == ("1 trace, 1 invocation · links: 1 root · 0 duplicates · 0 lines skipped"
                       " · 0 with events missing")
