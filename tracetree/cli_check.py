"""The fixture commands, `check`, `review` and `init`: click only, over tracetree.check."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .check import (
    FixtureResult,
    ProgressCallback,
    Refused,
    accept,
    check_folder,
    init_fixture,
    proposals,
    reject,
)
from .cli import _error, main
from .errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, InputError, TracetreeError

# Below this many fixtures (or this much stream data) a progress bar would only flicker.
PROGRESS_FIXTURES = 20
PROGRESS_BYTES = 4 * 1024 * 1024
EXIT_INTERRUPTED = 130

CHECK_HELP = """Check a folder of fixtures: build every recorded stream and compare it with its
accepted tree. One line per fixture (✓, or ✗ with the count of changes), the diff of each
failing fixture, then a summary table.

\b
A fixture is NAME.events.jsonl (or .events.jsonl.gz) beside NAME.tree.json, the accepted tree:
the document `tracetree build --format json` writes. Fixtures may sit in subfolders (the name is
then sub/NAME). Options for the whole folder, and per fixture, come from tracetree.toml in the
folder, or [tool.tracetree] in the nearest pyproject.toml (see the README).

\b
Examples:
  tracetree check fixtures/                       # every fixture, a summary
  tracetree check fixtures/ -k jsrpc              # fixtures whose name has `jsrpc` (or a glob: -k 'replay-*')
  tracetree check fixtures/ --junit report.xml    # JUnit XML for CI dashboards, too
  tracetree check fixtures/ --format github       # annotations on the pull request
  tracetree check fixtures/ --update              # write proposals NAME.tree.json.new, then:
  tracetree review fixtures/                      # accept or reject each, one at a time

\b
Safe by design: check never writes an accepted tree. --update writes proposals (atomically),
and the run that wrote them still fails. In CI (CI set) --update and --prune refuse unless
--force. A stream without an accepted tree fails (missing); an accepted tree without a stream
is reported (orphan), and --prune removes orphans, only on a full run without -k.

