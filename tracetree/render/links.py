"""The `links` format: one JSON line per invocation saying how it was linked."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from ..build import Forest
from ..links import Link


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
        for invocation_id in trace.invocations:
            yield orjson.dumps(link_record(forest.links[invocation_id])) + b"\n"
