"""End to end on the real workerd runtime: the shipped tail worker on every worker of a scenario,
its log read back by tracetree, the trees checked against what the workers say they did.

The scenario (scenario/gateway.js, api.js, store.js) passes a call id with every call; the
caller logs `call ID` and the callee `serve ID`, so the true caller of every invocation is known
from its logs alone, whatever the span ids: that is the truth the links are judged against.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from click.testing import CliRunner

from tracetree.build import Forest, build_file
from tracetree.cli import main
from tracetree.diff import diff
from tracetree.document import to_document
from tracetree.events import read_events
from tracetree.links import Resolution
from tracetree.resolve import ResolveOptions

pytestmark = pytest.mark.workerd

RunWorkerd = Any  # conftest's run_workerd: (config, *, predictable, log_name=None, text=None) -> Path
RUN_LIMIT_S = 300  # a safety net for a hung process, not a measurement
WAIT_LIMIT_S = 120  # the same, for events still to come from a running server

CERTAIN = {Resolution.EXACT, Resolution.CAUSAL}


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds. The limit only stops a hung run; nothing is measured."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def outcomes_in(lines: list[bytes]) -> int:
    """How many `outcome` events the JSON lines (or marker lines) hold: invocations finished."""
    return sum(1 for line in lines if b'"type":"outcome"' in line)


def events_of(path: Path) -> list[dict[str, Any]]:
    return [value for value, _path, _line in read_events([str(path)], from_log=None)]


def truth_of(events: list[dict[str, Any]]) -> dict[str, str | None]:
    """Every invocation's true caller, from the `call ID` / `serve ID` logs; None for a root."""
    callers: dict[str, str] = {}
    served: dict[str, str] = {}
    invocations: set[str] = set()
    for event in events:
        invocations.add(event["invocationId"])
        body = event["event"]
        if body["type"] == "log" and isinstance(body["message"], list) and len(body["message"]) == 2:
            verb, call = body["message"]
            if verb == "call":
                callers[call] = event["invocationId"]
            elif verb == "serve":
                served[event["invocationId"]] = call
    return {invocation: callers[served[invocation]] if invocation in served else None
            for invocation in invocations}


@dataclass
class Score:
    child_links: int
    right: int
    wrong_certain: int  # wrong links labelled exact or causal: silent errors
    collisions: int  # child links whose caller span id more than one invocation owns
    by_label: dict[str, int]


def score(forest: Forest, truth: dict[str, str | None]) -> Score:
    assert set(forest.links) == set(truth)
    child = [link for link in forest.links.values() if truth[link.invocation_id] is not None]
    right = [link for link in child if link.parent_invocation_id == truth[link.invocation_id]]
    wrong_certain = [link for link in forest.links.values()
                     if link.parent_invocation_id != truth[link.invocation_id] and link.resolution in CERTAIN]
    collisions = [link for link in child if link.owners >= 2]
    labels: dict[str, int] = {}
    for link in child:
        labels[link.resolution.value] = labels.get(link.resolution.value, 0) + 1
    return Score(len(child), len(right), len(wrong_certain), len(collisions), labels)


def document_of(forest: Forest) -> dict[str, Any]:
    return to_document(forest)


def served_differences(expected: Forest, actual: Forest) -> list[Any]:
    """diff's changes between two `workerd serve` runs, except the client's address and port in
    the root request's onset (`cfJson.clientIp`), which differ from connection to connection."""

    def without_client(info: Any) -> Any:
        if not isinstance(info, dict):
            return info
        return {key: value for key, value in info.items() if key != "cfJson"}

    return [change for change in diff(document_of(expected), document_of(actual))
            if not (change.field == "onset.info"
                    and without_client(change.before) == without_client(change.after))]


def marker_lines(log: Path) -> int:
    return sum(1 for line in log.read_bytes().splitlines() if line.startswith(b"tracetree-event: "))


# -- the scenario, run once per mode ------------------------------------------------------------


@pytest.fixture(scope="module")
def random_log(run_workerd: RunWorkerd) -> Path:
    return run_workerd("scenario.wd-test", predictable=False)


@pytest.fixture(scope="module")
def predictable_log(run_workerd: RunWorkerd) -> Path:
    return run_workerd("scenario.wd-test", predictable=True)


