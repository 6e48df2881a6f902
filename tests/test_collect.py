"""`tracetree collect`: batches POSTed over HTTP land in the file whole, in order, exactly once."""

from __future__ import annotations

import gzip
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from tracetree.collect import (
    BatchError,
    CollectError,
    CollectOptions,
    Collector,
    Totals,
    collecting,
    parse_batch,
    parse_listen,
)

LISTENING = re.compile(r"^listening on (http://127\.0\.0\.1:(\d+)/)$")
# A safety net so a hung collector fails the test instead of the run; never a speed assertion.
PATIENCE = 120


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until `condition` holds; fail (never time anything) if it has not after PATIENCE seconds."""
    for _ in range(PATIENCE * 100):
        if condition():
            return
        threading.Event().wait(0.01)
    pytest.fail("gave up waiting")


def post(url: str, body: bytes | Iterator[bytes], headers: dict[str, str] | None = None,
         path: str = "/", method: str = "POST") -> tuple[int, bytes]:
    """One request on a fresh connection: (status, response body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=PATIENCE)
    try:
        connection.request(method, path, body=body, headers=headers or {},
                           encode_chunked=not isinstance(body, bytes))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def lines(*objects: object) -> bytes:
    return b"".join(orjson.dumps(value) + b"\n" for value in objects)


def event(poster: int, batch: int, index: int) -> dict[str, object]:
    # Sizes vary (some lines cross typical buffer sizes) so that a torn write would show.
    pad = "x" * ((poster * 7919 + batch * 104729 + index * 31) % 9000)
    return {"invocationId": f"p{poster}", "sequence": batch * 1000 + index, "event": {"pad": pad}}


# -- the library ---------------------------------------------------------------------------------


def test_parse_batch_keeps_each_object_line_as_sent() -> None:
    """Blank lines and CRLF endings are dropped; the objects' bytes are kept exactly."""
    body = b'{"a": 1,  "b" : [1, 2]}\r\n\n   \n{"c":"\xc3\xa9"}'
    assert parse_batch(body) == (b'{"a": 1,  "b" : [1, 2]}\n{"c":"\xc3\xa9"}\n', 2)
    assert parse_batch(b"\n\n") == (b"", 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1}\n[1, 2]\n', "line 2: not a JSON object (a JSON array)"),
        (b'{"a": 1}\n\n"text"\n', "line 3: not a JSON object (a JSON string)"),
        (b"null\n", "line 1: not a JSON object (a JSON null)"),
        (b'{"a": 1}\n{"b": 2', "line 2: not JSON (unexpected end of data, column 8)"),
        (b'{"a": "\xff"}\n', "line 1: not JSON (str is not valid UTF-8: surrogates not allowed, column 1)"),
        (b'{"a": 1} {"b": 2}\n', "line 1: not JSON (unexpected content after document, column 10)"),
    ],
)
def test_parse_batch_names_the_first_bad_line(body: bytes, message: str) -> None:
    """A batch with a line that is not one JSON object is refused, naming that line."""
    with pytest.raises(BatchError) as caught:
        parse_batch(body)
    assert str(caught.value) == message


def test_parse_listen() -> None:
    """--listen takes HOST:PORT, [IPv6]:PORT or a port alone (loopback), and refuses `:PORT`."""
    assert parse_listen("127.0.0.1:8799") == ("127.0.0.1", 8799)
    assert parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen("localhost:9000") == ("localhost", 9000)
    assert parse_listen("9000") == ("127.0.0.1", 9000)
    for bad in (":8799", "::1:80", "host:http", "host:70000", "host:"):
        with pytest.raises(ValueError):
            parse_listen(bad)


# -- in process ----------------------------------------------------------------------------------


