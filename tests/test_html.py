"""The HTML report (`build --format html`, `diff --format html`): the page's data, and the page
as a user sees it in a real headless browser (Debian's chromium, driven by playwright)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from conftest import ev

from tracetree.build import Forest, build, build_file
from tracetree.cli import main
from tracetree.diff import diff as diff_trees
from tracetree.diff import tree_from_document
from tracetree.document import to_document
from tracetree.render.html import HtmlOptions, render_diff_html, render_forest_html, report_data, script_json
from tracetree.resolve import ResolveOptions

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "tail-worker-test.events.jsonl"
# Screenshots a run keeps, for a person to look at (gitignored).
ARTIFACTS = Path(os.environ.get("TRACETREE_TEST_ARTIFACTS", ROOT / "test-artifacts"))

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">&amp; \u2028'


def _forest_with(message: str = HOSTILE) -> Forest:
    """Trace t1: a fetch root calling a jsrpc callee through a jsRpcCall span, a log holding
    `message`, and an orphan (its onset names a caller span no invocation owns). Trace t2: one
    invocation with a frozen clock."""
    ts = "2026-01-01T00:00:00.{:03d}Z"
    events = [
        ev("root", 0, {"type": "onset", "spanId": "aaaa000000000001", "executionModel": "stateless",
                       "info": {"type": "fetch", "method": "GET", "url": "http://x/api"}}, ts=ts.format(0)),
        ev("root", 1, {"type": "spanOpen", "spanId": "9a8b7c6d5e4f3a2b", "name": "jsRpcCall"},
           span="aaaa000000000001", ts=ts.format(1)),
        ev("root", 2, {"type": "attributes", "info": [{"name": "jsrpc.method", "value": "ping"}]},
           span="9a8b7c6d5e4f3a2b", ts=ts.format(1)),
        ev("callee", 0, {"type": "onset", "spanId": "bbbb000000000001", "executionModel": "stateless",
                         "info": {"type": "jsrpc"}}, span="9a8b7c6d5e4f3a2b", ts=ts.format(2)),
        ev("callee", 1, {"type": "log", "level": "warn", "message": [message]}, span="bbbb000000000001",
           ts=ts.format(3)),
        ev("callee", 2, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0},
           span="bbbb000000000001", ts=ts.format(4)),
        ev("root", 3, {"type": "spanClose", "outcome": "ok"}, span="9a8b7c6d5e4f3a2b", ts=ts.format(5)),
        ev("orphan", 0, {"type": "onset", "spanId": "cccc000000000001", "executionModel": "stateless",
                         "info": {"type": "fetch", "method": "POST", "url": "http://x/lost"}},
           span="dddd00000000dead", ts=ts.format(6)),
        ev("orphan", 1, {"type": "outcome", "outcome": "exception", "cpuTime": 0, "wallTime": 0},
           span="cccc000000000001", ts=ts.format(7)),
        ev("root", 4, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0},
           span="aaaa000000000001", ts=ts.format(9)),
        ev("frozen", 0, {"type": "onset", "spanId": "eeee000000000001", "info": {"type": "scheduled",
                                                                               "cron": "* * * * *"}},
           trace="t2", ts="2026-01-01T00:00:00.000Z"),
        ev("frozen", 1, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0},
           span="eeee000000000001", trace="t2", ts="2026-01-01T00:00:00.000Z"),
    ]
    return build(events)


def _by_label(data: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {node.get("label") or node.get("name"): (trace, node)
            for trace in data["traces"] for node in trace["nodes"]}


# -- the page's data, without a browser ------------------------------------------------------------


def test_script_json_cannot_end_its_script_element() -> None:
    """`</script>`, `<!--`, `&` and U+2028 from events are escaped inside the JSON block."""
    text = script_json({"message": "</script><!-- & \u2028\u2029"})
    assert b"<" not in text and b">" not in text and b"&" not in text
    assert "\u2028".encode() not in text and "\u2029".encode() not in text
    assert orjson.loads(text) == {"message": "</script><!-- & \u2028\u2029"}


def test_a_hostile_log_message_reaches_the_page_only_inside_the_data_block() -> None:
    """The page holds exactly two script elements, and the log message, unchanged, in the data."""
    page = render_forest_html(_forest_with())
    assert page.count(b"<script") == 2
    assert b"<img" not in page
    data = report_data(page)
    _, callee = _by_label(data)["jsrpc"]
    assert callee["events"][0]["body"]["message"] == ["<script>window.__pwned = 1</script><img src=x "
                                                     'onerror="window.__pwned = 2">&amp; \\u2028']


def test_the_page_fetches_nothing() -> None:
    """No src or href attributes, and a policy that forbids every fetch: it opens air-gapped."""
    page = render_forest_html(_forest_with()).decode()
    assert not re.search(r"\s(src|href)\s*=", page.split('id="tracetree-data">')[0])
    assert "default-src 'none'" in page
    assert "http://" not in page.replace("http://x/", "")  # the only URLs are the events' own


def test_links_carry_their_label_reason_and_evidence() -> None:
    """An invocation's node says how it was linked, why, and each candidate's evidence."""
    data = report_data(render_forest_html(_forest_with()))
    _, callee = _by_label(data)["jsrpc"]
    link = callee["link"]
    assert link["r"] == "exact"
    assert link["reason"]
    trace, _ = _by_label(data)["jsrpc"]
    [[state, invocation, span, name, score, evidence]] = link["candidates"]
    strings = trace["strings"]
    assert (state, invocation, span, strings[name]) == ("chosen", "root", "9a8b7c6d5e4f3a2b", "jsRpcCall")
    assert score > 0
    assert "a 'jsRpcCall' span dispatches jsrpc invocations" in [strings[item[1]] for item in evidence]
    _, orphan = _by_label(data)["fetch POST http://x/lost"]
    assert orphan["link"]["r"] == "orphan" and orphan["nf"] == 1


def test_a_link_with_many_candidates_shows_the_best_and_counts_the_rest() -> None:
    """Twenty invocations own span 1; the callee's link carries 12 candidates, the chosen one
    first, and says how many more there were."""
    events = []
    for n in range(20):
        events += [
            ev(f"r{n:02}", 0, {"type": "onset", "spanId": f"{n:016x}", "info": {"type": "custom"}}),
            ev(f"r{n:02}", 1, {"type": "spanOpen", "spanId": "0000000000000001", "name": "fetch"},
               span=f"{n:016x}"),
        ]
    events.append(ev("callee", 0, {"type": "onset", "spanId": "ffff000000000001",
                                   "info": {"type": "fetch", "method": "GET", "url": "http://x/"}},
                     span="0000000000000001"))
    data = report_data(render_forest_html(build(events)))
    _, callee = _by_label(data)["fetch GET http://x/"]
    link = callee["link"]
    assert len(link["candidates"]) == 12
    assert link["candidates"][0][0] == "chosen"
    assert link["more"][0] == 20 - 12


def test_callees_are_nested_under_the_span_that_called_them() -> None:
    """The jsrpc invocation is a child of the jsRpcCall span, itself a child of the fetch root."""
    data = report_data(render_forest_html(_forest_with()))
    trace, span = _by_label(data)["jsRpcCall"]
    [child] = span["c"]
    assert trace["nodes"][child]["label"] == "jsrpc"
    _, root = _by_label(data)["fetch GET http://x/api"]
    assert trace["nodes"].index(span) in root["c"]


def test_a_frozen_clock_gives_an_ordinal_layout_that_says_so() -> None:
    """Trace t2's readings are all equal: events are placed by arrival order, and the note says so;
    t1's clock ticks, so its axis is milliseconds."""
    data = report_data(render_forest_html(_forest_with()))
    timed = {trace["id"]: trace for trace in data["traces"]}
    assert timed["t1"]["timed"] is True and timed["t1"]["clock"].startswith("time axis")
    assert timed["t1"]["end"] == 9.0
    assert timed["t2"]["timed"] is False and timed["t2"]["clock"].startswith("ordinal layout")
    assert timed["t2"]["end"] == 1.0  # two events: ranks 0 and 1


