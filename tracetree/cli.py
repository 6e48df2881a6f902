"""The command line: click only. Each command parses options, makes one library call, and
turns the library's errors into exit codes (defined in errors.py)."""

from __future__ import annotations

import gc
import gzip
import os
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from .build import Forest, available_cpus, build_file
from .diff import Change, Level, Tree, diff, tree_from_document
from .dispatch import DEFAULT_TABLE, load_dispatch_table
from .document import Normalization, checked_document, to_document
from .errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, InputError, TracetreeError
from .events import input_size
from .markers import looks_like_log
from .render.text import safe_text
from .resolve import ResolveOptions
from .shares import can_share, link_in_shares

# Below this much input a progress bar would only flicker.
PROGRESS_THRESHOLD = 4 * 1024 * 1024

BUILD_HELP = """Rebuild every trace in INPUTS: spans nested inside each invocation, and callee
invocations hung under the exact caller span that triggered them.

INPUTS are JSON Lines files of workerd TailEvents (one per line), `.gz` files, files holding
one JSON array of events, or `-` for stdin. Several inputs merge, in the order given. An input
may also be a workerd or wrangler log with the lines of tracetree's tail worker in it
(`tracetree tail-worker`): its `tracetree-event:` lines are read, the rest ignored.

\b
Examples:
  tracetree build fixtures/tail-worker-test.events.jsonl          # a tree per trace, in colour
  tracetree build events.jsonl --format json -o tree.json         # the canonical tree document
  tracetree build events.jsonl --format links                     # how each invocation was linked
  tracetree build events.jsonl --explain                          # why each non-exact link was chosen
  zcat events.jsonl.gz | tracetree build - --strict               # exit 1 on ambiguous/orphan links
  tracetree build events.jsonl --partial                          # some workers had no tail consumer
  workerd test --predictable my.wd-test 2>&1 | tracetree build -  # straight from workerd's output
  tracetree build events.jsonl --format html -o trace.html        # a page to open in a browser
  tracetree build big.jsonl --format links -j 4                   # links in 4 processes

\b
Every link carries a resolution label:
  root       the onset names no caller span
  exact      one invocation of the trace owns the caller span id, and its span fits
  causal     several owners; hard constraints and ordering leave exactly one
  heuristic  several possible; soft evidence chose one with a clear margin
  ambiguous  evidence could not separate candidates: attached to the best one, flagged
  orphan     no invocation of the trace can own the caller span: shown as a root, flagged
`exact` and `causal` links are never guesses.

\b
Exit codes: 0 built; 1 --strict and some link is ambiguous or orphan; 2 bad input.
"""


def _error(message: str) -> None:
    # An error may quote the input (a file name, an id): never let it drive the terminal.
    click.echo(f"error: {safe_text(message)}", err=True)


