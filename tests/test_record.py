"""`tracetree record`: a command's output passed through, its events kept, its exit code kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
from conftest import ev

EVENT = ev("a", 0, {"type": "onset", "executionModel": "stateless", "spanId": "1111111111111111",
                    "info": {"type": "fetch", "method": "GET", "url": "http://x/"}})
OUTCOME = ev("a", 1, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0},
             span="1111111111111111")


def record(tmp_path: Path, script: str, *options: str) -> tuple[subprocess.CompletedProcess[bytes], Path]:
    """Run `tracetree record -o events.jsonl [options] -- python -c SCRIPT` as a user would."""
    events = tmp_path / "events.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tracetree", "record", "-o", str(events), *options, "--", sys.executable,
         "-c", textwrap.dedent(script)],
        capture_output=True, timeout=120, check=False)
    return done, events


def marker(event: dict) -> str:
    return "tracetree-event: " + orjson.dumps(event).decode()


def test_output_passes_through_unchanged_and_events_are_kept(tmp_path: Path) -> None:
    """Every byte of stdout and stderr comes through (marker lines too, and a last line without
    a newline); the file holds the events, one JSON line each, in order."""
    script = (
        "import sys\n"
        f"sys.stdout.write('starting\\n' + {marker(EVENT)!r} + '\\n')\n"
        "sys.stderr.write('warn: \\x1b[33mcolour\\x1b[0m\\n')\n"
        f"sys.stdout.write('12:00 tail | ' + {marker(OUTCOME)!r} + '\\nno newline at the end')\n"
    )
    done, events = record(tmp_path, script)
    assert done.returncode == 0
    assert done.stdout == (f"starting\n{marker(EVENT)}\n12:00 tail | {marker(OUTCOME)}\n"
                           "no newline at the end").encode()
    assert done.stderr.startswith(b"warn: \x1b[33mcolour\x1b[0m\n")
    assert events.read_bytes() == orjson.dumps(EVENT) + b"\n" + orjson.dumps(OUTCOME) + b"\n"
    assert done.stderr.endswith(f"recorded 2 events to {events}\n".encode())


def test_the_commands_exit_code_is_returned(tmp_path: Path) -> None:
    """record exits as the command did, even with events kept; a signal reads as 128 + N."""
    done, events = record(tmp_path, f"import sys; print({marker(EVENT)!r}); sys.exit(3)")
    assert done.returncode == 3
    assert len(events.read_bytes().splitlines()) == 1
    killed, _ = record(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert killed.returncode == 128 + 15


def test_events_are_in_the_file_as_they_arrive(tmp_path: Path) -> None:
    """The command sees its first event in the file before it goes on: written and flushed at
    once, not at the end."""
    events = tmp_path / "events.jsonl"
    script = (
        "import sys, time, pathlib\n"
        f"print({marker(EVENT)!r}, flush=True)\n"
        f"path = pathlib.Path({str(events)!r})\n"
        "deadline = time.monotonic() + 60\n"  # a safety net for a broken recorder, not a measure
        "while not (path.exists() and path.read_bytes().endswith(b'\\n')):\n"
        "    if time.monotonic() > deadline: sys.exit(9)\n"
        "    time.sleep(0.01)\n"
        "print('seen')\n"
    )
    done, _ = record(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"seen\n")


def test_bad_marker_lines_are_reported_not_recorded(tmp_path: Path) -> None:
    """A cut marker line and a worker error line are not written; the summary counts and quotes
    them with their stream and line."""
    error = '{"error": "TypeError: cycle", "invocationId": "a", "sequence": 1, "type": "log"}'
    script = (
        f"print({marker(EVENT)!r})\n"
        "print('tracetree-event: {\"cut\": ')\n"
        f"print('tracetree-error: ' + {error!r})\n"
    )
    done, events = record(tmp_path, script)
    assert done.returncode == 0
    assert events.read_bytes() == orjson.dumps(EVENT) + b"\n"
    stderr = done.stderr.decode()
    assert f"recorded 1 event to {events} · 2 marker lines not recorded" in stderr
    assert "problem: stdout:2: marker line cut short or malformed" in stderr
    assert "problem: stdout:3: the tail worker could not serialize an event (type log, invocation a" in stderr


def test_hide_events_keeps_everything_else(tmp_path: Path) -> None:
    """--hide-events drops the marker lines from the passed-through output, nothing else."""
    script = f"print('a'); print({marker(EVENT)!r}); print('b')"
    done, events = record(tmp_path, script, "--hide-events", "-q")
    assert done.stdout == b"a\nb\n"
    assert done.stderr == b""
    assert len(events.read_bytes().splitlines()) == 1


def test_a_command_that_cannot_start_is_one_error_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    done = subprocess.run([sys.executable, "-m", "tracetree", "record", "-o", str(events), "--",
                           str(tmp_path / "no-such-command")], capture_output=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.decode().startswith(f"error: cannot run {tmp_path / 'no-such-command'}: ")
    assert len(done.stderr.splitlines()) == 1