def test_a_forest_without_its_events_is_refused() -> None:
    with pytest.raises(ValueError, match="keep_events=True"):
        render_forest_html(build_file(str(FIXTURE), keep_events=False))


def test_every_invocation_of_the_fixture_is_in_the_page() -> None:
    forest = build_file(str(FIXTURE))
    data = report_data(render_forest_html(forest))
    assert len(data["traces"]) == len(forest.traces)
    shown = sorted(node["id"] for trace in data["traces"] for node in trace["nodes"] if node["k"] == "i")
    assert shown == sorted(forest.links)


def test_long_values_are_cut_in_the_page() -> None:
    """A 50 KB log line is carried cut to the value limit, saying how much was left out."""
    data = report_data(render_forest_html(_forest_with("x" * 50_000), options=HtmlOptions(value_limit=100)))
    _, callee = _by_label(data)["jsrpc"]
    [message] = callee["events"][0]["body"]["message"]
    assert message == "x" * 100 + "… (49900 more characters)"


def _naive_and_evidence_trees() -> tuple[Any, Any]:
    naive = to_document(build_file(str(FIXTURE), options=ResolveOptions(naive=True)))
    evidence = to_document(build_file(str(FIXTURE)))
    return tree_from_document(naive, "naive.json"), tree_from_document(evidence, "events.jsonl")


