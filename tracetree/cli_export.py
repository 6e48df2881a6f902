"""`tracetree export`: trees out to other tools. `export otlp` writes or sends OpenTelemetry traces."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from .build import build_file
from .cli import _error, _progress, main
from .dispatch import DEFAULT_TABLE, load_dispatch_table
from .errors import EXIT_INPUT, EXIT_OK, TracetreeError
from .otlp import DEFAULT_BATCH_SPANS, dumps_json, iter_requests
from .otlp_http import JSON, PROTOBUF, RetryPolicy, check_endpoint, encode_all, parse_header, send
from .otlp_proto import ProtobufUnavailable, protobuf_available, to_protobuf
from .render.text import safe_text
from .resolve import ResolveOptions


@main.group("export", short_help="Write trees out for other tools (OpenTelemetry).")
def export() -> None:
    """Write rebuilt traces out for other tools.

    \b
    Examples:
      tracetree export otlp events.jsonl -o traces.otlp.json
      tracetree export otlp events.jsonl --endpoint http://127.0.0.1:4318/v1/traces
    """


OTLP_HELP = """Export every trace in INPUTS as OpenTelemetry traces: to a file (OTLP/JSON, or binary
OTLP protobuf with --protobuf), or pushed to a receiver over OTLP/HTTP with --endpoint (Jaeger,
Grafana Tempo, an OpenTelemetry Collector).

INPUTS are read as `build` reads them: JSON Lines of workerd TailEvents, `.gz`, one JSON array
of events, or `-` for stdin; several inputs merge, in the order given.

\b
Examples:
  tracetree export otlp events.jsonl -o traces.otlp.json           # OTLP/JSON
  tracetree export otlp events.jsonl --protobuf -o traces.otlp.pb  # protobuf (pip install 'tracetree[otlp]')
  tracetree export otlp events.jsonl --endpoint http://127.0.0.1:4318/v1/traces
  tracetree export otlp events.jsonl --endpoint https://otlp.example.com/v1/traces \\
      --header 'Authorization=Bearer TOKEN'