def test_batches_are_appended_and_answered_with_their_count(tmp_path: Path) -> None:
    """Each accepted batch is in the file when the 200 arrives, after the batches before it."""
    out = tmp_path / "events.jsonl"
    with collecting(str(out)) as collector:
        assert collector.url is not None and collector.url.startswith("http://127.0.0.1:")
        assert post(collector.url, lines({"n": 1}, {"n": 2})) == (200, b'{"accepted": 2}')
        assert out.read_bytes() == lines({"n": 1}, {"n": 2})
        # Lenient on content type; an empty batch is accepted and writes nothing.
        assert post(collector.url, b'{"n":3}', {"Content-Type": "text/plain"}) == (200, b'{"accepted": 1}')
        assert post(collector.url, b"") == (200, b'{"accepted": 0}')
        # gzip-encoded and chunked bodies are read as the plain bytes they carry.
        gz = gzip.compress(lines({"n": 4}))
        assert post(collector.url, gz, {"Content-Encoding": "gzip"}) == (200, b'{"accepted": 1}')
        assert post(collector.url, iter([b'{"n"', b":5}\n{", b'"n":6}\n'])) == (200, b'{"accepted": 2}')
    assert out.read_bytes() == lines(*({"n": n} for n in range(1, 7)))
    assert collector.totals == Totals(batches=5, events=6, rejected=0, bytes=len(out.read_bytes()))