def test_diff_page_marks_a_moved_invocation_on_both_sides() -> None:
    expected, actual = _naive_and_evidence_trees()
    changes = diff_trees(expected, actual)
    data = report_data(render_diff_html(expected, actual, changes, expected_name="naive.json",
                                        actual_name="events.jsonl"))
    assert [item["kind"] for item in data["changes"]] == ["invocation-moved", "invocation-moved"]
    for side in ("expected", "actual"):
        nodes = data[side]["nodes"]
        marked = sorted((mark, node["label"]) for node in nodes for mark, _ in node.get("marks", []))
        assert marked == [("moved", "jsrpc nonFunctionProperty (MyService)"),
                          ("moved", "jsrpc testDispose (MyService)")]
    first = data["changes"][0]
    assert first["actualExact"] and first["expectedExact"]
    assert data["actual"]["nodes"][first["actual"]]["path"] == \
        "trace 16 › custom › jsRpcCall#1 › jsrpc nonFunctionProperty (MyService)"
    assert data["expected"]["nodes"][first["expected"]]["path"].endswith(
        "jsRpcCall#2 › jsrpc nonFunctionProperty (MyService)")


# -- the CLI ---------------------------------------------------------------------------------------


def test_build_format_html_writes_one_page(tmp_path: Path) -> None:
    out = tmp_path / "trace.html"
    result = CliRunner().invoke(main, ["build", str(FIXTURE), "--format", "html", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    page = out.read_bytes()
    assert page.startswith(b"<!DOCTYPE html>") and page.rstrip().endswith(b"</html>")
    assert len(report_data(page)["traces"]) == 27


def test_diff_format_html_writes_a_page_and_exits_1_on_differences(tmp_path: Path) -> None:
    naive = tmp_path / "naive.json"
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(FIXTURE), "--naive", "-o", str(naive), "-q"]).exit_code == 0
    out = tmp_path / "diff.html"
    result = runner.invoke(main, ["diff", str(naive), str(FIXTURE), "--format", "html", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "2 changes: 2 invocation-moved" in result.stderr
    assert len(report_data(out.read_bytes())["changes"]) == 2


# -- in a real browser -----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The distribution's chromium: nothing is downloaded at test time.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class Opened:
    """A report open in a browser page, with every console message and page error it raised."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.messages: list[str] = []
        self.page.on("console", lambda message: self.messages.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))
        self.page.on("request", lambda request: self.messages.append(f"request: {request.url}")
                     if not request.url.startswith("file:") else None)
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready]")

    def rows(self, selector: str = ".row") -> list[str]:
        return [text.strip() for text in self.page.locator(selector).all_inner_texts()]


def _open(browser: Any, tmp_path: Path, page: bytes, name: str = "report.html") -> Opened:
    path = tmp_path / name
    path.write_bytes(page)
    return Opened(browser, path)


@needs_browser
def test_report_loads_without_errors_and_shows_every_trace(browser: Any, tmp_path: Path) -> None:
    opened = _open(browser, tmp_path, render_forest_html(build_file(str(FIXTURE))))
    assert opened.messages == []
    heads = opened.page.locator(".trace-head").all_inner_texts()
    assert len(heads) == 27
    assert [head.split("·")[0].strip() for head in heads] == [f"trace {n}" for n in range(1, 28)]
    # The README's trace 16: the callee a causal link hung under its jsRpcCall span is drawn.
    trace = opened.page.locator('.trace[data-trace="16"]')
    assert "jsrpc nonFunctionProperty · MyService" in trace.inner_text()
    assert trace.locator(".row.inv.res-causal .badge.res-causal").count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.page.locator(".row.res-causal").first.click()
    opened.page.screenshot(path=str(ARTIFACTS / "report.png"))
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


@needs_browser
def test_a_node_opens_on_click(browser: Any, tmp_path: Path) -> None:
    """With every subtree closed, clicking the root's toggle draws its spans; again, hides them."""
    page = render_forest_html(_forest_with("hello"), options=HtmlOptions(expand_limit=0))
    opened = _open(browser, tmp_path, page)
    trace = opened.page.locator('.trace[data-trace="2"]')  # trace 1 is t2's, which starts earlier
    assert trace.locator(".row .name").all_inner_texts() == ["fetch GET http://x/api", "fetch POST http://x/lost"]
    names = trace.locator(".row .name")
    trace.locator(".row.inv .toggle").first.click()
    assert names.all_inner_texts() == ["fetch GET http://x/api", "jsRpcCall", "fetch POST http://x/lost"]
    trace.locator(".row.span .toggle").click()
    assert names.all_inner_texts() == ["fetch GET http://x/api", "jsRpcCall", "jsrpc", "fetch POST http://x/lost"]
    trace.locator(".row.inv .toggle").first.click()
    assert names.all_inner_texts() == ["fetch GET http://x/api", "fetch POST http://x/lost"]
    assert opened.messages == []


@needs_browser
def test_flagged_filter_shows_only_flagged_links(browser: Any, tmp_path: Path) -> None:
    opened = _open(browser, tmp_path, render_forest_html(_forest_with("hello")))
    assert opened.page.locator(".row.inv:visible").count() == 4
    opened.page.select_option("#filter", "flagged")
    assert opened.rows(".row.inv:visible .name") == ["fetch POST http://x/lost"]
    assert opened.rows(".row.inv:visible .badge") == ["orphan", "exception"]
    assert opened.page.locator('.trace[data-trace="1"]').is_hidden()  # t2: nothing flagged there
    opened.page.select_option("#filter", "all")
    assert opened.page.locator(".row.inv:visible").count() == 4
    assert opened.page.locator(".empty").is_hidden()
    assert opened.messages == []


@needs_browser
def test_a_filter_that_leaves_nothing_says_so(browser: Any, tmp_path: Path) -> None:
    opened = _open(browser, tmp_path, render_forest_html(build_file(str(FIXTURE))))
    opened.page.select_option("#filter", "flagged")
    assert opened.page.locator(".trace:visible").count() == 0
    assert opened.rows(".empty") == ["no flagged (ambiguous or orphan) links in the input"]
    opened.page.select_option("#filter", "nonexact")
    assert opened.page.locator(".trace:visible").count() == 2  # traces 16 and 17: one causal link each
    assert opened.messages == []


@needs_browser
def test_a_script_in_a_log_is_shown_as_text_and_never_run(browser: Any, tmp_path: Path) -> None:
    opened = _open(browser, tmp_path, render_forest_html(_forest_with()))
    opened.page.locator(".row.inv", has_text="jsrpc").click()
    panel = opened.page.locator("#panel")
    assert "<script>window.__pwned = 1</script>" in panel.inner_text()
    opened.page.locator("#panel li.event summary").first.click()
    assert 'onerror="window.__pwned = 2"' in panel.inner_text()
    assert opened.page.evaluate("window.__pwned") is None
    assert opened.page.evaluate("document.scripts.length") == 2
    assert opened.page.evaluate("document.images.length") == 0
    # The marker on the waterfall carries the message as its tooltip text.
    assert "<script>" in opened.page.locator(".mark.log").get_attribute("title")
    assert opened.messages == []


@needs_browser
def test_diff_page_highlights_a_moved_invocation(browser: Any, tmp_path: Path) -> None:
    expected, actual = _naive_and_evidence_trees()
    page = render_diff_html(expected, actual, diff_trees(expected, actual), expected_name="naive.json",
                            actual_name="events.jsonl")
    opened = _open(browser, tmp_path, page, "diff.html")
    assert opened.messages == []
    for side in ("expected", "actual"):
        moved = opened.rows(f".pane.{side} .row.mark-moved")
        assert len(moved) == 2 and "jsrpc nonFunctionProperty (MyService)" in moved[0], moved
    opened.page.locator(".change").first.click()
    for side in ("expected", "actual"):
        target = opened.page.locator(f".pane.{side} .row.target")
        assert "jsrpc nonFunctionProperty (MyService)" in target.inner_text()
        assert target.is_visible()
    opened.page.locator(".pane.actual .row.mark-moved").first.click()
    assert "trace 16 › custom › jsRpcCall#1 › jsrpc nonFunctionProperty (MyService)" in \
        opened.page.locator(".node-detail").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    opened.page.screenshot(path=str(ARTIFACTS / "diff.png"))
    assert opened.messages == []


@needs_browser
def test_a_3000_deep_call_chain_opens_all_the_way_down(browser: Any, tmp_path: Path) -> None:
    """Trees go to the page flat and are drawn without recursion: a chain deeper than Python's
    recursion limit is written, opened, and fully expanded."""
    from test_deep import chain

    forest = build(chain(3000))
    opened = _open(browser, tmp_path, render_forest_html(forest, options=HtmlOptions(expand_limit=10_000)))
    assert opened.page.locator(".row.inv").count() == 3000
    assert opened.messages == []
    expected, actual = tree_from_document(to_document(forest)), tree_from_document(to_document(forest))
    opened = _open(browser, tmp_path, render_diff_html(expected, actual, []), "diff.html")
    assert opened.rows(".change-list")[0] == "no differences"
    assert opened.messages == []