def test_the_log_holds_every_event_of_every_invocation(random_log: Path, predictable_log: Path) -> None:
    """Each run's log yields whole invocations (onset to outcome, no sequence gap) through the
    marker lines, and the workers' own output around them is ignored."""
    for log in (random_log, predictable_log):
        text = log.read_text(encoding="utf-8")
        assert "[ PASS ] gateway" in text and "serve g1" in text  # the runtime's and workers' lines
        forest = build_file(str(log))
        assert forest.stats.events == marker_lines(log)
        assert forest.stats.skipped == 0
        invocations = [inv for trace in forest.traces for inv in trace.invocations.values()]
        assert len(invocations) == 15
        assert not [inv for inv in invocations if inv.events_missing]


def test_random_ids_link_every_callee_exactly_and_rightly(random_log: Path) -> None:
    """With random span ids every link is `exact`, and each names the caller the logs say."""
    forest = build_file(str(random_log))
    result = score(forest, truth_of(events_of(random_log)))
    assert result.child_links == 14
    assert result.right == result.child_links
    assert result.by_label == {"exact": 14}
    assert result.collisions == 0


def test_predictable_ids_collide_and_no_certain_link_is_wrong(predictable_log: Path) -> None:
    """Sequential span ids collide across the scenario's depth; no `exact` or `causal` link is wrong."""
    forest = build_file(str(predictable_log))
    result = score(forest, truth_of(events_of(predictable_log)))
    assert result.child_links == 14
    assert result.collisions >= 3, result
    assert result.wrong_certain == 0, result
    assert result.right == result.child_links, result


def test_predictable_run_builds_the_random_runs_tree(random_log: Path, predictable_log: Path) -> None:
    """Matched by what they are, the predictable run's invocations hang exactly where the random
    run's do, with the same spans, logs, exception and outcomes (labels aside: the random run is
    all `exact`)."""
    random_doc = document_of(build_file(str(random_log)))
    predictable_doc = document_of(build_file(str(predictable_log)))
    assert diff(random_doc, predictable_doc, ignore=["resolution"]) == []
    assert diff(random_doc, predictable_doc, level="invocation", ignore=["resolution"]) == []


def test_naive_rule_goes_wrong_where_ids_collide(random_log: Path, predictable_log: Path) -> None:
    """The upstream helper's rule mis-links callees whose caller span id several invocations own,
    and only those; the tree it builds differs from the true one by moves."""
    truth = truth_of(events_of(predictable_log))
    evidence = build_file(str(predictable_log))
    naive = build_file(str(predictable_log), options=ResolveOptions(naive=True))
    wrong = [link for link in naive.links.values() if link.parent_invocation_id != truth[link.invocation_id]]
    assert wrong
    colliding = {link.invocation_id for link in evidence.links.values() if link.owners >= 2}
    assert {link.invocation_id for link in wrong} <= colliding
    changes = diff(document_of(build_file(str(random_log))), document_of(naive), level="invocation",
                   ignore=["resolution"])
    assert changes and {change.kind.value for change in changes} == {"invocation-moved"}


def test_build_reads_the_log_from_stdin(predictable_log: Path) -> None:
    """`workerd test … 2>&1 | tracetree build -` works: the log on stdin, detected as a log."""
    result = CliRunner().invoke(main, ["build", "-", "--format", "links", "-q"],
                                input=predictable_log.read_bytes())
    assert result.exit_code == 0, result.output
    links = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(links) == 15


