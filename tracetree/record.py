"""Running a command and keeping the TailEvents its output carries (`tracetree record`)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

import orjson

from .errors import InputError
from .markers import find_marker, worker_error

_CHUNK = 64 * 1024


@dataclass(slots=True)
class Recording:
    """What a recorded run gave: the command's exit code, events written, and problems seen."""

    exit_code: int
    events: int = 0
    problems: list[InputError] = field(default_factory=list)  # cut marker lines, worker errors


class _Sink:
    """The events file: whole lines, flushed one by one, from either output stream."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.lock = threading.Lock()
        self.events = 0
        self.problems: list[InputError] = []

    def take(self, name: str, number: int, line: bytes) -> bool:
        """Keep `line` if it is a marker line; True when it was an event line."""
        marked = find_marker(line)
        if marked is None:
            return False
        if marked.kind == "error":
            problem = worker_error(name, number, marked.payload)
        else:
            try:
                value = orjson.loads(marked.payload)
            except orjson.JSONDecodeError as exc:
                detail = str(exc).split(":", 1)[0]
                problem = InputError(name, number,
                                     f"marker line cut short or malformed: {detail}; not recorded")
            else:
                if isinstance(value, dict):
                    with self.lock:
                        self.handle.write(marked.payload + b"\n")
                        self.handle.flush()
                        self.events += 1
                    return True
                problem = InputError(name, number, "marker line holds no JSON object; not recorded")
        with self.lock:
            self.problems.append(problem)
        return marked.kind == "event"


def _lines(pipe: IO[bytes], passthrough: IO[bytes], hide_events: bool, sink: _Sink, name: str) -> None:
    """Copy `pipe` to `passthrough` as it comes and hand each whole line to the sink."""
    pending = b""
    number = 0
    while True:
        chunk = pipe.read1(_CHUNK)  # type: ignore[attr-defined]
        if not chunk:
            break
        if not hide_events:
            _write(passthrough, chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        shown: list[bytes] = []
        for line in lines:
            number += 1
            if not sink.take(name, number, line + b"\n") and hide_events:
                shown.append(line + b"\n")
        if shown:
            _write(passthrough, b"".join(shown))
    if pending:
        number += 1
        if not sink.take(name, number, pending) and hide_events:
            _write(passthrough, pending)


def _write(stream: IO[bytes], data: bytes) -> None:
    # The terminal may be gone (`| head`); the command's events are still worth keeping.
    with contextlib.suppress(OSError, ValueError):
        stream.write(data)
        stream.flush()


@contextlib.contextmanager
def _forward_termination(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """SIGTERM and SIGHUP to tracetree go on to the command, which decides when the run ends.
    (Ctrl-C reaches the command by itself: it shares the terminal's process group.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def record(
    command: Sequence[str],
    output: IO[bytes],
    *,
    stdout: IO[bytes],
    stderr: IO[bytes],
    hide_events: bool = False,
) -> Recording:
    """Run `command`, copy its stdout and stderr to `stdout` and `stderr` unchanged as they come,
    and write the TailEvents of its `tracetree-event:` lines to `output`, one JSON line each,
    flushed as each arrives. With `hide_events` those lines are not copied.

    Returns the command's exit code (128 + N when signal N ended it, as a shell says) with
    the events written and the problems seen: cut or malformed marker lines, which are not
    written, and events the tail worker reported it could not serialize. Raises OSError when
    the command cannot be started.
    """
    # Descriptors tracetree was handed (a control fd, say) go on to the command, as with `env` or
    # `time`; tracetree's own files are not inheritable, so they do not.
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=False)
    sink = _Sink(output)
    assert process.stdout is not None and process.stderr is not None
    readers = [
        threading.Thread(target=_lines, args=(pipe, target, hide_events, sink, name), daemon=True)
        for pipe, target, name in ((process.stdout, stdout, "stdout"), (process.stderr, stderr, "stderr"))
    ]
    with _forward_termination(process):
        for reader in readers:
            reader.start()
        while True:
            try:
                # Ctrl-C went to the command too: wait for it to finish and say how it ended.
                returncode = process.wait()
                for reader in readers:
                    reader.join()
                break
            except KeyboardInterrupt:
                continue
    exit_code = 128 - returncode if returncode < 0 else returncode
    return Recording(exit_code, sink.events, sink.problems)
