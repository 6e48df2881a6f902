"""The `links` format: one JSON line per invocation saying how it was linked."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from ..build import Forest
from ..links import Link
from ..model import Trace


def link_record(link: Link) -> dict[str, object]:
    return {
        "invocationId": link.invocation_id,
        "traceId": link.trace_id,
        "parentInvocationId": link.parent_invocation_id,
        "parentSpanId": link.parent_span_id,
        "resolution": link.resolution.value,
        "candidates": link.owners,
        "reason": link.reason,
    }


def render_links(forest: Forest) -> Iterator[bytes]:
    """JSON Lines, one per invocation, traces and invocations in input order."""
    for trace in forest.traces:
        yield trace_links(trace, forest.links)


def trace_links(trace: Trace, links: dict[str, Link]) -> bytes:
    """The JSON Lines of one trace's invocations, in input order."""
    return b"".join(orjson.dumps(link_record(links[key])) + b"\n" for key in trace.invocations)
