"""Sending OTLP/HTTP: POST each request to a receiver (Jaeger, Tempo, an OTel Collector), with
retries as the OTLP specification asks (https://opentelemetry.io/docs/specs/otlp/#otlphttp-response).

Retried: 429, 502, 503 and 504 (honouring Retry-After), and failures to connect or to get an
answer. Anything else the receiver refuses (4xx, other 5xx) is not retried: sending the same
bytes again would be refused again.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

from .errors import TracetreeError

RETRYABLE = frozenset({429, 502, 503, 504})
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


class ExportError(TracetreeError):
    """The receiver refused the export, or could not be reached; one line, for the user."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, waiting `backoff` seconds before the second, twice as
    long before each next (capped at `max_wait`), or what Retry-After asks (capped likewise)."""

    attempts: int = 6
    backoff: float = 0.5
    max_wait: float = 30.0
    timeout: float = 10.0  # seconds for one request, connecting and answering

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        return min(self.backoff * 2 ** (attempt - 1), self.max_wait)


@dataclass(slots=True)
class SendReport:
    """What the receiver accepted."""

    requests: int = 0
    spans: int = 0
    retries: int = 0
    rejected_spans: int = 0  # partial success: spans the receiver said it dropped
    messages: list[str] = field(default_factory=list)  # its partial-success messages
    # An answer that is no OTLP response (an HTML page): the URL is likely not a receiver's.
    not_otlp: str | None = None


def check_endpoint(endpoint: str) -> str:
    """The endpoint, if it is an http(s) URL with a host; else ExportError."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExportError(f"--endpoint must be an http:// or https:// URL, e.g. "
                          f"http://127.0.0.1:4318/v1/traces; got {endpoint!r}")
    return endpoint


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _refusal_detail(body: bytes, content_type: str) -> str:
    """The receiver's reason, from its google.rpc.Status (JSON), or its text's first line."""
    text = ""
    if JSON in content_type:
        try:
            status = orjson.loads(body)
        except orjson.JSONDecodeError:
            status = None
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            text = status["message"]
    if not text and PROTOBUF not in content_type:
        text = body.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= 200 else first[:199] + "…"


def _partial_success(body: bytes, content_type: str) -> tuple[int, str]:
    """(rejected spans, message) from an ExportTraceServiceResponse, where it can be read."""
    if JSON not in content_type or not body.strip():
        return 0, ""
    try:
        response = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0, ""
    partial = response.get("partialSuccess") if isinstance(response, dict) else None
    if not isinstance(partial, dict):
        return 0, ""
    try:
        rejected = int(partial.get("rejectedSpans") or 0)
    except (TypeError, ValueError):
        rejected = 0
    message = partial.get("errorMessage")
    return rejected, message if isinstance(message, str) else ""


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError):
        inner = error.reason
        if isinstance(inner, BaseException):
            return _reason(inner)
        return str(inner)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.strerror[:1].isupper() else error.strerror
    return str(error) or type(error).__name__


def post(
    body: bytes,
    endpoint: str,
    *,
    content_type: str = JSON,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    compress: bool = False,
) -> tuple[bytes, str, int]:
    """POST one OTLP request; (response body, its content type, retries used), or ExportError.
    With `compress`, the body goes gzipped (Content-Encoding: gzip, which OTLP receivers take)."""
    check_endpoint(endpoint)
    sent_headers = {"Content-Type": content_type, "User-Agent": "tracetree"}
    if compress:
        body = gzip.compress(body, compresslevel=6)
        sent_headers["Content-Encoding"] = "gzip"
    sent_headers.update(headers or {})
    attempt = 0
    while True:
        attempt += 1
        request = urllib.request.Request(endpoint, data=body, headers=sent_headers, method="POST")
        retry_after: float | None = None
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout) as response:
                return response.read(), response.headers.get("Content-Type", ""), attempt - 1
        except urllib.error.HTTPError as error:
            with error:
                answer = error.read()
                kind = error.headers.get("Content-Type", "") if error.headers else ""
            status = f"HTTP {error.code}" + (f" {error.reason}" if error.reason else "")
            detail = _refusal_detail(answer, kind)
            if error.code not in RETRYABLE:
                hint = ""
                if error.code == 404 and not urlsplit(endpoint).path.rstrip("/").endswith("/v1/traces"):
                    hint = " (OTLP/HTTP receivers take traces at /v1/traces)"
                raise ExportError(f"{endpoint} refused the export: {status}"
                                  + (f": {detail}" if detail else "") + hint) from None
            retry_after = _retry_after(error.headers.get("Retry-After") if error.headers else None)
            failure = status + (f": {detail}" if detail else "")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            inner = error.reason if isinstance(error, urllib.error.URLError) else error
            if isinstance(inner, ssl.SSLError):
                # A certificate or TLS setup problem: the same on every try.
                why = getattr(inner, "verify_message", None) or getattr(inner, "reason", None) or str(inner)
                raise ExportError(f"cannot export to {endpoint}: TLS: {why}") from None
            failure = _reason(error)
        if attempt >= policy.attempts:
            tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
            raise ExportError(f"cannot export to {endpoint}: {failure} (after {tries}); "
                              "is the receiver running?")
        sleep(policy.wait(attempt, retry_after))


def send(
    requests: Iterable[tuple[bytes, int]],
    endpoint: str,
    *,
    content_type: str = JSON,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    compress: bool = False,
) -> SendReport:
    """POST each (encoded request, its span count) in turn; stop at the first that fails, saying
    how much had been accepted before it."""
    report = SendReport()
    for body, spans in requests:
        try:
            answer, kind, retries = post(body, endpoint, content_type=content_type, headers=headers,
                                         policy=policy, sleep=sleep, compress=compress)
        except ExportError as error:
            if report.requests:
                raise ExportError(f"{error} ({report.requests} earlier requests, {report.spans} spans, "
                                  "were accepted)") from None
            raise
        report.requests += 1
        report.spans += spans
        report.retries += retries
        rejected, message = _partial_success(answer, kind)
        report.rejected_spans += rejected
        if message:
            report.messages.append(message)
        if kind and JSON not in kind and PROTOBUF not in kind and report.not_otlp is None:
            report.not_otlp = kind.split(";")[0].strip()
    return report


def parse_header(text: str) -> tuple[str, str]:
    """`NAME=VALUE` or `NAME: VALUE` as a header pair, split at whichever comes first;
    ValueError when it is neither.

    >>> parse_header("Authorization: Basic dXNlcjpwdw==")
    ('Authorization', 'Basic dXNlcjpwdw==')
    """
    cuts = [index for index in (text.find("="), text.find(":")) if index > 0]
    if not cuts or "\n" in text or "\r" in text:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    cut = min(cuts)
    name, value = text[:cut].strip(), text[cut + 1:].strip()
    if not name or any(char.isspace() for char in name):
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def encode_all(requests: Iterable[tuple[dict[str, Any], int]], encode: Callable[[dict[str, Any]], bytes],
               ) -> Iterable[tuple[bytes, int]]:
    """Each (request, span count) encoded lazily: one request's bytes in memory at a time."""
    for request, spans in requests:
        yield encode(request), spans
