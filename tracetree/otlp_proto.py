"""OTLP/JSON requests as the official `opentelemetry-proto` messages: binary protobuf, and the
parse the tests check the JSON with. Needs the `otlp` extra; OTLP/JSON itself does not."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson

from .errors import TracetreeError


class ProtobufUnavailable(TracetreeError):
    """--protobuf needs the official opentelemetry-proto package, which is an optional extra."""

    def __init__(self) -> None:
        super().__init__(
            "protobuf output needs the opentelemetry-proto package: "
            "pip install 'tracetree[otlp]', or '.[otlp]' in a checkout (OTLP/JSON needs nothing more)"
        )


def _hex_to_base64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def protobuf_json(request: dict[str, Any]) -> dict[str, Any]:
    """The request in protobuf's canonical JSON mapping: OTLP/JSON writes trace and span ids as
    hex, where the canonical mapping of a `bytes` field is base64. A copy; ids rewritten."""
    converted = copy.copy(request)
    converted["resourceSpans"] = []
    for resource_spans in request.get("resourceSpans", []):
        scopes = []
        for scope_spans in resource_spans.get("scopeSpans", []):
            spans = []
            for span in scope_spans.get("spans", []):
                span = dict(span)
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = _hex_to_base64(span[key])
                if span.get("links"):
                    span["links"] = [
                        {**link, "traceId": _hex_to_base64(link["traceId"]),
                         "spanId": _hex_to_base64(link["spanId"])}
                        for link in span["links"]
                    ]
                spans.append(span)
            scopes.append({**scope_spans, "spans": spans})
        converted["resourceSpans"].append({**resource_spans, "scopeSpans": scopes})
    return converted


def _proto_classes() -> tuple[Any, Any]:
    try:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:
        raise ProtobufUnavailable() from None
    return json_format, ExportTraceServiceRequest


def protobuf_available() -> bool:
    try:
        _proto_classes()
    except ProtobufUnavailable:
        return False
    return True


def to_message(request: dict[str, Any]) -> Any:
    """The request as an `opentelemetry.proto` ExportTraceServiceRequest message; unknown
    fields are refused, so this also checks the JSON against the official schema."""
    json_format, message_class = _proto_classes()
    return json_format.ParseDict(protobuf_json(request), message_class())


def to_protobuf(request: dict[str, Any]) -> bytes:
    """Binary OTLP protobuf of a request (needs the `otlp` extra: opentelemetry-proto).

    The message is built by the generated class's constructor from the request's fields: the
    C implementation (upb) does that work, several times faster than json_format's walk."""
    _, message_class = _proto_classes()
    return message_class(**_proto_fields(request)).SerializeToString()


def _proto_fields(request: dict[str, Any]) -> dict[str, Any]:
    """The request's fields as the generated classes take them: snake_case names, ids as
    bytes, 64-bit integers as ints. Written out per message type, not a generic walk: this is
    the hot part of protobuf output, and attribute keys must never be renamed."""
    return {"resource_spans": [
        {
            "resource": {"attributes": _proto_attributes(group["resource"]["attributes"])},
            "scope_spans": [
                {"scope": scope["scope"], "spans": [_proto_span(span) for span in scope["spans"]]}
                for scope in group["scopeSpans"]
            ],
        }
        for group in request["resourceSpans"]
    ]}


def _proto_span(span: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "trace_id": bytes.fromhex(span["traceId"]),
        "span_id": bytes.fromhex(span["spanId"]),
        "name": span["name"],
        "kind": span["kind"],
        "start_time_unix_nano": int(span["startTimeUnixNano"]),
        "end_time_unix_nano": int(span["endTimeUnixNano"]),
        "attributes": _proto_attributes(span["attributes"]),
        "events": [
            {"time_unix_nano": int(event["timeUnixNano"]), "name": event["name"],
             "attributes": _proto_attributes(event["attributes"])}
            for event in span["events"]
        ],
        "status": span["status"],
    }
    if "parentSpanId" in span:
        fields["parent_span_id"] = bytes.fromhex(span["parentSpanId"])
    if "links" in span:
        fields["links"] = [
            {"trace_id": bytes.fromhex(link["traceId"]), "span_id": bytes.fromhex(link["spanId"]),
             "attributes": _proto_attributes(link["attributes"])}
            for link in span["links"]
        ]
    return fields


def _proto_attributes(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"key": pair["key"], "value": _proto_value(pair["value"])} for pair in pairs]


_SCALARS = {"stringValue": "string_value", "boolValue": "bool_value", "doubleValue": "double_value"}


def _proto_value(value: dict[str, Any]) -> dict[str, Any]:
    """An OTLP/JSON AnyValue as AnyValue fields (its depth is bounded by otlp.MAX_VALUE_DEPTH)."""
    for key, item in value.items():  # one key at most: AnyValue is a oneof
        scalar = _SCALARS.get(key)
        if scalar is not None:
            return {scalar: item}
        if key == "intValue":
            return {"int_value": int(item)}
        if key == "arrayValue":
            return {"array_value": {"values": [_proto_value(member) for member in item["values"]]}}
        return {"kvlist_value": {"values": _proto_attributes(item["values"])}}
    return {}


def parse_otlp_json(data: bytes | str) -> Any:
    """OTLP/JSON text (one request) as an official ExportTraceServiceRequest message."""
    return to_message(orjson.loads(data))