Each invocation becomes a SERVER span (its top-level span); its spans are children (CLIENT
for those that dispatched another invocation, else INTERNAL); each callee hangs under the
span that dispatched it, as tracetree resolved the link. Logs and exceptions are span events
(exceptions as exception.type / .message / .stacktrace); outcomes are statuses. Span ids are
derived from (trace, invocation, span), so they are unique even where the input's collide;
tracetree.span_id, tracetree.invocation_id, tracetree.resolution and tracetree.candidates keep
the original ids and how each link was decided. tracetree.timing says where times come from:
measured, inferred (an epoch stamp replaced by the latest earlier one) or ordinal (the
trace's clock is frozen: event order, 1 µs a step).

A file holds one ExportTraceServiceRequest per line (the OTel Collector's otlpjsonfile form;
one line unless there are more than --batch-size spans); a protobuf file holds one request.
--endpoint retries 429, 502, 503, 504 and connection failures with exponential backoff
(honouring Retry-After), and stops with one error line when the receiver refuses the data or
cannot be reached.

\b
Exit codes: 0 exported; 2 bad input, or the receiver refused or could not be reached.
"""


@export.command("otlp", help=OTLP_HELP, short_help="OpenTelemetry traces: OTLP/JSON, protobuf, or OTLP/HTTP.")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              default=None, help="Write the traces here (`-`: stdout, the default without --endpoint).")
@click.option("--protobuf", is_flag=True, help="Binary OTLP protobuf instead of OTLP/JSON, for the file "
              "and for --endpoint (needs opentelemetry-proto: pip install 'tracetree[otlp]').")
@click.option("--endpoint", metavar="URL", default=None,
              help="POST the traces to this OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces.")
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE",
              help="--endpoint: send this HTTP header too (repeatable), e.g. an Authorization token.")
@click.option("--gzip", "compress", is_flag=True,
              help="--endpoint: gzip each request (Content-Encoding: gzip): several times fewer bytes.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="--endpoint: seconds to wait for the receiver, per request.")
@click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True,
              help="--endpoint: retries of a request after a retryable failure.")
@click.option("--retry-backoff", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="--endpoint: seconds before the first retry, doubled for each next (at most 30).")
@click.option("--batch-size", type=click.IntRange(min=0), default=DEFAULT_BATCH_SPANS, show_default=True,
              help="Spans per request (whole traces; a larger trace goes alone); 0: one request.")
@click.option("--partial", is_flag=True, help="The capture may lack invocations: as `build --partial`.")
@click.option("--naive", is_flag=True, help="Link by the upstream test helper's rule, as `build --naive`.")
@click.option("--lenient", is_flag=True,
              help="Skip malformed lines instead of stopping, as `build --lenient`.")
@click.option("--dispatch-table", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file extending which caller spans dispatch which triggers, as in `build`.")
@click.option("-q", "--quiet", is_flag=True, help="No summary or progress on stderr.")
def otlp_command(
    inputs: tuple[str, ...],
    output: str | None,
    protobuf: bool,
    endpoint: str | None,
    headers: tuple[str, ...],
    compress: bool,
    timeout: float,
    retries: int,
    retry_backoff: float,
    batch_size: int,
    partial: bool,
    naive: bool,
    lenient: bool,
    dispatch_table: str | None,
    quiet: bool,
) -> None:
    gc.disable()  # a one-shot process, as in build: the collector would only rescan the forest
    # Options are checked before any input is read, as in build.
    if output is None and endpoint is None:
        output = "-"
    if protobuf and output == "-" and sys.stdout.isatty():
        raise click.UsageError("binary protobuf is not for a terminal: write it with -o FILE.")
    if output not in (None, "-") and not Path(output).resolve().parent.is_dir():
        raise click.UsageError(f"-o: no folder {str(Path(output).parent)!r} to write {output!r} in.")
    try:
        sent_headers = dict(parse_header(header) for header in headers)
    except ValueError as error:
        raise click.UsageError(f"--header: {error}") from None
    try:
        if protobuf and not protobuf_available():
            raise ProtobufUnavailable()
        if endpoint is not None:
            check_endpoint(endpoint)
        table = load_dispatch_table(dispatch_table) if dispatch_table else DEFAULT_TABLE
        options = ResolveOptions(naive=naive, dispatch=table, partial=partial)
        with _progress(list(inputs), not quiet) as progress:
            # Events kept as text, parsed a trace at a time when written: half the memory.
            forest = build_file(list(inputs), options=options, lenient=lenient, progress=progress,
                                raw_events=True)
        encode = to_protobuf if protobuf else dumps_json
        notes: list[str] = []
        warnings: list[str] = []  # shown even with -q: data did not arrive as sent
        if output is not None:
            spans, requests = _write(iter_requests(forest, batch_spans=batch_size), encode, output, protobuf)
            where = "stdout" if output == "-" else output
            notes.append(f"wrote {spans} spans of {len(forest.traces)} traces to {where}"
                         + (f" ({requests} requests)" if requests > 1 else ""))
        if endpoint is not None:
            policy = RetryPolicy(attempts=retries + 1, backoff=retry_backoff, timeout=timeout)
            report = send(
                encode_all(iter_requests(forest, batch_spans=batch_size), encode), endpoint,
                content_type=PROTOBUF if protobuf else JSON, headers=sent_headers, policy=policy,
                compress=compress,
            )
            note = f"sent {report.spans} spans of {len(forest.traces)} traces to {endpoint}"
            note += f" in {report.requests} request{'s' if report.requests != 1 else ''}"
            if report.retries:
                note += f" ({report.retries} retr{'y' if report.retries == 1 else 'ies'})"
            notes.append(note)
            if report.not_otlp:
                warnings.append(f"{endpoint} answered with {report.not_otlp}, not an OTLP response: "
                                "is it an OTLP/HTTP traces endpoint (port 4318, /v1/traces)?")
            if report.rejected_spans:
                reason = "; ".join(report.messages)
                warnings.append(f"the receiver rejected {report.rejected_spans} spans"
                                + (f": {reason}" if reason else ""))
    except TracetreeError as error:
        _error(str(error))
        sys.exit(EXIT_INPUT)
    except BrokenPipeError:
        sys.stderr.close()  # `| head`: the reader left; nothing more to say
        sys.exit(EXIT_OK)

    if not quiet:
        from .render.summary import render_summary

        errors = Console(stderr=True, highlight=False)
        errors.print(render_summary(forest), markup=False, highlight=False, soft_wrap=True)
        for note in notes:
            errors.print(note, markup=False, highlight=False, soft_wrap=True)
    for warning in warnings:
        click.echo(f"warning: {safe_text(warning)}", err=True)  # the receiver's words: made safe


def _write(
    requests: Iterator[tuple[dict[str, Any], int]], encode: Any, output: str, protobuf: bool
) -> tuple[int, int]:
    """Write each request as it is made: JSON one per line; protobuf back to back, which a
    protobuf parser reads as one request holding them all (repeated fields concatenate)."""
    try:
        handle = sys.stdout.buffer if output == "-" else open(output, "wb")  # noqa: SIM115
    except OSError as error:
        raise TracetreeError(f"cannot write {output}: {error.strerror or error}") from None
    spans = count = 0
    try:
        for request, size in requests:
            handle.write(encode(request))
            if not protobuf:
                handle.write(b"\n")
            spans += size
            count += 1
        if not count:  # no traces: still a valid (empty) request, not an empty file
            handle.write(encode({"resourceSpans": []}) + (b"" if protobuf else b"\n"))
    finally:
        if output == "-":
            handle.flush()
        else:
            handle.close()
    return spans, count
