"""`tracetree tail-worker`: the shipped module, its serialization (run in node), and the snippets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from conftest import runner

from tracetree.cli import main
from tracetree.tailworker import worker_source

ROOT = Path(__file__).resolve().parents[1]


def test_tail_worker_writes_the_shipped_module(tmp_path: Path) -> None:
    """`-o FILE` writes the module shipped in the package, byte for byte; without -o, stdout."""
    target = tmp_path / "tracetree-tail.js"
    result = runner().invoke(main, ["tail-worker", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    shipped = (ROOT / "tracetree" / "worker" / "tail.js").read_text(encoding="utf-8")
    assert target.read_text(encoding="utf-8") == shipped == worker_source()
    assert "export default" in shipped and "tailStream(" in shipped
    assert runner().invoke(main, ["tail-worker"]).stdout == shipped


def test_workerd_snippet_attaches_the_worker_and_logs() -> None:
    result = runner().invoke(main, ["tail-worker", "--snippet", "workerd"])
    assert result.exit_code == 0
    text = result.stdout
    assert '(name = "tracetree-tail", worker = (' in text
    assert 'esModule = embed "tracetree-tail.js"' in text
    assert 'streamingTails = ["tracetree-tail"],' in text
    assert "TRACETREE_COLLECTOR" not in text
    assert "tracetree tail-worker -o tracetree-tail.js" in text


def test_workerd_snippet_with_collect_posts_there() -> None:
    result = runner().invoke(main, ["tail-worker", "--snippet", "workerd", "--collect", "127.0.0.1:8799"])
    assert result.exit_code == 0
    text = result.stdout
    assert '(name = "TRACETREE_COLLECTOR", service = "tracetree-collector")' in text
    assert '(name = "tracetree-collector", external = (address = "127.0.0.1:8799", http = ())),' in text
    assert "tracetree collect --listen 127.0.0.1:8799 -o events.jsonl" in text


def test_wrangler_snippet() -> None:
    plain = runner().invoke(main, ["tail-worker", "--snippet", "wrangler"]).stdout
    assert 'streaming_tail_consumers = [{ service = "tracetree-tail" }]' in plain
    assert 'main = "tracetree-tail.js"' in plain and "[vars]" not in plain
    posting = runner().invoke(main, ["tail-worker", "--snippet", "wrangler", "--collect",
                                     "localhost:9000"]).stdout
    assert 'TRACETREE_COLLECT_URL = "http://localhost:9000/"' in posting


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--collect", "127.0.0.1:8799"], "--collect goes with --snippet"),
        (["--snippet", "workerd", "--collect", "nowhere"], "--collect takes HOST:PORT"),
        (["--snippet", "kubernetes"], "Invalid value for '--snippet'"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = runner().invoke(main, ["tail-worker", *args])
    assert result.exit_code == 2
    assert message in result.stderr


# -- the module itself, run by node -------------------------------------------------------------

NODE_DRIVER = r"""
const lines = [];
console.log = (...args) => lines.push(args.join(' '));
const worker = (await import(process.argv[1])).default;
const onset = {
  spanContext: { traceId: 'aa', spanId: undefined },
  invocationId: 'i1',
  timestamp: new Date(Date.UTC(2026, 10, 25, 4, 0, 0, 1)),
  sequence: 0,
  event: { type: 'onset', executionModel: 'stateless', spanId: '1111111111111111',
           info: { type: 'fetch', method: 'GET', url: 'http://x/', headers: [] }, futureField: { a: 1 } },
};
const handler = worker.tailStream(onset, {}, {});
handler({ spanContext: { traceId: 'aa', spanId: '1111111111111111' }, invocationId: 'i1',
          timestamp: new Date(0), sequence: 1,
          event: { type: 'attributes', info: [
            { name: 'big', value: 12345678901234567890n },
            { name: 'list', value: [1n, 2.5, 'x'] },
            { name: 'nan', value: NaN },
            { name: 'inf', value: -Infinity },
          ] } });
const cyclic = { name: 'loop' };
cyclic.self = cyclic;
handler({ spanContext: { traceId: 'aa', spanId: '1111111111111111' }, invocationId: 'i1',
          timestamp: new Date(0), sequence: 2,
          event: { type: 'diagnosticChannel', channel: 'c', message: cyclic } });
handler({ spanContext: { traceId: 'aa', spanId: '1111111111111111' }, invocationId: 'i1',
          timestamp: new Date(0), sequence: 3,
          event: { type: 'diagnosticChannel', channel: 'd', message: {
            map: new Map([['k', 1n]]), set: new Set(['s']), bytes: new Uint8Array([1, 2]),
            error: new TypeError('bad') } } });
const returned = handler({ spanContext: { traceId: 'aa', spanId: '1111111111111111' }, invocationId: 'i1',
          timestamp: new Date(0), sequence: 4,
          event: { type: 'outcome', outcome: 'ok', cpuTime: 0, wallTime: 0 } });
