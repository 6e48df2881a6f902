"""The command line: click only. Each command parses options, makes one library call, and
turns the library's errors into exit codes (defined in errors.py)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from .build import Forest, build_file
from .dispatch import DEFAULT_TABLE, load_dispatch_table
from .document import Normalization
from .errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, InputError, TracetreeError
from .events import input_size
from .render.text import safe_text
from .resolve import ResolveOptions

# Below this much input a progress bar would only flicker.
PROGRESS_THRESHOLD = 4 * 1024 * 1024

BUILD_HELP = """Rebuild every trace in INPUTS: spans nested inside each invocation, and callee
invocations hung under the exact caller span that triggered them.

INPUTS are JSON Lines files of workerd TailEvents (one per line), `.gz` files, files holding
one JSON array of events, or `-` for stdin. Several inputs merge, in the order given.

\b
Examples:
  tracetree build fixtures/tail-worker-test.events.jsonl          # a tree per trace, in colour
  tracetree build events.jsonl --format json -o tree.json         # the canonical tree document
  tracetree build events.jsonl --format links                     # how each invocation was linked
  tracetree build events.jsonl --explain                          # why each non-exact link was chosen
  zcat events.jsonl.gz | tracetree build - --strict               # exit 1 on ambiguous/orphan links
  tracetree build events.jsonl --partial                          # some workers had no tail consumer

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
    """A byte-count progress bar on stderr, only for large inputs on a terminal."""
    total = input_size(inputs)
    if not enabled or total < PROGRESS_THRESHOLD or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("reading"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("read", total=total)
        yield lambda n: bar.advance(task, n)


def _write(output: IO[bytes], chunks: Iterator[bytes] | bytes) -> None:
    if isinstance(chunks, bytes):
        output.write(chunks)
    else:
        for chunk in chunks:
            output.write(chunk)


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
@click.option("--format", "fmt", type=click.Choice(["tree", "json", "links"]), default=None,
              help="Output format. Default: tree on a terminal, json otherwise.")
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
@click.option("--raw", is_flag=True, help="json: keep ids, timestamps and timings as received "
              "instead of normalizing them.")
@click.option("--normalize", "normalize", multiple=True, metavar="FIELD",
              help="json: also normalize FIELD (repeatable).")
@click.option("--keep", "keep", multiple=True, metavar="FIELD",
              help="json: do not normalize FIELD (repeatable).")
@click.option("--dispatch-table", type=click.Path(exists=True, dir_okay=False), default=None,
              help='JSON file extending which caller spans dispatch which triggers: '
              '{"queue": ["my_queue_span"], ...}.')
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
    raw: bool,
    normalize: tuple[str, ...],
    keep: tuple[str, ...],
    dispatch_table: str | None,
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
    try:
        table = load_dispatch_table(dispatch_table) if dispatch_table else DEFAULT_TABLE
        options = ResolveOptions(naive=naive, dispatch=table, partial=partial)
        with _progress(list(inputs), not quiet) as progress:
            forest = build_file(
                list(inputs), options=options, lenient=lenient,
                keep_events=fmt != "links", progress=progress,
            )
        _emit(forest, fmt, output, normalization)
    except InputError as error:
        _error(str(error))
        sys.exit(EXIT_INPUT)
    except TracetreeError as error:
        _error(str(error))
        sys.exit(EXIT_INPUT)
    except BrokenPipeError:
        sys.stderr.close()  # `| head`: the reader left; nothing more to say
        sys.exit(EXIT_OK)

    errors = Console(stderr=True, highlight=False)
    if explain:
        from .render.explain import render_explain

        # Explanations go with a tree on the terminal, and to stderr beside machine output.
        target = Console(highlight=False) if fmt == "tree" and output == "-" else errors
        target.print(render_explain(forest))
    if not quiet:
        from .render.summary import render_summary

        errors.print(render_summary(forest), markup=False, highlight=False, soft_wrap=True)
    if strict and forest.flagged():
        sys.exit(EXIT_FINDINGS)


def _emit(forest: Forest, fmt: str, output: str, normalization: Normalization) -> None:
    if fmt == "tree":
        from .render.tree import render_tree

        if output == "-":
            Console(highlight=False).print(render_tree(forest))
        else:
            with open(output, "w", encoding="utf-8") as handle:
                Console(file=handle, highlight=False, color_system=None, width=160).print(
                    render_tree(forest))
        return
    if fmt == "links":
        from .render.links import render_links

        data: Iterator[bytes] | bytes = render_links(forest)
    else:
        from .document import write_document

        # Written trace by trace: the whole document never sits in memory at once.
        if output == "-":
            write_document(forest, sys.stdout.buffer, normalization=normalization)
            sys.stdout.buffer.flush()
        else:
            with open(output, "wb") as handle:
                write_document(forest, handle, normalization=normalization)
        return
    if output == "-":
        _write(sys.stdout.buffer, data)
        sys.stdout.buffer.flush()
    else:
        with open(output, "wb") as handle:
            _write(handle, data)