def test_a_capture_posted_in_batches_builds_as_the_original(tmp_path: Path) -> None:
    """The shipped capture, posted in batches of 7 lines, comes out line for line and builds the
    same trees."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "tail-worker-test.events.jsonl"
    original = [line for line in fixture.read_bytes().split(b"\n") if line.strip()]
    out = tmp_path / "events.jsonl"
    with collecting(str(out)) as collector:
        for start in range(0, len(original), 7):
            assert post(collector.url or "", b"\n".join(original[start:start + 7]))[0] == 200
    assert out.read_bytes() == b"".join(line.strip() + b"\n" for line in original)
    documents = []
    for source in (fixture, out):
        command = ["build", str(source), "--format", "json", "-q"]
        result = subprocess.run([sys.executable, "-m", "tracetree", *command],
                                capture_output=True, timeout=PATIENCE, check=True)
        documents.append(orjson.loads(result.stdout))
    assert documents[0]["traces"] == documents[1]["traces"]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b'{"ok": 1}\n[1]\n{"ok": 2}\n', id="array-line"),
        pytest.param(b'{"ok": 1}\n{"cut": "in the mid', id="cut-last-line"),
        pytest.param(b'{"ok": 1}\n{"bad": "\xff\xfe"}\n', id="bad-utf8"),
        pytest.param(b'{"ok": 1}\nnot json\n', id="text"),
    ],
)
def test_a_malformed_batch_is_refused_whole(tmp_path: Path, bad: bytes) -> None:
    """400 naming the line, and nothing of the batch is written, not even its good lines."""
    out = tmp_path / "events.jsonl"
    rejected: list[str] = []
    with collecting(str(out), on_note=rejected.append) as collector:
        assert post(collector.url or "", lines({"before": 1}))[0] == 200
        status, body = post(collector.url or "", bad)
        assert post(collector.url or "", lines({"after": 1}))[0] == 200
    assert status == 400
    assert body.startswith(b"line 2: not ")
    assert out.read_bytes() == lines({"before": 1}, {"after": 1})
    assert collector.totals.rejected == 1
    assert collector.totals.events == 2
    assert len(rejected) == 1
    assert rejected[0].startswith("rejected a batch from 127.0.0.1 (400): line 2: not ")


def test_an_oversized_batch_is_refused_whole(tmp_path: Path) -> None:
    """413 above --max-batch-bytes, whether its size is declared or it arrives chunked; nothing written."""
    out = tmp_path / "events.jsonl"
    big = lines(*({"i": i, "pad": "y" * 100} for i in range(50)))  # about 6 KB
    with collecting(str(out), CollectOptions(port=0, max_batch_bytes=4096)) as collector:
        url = collector.url or ""
        declared = post(url, big)
        chunked = post(url, (big[i:i + 1000] for i in range(0, len(big), 1000)))
        assert post(url, lines({"small": 1})) == (200, b'{"accepted": 1}')
        exactly = b'{"pad": "' + b"z" * (4096 - 12) + b'"}\n'
        assert len(exactly) == 4096
        assert post(url, exactly) == (200, b'{"accepted": 1}')
    for status, body in (declared, chunked):
        assert status == 413
        assert body == b"batch larger than 4,096 bytes: send smaller batches, or raise --max-batch-bytes\n"
    assert out.read_bytes() == lines({"small": 1}) + exactly
    assert collector.totals.rejected == 2


def test_a_body_that_does_not_arrive_whole_is_not_stored(tmp_path: Path) -> None:
    """An upload cut off mid-body, or whose gzip does not decode, writes nothing and stops nothing."""
    out = tmp_path / "events.jsonl"
    rejected: list[str] = []
    with collecting(str(out), on_note=rejected.append) as collector:
        url = collector.url or ""
        with half_sent(url, lines({"cut": 1}, {"cut": 2})):
            wait_until(lambda: collector.in_hand == 1)
        wait_until(lambda: collector.in_hand == 0)
        status, body = post(url, b"not gzip", {"Content-Encoding": "gzip"})
        assert post(url, lines({"after": 1}))[0] == 200
    assert (status, body) == (400, b"the body did not arrive whole (Can not decode content-encoding: gzip)\n")
    assert out.read_bytes() == lines({"after": 1})
    assert rejected == [
        "rejected a batch from 127.0.0.1 (400): the body did not arrive whole (Connection lost)",
        "rejected a batch from 127.0.0.1 (400): the body did not arrive whole (Can not decode "
        "content-encoding: gzip)",
    ]


def test_other_paths_and_methods(tmp_path: Path) -> None:
    """404 off `/`, 405 for methods other than POST and GET; GET / shows the counts."""
    with collecting(str(tmp_path / "events.jsonl")) as collector:
        url = collector.url or ""
        assert post(url, lines({"a": 1}), path="/events")[0] == 404
        assert post(url, lines({"a": 1}), method="PUT")[0] == 405
        post(url, lines({"a": 1}, {"b": 2}))
        status, body = post(url, b"", method="GET")
    assert status == 200
    assert b"1 batches, 2 events stored, 0 rejected" in body
    assert collector.totals.rejected == 0


def test_output_starts_empty_unless_appending(tmp_path: Path) -> None:
    """Without --append the file starts empty; with it, batches follow the old content, after a
    newline ending an old last line that was cut."""
    out = tmp_path / "events.jsonl"
    out.write_bytes(b'{"old": 1}\n{"old": 2, "cut')
    with collecting(str(out), CollectOptions(port=0, append=True)) as collector:
        post(collector.url or "", lines({"new": 1}))
    assert out.read_bytes() == b'{"old": 1}\n{"old": 2, "cut\n{"new":1}\n'
    with collecting(str(out)) as collector:
        assert out.read_bytes() == b""
        post(collector.url or "", lines({"new": 2}))
    assert out.read_bytes() == lines({"new": 2})


def test_an_unwritable_output_is_an_error_before_listening(tmp_path: Path) -> None:
    """A file that cannot be opened stops the collector before it takes any request."""
    expected = r"^cannot write .*/missing/events\.jsonl: No such file or directory$"
    with pytest.raises(CollectError, match=expected), collecting(str(tmp_path / "missing" / "events.jsonl")):
        pass


def test_a_failed_write_is_never_answered_200(tmp_path: Path) -> None:
    """When the disk refuses a batch, it is answered 503 and the collector reports why."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system to make writes fail")
    with collecting("/dev/full") as collector:
        status, body = post(collector.url or "", lines({"a": 1}))
        again = post(collector.url or "", lines({"b": 1}))
        failure = collector.failure
    assert status == 503
    assert body == b"cannot write /dev/full: No space left on device\n"
    assert again[0] == 503
    assert str(failure) == "cannot write /dev/full: No space left on device"
    assert collector.totals.batches == 0


def stopping_in_background(cm: AbstractContextManager[Collector], collector: Collector) -> threading.Thread:
    """Leave the entered `collecting` block `cm` in another thread; return once `collector` is stopping."""
    stopper = threading.Thread(target=cm.__exit__, args=(None, None, None))
    stopper.start()
    wait_until(lambda: collector.stopping)
    return stopper