@contextmanager
def _progress(inputs: list[str], enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A byte-count progress bar on stderr, only for large inputs on a terminal. It (and rich's
    refresh thread) starts at the first report: processes forked before reading start with no
    thread but their own."""
    total = input_size(inputs)
    if not enabled or total < PROGRESS_THRESHOLD or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("reading"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=Console(stderr=True), transient=True)
    task = bar.add_task("read", total=total)

    def advance(count: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.advance(task, count)

    try:
        yield advance
    finally:
        bar.stop()


def _write(output: IO[bytes], chunks: Iterator[bytes] | bytes) -> None:
    if isinstance(chunks, bytes):
        output.write(chunks)
    else:
        for chunk in chunks:
            output.write(chunk)


def _write_output(output: str, data: Iterator[bytes] | bytes) -> None:
    """Data to stdout (`-`) or to the named file."""
    if output == "-":
        _write(sys.stdout.buffer, data)
        sys.stdout.buffer.flush()
    else:
        with _open_output(output, "wb") as handle:
            _write(handle, data)


def _open_output(output: str, mode: str) -> IO[Any]:
    """The output file, opened; InputError (one line, exit 2) when it cannot be."""
    try:
        return open(output, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except OSError as exc:
        raise InputError(output, None, f"cannot write: {exc.strerror or exc}") from None


def check_output(output: str) -> None:
    """Fail before any work when the output's folder does not exist: not after a long build."""
    if output != "-":
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise InputError(output, None, f"cannot write: no folder {folder}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tracetree")
def main() -> None:
    """tracetree: rebuild, resolve and check Cloudflare Workers streaming-tail traces.

    \b
    Start with:
      tracetree build fixtures/tail-worker-test.events.jsonl
      tracetree build --help
    """


@main.command(help=BUILD_HELP, short_help="Rebuild trace trees from TailEvent streams.")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("--format", "fmt", type=click.Choice(["tree", "json", "links", "shape", "html"]), default=None,
              help="Output format. Default: tree on a terminal, json otherwise. `shape` writes "
              "workerd's tail-worker-test form, nested {key, children}. `html` writes one "
              "self-contained page (waterfall per trace, link evidence on click; opens offline).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              default="-", show_default=True, help="Write the output here.")
@click.option("--explain", is_flag=True, help="Show, per non-exact link, every candidate and the "
              "evidence for and against it.")
@click.option("--strict", is_flag=True, help="Exit 1 when any link is ambiguous or orphan.")
@click.option("--naive", is_flag=True, help="Link by the upstream test helper's rule (last "
              "invocation indexed with the span id wins), to compare with fixtures recorded "
              "under it.")
@click.option("--partial", is_flag=True, help="The capture may lack invocations (workers without a "
              "tail consumer): never call a link through a sequential span id exact or causal.")
@click.option("--lenient", is_flag=True, help="Skip malformed lines instead of stopping; count "
              "them in the summary.")
@click.option("--from-log", is_flag=True, help="Read INPUTS as a runtime's log: take the tail worker's "
              "`tracetree-event:` lines, ignore the rest (detected without it when a log starts so).")
@click.option("--raw", is_flag=True, help="json: keep ids, timestamps and timings as received "
              "instead of normalizing them.")
@click.option("--normalize", "normalize", multiple=True, metavar="FIELD",
              help="json: also normalize FIELD (repeatable).")
@click.option("--keep", "keep", multiple=True, metavar="FIELD",
              help="json: do not normalize FIELD (repeatable).")
@click.option("--dispatch-table", type=click.Path(exists=True, dir_okay=False), default=None,
              help='JSON file extending which caller spans dispatch which triggers: '
              '{"queue": ["my_queue_span"], ...}.')
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="shape: name invocations by these key rules (as `diff --keys`); without it, "
              "by their labels.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="links: resolve in N processes (default: one per CPU), each reading the input "
              "and resolving a share of its traces (files of 16 MiB or more; together about the memory "
              "of one). Stdin is read once, then resolved in N forked processes, which may each copy "
              "most of the model's memory: -j 1 uses the least.")
@click.option("-q", "--quiet", is_flag=True, help="No summary or progress on stderr.")
def build(
    inputs: tuple[str, ...],
    fmt: str | None,
    output: str,
    explain: bool,
    strict: bool,
    naive: bool,
    partial: bool,
    lenient: bool,
    from_log: bool,
    raw: bool,
    normalize: tuple[str, ...],
    keep: tuple[str, ...],
    dispatch_table: str | None,
    keys_file: str | None,
    jobs: int | None,
    quiet: bool,
) -> None:
    # A one-shot process: the collector would only rescan the forest it cannot free (build
    # pauses it anyway; this spares the full pass that re-enabling it would start).
    gc.disable()
    to_terminal = output == "-" and sys.stdout.isatty()
    fmt = fmt or ("tree" if to_terminal else "json")
    # Options are checked before any input is read: a typo should not cost a long build.
    try:
        normalization = Normalization.from_options(normalize, keep, raw=raw)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if keys_file and fmt != "shape":
        raise click.UsageError("--keys names invocations in a shape: use it with --format shape.")
    try:
        check_output(output)
        table = load_dispatch_table(dispatch_table) if dispatch_table else DEFAULT_TABLE
        rules = None
        if keys_file:
            from .shapes import load_key_rules

            rules = load_key_rules(keys_file)
        options = ResolveOptions(naive=naive, dispatch=table, partial=partial)
        # Links alone need neither the events nor, without --explain, the candidates'
        # evidence: traces are then resolved on every CPU, each process reading the input and
        # resolving a share of its traces. The document needs the events (kept as text until
        # written, a trace at a time) but counts candidates only.
        lean = fmt == "links" and not explain
        workers = (jobs or available_cpus()) if lean else 1
        forest: Forest | None = None
        with _progress(list(inputs), not quiet) as progress:
            if lean and can_share(inputs, workers):
                blocks, tally = link_in_shares(inputs, workers, options=options, lenient=lenient,
                                               progress=progress, from_log=from_log or None)
            else:
                forest = build_file(
                    list(inputs), options=options, lenient=lenient,
                    keep_events=fmt != "links", raw_events=fmt == "json",
                    keep_candidates=explain or fmt not in ("links", "json"),
                    jobs=workers, progress=progress, from_log=from_log or None,
                )
                tally = forest.tally()
        if forest is None:
            _write_output(output, iter(blocks))
        else:
            _emit(forest, fmt, output, normalization, rules, title=" ".join(_shown(name) for name in inputs))
    except TracetreeError as error:  # InputError among them
        _error(str(error))
        sys.exit(EXIT_INPUT)
    except BrokenPipeError:
        sys.stderr.close()  # `| head`: the reader left; nothing more to say
        sys.exit(EXIT_OK)

    errors = Console(stderr=True, highlight=False)
    if explain and forest is not None:
        from .render.explain import render_explain

        # Explanations go with a tree on the terminal, and to stderr beside machine output.
        target = Console(highlight=False) if fmt == "tree" and output == "-" else errors
        target.print(render_explain(forest))
    if not quiet:
        from .render.summary import render_summary

        errors.print(render_summary(tally), markup=False, highlight=False, soft_wrap=True)
    if strict and tally.flagged:
        sys.exit(EXIT_FINDINGS)


def _emit(
    forest: Forest, fmt: str, output: str, normalization: Normalization, rules: Any = None, title: str = ""
) -> None:
    if fmt == "tree":
        from .render.tree import render_tree

        if output == "-":
            Console(highlight=False).print(render_tree(forest))
        else:
            with _open_output(output, "w") as handle:
                Console(file=handle, highlight=False, color_system=None, width=160).print(
                    render_tree(forest))
        return
    if fmt == "links":
        from .render.links import render_links

        data: Iterator[bytes] | bytes = render_links(forest)
    elif fmt == "shape":
        from .shapes import dumps_shape, to_shape

        data = dumps_shape(to_shape(to_document(forest), rules))
    elif fmt == "html":
        from .render.html import HtmlOptions, render_forest_html

        data = render_forest_html(forest, options=HtmlOptions(title=f"tracetree · {title}"))
    else:
        from .document import write_document

        # Written trace by trace: the whole document never sits in memory at once.
        if output == "-":
            write_document(forest, sys.stdout.buffer, normalization=normalization)
            sys.stdout.buffer.flush()
        else:
            with _open_output(output, "wb") as handle:
                write_document(forest, handle, normalization=normalization)
        return
    _write_output(output, data)


# -- diff ----------------------------------------------------------------------------------------

DIFF_FORMATS = ("text", "json", "github", "markdown", "html")

DIFF_HELP = """Compare two trace trees and say what moved, appeared, disappeared or changed, worded
as a reviewer would.

EXPECTED and ACTUAL are each a tree document (`tracetree build --format json`), a TailEvent
stream (JSON Lines, `.gz`, one JSON array of events, a workerd log with tracetree's marker
lines, or `-` for stdin: built first, as `build` builds it), or a workerd-style shape (nested
`{key, children}` nodes, as workerd's tail-worker-test asserts them). Invocations are matched
by what they are (trigger, entrypoint, script, where they hang, the spans they hold), never by
ids or timestamps; a moved subtree is one move.

\b
Examples:
  tracetree diff expected.json actual.json                   # a report, in colour on a terminal
  tracetree diff expected.json events.jsonl                  # a raw stream is built first
  tracetree diff expected.json actual.json --format json     # the changes, for machines
  tracetree diff expected.json actual.json --format github   # ::error annotations in a workflow
  tracetree diff expected.json actual.json --format markdown # a block for a pull request comment
  tracetree diff a.json b.json --level invocation            # only how invocations hang together
  tracetree diff a.json b.json --ignore 'attributes.http.*' --ignore logs
  tracetree diff shape.json events.jsonl --keys keys.json    # against a workerd test's shape
  tracetree diff expected.json actual.json --format html -o diff.html   # side by side, in a browser

\b
Change kinds (as --format json names them):
  invocation-moved     hangs under another caller or span than expected: from where to where
  invocation-added     only in ACTUAL, with everything below it
  invocation-removed   only in EXPECTED, with everything below it
  resolution-changed   how sure a link is (exact → ambiguous); not compared across resolvers
  onset-changed        a field of an invocation's onset (field onset.NAME)
  outcome-changed      an invocation's or a span's outcome (field outcome)
  span-added           a span only in ACTUAL
  span-removed         a span only in EXPECTED
  span-renamed         same place among its siblings, another name
  attribute-added      a span attribute only in ACTUAL (field attributes.NAME)
  attribute-removed    a span attribute only in EXPECTED
  attribute-changed    old → new
  event-added          a log, exception or other event only in ACTUAL (field logs, exceptions, events.…)
  event-removed        one only in EXPECTED
  event-changed        the same kind of event, at the same rank, reading differently

--level invocation counts the invocation kinds only, span adds the span kinds, full (the
default) counts all. --ignore GLOB drops changes whose field matches GLOB, or whose field's
first part does (`--ignore attributes` drops every attribute change).

\b
Exit codes: 0 no differences; 1 differences; 2 bad input.
"""


@main.command("diff", help=DIFF_HELP, short_help="Compare two trace trees; exit 1 when they differ.")
@click.argument("expected", metavar="EXPECTED")
@click.argument("actual", metavar="ACTUAL")
@click.option("--format", "fmt", type=click.Choice(DIFF_FORMATS), default="text", show_default=True,
              help="text: a report for people; json: the changes; github: workflow annotations; "
              "markdown: a block for a pull request comment; html: both trees side by side, changes "
              "marked and listed (one self-contained page).")
@click.option("--level", type=click.Choice([level.value for level in Level]), default=Level.FULL.value,
              show_default=True, help="What counts: how invocations hang together (invocation), and "
              "the spans in them (span), and attributes, outcomes, events and link resolutions (full).")
@click.option("--ignore", "ignore", multiple=True, metavar="GLOB",
              help="Do not count changes to fields matching GLOB (repeatable): 'attributes.http.*', "
              "logs, exceptions, outcome, resolution.")
@click.option("--keys", type=click.Path(dir_okay=False), default=None,
              help="With a shape on either side, which invocation each key names: "
              '{"key": {"info.type": "jsrpc", "attributes.jsrpc.method": "getCounter"}, ...}, or a '
              "workerd fixtures file {key: [events]}. Without it, a key is the invocation's label.")
@click.option("--shape", "shape_name", default=None, metavar="NAME",
              help="With a shape file holding several named shapes ({NAME: [nodes], ...}), the one "
              "to compare.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              default="-", show_default=True, help="Write the report here.")
@click.option("--from-log", is_flag=True, help="Read a side that is not a tree document or shape as "
              "a runtime's log: take the tail worker's `tracetree-event:` lines, ignore the rest "
              "(detected without it when a log starts so).")
@click.option("-q", "--quiet", is_flag=True, help="No summary or notes on stderr.")
def diff_command(
    expected: str,
    actual: str,
    fmt: str,
    level: str,
    ignore: tuple[str, ...],
    keys: str | None,
    shape_name: str | None,
    output: str,
    from_log: bool,
    quiet: bool,
) -> None:
    gc.disable()  # a one-shot process, as in build
    if expected == "-" and actual == "-":
        raise click.UsageError("EXPECTED and ACTUAL cannot both be stdin (-).")
    notes: list[str] = []
    changes: list[Change] = []
    try:
        # Options are checked before any input is read, as in build.
        from .shapes import load_key_rules

        rules = load_key_rules(keys) if keys else None
        check_output(output)
        left = _load_tree(expected, quiet, from_log, shape_name)
        right = _load_tree(actual, quiet, from_log, shape_name)
        if keys and left.has_spans and right.has_spans:
            notes.append("--keys is used only when a side is a shape: ignored")
        if shape_name is not None and left.has_spans and right.has_spans:
            notes.append("--shape is used only when a side is a shape: ignored")
        if level == Level.FULL and left.resolver and right.resolver and left.resolver != right.resolver:
            notes.append(f"{_shown(expected)} was linked by the {left.resolver} resolver and "
                         f"{_shown(actual)} by the {right.resolver} one: link resolutions not compared")
        # Against a shape, diff names the other side's invocations by these rules (or labels).
        changes = diff(left, right, level=level, ignore=ignore, rules=rules)
        _emit_diff(changes, fmt, output, expected, actual, level, ignore, trees=(left, right))
    except TracetreeError as error:
        _error(str(error))
        sys.exit(EXIT_INPUT)
    except BrokenPipeError:
        sys.stderr.close()  # `| head`: the reader left; the exit code still tells the answer
        sys.exit(EXIT_FINDINGS if changes else EXIT_OK)

    if not quiet:
        for note in notes:
            click.echo(f"note: {safe_text(note)}", err=True)
        if fmt != "text" or output != "-":  # a text report on stdout ends with the count already
            from .render.diff import count_line, no_differences

            summary = count_line(changes) if changes else no_differences(expected, actual)
            click.echo(summary, err=True)
    if changes:
        sys.exit(EXIT_FINDINGS)


def _shown(name: str) -> str:
    return "stdin" if name == "-" else name


def _emit_diff(
    changes: list[Change], fmt: str, output: str, expected: str, actual: str, level: str,
    ignore: tuple[str, ...], trees: tuple[Tree, Tree] | None = None,
) -> None:
    from .render import diff as render

    if fmt == "text":
        report = render.render_diff_text(changes, expected_name=expected, actual_name=actual)
        if output == "-":
            console = Console(highlight=False)
            # Wrapped on a terminal; unbroken lines for a pipe or a CI log, where grep finds them.
            console.print(report, soft_wrap=not console.is_terminal)
        else:
            with _open_output(output, "w") as handle:
                Console(file=handle, highlight=False, color_system=None).print(report, soft_wrap=True)
        return
    if fmt == "json":
        data = render.render_diff_json(changes, expected_name=expected, actual_name=actual,
                                       level=level, ignore=ignore)
    elif fmt == "html":
        from .render.html import render_diff_html

        assert trees is not None
        data = render_diff_html(*trees, changes, expected_name=expected, actual_name=actual)
    elif fmt == "github":
        data = render.render_diff_github(changes).encode()
    else:
        data = render.render_diff_markdown(changes, expected_name=expected, actual_name=actual).encode()
    _write_output(output, data)


# What each side of a diff can be, told apart by its content, not its name.
_STREAM = object()  # not one JSON value: JSON Lines (or nothing at all)
_LOG_SNIFF = 4 * 1024 * 1024  # how much of a side is searched for marker lines


def _load_tree(name: str, quiet: bool, from_log: bool = False, shape_name: str | None = None) -> Tree:
    """EXPECTED or ACTUAL as a comparable tree: a tree document, a shape, or an event stream built.

    A JSON object with `format` (or `traces`) is a document, checked as load_document checks
    it; a JSON array or object of `{key, children}` nodes is a shape; anything else is read as
    TailEvents, by the same reader as build.
    """
    from . import shapes

    data = _read_input(name)
    value = _parse_whole(name, data, from_log)
    if isinstance(value, dict) and ("format" in value or "traces" in value):
        return tree_from_document(checked_document(value, name), name)  # parsed once, not re-read
    if isinstance(value, (list, dict)) and shapes.is_shape(value):
        return shapes.tree_from_shape(value, name, shape_name if isinstance(value, dict) else None)
    del value
    # build_file reads files (and .gz) itself; only stdin, already read, needs a copy.
    with _as_file(name, data if name == "-" else None) as path:
        del data
        with _progress([path], not quiet) as progress:
            forest = build_file(path, progress=progress, from_log=from_log or None)
    return tree_from_document(to_document(forest), name)


def _read_input(name: str) -> bytes:
    """The bytes of a file or stdin, gunzipped, without a BOM."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise InputError(name, None, f"cannot read: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(name, None, f"not a readable gzip file: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data


def _parse_whole(name: str, data: bytes, from_log: bool = False) -> Any:
    """The file as one JSON value, or _STREAM when it reads as JSON Lines instead.

    A file whose first line is not JSON by itself, and that is not one JSON value either, is a
    broken JSON file (a document cut short): say where it breaks, not that line 1 is bad.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        first = next((line for line in data.splitlines() if line.strip()), None)
        if from_log or looks_like_log(data[:_LOG_SNIFF].split(b"\n")):
            return _STREAM  # a runtime's log with marker lines: the stream reader takes it
        try:
            if first is not None:
                orjson.loads(first)
            return _STREAM
        except orjson.JSONDecodeError:
            line = data.count(b"\n", 0, exc.pos) + 1
            raise InputError(name, line, f"malformed JSON: {str(exc).split(':', 1)[0]}") from None


@contextmanager
def _as_file(name: str, data: bytes | None) -> Iterator[str]:
    """A path holding `name`'s content: the file itself, or a temporary copy of `data` (stdin,
    gunzipped). Errors about the copy name `name`."""
    if data is None:
        yield name
        return
    with tempfile.TemporaryDirectory(prefix="tracetree-") as folder:
        path = str(Path(folder) / "input")
        Path(path).write_bytes(data)
        del data  # the copy on disk is what is read from here on
        try:
            yield path
        except InputError as error:
            if error.path != path:
                raise
            raise InputError(name, error.line, error.detail, error.column) from None


# Commands kept in modules of their own register themselves on `main` when imported.
from . import cli_check, cli_collect, cli_export, cli_tail  # noqa: E402,F401