def test_diff_compares_two_logs(random_log: Path, predictable_log: Path) -> None:
    """`tracetree diff` takes two workerd logs and finds no difference but the link labels."""
    result = CliRunner().invoke(main, ["diff", str(random_log), str(predictable_log), "--ignore",
                                       "resolution", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no differences")


def test_record_keeps_the_events_and_passes_output_through(workerd: Path, scenario: Path,
                                                           tmp_path: Path) -> None:
    """`tracetree record -o events.jsonl -- workerd test …`: the runtime's output still reaches
    the terminal unchanged, the file holds the events as JSON Lines, the exit code is workerd's."""
    events = tmp_path / "events.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tracetree", "record", "-o", str(events), "--", str(workerd), "test",
         "--predictable", "scenario.wd-test"],
        cwd=scenario, capture_output=True, timeout=RUN_LIMIT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"[ PASS ] gateway" in done.stderr
    assert b"serve g1" in done.stdout
    recorded = events.read_bytes().splitlines()
    marked = [line for line in done.stdout.splitlines() if line.startswith(b"tracetree-event: ")]
    assert recorded and recorded == [line.removeprefix(b"tracetree-event: ") for line in marked]
    assert re.search(rb"recorded \d+ events to ", done.stderr)
    forest = build_file(str(events))
    assert len(forest.links) == 15

    failing = subprocess.run(
        [sys.executable, "-m", "tracetree", "record", "-o", str(events), "-q", "--", str(workerd), "test",
         "no-such.wd-test"], cwd=scenario, capture_output=True, timeout=RUN_LIMIT_S, check=False)
    assert failing.returncode != 0


# -- the merged stream of a busy Durable Object -------------------------------------------------


@pytest.mark.parametrize("predictable", [False, True], ids=["random", "predictable"])
def test_a_busy_durable_object_builds_without_error_or_silent_claims(run_workerd: RunWorkerd,
                                                                     predictable: bool) -> None:
    """Four concurrent requests to one object: workerd shows their spans and logs under the
    newest, so three invocations look empty. tracetree builds it, keeps every event, and links
    every call under its true caller (the test invocation) without a wrong `exact`/`causal`."""
    log = run_workerd("merged.wd-test", predictable=predictable)
    forest = build_file(str(log), options=ResolveOptions())
    assert forest.stats.events == marker_lines(log) and forest.stats.skipped == 0
    (trace,) = forest.traces
    root = next(link.invocation_id for link in forest.links.values() if link.resolution is Resolution.ROOT)
    children = [link for link in forest.links.values() if link.invocation_id != root]
    assert len(children) == 4
    wrong = [link for link in children if link.parent_invocation_id != root]
    assert not [link for link in wrong if link.resolution in CERTAIN]
    document = document_of(forest)
    assert document["summary"]["events"] == forest.stats.events
    # Every request's two logs are there, under whichever invocation workerd sent them with.
    logs = sorted(" ".join(map(str, event["event"]["message"])) for inv in trace.invocations.values()
                  for event in inv.events if event["event"]["type"] == "log")
    assert logs == sorted([f"{verb} m{n}" for verb in ("serve", "done") for n in (1, 2, 3, 4)]
                          + ["counts 1,2,3,4"])


# -- an event the worker cannot serialize ------------------------------------------------------


def test_an_unserializable_event_is_a_marked_error_that_build_reports(run_workerd: RunWorkerd) -> None:
    """A diagnostics-channel message with a cycle: the tail worker logs a `tracetree-error:` line
    instead and goes on; build stops on it naming the line, and --lenient skips and counts it."""
    log = run_workerd("unserializable.wd-test", predictable=False)
    lines = log.read_bytes().splitlines()
    number = next(n for n, line in enumerate(lines, start=1) if line.startswith(b"tracetree-error: "))
    result = CliRunner().invoke(main, ["build", str(log), "-q"])
    assert result.exit_code == 2
    assert f"{log}:{number}: the tail worker could not serialize an event (type diagnosticChannel" \
        in result.stderr
    assert "circular" in result.stderr
    lenient = CliRunner().invoke(main, ["build", str(log), "--lenient", "--format", "links"])
    assert lenient.exit_code == 0
    assert "1 line skipped · 1 with events missing" in lenient.stderr
    assert f"skipped: {log}:{number}: the tail worker could not serialize" in lenient.stderr
    # The events after it were still sent: the outcome arrived.
    forest = build_file(str(log), lenient=True)
    (invocation,) = forest.traces[0].invocations.values()
    assert invocation.outcome is not None


@dataclass
class Served:
    """A `workerd serve` process: the port its `http` socket listens on, and its output so far."""

    port: int
    log: Path
    process: subprocess.Popen[bytes]
    control: IO[bytes]  # kept open while workerd runs: it may write more to it

    def get(self, path: str = "/") -> bytes:
        return get(self.port, path)


def get(port: int, path: str = "/") -> bytes:
    """GET from a local workerd socket, with the same headers whatever the port (they are in the
    onset of the invocation it starts, which runs are compared on)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "scenario.test"})
    with urllib.request.urlopen(request, timeout=RUN_LIMIT_S) as response:
        return response.read()


@pytest.fixture
def serve_workerd(workerd: Path, scenario: Path) -> Iterator[Callable[..., Served]]:
    """Start `workerd serve` on a config written into the scenario folder, with an `http` socket
    to the gateway on a free port (told by workerd on its control fd); stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []
    controls: list[IO[bytes]] = []

    def serve(name: str, text: str, *, command_prefix: tuple[str, ...] = ()) -> Served:
        socket = '  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "gateway")],\n'
        (scenario / name).write_text(text.replace("  services = [\n", socket + "  services = [\n", 1),
                                     encoding="utf-8")
        log = scenario / f"{Path(name).stem}.log"
        read, write = os.pipe()
        command = [*command_prefix, str(workerd), "serve", name, f"--control-fd={write}"]
        with log.open("wb") as handle:
            process = subprocess.Popen(command, cwd=scenario, stdout=handle, stderr=subprocess.STDOUT,
                                       pass_fds=[write])
        os.close(write)
        started.append(process)
        control = os.fdopen(read, "rb")
        controls.append(control)
        for line in control:
            message = orjson.loads(line)
            if message.get("event") == "listen" and message.get("socket") == "http":
                return Served(int(message["port"]), log, process, control)
        raise AssertionError(f"workerd serve did not listen: {log.read_text(errors='replace')[-2000:]}")

    yield serve
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=RUN_LIMIT_S)
    for control in controls:
        control.close()