def half_sent(url: str, body: bytes) -> socket.socket:
    """A connection with a POST's headers and the first half of its body sent."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE)
    head = b"POST / HTTP/1.1\r\nHost: collector\r\nContent-Length: %d\r\n\r\n" % len(body)
    sock.sendall(head + body[: len(body) // 2])
    return sock


def test_stopping_finishes_the_uploads_in_hand(tmp_path: Path) -> None:
    """A batch half received when the collector stops is received whole, stored and answered 200;
    a batch sent after the stop on an open connection is answered 503 and not written."""
    out = tmp_path / "events.jsonl"
    cm = collecting(str(out))
    collector = cm.__enter__()
    url = collector.url or ""
    parts = urlsplit(url)
    idle = http.client.HTTPConnection(parts.hostname, parts.port, timeout=PATIENCE)
    idle.request("POST", "/", body=lines({"first": 1}))
    assert idle.getresponse().read() == b'{"accepted": 1}'
    body = lines({"in hand": 1}, {"in hand": 2})
    upload = half_sent(url, body)
    wait_until(lambda: collector.in_hand == 1)  # the server has the upload's headers
    stopper = stopping_in_background(cm, collector)
    idle.request("POST", "/", body=lines({"late": 1}))
    late = idle.getresponse()
    assert (late.status, late.read()) == (503, b"collector is stopping: nothing of this batch was written\n")
    upload.sendall(body[len(body) // 2:])
    with upload, upload.makefile("rb") as reader:
        answer = reader.read()
    idle.close()
    stopper.join()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'\r\n\r\n{"accepted": 2}')
    assert out.read_bytes() == lines({"first": 1}, {"in hand": 1}, {"in hand": 2})
    assert collector.totals.batches == 2
    assert collector.totals.rejected == 1


def test_hurry_drops_the_uploads_not_received_whole(tmp_path: Path) -> None:
    """After hurry() (a second Ctrl-C), stop() ends without the slow upload: not answered, not written."""
    out = tmp_path / "events.jsonl"
    cm = collecting(str(out))
    collector = cm.__enter__()
    upload = half_sent(collector.url or "", lines({"slow": 1}))
    wait_until(lambda: collector.in_hand == 1)
    stopper = stopping_in_background(cm, collector)
    collector.hurry()
    stopper.join()
    with upload:
        assert upload.recv(100) == b""
    assert out.read_bytes() == b""
    assert collector.totals == Totals()


def check_capture(path: Path, accepted: dict[int, list[int]], events_per_batch: int) -> None:
    """Every line whole, every event of every accepted batch present exactly once, each poster's
    batches in the order it sent them, each batch's lines together."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    seen = [orjson.loads(line) for line in raw.split(b"\n")[:-1]]  # raises on a torn line
    assert len(seen) == sum(len(batches) for batches in accepted.values()) * events_per_batch
    expected = {orjson.dumps(event(p, b, i)) for p, bs in accepted.items() for b in bs
                for i in range(events_per_batch)}
    assert {orjson.dumps(value) for value in seen} == expected
    order: dict[int, list[int]] = {}
    for offset in range(0, len(seen), events_per_batch):
        group = seen[offset:offset + events_per_batch]
        poster = int(group[0]["invocationId"][1:])
        batch = group[0]["sequence"] // 1000
        assert group == [event(poster, batch, i) for i in range(events_per_batch)]
        order.setdefault(poster, []).append(batch)
    assert order == {p: bs for p, bs in accepted.items() if bs}


