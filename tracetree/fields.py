"""Field names whose values differ from run to run: identifiers and clock readings.

The canonical document replaces them (document.py); sibling ordering ignores their values
(assemble.py), so that the same behaviour is laid out the same way.
"""

from __future__ import annotations

# Identifier fields tracetree knows, and the family each is labelled in. Values of one family
# share labels: a Durable Object's `durableObjectId` and the `objectId` attribute of the span that
# called it get the same label. "span" and "caller" resolve to the span the id names.
ID_FAMILIES: dict[str, str] = {
    "invocationId": "invocation",
    "traceId": "trace",
    "spanId": "span",
    "jsrpc.caller_span_id": "caller",
    "durableObjectId": "do",
    "objectId": "do",
    "cloudflare.ray_id": "ray",
    "scriptVersion.id": "version",
    "preview.id": "preview",
}

# Clock-derived fields: their values differ run to run, and so do ties between them, so they
# cannot be labelled (equal readings would give equal labels only when the clock happened to tie).
CLOCK_FIELDS: frozenset[str] = frozenset({
    "timestamp",
    "cpuTime",
    "wallTime",
    "scheduledTime",
    "cloudflare.durable_object.alarm.scheduled_time",
})

VOLATILE_FIELDS: frozenset[str] = frozenset(ID_FAMILIES) | CLOCK_FIELDS
