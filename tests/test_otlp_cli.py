"""`tracetree export otlp`: files, stdin, and pushing to a local OTLP/HTTP receiver."""

from __future__ import annotations

import gzip
import socket
import ssl
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import runner

from tracetree.cli import main
from tracetree.otlp_http import ExportError, RetryPolicy, post

trace_service_pb2 = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="opentelemetry-proto is in the test extra: pip install -e '.[test]'",
)
from tracetree.otlp_proto import parse_otlp_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = str(ROOT / "fixtures" / "tail-worker-test.events.jsonl")
SPANS = 116  # spans (invocations' top-level spans included) in the fixture
TRACES = 27


@pytest.fixture(autouse=True)
def _no_proxy_for_the_local_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours http_proxy; a proxy set on the machine must not carry the test's requests
    to 127.0.0.1 away (urllib reads no_proxy at each request)."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def export(*args: str, input: bytes | None = None) -> Any:
    return runner().invoke(main, ["export", "otlp", *args], input=input, prog_name="tracetree")


def span_count(message: Any) -> int:
    return sum(len(scope.spans) for group in message.resource_spans for scope in group.scope_spans)


# -- files ----------------------------------------------------------------------------------------


def test_json_file_parses_as_one_request(tmp_path: Path) -> None:
    out = tmp_path / "traces.otlp.json"
    result = export(FIXTURE, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote {SPANS} spans of {TRACES} traces to {out}" in result.stderr
    assert "27 traces, 50 invocations" in result.stderr
    [line] = out.read_bytes().splitlines()
    assert span_count(parse_otlp_json(line)) == SPANS


def test_the_file_holds_what_the_library_makes_of_the_stream(tmp_path: Path) -> None:
    """The command keeps events as text until each trace is written (less memory); the
    library, given a forest of parsed events, makes the very same request."""
    from tracetree.build import build_file
    from tracetree.otlp import dumps_json, forest_to_otlp

    out = tmp_path / "traces.otlp.json"
    assert export(FIXTURE, "-o", str(out)).exit_code == 0
    assert out.read_bytes() == dumps_json(forest_to_otlp(build_file(FIXTURE))) + b"\n"


def test_protobuf_file_parses_from_string(tmp_path: Path) -> None:
    out = tmp_path / "traces.otlp.pb"
    result = export(FIXTURE, "--protobuf", "-o", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    message = trace_service_pb2.ExportTraceServiceRequest()
    message.ParseFromString(out.read_bytes())
    assert span_count(message) == SPANS


def test_batched_protobuf_file_is_still_one_request(tmp_path: Path) -> None:
    """Batches written back to back read as one request holding every span (protobuf merges)."""
    out = tmp_path / "traces.otlp.pb"
    result = export(FIXTURE, "--protobuf", "-o", str(out), "--batch-size", "10", "-q")
    assert result.exit_code == 0, result.stderr
    message = trace_service_pb2.ExportTraceServiceRequest()
    message.ParseFromString(out.read_bytes())
    assert span_count(message) == SPANS


def test_batched_json_file_is_one_request_per_line(tmp_path: Path) -> None:
    out = tmp_path / "traces.otlp.json"
    result = export(FIXTURE, "-o", str(out), "--batch-size", "10", "-q")
    assert result.exit_code == 0, result.stderr
    lines = out.read_bytes().splitlines()
    assert len(lines) > 3
    assert sum(span_count(parse_otlp_json(line)) for line in lines) == SPANS


def test_stdin_to_stdout() -> None:
    """`-` reads stdin; without -o or --endpoint the JSON goes to stdout."""
    result = export("-", "-q", input=Path(FIXTURE).read_bytes())
    assert result.exit_code == 0, result.stderr
    assert span_count(parse_otlp_json(result.stdout_bytes)) == SPANS


def test_several_inputs_merge_as_in_build(tmp_path: Path) -> None:
    """Inputs split anywhere give the export of the whole, as `build` merges them."""
    lines = Path(FIXTURE).read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"".join(lines[:100]))
    second.write_bytes(b"".join(lines[100:]))
    whole = export(FIXTURE, "-q")
    merged = export(str(first), str(second), "-q")
    assert merged.exit_code == 0, merged.stderr
    assert merged.stdout_bytes == whole.stdout_bytes


def test_empty_input_is_an_empty_request() -> None:
    result = export("-", "-q", input=b"")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout_bytes) == {"resourceSpans": []}


def test_bad_input_is_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(Path(FIXTURE).read_bytes().splitlines()[0] + b"\n{not json\n")
    result = export(str(bad))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {bad}:2:2: malformed JSON")
    assert len(result.stderr.splitlines()) == 1