def test_many_concurrent_posters_lose_and_tear_nothing(tmp_path: Path) -> None:
    """16 posters on keep-alive connections send 24,000 events at once: each lands exactly once,
    whole, each batch's lines together, each poster's batches in its order."""
    posters, batches, per_batch = 16, 60, 25
    out = tmp_path / "events.jsonl"
    start = threading.Barrier(posters)

    def run(poster: int, url: str) -> list[int]:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=PATIENCE)
        start.wait()
        done = []
        for batch in range(batches):
            body = lines(*(event(poster, batch, i) for i in range(per_batch)))
            connection.request("POST", "/", body=body, headers={"Content-Type": "application/x-ndjson"})
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b'{"accepted": 25}')
            done.append(batch)
        connection.close()
        return done

    with collecting(str(out)) as collector, ThreadPoolExecutor(posters) as pool:
        results = list(pool.map(run, range(posters), [collector.url or ""] * posters))
    accepted = dict(enumerate(results))
    check_capture(out, accepted, per_batch)
    assert collector.totals == Totals(batches=posters * batches, events=posters * batches * per_batch,
                                      rejected=0, bytes=out.stat().st_size)


# -- the command line ----------------------------------------------------------------------------


def start_cli(*args: str, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`tracetree collect ARGS` in a subprocess, once it says it listens: (process, url)."""
    process = subprocess.Popen([sys.executable, "-m", "tracetree", "collect", *args], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    first = process.stderr.readline().decode()
    match = LISTENING.match(first.rstrip("\n"))
    if match is None:
        process.kill()
        _, rest = process.communicate(timeout=PATIENCE)
        pytest.fail(f"no listening line: {first!r} {rest!r}")
    return process, match.group(1)


def stop_cli(process: subprocess.Popen[bytes]) -> tuple[int, bytes, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=PATIENCE)
    return process.returncode, out, err.decode()


def test_cli_collects_until_ctrl_c_and_prints_totals(tmp_path: Path) -> None:
    """The command prints where it listens, stores batches, and on Ctrl-C prints the totals, exit 0."""
    process, url = start_cli("--listen", "127.0.0.1:0", "-o", "events.jsonl", cwd=tmp_path)
    assert post(url, lines({"a": 1}, {"b": 2}))[0] == 200
    assert post(url, b"[]\n")[0] == 400
    code, out, err = stop_cli(process)
    assert code == 0
    assert out == b""
    assert err.splitlines() == [
        "rejected a batch from 127.0.0.1 (400): line 1: not a JSON object (a JSON array)",
        "stopped: 1 batch, 2 events, 1 rejected (16 bytes written) → events.jsonl",
    ]
    assert (tmp_path / "events.jsonl").read_bytes() == lines({"a": 1}, {"b": 2})


def test_cli_says_in_one_line_what_the_server_refuses(tmp_path: Path) -> None:
    """A request that is not HTTP is refused by the server library; the note is one line, no traceback."""
    process, url = start_cli("--listen", "127.0.0.1:0", "-o", "events.jsonl", cwd=tmp_path)
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \x1b[31m\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    code, _, err = stop_cli(process)
    assert code == 0
    assert "Traceback" not in err
    assert "\x1b" not in err
    assert err.splitlines()[-1] == "stopped: 0 batches, 0 events, 0 rejected (0 bytes written) → events.jsonl"


def test_cli_shows_a_live_count_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, the count of batches and events is shown as they arrive."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tracetree", "collect", "--listen", "127.0.0.1:0", "-o", "events.jsonl"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=follower, env={**os.environ, "COLUMNS": "160"})
    os.close(follower)
    seen = b""

    def read_until(text: bytes) -> None:
        nonlocal seen
        while text not in seen:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process has exited
                chunk = b""
            if not chunk:
                pytest.fail(f"{text!r} never shown; the terminal showed {seen!r}")
            seen += chunk

    try:
        read_until(b"/\r\n")
        url = re.search(rb"listening on (http://\S+/)", seen)
        assert url is not None
        assert post(url.group(1).decode(), lines({"a": 1}, {"b": 2}, {"c": 3}))[0] == 200
        read_until(b"received 1 batch, 3 events, 0 rejected")
        process.send_signal(signal.SIGINT)
        read_until(b"stopped: 1 batch, 3 events, 0 rejected (24 bytes written)")
        assert process.wait(timeout=PATIENCE) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)


def test_cli_writes_to_stdout(tmp_path: Path) -> None:
    """`-o -` sends the events to stdout, the messages to stderr."""
    process, url = start_cli("--listen", "0", "-o", "-", "-q", cwd=tmp_path)
    assert post(url, lines({"a": 1}))[0] == 200
    code, out, err = stop_cli(process)
    assert (code, out, err) == (0, lines({"a": 1}), "")


def test_cli_port_in_use_is_one_line_and_leaves_the_file_alone(tmp_path: Path) -> None:
    """A taken port: one error line, exit 2, no traceback, and an existing capture untouched."""
    (tmp_path / "events.jsonl").write_bytes(b'{"kept": 1}\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["collect", "--listen", f"127.0.0.1:{port}", "-o", "events.jsonl"]
        result = subprocess.run(
            [sys.executable, "-m", "tracetree", *command], cwd=tmp_path, capture_output=True, text=True,
            timeout=PATIENCE)
    assert result.returncode == 2
    assert result.stderr == (f"error: cannot listen on 127.0.0.1:{port}: address already in use "
                             "(another collector? choose another port, or 0 for any free one)\n")
    assert (tmp_path / "events.jsonl").read_bytes() == b'{"kept": 1}\n'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "no/such/dir/events.jsonl"], "error: cannot write no/such/dir/events.jsonl: No such file or "
         "directory\n"),
        (["--listen", "no-such-host.invalid:0", "-o", "e.jsonl"], "error: cannot listen on "
         "no-such-host.invalid:0: unknown host"),
        (["--listen", ":8799", "-o", "e.jsonl"], "Error: Invalid value for --listen: ':8799' names no host"),
    ],
)
def test_cli_setup_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    """Setup problems end with one clear line and exit 2, and leave no file behind."""
    result = subprocess.run([sys.executable, "-m", "tracetree", "collect", "--listen", "127.0.0.1:0", *args],
                            cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_stops_with_exit_2_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    """A write that fails is answered 503 and ends the collector: exit 2, one error line."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system to make writes fail")
    process, url = start_cli("--listen", "127.0.0.1:0", "-o", "/dev/full", cwd=tmp_path)
    assert post(url, lines({"a": 1}))[0] == 503
    _, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 2
    assert err.decode().splitlines() == ["error: cannot write /dev/full: No space left on device"]