handler(null);
const kind = returned === undefined ? 'undefined' : typeof returned;
process.stdout.write(JSON.stringify({ lines, returned: kind }));
"""


@pytest.fixture
def node_run(tmp_path: Path) -> dict[str, object]:
    return run_worker_in_node(tmp_path, NODE_DRIVER, "serialization")


def run_worker_in_node(tmp_path: Path, driver: str, what: str) -> dict[str, object]:
    """The tail worker loaded as a module by `driver` in node; what the driver prints, parsed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node not found: the tail worker's {what} is checked by running it in node")
    module = tmp_path / "tail.mjs"
    module.write_text(worker_source(), encoding="utf-8")
    done = subprocess.run([node, "--input-type=module", "-e", driver, module.as_uri()],
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


def payloads(run: dict[str, object], marker: str) -> list[dict[str, object]]:
    return [orjson.loads(line.removeprefix(marker)) for line in run["lines"]  # type: ignore[attr-defined]
            if line.startswith(marker)]


def test_every_field_is_kept_dates_and_bigints_as_strings(node_run: dict[str, object]) -> None:
    """Envelope and event as received: Date → ISO string, BigInt → decimal string, an absent
    span id left out, unknown fields carried, NaN/Infinity by name."""
    events = payloads(node_run, "tracetree-event: ")
    assert events[0] == {
        "spanContext": {"traceId": "aa"}, "invocationId": "i1", "timestamp": "2026-11-25T04:00:00.001Z",
        "sequence": 0,
        "event": {"type": "onset", "executionModel": "stateless", "spanId": "1111111111111111",
                  "info": {"type": "fetch", "method": "GET", "url": "http://x/", "headers": []},
                  "futureField": {"a": 1}},
    }
    assert events[1]["event"]["info"] == [  # type: ignore[index]
        {"name": "big", "value": "12345678901234567890"},
        {"name": "list", "value": ["1", 2.5, "x"]},
        {"name": "nan", "value": "NaN"},
        {"name": "inf", "value": "-Infinity"},
    ]
    assert events[1]["timestamp"] == "1970-01-01T00:00:00.000Z"


def test_structured_clone_values_keep_their_content(node_run: dict[str, object]) -> None:
    """Map, Set, bytes and Error (possible in diagnostics-channel messages) become plain JSON."""
    message = payloads(node_run, "tracetree-event: ")[2]["event"]["message"]  # type: ignore[index]
    assert message["map"] == [["k", "1"]]
    assert message["set"] == ["s"]
    assert message["bytes"] == [1, 2]
    assert message["error"]["name"] == "TypeError" and message["error"]["message"] == "bad"


def test_an_unserializable_event_is_an_error_line_and_the_stream_goes_on(node_run: dict[str, object]) -> None:
    """A cycle becomes one `tracetree-error:` line naming the event; later events still come,
    a call with no event at all is reported too, and nothing is thrown."""
    errors = payloads(node_run, "tracetree-error: ")
    assert errors[0]["invocationId"] == "i1" and errors[0]["sequence"] == 2
    assert errors[0]["type"] == "diagnosticChannel"
    assert "circular" in str(errors[0]["error"]).lower()
    assert [event["sequence"] for event in payloads(node_run, "tracetree-event: ")] == [0, 1, 3, 4]
    assert len(errors) == 2  # the `null` event: reported, not thrown
    assert node_run["returned"] == "undefined"  # log mode returns nothing to wait for


BATCH_DRIVER = r"""
const lines = [];
console.log = (...args) => lines.push(args.join(' '));
const worker = (await import(process.argv[1])).default;
const posts = [];
const env = { TRACETREE_COLLECTOR: { async fetch(url, init) {
  posts.push({ url, type: init.headers['content-type'], body: init.body });
  return new Response('', { status: posts.length === 3 ? 413 : 200 });
} } };
const envelope = (sequence, event) => ({ spanContext: { traceId: 'aa', spanId: '11' }, invocationId: 'i1',
                                         timestamp: new Date(0), sequence, event });
const handler = worker.tailStream(envelope(0, { type: 'onset', info: { type: 'fetch' } }), env, {});
const waits = [];
for (let n = 1; n <= 650; n++) waits.push(handler(envelope(n, { type: 'log', message: [n] })));
waits.push(handler(envelope(651, { type: 'outcome', outcome: 'ok' })));
await Promise.all(waits);
process.stdout.write(JSON.stringify({ lines, posts, waited: waits.filter((w) => w !== undefined).length }));
"""


def test_http_mode_posts_ordered_batches_and_logs_a_refused_one(tmp_path: Path) -> None:
    """With a collector binding, events go out in order in batches of at most 200 (the last at
    the outcome), as ndjson; a batch answered 413 is logged instead, after a warning line."""
    run = run_worker_in_node(tmp_path, BATCH_DRIVER, "batching")
    posts = run["posts"]
    assert [post["type"] for post in posts] == ["application/x-ndjson"] * 4
    batches = [[orjson.loads(line)["sequence"] for line in post["body"].splitlines()] for post in posts]
    assert [len(batch) for batch in batches] == [200, 200, 200, 52]
    assert [n for batch in batches for n in batch] == list(range(652))
    assert all(post["body"].endswith("\n") for post in posts)
    warnings = [line for line in run["lines"] if line.startswith("tracetree-warning: ")]
    assert len(warnings) == 1 and "answered 413" in warnings[0] and "200 events logged instead" in warnings[0]
    logged = [orjson.loads(line.removeprefix("tracetree-event: "))["sequence"] for line in run["lines"]
              if line.startswith("tracetree-event: ")]
    assert logged == batches[2]
    assert run["waited"] == 4  # each full batch, and the outcome, is a promise the runtime waits for
