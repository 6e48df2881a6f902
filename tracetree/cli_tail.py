"""Commands that get events out of a runtime: `tail-worker` and `record` (click only)."""

from __future__ import annotations

import sys

import click

from .cli import _error, _write_output, main
from .errors import EXIT_INPUT
from .record import record
from .render.text import clip, safe_text
from .tailworker import SNIPPET_KINDS, worker_source
from .tailworker import snippet as make_snippet

TAIL_WORKER_HELP = """Write tracetree's streaming tail worker, or the config lines that attach it.

The worker is a JavaScript module exporting `tailStream`. Attached to your workers (as a
`streamingTails` consumer), it writes every TailEvent exactly as received, one JSON object per
line: as log lines marked `tracetree-event: ` (the default; works under `workerd test`, no
network needed), or POSTed in batches to `tracetree collect` when the worker has a
`TRACETREE_COLLECTOR` service binding (workerd) or a `TRACETREE_COLLECT_URL` variable (wrangler).
`--snippet` prints those config lines; `--collect HOST:PORT` makes them POST to a collector.

\b
Examples:
  tracetree tail-worker -o tracetree-tail.js                 # the module, beside your config
  tracetree tail-worker --snippet workerd                    # capnp lines for a workerd config
  tracetree tail-worker --snippet wrangler                   # wrangler.toml lines
  tracetree tail-worker --snippet workerd --collect 127.0.0.1:8799   # POST to `tracetree collect`
  workerd test --predictable my.wd-test 2>&1 | tracetree build -     # then: trees from the log
"""


@main.command("tail-worker", help=TAIL_WORKER_HELP,
              short_help="Write the streaming tail worker or its config lines.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              default="-", show_default=True, help="Write the module (or snippet) here.")
@click.option("--snippet", type=click.Choice(SNIPPET_KINDS), default=None,
              help="Instead of the module, the lines to add to a workerd config (capnp) or a "
              "wrangler.toml to attach it.")
@click.option("--collect", metavar="HOST:PORT", default=None,
              help="With --snippet: lines that make the worker POST its events to `tracetree "
              "collect` listening there, instead of logging them.")
def tail_worker(output: str, snippet: str | None, collect: str | None) -> None:
    if collect is not None and snippet is None:
        raise click.UsageError("--collect goes with --snippet: the module itself reads its settings "
                               "from the bindings the snippet adds.")
    try:
        text = worker_source() if snippet is None else make_snippet(snippet, collect=collect)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    try:
        _write_output(output, text.encode("utf-8"))
    except OSError as error:
        _error(f"{output}: cannot write: {error.strerror or error}")
        sys.exit(EXIT_INPUT)


RECORD_HELP = """Run COMMAND, pass its output through unchanged, and write the TailEvents it logs
(the `tracetree-event:` lines of tracetree's tail worker) to OUTPUT as they arrive.

The file is JSON Lines, one event per line, flushed as each arrives, so it can be read (or
`tracetree build`) while the command runs. tracetree exits with the command's own exit code
(128 + N when signal N ended it), so it can stand in for the command in a script or CI. Put
`--` before COMMAND so its options are not taken for tracetree's.

\b
Examples:
  tracetree record -o events.jsonl -- workerd test --predictable my.wd-test
  tracetree record -o events.jsonl -- npx wrangler dev -c wrangler.toml -c tracetree-tail/wrangler.toml
  tracetree record -o events.jsonl --hide-events -- workerd serve config.capnp

A marker line that is cut short or malformed is not written; it, and any event the tail worker
reports it could not serialize, is counted and quoted on stderr at the end. Exit code 2 (before
anything runs) when COMMAND cannot be started or OUTPUT cannot be written.
"""


@main.command(help=RECORD_HELP, short_help="Run a command and keep the TailEvents in its output.",
              context_settings={"ignore_unknown_options": True})
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Write the events here (JSON Lines), replacing the file.")
@click.option("--hide-events", is_flag=True, help="Do not pass the `tracetree-event:` lines through "
              "(everything else still is).")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr at the end.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- COMMAND...")
def record_command(output: str, hide_events: bool, quiet: bool, command: tuple[str, ...]) -> None:
    try:
        handle = open(output, "wb")  # noqa: SIM115 (closed below, after the command ends)
    except OSError as error:
        _error(f"{output}: cannot write: {error.strerror or error}")
        sys.exit(EXIT_INPUT)
    with handle:
        try:
            result = record(command, handle, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer,
                            hide_events=hide_events)
        except OSError as error:
            _error(f"cannot run {command[0]}: {error.strerror or error}")
            sys.exit(EXIT_INPUT)
    if not quiet:
        summary = f"recorded {_plural(result.events, 'event')} to {output}"
        if result.problems:
            summary += f" · {_plural(len(result.problems), 'marker line')} not recorded"
        click.echo(safe_text(summary), err=True)
        for problem in result.problems[:5]:
            click.echo(f"problem: {clip(str(problem), 300)}", err=True)
        if len(result.problems) > 5:
            click.echo(f"problem: … and {len(result.problems) - 5} more", err=True)
    sys.exit(result.exit_code)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