def test_output_in_a_missing_folder_is_refused_before_reading(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "traces.otlp.json"
    result = export(FIXTURE, "-o", str(target))
    assert result.exit_code == 2
    assert f"-o: no folder '{target.parent}' to write" in result.stderr
    assert "Traceback" not in result.stderr


def test_lenient_skips_bad_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(Path(FIXTURE).read_bytes() + b"{not json\n")
    result = export(str(bad), "--lenient")
    assert result.exit_code == 0, result.stderr
    assert "1 line skipped" in result.stderr
    assert span_count(parse_otlp_json(result.stdout_bytes)) == SPANS


def test_protobuf_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-proto, --protobuf stops before reading input, naming the extra."""
    monkeypatch.setitem(sys.modules, "opentelemetry.proto.collector.trace.v1.trace_service_pb2", None)
    result = export(FIXTURE, "--protobuf", "-o", "unused.pb")
    assert result.exit_code == 2
    assert result.stderr == ("error: protobuf output needs the opentelemetry-proto package: "
                             "pip install 'tracetree[otlp]', or '.[otlp]' in a checkout "
                             "(OTLP/JSON needs nothing more)\n")


# -- a local OTLP/HTTP receiver -------------------------------------------------------------------


@dataclass
class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 that plays scripted answers, then 200s, and keeps
    what it was sent."""

    url: str
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            state.received.append((self.path, dict(self.headers.items()), body))
            status, headers, answer = state.answers.pop(0) if state.answers else (200, {}, b"{}")
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_endpoint_receives_the_traces_as_otlp_json(receiver: Receiver) -> None:
    result = export(FIXTURE, "--endpoint", receiver.url, "--header", "Authorization=Bearer abc")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # --endpoint alone writes no file and nothing to stdout
    [(path, headers, body)] = receiver.received
    assert path == "/v1/traces"
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer abc"
    assert span_count(parse_otlp_json(body)) == SPANS
    assert f"sent {SPANS} spans of {TRACES} traces to {receiver.url} in 1 request" in result.stderr


def test_endpoint_with_protobuf(receiver: Receiver) -> None:
    result = export(FIXTURE, "--endpoint", receiver.url, "--protobuf", "-q")
    assert result.exit_code == 0, result.stderr
    [(_, headers, body)] = receiver.received
    assert headers["Content-Type"] == "application/x-protobuf"
    message = trace_service_pb2.ExportTraceServiceRequest()
    message.ParseFromString(body)
    assert span_count(message) == SPANS


def test_endpoint_and_file_together(receiver: Receiver, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    result = export(FIXTURE, "--endpoint", receiver.url, "-o", str(out), "--batch-size", "40", "-q")
    assert result.exit_code == 0, result.stderr
    assert len(receiver.received) == len(out.read_bytes().splitlines()) > 1
    assert [body for _, _, body in receiver.received] == [line for line in out.read_bytes().splitlines()]


def test_gzip_sends_compressed_requests(receiver: Receiver) -> None:
    result = export(FIXTURE, "--endpoint", receiver.url, "--gzip", "-q")
    assert result.exit_code == 0, result.stderr
    [(_, headers, body)] = receiver.received
    assert headers["Content-Encoding"] == "gzip"
    assert int(headers["Content-Length"]) < len(body) / 4  # what went over the wire
    assert span_count(parse_otlp_json(body)) == SPANS


def test_503_is_retried_then_succeeds(receiver: Receiver) -> None:
    receiver.answers.append((503, {"Retry-After": "0"}, b'{"code": 14, "message": "busy"}'))
    result = export(FIXTURE, "--endpoint", receiver.url, "--retry-backoff", "0")
    assert result.exit_code == 0, result.stderr
    assert len(receiver.received) == 2
    assert receiver.received[0][2] == receiver.received[1][2]
    assert "in 1 request (1 retry)" in result.stderr


def test_400_refusal_is_one_error_line_without_retrying(receiver: Receiver) -> None:
    receiver.answers.append((400, {}, b'{"code": 3, "message": "unknown field \\"bogus\\"\\nmore"}'))
    result = export(FIXTURE, "--endpoint", receiver.url, "--retry-backoff", "0")
    assert result.exit_code == 2
    assert result.stderr == (f"error: {receiver.url} refused the export: HTTP 400 Bad Request: "
                             'unknown field "bogus"\n')
    assert len(receiver.received) == 1


def test_receiver_down_is_a_clear_error_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/traces"
    result = export(FIXTURE, "--endpoint", url, "--retries", "2", "--retry-backoff", "0")
    assert result.exit_code == 2
    assert result.stderr == (f"error: cannot export to {url}: connection refused (after 3 attempts); "
                             "is the receiver running?\n")


def test_partial_success_is_reported(receiver: Receiver) -> None:
    receiver.answers.append(
        (200, {}, b'{"partialSuccess": {"rejectedSpans": "3", "errorMessage": "too old\\u001b[2J"}}'))
    result = export(FIXTURE, "--endpoint", receiver.url, "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "warning: the receiver rejected 3 spans: too old\\x1b[2J\n"  # even with -q


def test_a_404_off_the_otlp_path_gets_a_hint(receiver: Receiver) -> None:
    receiver.answers.append((404, {"Content-Type": "text/plain"}, b"404 page not found"))
    url = receiver.url.removesuffix("/v1/traces")
    result = export(FIXTURE, "--endpoint", url)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {url} refused the export: HTTP 404 Not Found: 404 page not found "
                             "(OTLP/HTTP receivers take traces at /v1/traces)\n")


def test_a_web_page_answering_is_a_warning(receiver: Receiver) -> None:
    """A 200 with an HTML page (a viewer's UI port, not its receiver) is not taken as success quietly."""
    receiver.answers.append((200, {"Content-Type": "text/html; charset=utf-8"}, b"<html></html>"))
    result = export(FIXTURE, "--endpoint", receiver.url)
    assert result.exit_code == 0, result.stderr
    assert (f"warning: {receiver.url} answered with text/html, not an OTLP response: is it an "
            "OTLP/HTTP traces endpoint (port 4318, /v1/traces)?") in result.stderr


def test_a_later_batch_failing_says_what_was_accepted(receiver: Receiver) -> None:
    receiver.answers += [(200, {}, b"{}"), (413, {}, b"too large")]
    result = export(FIXTURE, "--endpoint", receiver.url, "--batch-size", "40")
    assert result.exit_code == 2
    assert "refused the export: HTTP 413 Request Entity Too Large: too large (1 earlier requests" \
        in result.stderr


@pytest.mark.parametrize("bad", ["ftp://host/v1/traces", "127.0.0.1:4318", "http:///v1/traces"])
def test_endpoint_must_be_an_http_url(bad: str) -> None:
    result = export(FIXTURE, "--endpoint", bad)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --endpoint must be an http:// or https:// URL")


def test_header_must_be_name_value() -> None:
    result = export(FIXTURE, "--endpoint", "http://127.0.0.1:1/v1/traces", "--header", "novalue")
    assert result.exit_code == 2
    assert "--header: expected NAME=VALUE" in result.stderr


# -- the retry policy, with the waits recorded instead of slept -----------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_after_is_honoured(receiver: Receiver, status: int) -> None:
    receiver.answers.append((status, {"Retry-After": "7"}, b""))
    waits: list[float] = []
    post(b"{}", receiver.url, sleep=waits.append)
    assert waits == [7.0]


def test_backoff_doubles_without_retry_after(receiver: Receiver) -> None:
    receiver.answers += [(503, {}, b""), (503, {}, b""), (503, {}, b"")]
    waits: list[float] = []
    post(b"{}", receiver.url, policy=RetryPolicy(backoff=0.25), sleep=waits.append)
    assert waits == [0.25, 0.5, 1.0]
    assert len(receiver.received) == 4


def test_retry_after_is_capped(receiver: Receiver) -> None:
    receiver.answers.append((429, {"Retry-After": "86400"}, b""))
    waits: list[float] = []
    post(b"{}", receiver.url, policy=RetryPolicy(max_wait=5), sleep=waits.append)
    assert waits == [5]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500, 501])
def test_other_errors_are_not_retried(receiver: Receiver, status: int) -> None:
    receiver.answers.append((status, {}, b""))
    waits: list[float] = []
    with pytest.raises(ExportError, match=f"refused the export: HTTP {status}"):
        post(b"{}", receiver.url, sleep=waits.append)
    assert waits == [] and len(receiver.received) == 1


def test_retries_give_up_after_the_attempts(receiver: Receiver) -> None:
    receiver.answers += [(503, {}, b'{"message": "overloaded"}')] * 3
    waits: list[float] = []
    with pytest.raises(ExportError) as caught:
        post(b"{}", receiver.url, policy=RetryPolicy(attempts=3, backoff=0), sleep=waits.append)
    assert str(caught.value) == (f"cannot export to {receiver.url}: HTTP 503 Service Unavailable: "
                                 "overloaded (after 3 attempts); is the receiver running?")
    assert len(receiver.received) == 3


def test_a_tls_failure_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A certificate problem is the same on every try: reported at once, with its reason."""
    calls: list[str] = []

    def refuse(request: urllib.request.Request, timeout: float) -> None:
        calls.append(request.full_url)
        raise urllib.error.URLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    waits: list[float] = []
    with pytest.raises(ExportError) as caught:
        post(b"{}", "https://collector.invalid/v1/traces", sleep=waits.append)
    assert str(caught.value).startswith("cannot export to https://collector.invalid/v1/traces: TLS: ")
    assert "certificate verify failed" in str(caught.value)
    assert len(calls) == 1 and waits == []