def test_ctrl_c_under_load_keeps_exactly_the_accepted_events(tmp_path: Path) -> None:
    """Ctrl-C while 12 posters send: the totals count exactly the batches answered 200, and the
    file holds exactly their events, whole, once each."""
    posters, per_batch = 12, 40
    process, url = start_cli("--listen", "127.0.0.1:0", "-o", "events.jsonl", cwd=tmp_path)
    accepted: dict[int, list[int]] = {p: [] for p in range(posters)}
    refused: list[bytes] = []  # answers other than 200: the collector stopping
    enough = threading.Semaphore(0)

    def run(poster: int) -> None:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=PATIENCE)
        for batch in range(10_000):
            body = lines(*(event(poster, batch, i) for i in range(per_batch)))
            try:
                connection.request("POST", "/", body=body)
                response = connection.getresponse()
                status, answer = response.status, response.read()
            except OSError:  # the collector has stopped listening: this batch was not accepted
                break
            if status != 200:
                refused.append(b"%d %s" % (status, answer))
                break
            accepted[poster].append(batch)
            enough.release()
        connection.close()

    threads = [threading.Thread(target=run, args=(p,)) for p in range(posters)]
    for thread in threads:
        thread.start()
    for _ in range(300):  # Ctrl-C once 300 batches are in, with every poster still sending
        enough.acquire()
    process.send_signal(signal.SIGINT)
    for thread in threads:
        thread.join()
    _, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, err
    batches = sum(len(b) for b in accepted.values())
    assert batches >= 300
    size = (tmp_path / "events.jsonl").stat().st_size
    assert set(refused) <= {b"503 collector is stopping: nothing of this batch was written\n"}
    assert err.decode().splitlines()[-1] == (
        f"stopped: {batches:,} batches, {batches * per_batch:,} events, {len(refused)} rejected "
        f"({size:,} bytes written) → events.jsonl")
    check_capture(tmp_path / "events.jsonl", accepted, per_batch)
