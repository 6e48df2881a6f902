"""A check report: a line per fixture, the diffs of failing ones, a summary table; GitHub
annotations; JUnit XML. Renderers return values and print nothing; names and paths come from
the file system (a pull request can name a file anything), so every piece is made safe."""

from __future__ import annotations

import io
import shlex
import xml.etree.ElementTree as ET

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..check import PENDING_SUFFIX, TREE_SUFFIX, CheckReport, FixtureResult, Proposal, Status
from .diff import github_command, render_diff_github, render_diff_text
from .text import Line, safe_text

_MARK = {
    Status.PASSED: ("✓", "green"),
    Status.FAILED: ("✗", "bold red"),
    Status.MISSING: ("✗", "bold red"),
    Status.PENDING: ("✗", "bold red"),
    Status.ERROR: ("✗", "bold red"),
    Status.ORPHAN: ("!", "bold yellow"),
    Status.PRUNED: ("-", "yellow"),
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _command(*words: str) -> str:
    return "`" + " ".join(shlex.quote(word) for word in words) + "`"


def describe(result: FixtureResult, folder: str, *, hint: bool = True) -> str:
    """What a fixture's line says after its name: the count of changes, or what is wrong and what to
    do about it (`folder` is the folder as the user named it, for the commands suggested; without
    `hint`, a missing fixture's line leaves the how-to to the closing line)."""
    fixture = result.fixture
    # Named from the folder: `sub/case.tree.json` for a fixture in a subfolder.
    tree, pending = f"{fixture.name}{TREE_SUFFIX}", f"{fixture.name}{PENDING_SUFFIX}"
    status = result.status
    parts: list[str] = []
    if status is Status.FAILED:
        if result.changes:
            parts.append(_plural(len(result.changes), "change"))
        if result.strict and result.flagged:
            parts.append(f"{_plural(result.flagged, 'ambiguous or orphan link')} (strict)")
    elif status is Status.MISSING:
        parts.append(f"no expected tree {tree}")
        if hint and not result.wrote_pending and not result.pending:
            update = _command("tracetree", "check", folder, "--update", "-k", fixture.name)
            parts.append(f"create it with {update}, then {_command('tracetree', 'review', folder)}")
    elif status is Status.PENDING:
        parts.append("matches, but a proposal awaits review")
    elif status is Status.ORPHAN:
        parts.append(f"orphan: {tree if fixture.tree.exists() else pending} "
                     f"has no stream ({_command('tracetree', 'check', folder, '--prune')} removes it)")
    elif status is Status.PRUNED:
        parts.append("orphan removed (--prune)")
    elif status is Status.ERROR:
        parts.append(f"error: {result.error}")
    if result.wrote_pending:
        parts.append(f"proposal written to {pending}: review it with "
                     f"{_command('tracetree', 'review', folder)}")
    elif result.stale_pending:
        parts.append(f"{pending} is out of date (the stream changed since): write it again "
                     f"with {_command('tracetree', 'check', folder, '--update', '-k', fixture.name)}")
    elif result.pending and status is not Status.ORPHAN:
        parts.append(f"{pending} awaits {_command('tracetree', 'review', folder)}")
    if result.removed_pending:
        parts.append(f"stale {pending} removed")
    return " · ".join(parts)


def fixture_line(result: FixtureResult, folder: str, *, hint: bool = True) -> Text:
    """`✓ name` or `✗ name  3 changes`: one line per fixture, never markup."""
    mark, style = _MARK[result.status]
    line = Line(mark, style).add(" ").add(result.name, "bold" if result.status.fails else "")
    said = describe(result, folder, hint=hint)
    if said:
        line.add("  ").add(said, "red" if result.status in (Status.FAILED, Status.ERROR) else "")
    text = line.text()
    text.no_wrap = None
    text.overflow = None
    return text


def render_check_text(report: CheckReport, folder: str) -> Group:
    """Every fixture's line, then the diff of each failing fixture, then the summary table."""
    # One missing fixture's line says how to create its tree; several leave it to the closing line.
    hint = len(_unhinted_missing(report)) <= 1
    parts: list[RenderableType] = [fixture_line(result, folder, hint=hint) for result in report.results]
    if not report.results and report.select:
        parts.append(Line("no fixture name matches ").add(" ".join(f"-k {p}" for p in report.select)).text())
    elif not report.results:
        parts.append(Line(f"no fixtures in {folder}: a fixture is NAME.events.jsonl beside NAME.tree.json")
                     .text())
    for result in report.results:
        if result.changes and result.fixture.stream is not None:
            parts += [Text(), Line("━━ ", "bold").add(result.name, "bold").add(" ━━", "bold").text(),
                      render_diff_text(result.changes, expected_name=str(result.fixture.tree),
                                       actual_name=str(result.fixture.stream))]
    parts += [Text(), render_summary_table(report), closing_line(report, folder)]
    return Group(*parts)


def render_summary_table(report: CheckReport) -> Table:
    """Fixtures by result (the results present), and the total."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("result")
    table.add_column("fixtures", justify="right")
    table.add_column("changes", justify="right")
    for status, count in report.counts().items():
        if count:
            changes = sum(len(r.changes) for r in report.results if r.status is status)
            table.add_row(Text(status.value, _MARK[status][1]), str(count), str(changes) if changes else "")
    total_changes = sum(len(r.changes) for r in report.results)
    table.add_row(Text("total", "bold"), str(len(report.results)),
                  str(total_changes) if total_changes else "")
    return table


def closing_line(report: CheckReport, folder: str) -> Text:
    """The verdict, and what to do next."""
    total = len(report.results)
    failing = [r for r in report.results if r.status.fails or r.status is Status.ERROR]
    if total == report.count(Status.ORPHAN):
        line = Line("FAILED: no fixture checked", "bold red")
    elif report.exit_code == 0:
        line = Line(f"ok: {_plural(total, 'fixture')} checked", "bold green")
        orphans = report.count(Status.ORPHAN)
        if orphans:
            line.add(f" · {_plural(orphans, 'orphan')} reported", "yellow")
    else:
        line = Line(f"FAILED: {len(failing)} of {_plural(total, 'fixture')}", "bold red")
    missing = _unhinted_missing(report)
    if len(missing) > 1:
        line.add(f" · create the {len(missing)} missing trees with "
                 f"{_command('tracetree', 'check', folder, '--update', *_select_args(report))}, then "
                 f"{_command('tracetree', 'review', folder)}")
    written = report.written
    if written:
        line.add(f" · wrote {_plural(len(written), 'proposal')}; review with "
                 f"{_command('tracetree', 'review', folder)}")
    text = line.text()
    text.no_wrap = None
    text.overflow = None
    return text


def _unhinted_missing(report: CheckReport) -> list[FixtureResult]:
    return [r for r in report.results if r.status is Status.MISSING and not r.pending and not r.wrote_pending]


def _select_args(report: CheckReport) -> list[str]:
    return [word for pattern in report.select for word in ("-k", pattern)]


def plain(renderable: RenderableType, width: int = 200) -> str:
    """A renderable as plain text: no colour, lines whole."""
    buffer = io.StringIO()
    Console(file=buffer, color_system=None, width=width, highlight=False).print(renderable, soft_wrap=True)
    return buffer.getvalue()


# -- GitHub Actions -------------------------------------------------------------------------------


def render_check_github(report: CheckReport, folder: str) -> str:
    """Workflow commands: an `::error` per change of a failing fixture (on its expected tree), per
    missing, pending or unreadable fixture; a `::warning` per orphan; then the verdict, plain."""
    lines: list[str] = []
    for result in report.results:
        fixture = result.fixture
        title = f"tracetree check {result.name}"
        if result.changes:
            lines.append(render_diff_github(result.changes, file=str(fixture.tree), title=title))
        status = result.status
        if status is Status.ERROR and result.error is not None:
            lines.append(github_command("error", result.error.detail, file=result.error.path,
                                        line=result.error.line, title=title))
        elif status is Status.ORPHAN or status is Status.PRUNED:
            lines.append(github_command("warning", describe(result, folder), file=str(fixture.tree),
                                        title=title))
        elif status is Status.MISSING or status is Status.PENDING or (status is Status.FAILED
                                                                       and not result.changes):
            lines.append(github_command("error", describe(result, folder),
                                        file=str(fixture.stream or fixture.tree), title=title))
    lines.append(closing_line(report, folder).plain + "\n")
    return "".join(lines)


# -- JUnit XML ------------------------------------------------------------------------------------


def render_junit(report: CheckReport, folder: str) -> bytes:
    """JUnit XML for CI dashboards: a testcase per fixture; a failure (with its diff) for a
    failing, missing or pending fixture, an error for an unreadable one, skipped for an orphan."""
    counts = report.counts()
    failures = sum(count for status, count in counts.items() if status.fails)
    errors = counts[Status.ERROR]
    skipped = counts[Status.ORPHAN] + counts[Status.PRUNED]
    seconds = f"{sum(r.seconds for r in report.results):.3f}"
    summary = {"tests": str(len(report.results)), "failures": str(failures), "errors": str(errors),
               "skipped": str(skipped), "time": seconds}
    root = ET.Element("testsuites", {"name": "tracetree check", **summary})
    suite = ET.SubElement(root, "testsuite", {"name": _attr(f"tracetree check {folder}"), **summary})
    for result in report.results:
        fixture = result.fixture
        case = ET.SubElement(suite, "testcase", {
            "classname": "tracetree.check",
            "name": _attr(result.name),
            "file": _attr(str(fixture.stream or fixture.tree)),
            "time": f"{result.seconds:.3f}",
        })
        status = result.status
        said = describe(result, folder)
        if status is Status.ERROR:
            error = ET.SubElement(case, "error", {"message": _attr(said), "type": "input"})
            error.text = _body(str(result.error))
        elif status.fails:
            failure = ET.SubElement(case, "failure", {"message": _attr(said), "type": status.value})
            failure.text = _body(_failure_text(result, said))
        elif status in (Status.ORPHAN, Status.PRUNED):
            ET.SubElement(case, "skipped", {"message": _attr(said)})
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _failure_text(result: FixtureResult, said: str) -> str:
    if not result.changes or result.fixture.stream is None:
        return said
    return plain(render_diff_text(result.changes, expected_name=str(result.fixture.tree),
                                  actual_name=str(result.fixture.stream)))


def _attr(text: str) -> str:
    # XML 1.0 cannot hold most control characters at all, even escaped: they are shown instead.
    return safe_text(text)


def _body(text: str) -> str:
    return safe_text(text, multiline=True)


# -- review ---------------------------------------------------------------------------------------


def render_proposal(proposal: Proposal, index: int, total: int) -> Group:
    """One proposal as a reviewer sees it: which fixture, then how it differs from the accepted tree."""
    fixture = proposal.fixture
    head = Line(f"[{index}/{total}] ", "bold").add(proposal.name, "bold")
    summary = proposal.summary
    if proposal.new:
        head.add("  new fixture: no accepted tree yet", "yellow")
    parts: list[RenderableType] = [head.text()]
    if summary:
        # A proposal is a file anyone can edit: only counts that are numbers are shown.
        links = summary.get("links") if isinstance(summary.get("links"), dict) else {}
        shown = ", ".join(f"{count} {label}" for label, count in links.items() if _count(count))
        facts = ", ".join(_plural(summary[key], word) for key, word in (("traces", "trace"),
                          ("invocations", "invocation")) if _count(summary.get(key)) is not None)
        parts.append(Line("proposed tree: ").add(facts + (f" · links: {shown}" if shown else "")).text())
    if proposal.identical:
        parts.append(Text("the proposal is byte for byte the accepted tree", "green"))
    elif proposal.changes:
        expected = "(nothing)" if proposal.new else str(fixture.tree)
        parts.append(render_diff_text(proposal.changes, expected_name=expected,
                                      actual_name=str(fixture.pending)))
    else:
        parts.append(Text("no differences counted under the folder's options (the bytes differ)"))
    return Group(*parts)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