\b
Exit codes: 0 every fixture matches; 1 a fixture differs, is missing or has a proposal awaiting
review; 2 bad input or configuration (one line naming the file), or nothing to check.
"""


class _Bar:
    """A progress bar on stderr for a large folder on a terminal; started by the first result."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Progress | None = None
        self.task = 0

    def __call__(self, done: int, total: int, result: FixtureResult | None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            size = _stream_bytes(result)
            if total < PROGRESS_FIXTURES and size * total < PROGRESS_BYTES:
                self.enabled = False
                return
            columns = (TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            self.bar = Progress(*columns, console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("check", total=total)
        self.bar.update(self.task, completed=done)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _stream_bytes(result: FixtureResult | None) -> int:
    stream = result.fixture.stream if result is not None else None
    try:
        return stream.stat().st_size if stream is not None else 0
    except OSError:
        return 0


@contextmanager
def _errors_exit() -> Iterator[None]:
    """A library error becomes one line on stderr and exit 2, never a traceback; so does Ctrl-C
    (exit 130, as a shell reports SIGINT), and every write was atomic, so nothing is left half done."""
    try:
        yield
    except (InputError, Refused, TracetreeError) as error:
        _error(str(error))
        sys.exit(EXIT_INPUT)
    except KeyboardInterrupt:
        _error("interrupted: files already written are whole; nothing is half written")
        sys.exit(EXIT_INTERRUPTED)


@main.command("check", help=CHECK_HELP, short_help="Check a folder of fixtures (CI); --update, then review.")
@click.argument("folder", metavar="FOLDER")
@click.option("-k", "select", multiple=True, metavar="PATTERN",
              help="Only fixtures whose name contains PATTERN, or matches it as a glob when it has "
              "* ? or [ (repeatable: any of them).")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE",
              help="Also write a JUnit XML report to FILE (a testcase per fixture).")
@click.option("--format", "fmt", type=click.Choice(["text", "github"]), default="text", show_default=True,
              help="text: lines, diffs and a summary for people; github: workflow annotations on the "
              "files of a pull request, then the verdict.")
@click.option("--update", is_flag=True, help="Write a proposal NAME.tree.json.new for every fixture "
              "that differs or is missing (never the accepted tree); the run still fails.")
@click.option("--force", is_flag=True, help="With --update or --prune: write even in CI (CI set).")
@click.option("--prune", is_flag=True, help="Remove orphans (accepted trees and proposals without a "
              "stream); only on a full run, without -k.")
def check_command(
    folder: str, select: tuple[str, ...], junit: str | None, fmt: str, update: bool, force: bool,
    prune: bool,
) -> None:
    bar = _Bar(enabled=True)
    progress: ProgressCallback = bar
    with _errors_exit():
        try:
            report = check_folder(folder, select=select, update=update, prune=prune, force=force,
                                  progress=progress)
        finally:
            bar.stop()
        if junit:
            from .render.check import render_junit

            try:
                Path(junit).write_bytes(render_junit(report, folder))
            except OSError as exc:
                raise InputError(junit, None, f"cannot write: {exc.strerror or exc}") from None
    from .render import check as render

    if fmt == "github":
        click.echo(render.render_check_github(report, folder), nl=False)
    else:
        console = Console(highlight=False)
        # Wrapped on a terminal; whole lines in a CI log, where grep finds them.
        console.print(render.render_check_text(report, folder), soft_wrap=not console.is_terminal)
    for result in report.results:
        if result.error is not None:
            _error(str(result.error))
    sys.exit(report.exit_code)


REVIEW_HELP = """Review the proposals (NAME.tree.json.new) that `check --update` wrote: each is
shown as a diff against the accepted tree, then accept it (it becomes NAME.tree.json), reject it
(it is deleted) or skip it (it stays for later), one at a time.

\b
Examples:
  tracetree review fixtures/                  # one question per proposal: a(ccept) r(eject) s(kip) q(uit)
  tracetree review fixtures/ -k jsrpc         # only these fixtures
  tracetree review fixtures/ --accept-all     # accept every proposal, without questions (scripts)
  tracetree review fixtures/ --reject-all     # delete every proposal

\b
Exit codes: 0 no proposal left; 1 some were skipped (or the review quit); 2 bad input.
"""


@main.command("review", help=REVIEW_HELP, short_help="Accept or reject proposals that check --update wrote.")
@click.argument("folder", metavar="FOLDER")
@click.option("-k", "select", multiple=True, metavar="PATTERN",
              help="Only fixtures whose name contains PATTERN, or matches it as a glob (repeatable).")
@click.option("--accept-all", is_flag=True, help="Accept every proposal without asking.")
@click.option("--reject-all", is_flag=True, help="Reject (delete) every proposal without asking.")
def review_command(folder: str, select: tuple[str, ...], accept_all: bool, reject_all: bool) -> None:
    if accept_all and reject_all:
        raise click.UsageError("--accept-all and --reject-all cannot be given together.")
    from .render.check import render_proposal

    console = Console(highlight=False)
    decided = {"accepted": 0, "rejected": 0, "skipped": 0}
    with _errors_exit():
        found = proposals(folder, select=select)
        if not found:
            click.echo(f"no proposals to review in {_shown(folder)}")
            sys.exit(EXIT_OK)
        for index, proposal in enumerate(found, start=1):
            if accept_all or reject_all:
                answer = "a" if accept_all else "r"
            else:
                console.print(render_proposal(proposal, index, len(found)), soft_wrap=not console.is_terminal)
                answer = _ask()
            if answer == "q":
                decided["skipped"] += len(found) - index + 1
                break
            if answer == "a":
                accept(proposal)
                decided["accepted"] += 1
                click.echo(f"accepted {_shown(str(proposal.fixture.tree))}")
            elif answer == "r":
                reject(proposal)
                decided["rejected"] += 1
                pending = proposal.fixture.pending.name
                click.echo(f"rejected {_shown(proposal.name)}: {_shown(pending)} deleted")
            else:
                decided["skipped"] += 1
                click.echo(f"skipped {_shown(proposal.name)}")
    click.echo(", ".join(f"{count} {what}" for what, count in decided.items()))
    sys.exit(EXIT_FINDINGS if decided["skipped"] else EXIT_OK)


def _ask() -> str:
    """One answer: a, r, s or q (the whole word works too). End of input quits."""
    choices = click.Choice(["a", "r", "s", "q", "accept", "reject", "skip", "quit"], case_sensitive=False)
    try:
        answer = click.prompt("accept, reject, skip or quit? [a/r/s/q]", type=choices, show_choices=False)
    except click.Abort:
        click.echo()
        return "q"
    return str(answer)[0].lower()


def _shown(text: str) -> str:
    from .render.text import safe_text

    return safe_text(text)


INIT_HELP = """Start a fixture from a stream: copy STREAM to DEST.events.jsonl (a gzip stream
stays gzip, as .events.jsonl.gz) and write its tree as DEST.tree.json, built with the folder's
options, so `tracetree check` passes on it at once. Look at the tree before you commit it
(`tracetree build DEST.events.jsonl`): from now on it is what the stream must keep building.

\b
DEST is FOLDER/NAME, or an existing folder (the fixture is then named after STREAM). STREAM
may be `-` for stdin. An existing fixture of that name is replaced only with --force.

\b
Examples:
  tracetree init fixtures/checkout-flow capture.events.jsonl
  tracetree init fixtures/ capture.events.jsonl.gz          # fixtures/capture.events.jsonl.gz
  wrangler tail --format json | tracetree init fixtures/live -

\b
Exit codes: 0 created; 2 bad input, or the fixture exists (without --force).
"""


@main.command("init", help=INIT_HELP, short_help="Start a fixture from a stream.")
@click.argument("dest", metavar="DEST")
@click.argument("stream", metavar="STREAM")
@click.option("--force", is_flag=True, help="Replace an existing fixture of that name.")
def init_command(dest: str, stream: str, force: bool) -> None:
    with _errors_exit():
        created = init_fixture(dest, stream, force=force)
    from .render.summary import render_summary

    fixture = created.fixture
    click.echo(f"created {_shown(str(fixture.stream))} and {_shown(str(fixture.tree))}")
    click.echo(render_summary(created.forest), err=True)
    flagged = len(created.forest.flagged())
    if flagged:
        click.echo(f"note: {flagged} ambiguous or orphan link{'' if flagged == 1 else 's'}: with "
                   "`strict = true` in the folder's options, check fails this fixture", err=True)
