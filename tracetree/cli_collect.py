"""`tracetree collect`: the command line over tracetree.collect (click and the terminal only)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from .cli import _error, main
from .collect import (
    DEFAULT_LISTEN,
    DEFAULT_MAX_BATCH_BYTES,
    CollectError,
    CollectOptions,
    Collector,
    describe,
    is_loopback,
    parse_listen,
    run_collector,
)
from .errors import EXIT_INPUT
from .render.text import safe_text

COLLECT_HELP = """Receive the TailEvents that the tail worker POSTs, and append them to OUTPUT as
JSON Lines, ready for `tracetree build`.

Start it before the Workers it listens for, point the tail worker's collector URL at the
address it prints (`listening on http://127.0.0.1:8799/`), run your Workers under `wrangler
dev` or `workerd serve`, and stop it with Ctrl-C: it finishes the batches in hand and prints
the totals.

\b
Examples:
  tracetree collect -o events.jsonl                          # on http://127.0.0.1:8799/
  tracetree collect --listen 127.0.0.1:0 -o events.jsonl     # any free port; the URL is printed
  tracetree collect --listen 0.0.0.0:8799 -o events.jsonl    # reachable from other machines
  tracetree collect -o events.jsonl --append                 # add to an earlier capture
  tracetree collect -o - | grep '"outcome"'                  # events on stdout as they arrive
  tracetree build events.jsonl                               # afterwards: the trees

\b
Each POST to / is one batch: newline-delimited JSON, one object per line (blank lines are
skipped; the content type is not checked). A batch is checked whole before any of it is
written, and is answered:
  200  every line stored: appended in arrival order, flushed and fsynced to OUTPUT
  400  a line is not a JSON object (the body names the line): nothing of it written
  413  larger than --max-batch-bytes: nothing of it written
  503  stopping, or OUTPUT cannot be written any more (the collector then stops, exit 2)
Nothing answered 200 is lost. GET / shows the counts so far.

On Ctrl-C (or SIGTERM) it stops listening, finishes the uploads in hand (up to 10 s; a second
Ctrl-C drops those not yet received whole, unanswered), answers 503 to batches sent after it on
open connections, and prints the totals.

\b
Exit codes: 0 stopped by Ctrl-C or SIGTERM; 2 the address cannot be bound, OUTPUT cannot be
written, or bad usage.
"""


@main.command("collect", help=COLLECT_HELP,
              short_help="Receive TailEvents POSTed by the tail worker; append them to a file.")
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
              help="Address to listen on: HOST:PORT, [IPv6]:PORT, or a port alone (on 127.0.0.1). "
              "Port 0 takes any free port. Loopback unless you name another address.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Append the events here, one JSON object per line (`-`: stdout).")
@click.option("--append", is_flag=True, help="Keep what OUTPUT holds and add to it; without it, "
              "OUTPUT starts empty.")
@click.option("--max-batch-bytes", type=click.IntRange(min=1), default=DEFAULT_MAX_BATCH_BYTES,
              show_default=True, help="Refuse larger batches (413), before reading them whole.")
@click.option("--no-fsync", is_flag=True, help="Flush each batch to the operating system without "
              "waiting for the disk: survives a crash of collect, not of the machine.")
@click.option("-q", "--quiet", is_flag=True, help="No live count, notes on rejected batches or totals "
              "(the `listening on` line is still printed).")
def collect(
    listen: str, output: str, append: bool, max_batch_bytes: int, no_fsync: bool, quiet: bool
) -> None:
    try:
        host, port = parse_listen(listen)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen") from None
    options = CollectOptions(host=host, port=port, max_batch_bytes=max_batch_bytes,
                             fsync=not no_fsync, append=append)
    console = Console(stderr=True, highlight=False)
    # A live count only where someone watches it, and not over events printed to the same terminal.
    live = not quiet and sys.stderr.isatty() and not (output == "-" and sys.stdout.isatty())

    def note(message: str) -> None:
        if not quiet:
            console.print(safe_text(message), markup=False, highlight=False, soft_wrap=True)

    def ready(url: str) -> None:
        if not is_loopback(host):
            note(f"warning: listening on {host}, not loopback: anyone who can reach this machine "
                 "can post events")
        # Scripts and tests wait for exactly this line.
        click.echo(f"listening on {url}", err=True)

    _server_messages_to(note)
    with _live_count(console, enabled=live) as watch:
        try:
            totals = run_collector(output, options, ready=ready, on_note=note, on_collector=watch)
        except CollectError as error:
            _error(str(error))
            sys.exit(EXIT_INPUT)
        except KeyboardInterrupt:  # Ctrl-C before the collector was listening: nothing was taken
            sys.exit(130)
    if not quiet:
        name = "stdout" if output == "-" else output
        console.print(f"stopped: {describe(totals)} → {safe_text(name)}", markup=False, highlight=False,
                      soft_wrap=True)


class _OneLine(logging.Handler):
    """aiohttp logs what it refuses on its own (a malformed HTTP request) with a traceback: say it in
    one line instead, as a note."""

    def __init__(self, note: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self._note = note

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            if type(error).__name__ == "RequestPayloadError":
                return  # a body that would not decode: the collector's own rejection note said so
            detail = " ".join(str(error).split())[:200]
            message += f": {type(error).__name__}" + (f": {detail}" if detail else "")
        self._note(message)


def _server_messages_to(note: Callable[[str], None]) -> None:
    server_log = logging.getLogger("aiohttp")
    server_log.addHandler(_OneLine(note))
    server_log.propagate = False


@contextmanager
def _live_count(console: Console, *, enabled: bool) -> Iterator[Callable[[Collector], None]]:
    """A one-line count on the terminal, redrawn a few times a second from the collector's totals.
    Yields the callback that hands it the collector once listening."""
    watched: list[Collector] = []
    if not enabled:
        yield watched.append
        return

    def line() -> Text:
        if not watched:
            return Text("")
        return Text(f"received {describe(watched[0].totals)}", style="dim")

    with Live(get_renderable=line, console=console, refresh_per_second=4, transient=True):
        yield watched.append