# -- HTTP: batches POSTed to a collector, under `workerd serve` -------------------------------
#
# Under `workerd test` (1.20261117.1) a tail worker's subrequests never complete: the runtime
# exits first. HTTP mode is for servers (`workerd serve`, `wrangler dev`), and is tested so.

SCENARIO_INVOCATIONS = 15


def with_collector(config: str, address: str, timeout_ms: int | None = None) -> str:
    """The scenario config with the tail worker POSTing to a collector at `address` (HOST:PORT),
    as `tracetree tail-worker --snippet workerd --collect` says to write it."""
    tail = '    (name = "tracetree-tail", worker = .tailWorker),\n'
    assert tail in config
    external = f'    (name = "tracetree-collector", external = (address = "{address}", http = ())),\n'
    config = config.replace(tail, tail + external)
    module = '  compatibilityDate = "2025-01-01",\n);\n'
    assert config.endswith(module)
    binding = '  bindings = [(name = "TRACETREE_COLLECTOR", service = "tracetree-collector")'
    if timeout_ms is not None:
        binding += f', (name = "TRACETREE_COLLECT_TIMEOUT_MS", text = "{timeout_ms}")'
    binding += "],\n"
    return config.removesuffix(module) + module.replace(");\n", binding + ");\n")


@dataclass
class Received:
    batches: list[tuple[str, bytes]]  # (content type, body)

    def lines(self) -> list[bytes]:
        return [line for _type, body in list(self.batches) for line in body.splitlines()]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received, list[int]]]:
    """A stand-in collector on a free loopback port: stores each POST, answers with the status
    at the head of `status` (200 when empty), or never answers while `status` holds 0."""
    received = Received([])
    status: list[int] = []
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.batches.append((self.headers["content-type"], body))
            if status and status[0] == 0:
                released.wait()
                return
            self.send_response(status[0] if status else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received, status
    finally:
        released.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served_log_events(tmp_path_factory: pytest.TempPathFactory, workerd: Path, scenario: Path) -> Path:
    """The scenario under `workerd serve`, log mode, through `tracetree record`: the events file."""
    events = tmp_path_factory.mktemp("record") / "served.jsonl"
    config = (scenario / "scenario.wd-test").read_text(encoding="utf-8")
    socket = '  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "gateway")],\n'
    (scenario / "served.capnp").write_text(config.replace("  services = [\n", socket + "  services = [\n", 1),
                                           encoding="utf-8")
    read, write = os.pipe()
    # record's output goes to files: a pipe nobody reads while the scenario runs would fill, and
    # stall record, and so workerd, whose output record passes on.
    out, err = events.with_suffix(".stdout"), events.with_suffix(".stderr")
    with out.open("wb") as stdout_file, err.open("wb") as stderr_file:
        record = subprocess.Popen(
            [sys.executable, "-m", "tracetree", "record", "-o", str(events), "--", str(workerd), "serve",
             "served.capnp", f"--control-fd={write}"],
            cwd=scenario, pass_fds=[write], stdout=stdout_file, stderr=stderr_file)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as control:
            port = next((orjson.loads(line)["port"] for line in control if b'"socket":"http"' in line), None)
            assert port is not None, "workerd serve did not listen"
            assert get(port) == b"scenario done\n"
            # The events are in the file while workerd still runs: written as they arrive.
            wait_until(lambda: outcomes_in(events.read_bytes().splitlines()) >= SCENARIO_INVOCATIONS,
                       "the recorded events of every invocation")
            assert record.poll() is None
            record.send_signal(signal.SIGTERM)  # passed on to workerd, which stops
            record.wait(timeout=RUN_LIMIT_S)
    finally:
        if record.poll() is None:  # a failed check: stop workerd through record, as a user would
            record.send_signal(signal.SIGTERM)
            try:
                record.wait(timeout=RUN_LIMIT_S)
            except subprocess.TimeoutExpired:
                record.kill()
                record.wait()
    stdout, stderr = out.read_bytes(), err.read_bytes()
    assert record.returncode == 0, stderr[-2000:]
    assert b"scenario done" in stdout and b"tracetree-event: " in stdout
    assert b"recorded " in stderr
    return events


def test_serve_log_mode_through_record_links_exactly(served_log_events: Path) -> None:
    """`tracetree record -- workerd serve …` keeps a server's events: every link exact and right."""
    forest = build_file(str(served_log_events))
    result = score(forest, truth_of(events_of(served_log_events)))
    assert result.child_links == SCENARIO_INVOCATIONS - 1
    assert result.right == result.child_links and result.by_label == {"exact": result.child_links}


def test_http_mode_posts_ndjson_batches_of_the_same_lines(serve_workerd: Any, scenario: Path,
                                                          served_log_events: Path, receiver: Any) -> None:
    """With a TRACETREE_COLLECTOR binding the worker POSTs `application/x-ndjson` batches, each
    line one whole event as log mode would print it, and logs none; the events build the same
    tree as the log path's."""
    address, received, _status = receiver
    config = with_collector((scenario / "scenario.wd-test").read_text(encoding="utf-8"), address)
    served = serve_workerd("http.capnp", config)
    assert served.get() == b"scenario done\n"
    wait_until(lambda: outcomes_in(received.lines()) >= SCENARIO_INVOCATIONS, "every invocation's events")
    log = served.log.read_bytes()
    assert b"tracetree-event: " not in log and b"tracetree-warning: " not in log
    lines = received.lines()
    for content_type, body in received.batches:
        assert content_type == "application/x-ndjson"
        assert body.endswith(b"\n")
    events = [orjson.loads(line) for line in lines]
    assert all(isinstance(event, dict) and "invocationId" in event for event in events)
    collected = scenario / "http-events.jsonl"
    collected.write_bytes(b"\n".join(lines) + b"\n")
    forest = build_file(str(collected))
    result = score(forest, truth_of(events))
    assert result.right == result.child_links == SCENARIO_INVOCATIONS - 1
    assert forest.counts()["exact"] == SCENARIO_INVOCATIONS - 1
    assert served_differences(build_file(str(served_log_events)), forest) == []


def test_a_refusing_collector_gets_the_events_logged_instead(serve_workerd: Any, scenario: Path,
                                                             served_log_events: Path, receiver: Any) -> None:
    """When the collector answers 500, each batch goes to the log after a `tracetree-warning:`
    line saying why: no event is lost, and build reads them all from the log."""
    address, received, status = receiver
    status.append(500)
    config = with_collector((scenario / "scenario.wd-test").read_text(encoding="utf-8"), address)
    served = serve_workerd("refused.capnp", config)
    assert served.get() == b"scenario done\n"
    wait_until(lambda: outcomes_in(served.log.read_bytes().splitlines()) >= SCENARIO_INVOCATIONS,
               "every invocation's events in the log")
    log = served.log.read_bytes()
    assert b"tracetree-warning: " in log and b"answered 500" in log
    forest = build_file(str(served.log))
    posted = len(received.lines())
    assert forest.stats.events == posted == marker_lines(served.log)
    assert served_differences(build_file(str(served_log_events)), forest) == []


def test_a_collector_that_never_answers_gets_the_events_logged(serve_workerd: Any, scenario: Path,
                                                               served_log_events: Path,
                                                               receiver: Any) -> None:
    """A collector that takes batches and never answers does not hold invocations open: after
    TRACETREE_COLLECT_TIMEOUT_MS each batch is logged instead, and nothing is lost."""
    address, received, status = receiver
    status.append(0)
    config = with_collector((scenario / "scenario.wd-test").read_text(encoding="utf-8"), address,
                            timeout_ms=300)
    served = serve_workerd("silent.capnp", config)
    assert served.get() == b"scenario done\n"
    wait_until(lambda: outcomes_in(served.log.read_bytes().splitlines()) >= SCENARIO_INVOCATIONS,
               "every invocation's events in the log")
    log = served.log.read_bytes()
    assert b"did not answer within 300 ms" in log
    forest = build_file(str(served.log))
    assert forest.stats.events == marker_lines(served.log)
    # What reached the collector before the worker gave up is in the log as well.
    assert {line.removeprefix(b"tracetree-event: ") for line in log.splitlines()} >= set(received.lines())
    assert served_differences(build_file(str(served_log_events)), forest) == []


# -- through `tracetree collect` (its own branch; runs once both are merged) -------------------


@pytest.mark.skipif(importlib.util.find_spec("tracetree.collect") is None,
                    reason="tracetree collect not available on this branch")
def test_collect_path_builds_the_same_tree(serve_workerd: Any, scenario: Path, served_log_events: Path,
                                           tmp_path: Path) -> None:
    """`tracetree collect` receives the worker's POSTs: every event arrives, every link is exact,
    and the tree equals the one built from the marker log."""
    events = tmp_path / "collected.jsonl"
    collector = subprocess.Popen(
        [sys.executable, "-m", "tracetree", "collect", "--listen", "127.0.0.1:0", "-o", str(events)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200"})
    drain: threading.Thread | None = None
    try:
        assert collector.stderr is not None
        address = None
        for raw in collector.stderr:
            match = re.search(rb"listening on http://([^/\s]+)/", raw)
            if match:
                address = match.group(1).decode()
                break
        assert address, "tracetree collect did not say where it listens"
        # Keep reading what it says, so a full pipe never stalls it.
        drain = threading.Thread(target=collector.stderr.read, daemon=True)
        drain.start()
        config = with_collector((scenario / "scenario.wd-test").read_text(encoding="utf-8"), address)
        served = serve_workerd("collect.capnp", config)
        assert served.get() == b"scenario done\n"
        wait_until(lambda: events.exists() and outcomes_in(events.read_bytes().splitlines())
                   >= SCENARIO_INVOCATIONS, "every invocation's events at the collector")
        assert b"tracetree-warning: " not in served.log.read_bytes()
    finally:
        collector.send_signal(signal.SIGINT)
        collector.wait(timeout=RUN_LIMIT_S)
        if drain is not None:
            drain.join(timeout=RUN_LIMIT_S)  # the pipe ends with the process
        assert collector.stderr is not None
        collector.stderr.close()
    forest = build_file(str(events))
    assert forest.stats.events == len(events.read_bytes().splitlines())
    assert forest.counts()["exact"] == SCENARIO_INVOCATIONS - 1
    assert served_differences(build_file(str(served_log_events)), forest) == []


# -- the snippet, as a user pastes it ------------------------------------------------------------


def test_the_workerd_snippet_makes_a_working_config(workerd: Path, tmp_path: Path) -> None:
    """A config made of a worker plus the lines `tail-worker --snippet workerd` prints, pasted
    where they say, runs under workerd, and its log builds a tree."""
    snippet = CliRunner().invoke(main, ["tail-worker", "--snippet", "workerd"]).stdout
    service_part, worker_part = snippet.split("# 2.")
    service = "\n".join(line for line in service_part.splitlines() if not line.startswith("#"))
    attach = "\n".join(line for line in worker_part.splitlines()[1:] if not line.startswith("#"))
    assert CliRunner().invoke(main, ["tail-worker", "-o", str(tmp_path / "tracetree-tail.js")]).exit_code == 0
    (tmp_path / "app.js").write_text(
        "export default { async test(ctrl, env) { console.log('hello'); "
        "await (await env.SELF.fetch('http://app.test/')).text(); },\n"
        "  async fetch() { return new Response('ok'); } };\n", encoding="utf-8")
    (tmp_path / "app.wd-test").write_text(
        'using Workerd = import "/workerd/workerd.capnp";\n'
        "const config :Workerd.Config = (\n  services = [\n"
        '    (name = "app", worker = (\n'
        '      modules = [(name = "app.js", esModule = embed "app.js")],\n'
        '      compatibilityDate = "2025-01-01",\n'
        '      bindings = [(name = "SELF", service = "app")],\n'
        f"{attach}\n    )),\n{service}\n  ],\n);\n", encoding="utf-8")
    done = subprocess.run([str(workerd), "test", "--predictable", "app.wd-test"], cwd=tmp_path,
                          capture_output=True, timeout=RUN_LIMIT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = CliRunner().invoke(main, ["build", "-", "--format", "links", "-q", "--strict"],
                                input=done.stdout + done.stderr)
    assert result.exit_code == 0, result.output
    links = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [link["resolution"] for link in links] == ["root", "exact"]
