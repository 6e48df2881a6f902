"""Receiving TailEvents over HTTP: batches POSTed by the tail worker, appended to one file.

The server is aiohttp's: it speaks HTTP/1.1 properly (keep-alive, chunked request bodies,
`Content-Encoding: gzip`), caps a body's size while reading it, and refuses malformed HTTP.
What this module adds is the part a collector must get right: a batch is checked whole before
any of it is written, batches are appended in arrival order by one writer so lines never
interleave, a batch is answered 2xx only once it is flushed (and fsynced) to the file, and on
stopping the uploads in hand are received whole and stored before the connections close.

>>> with collecting("events.jsonl") as collector:          # doctest: +SKIP
...     post_batches_to(collector.url)
>>> collector.totals                                        # doctest: +SKIP
Totals(batches=3, events=120, rejected=0, bytes=51234)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import signal
import socket
import stat
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .errors import TracetreeError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BATCH_BYTES",
    "BatchError",
    "CollectError",
    "CollectOptions",
    "Collector",
    "Totals",
    "collecting",
    "parse_batch",
    "parse_listen",
    "run_collector",
]

DEFAULT_LISTEN = "127.0.0.1:8799"
# A batch of a thousand events with a few large logs is a few MiB; this leaves room for many
# more while keeping one request's memory bounded.
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024
# How long, after Ctrl-C, the uploads in hand get to finish before they are dropped unanswered.
DEFAULT_GRACE_SECONDS = 10.0

# JSON's own whitespace: a line may be padded with it (and end in \r), nothing else.
_JSON_SPACE = b" \t\r"


class CollectError(TracetreeError):
    """The collector cannot do its job: the address cannot be bound, the file cannot be written."""


class BatchError(ValueError):
    """A POSTed batch that cannot be stored: `line` (1-based, in the request body) says where."""

    def __init__(self, line: int, detail: str):
        self.line = line
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"line {self.line}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Totals:
    """What a collector has done so far."""

    batches: int = 0  # batches stored and answered 2xx
    events: int = 0  # lines in those batches
    rejected: int = 0  # batches answered 400, 413, or 503 while stopping: none of their lines written
    bytes: int = 0  # bytes appended to the file


@dataclass(frozen=True, slots=True)
class CollectOptions:
    """How a collector listens and writes. Port 0 binds any free port (`Collector.url` names it)."""

    host: str = "127.0.0.1"
    port: int = 8799
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    fsync: bool = True  # fsync each write to a regular file before answering; flush alone otherwise
    append: bool = False  # keep what the file holds instead of starting it afresh
    grace: float = DEFAULT_GRACE_SECONDS


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or a bare `PORT` (on 127.0.0.1) as (host, port).

    >>> parse_listen("127.0.0.1:8799"), parse_listen("[::1]:0"), parse_listen("8799")
    (('127.0.0.1', 8799), ('::1', 0), ('127.0.0.1', 8799))
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    elif not host:
        # Some tools read `:PORT` as every interface, others as loopback: ask rather than guess.
        raise ValueError(f"{text!r} names no host: give 127.0.0.1{text} (this machine only) or "
                         f"0.0.0.0{text} (every interface)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, as [::1]:8799")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port)


def parse_batch(body: bytes) -> tuple[bytes, int]:
    """A POSTed batch checked whole: (the bytes to append, how many lines they hold).

    Each non-blank line must be one JSON object; nothing else about it is read. Lines are kept
    byte for byte (less padding), each ending in a newline. Raises `BatchError` for the first
    line that is not a JSON object, so that nothing of a bad batch is written.

    >>> parse_batch(b'{"a": 1}\\n\\n{"b": 2}\\r\\n')
    (b'{"a": 1}\\n{"b": 2}\\n', 2)
    """
    lines: list[bytes] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        line = raw.strip(_JSON_SPACE)
        if not line:
            continue
        # The same parser `tracetree build` reads with: what collect stores, build can read.
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            reason = str(error).split(": line ", 1)[0]
            raise BatchError(number, f"not JSON ({reason}, column {error.colno})") from None
        if not isinstance(value, dict):
            raise BatchError(number, f"not a JSON object (a JSON {_json_kind(value)})")
        lines.append(line)
    if not lines:
        return b"", 0
    lines.append(b"")
    return b"\n".join(lines), len(lines) - 1


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _url(host: str, port: int) -> str:
    return f"http://{_hostport(host, port)}/"


class _Sink:
    """The output file (or stdout), written with plain `os.write` so that nothing sits in a buffer
    once a write returns; fsynced when it is a regular file and fsync is wanted."""

    def __init__(self, path: str, *, fsync: bool, append: bool):
        self.name = "stdout" if path == "-" else path
        self._created = False
        self._owned = path != "-"
        try:
            if path == "-":
                sys.stdout.flush()
                self._fd = sys.stdout.fileno()
            else:
                self._created = not os.path.exists(path)
                # Opened without truncating: if the address then cannot be bound, an existing
                # capture is left as it was (`start_afresh` truncates once listening).
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            mode = os.fstat(self._fd).st_mode
        except OSError as error:
            raise CollectError(f"cannot write {self.name}: {error.strerror or error}") from None
        self._regular = stat.S_ISREG(mode)
        self._fsync = fsync and self._regular
        self._append = append
        self._good = os.lseek(self._fd, 0, os.SEEK_END) if self._regular else 0

    def start_afresh(self) -> None:
        """Empty the file unless appending; when appending to a file whose last line is cut,
        end that line, so that the first batch does not glue onto it."""
        if not self._owned or not self._regular:
            return
        if not self._append:
            os.ftruncate(self._fd, 0)
            self._good = 0
        elif self._good:
            with open(self.name, "rb") as existing:
                existing.seek(self._good - 1)
                if existing.read(1) != b"\n":
                    self.write(b"\n")

    def write(self, data: bytes) -> None:
        """Append `data` whole, durably; on failure cut the file back to its last whole batch."""
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if self._fsync:
                os.fsync(self._fd)
        except OSError:
            if self._regular:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._good)
            raise
        self._good += len(data)

    def close(self, *, remove_if_new: bool = False) -> None:
        if self._owned:
            os.close(self._fd)
            if remove_if_new and self._created and self._good == 0:
                with contextlib.suppress(OSError):
                    os.unlink(self.name)


class _Appender:
    """The one writer. Batches queue in arrival order; each round writes everything queued as one
    append and one fsync (a group commit), then answers all of them. Only one round runs at a
    time, so lines from concurrent requests never interleave."""

    def __init__(self, sink: _Sink):
        self._sink = sink
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._round: asyncio.Task[None] | None = None
        self.failure: OSError | None = None

    async def append(self, data: bytes) -> None:
        """Returns once `data` is in the file; raises the OSError that stopped the writer."""
        if self.failure is not None:
            raise self.failure
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((data, future))
        if self._round is None:
            self._round = asyncio.create_task(self._write_rounds())
        await future

    async def _write_rounds(self) -> None:
        try:
            while self._queue:
                group, self._queue = self._queue, []
                try:
                    # In a thread: the server keeps reading other uploads during the fsync.
                    await asyncio.to_thread(self._sink.write, b"".join(data for data, _ in group))
                except OSError as error:
                    self.failure = error
                    group += self._queue
                    self._queue = []
                    for _, future in group:
                        if not future.done():
                            future.set_exception(error)
                    return
                for _, future in group:
                    if not future.done():  # a handler cancelled while waiting leaves a done future
                        future.set_result(None)
        finally:
            self._round = None

    async def idle(self) -> None:
        """Wait until everything queued is written."""
        while self._round is not None:
            await asyncio.shield(self._round)


class Collector:
    """An HTTP receiver that appends POSTed batches of JSON lines to `output` (a path, or `-`).

    `await start()` opens the file and listens; `await stop()` stops listening, lets the
    uploads in hand finish, and closes the file. `collecting()` runs one in a thread;
    `run_collector()` runs one until Ctrl-C.
    """

    def __init__(
        self,
        output: str,
        options: CollectOptions | None = None,
        *,
        on_note: Callable[[str], None] | None = None,
    ):
        self.output = output
        self.options = options or CollectOptions()
        self.url: str | None = None
        self._on_note = on_note
        self._batches = self._events = self._rejected = self._bytes = 0
        self._sink: _Sink | None = None
        self._appender: _Appender | None = None
        self._runner: web.AppRunner | None = None
        self._failed = asyncio.Event()
        self._in_hand = 0
        self._settled = asyncio.Event()  # set whenever a request in hand is done
        self._hurried = asyncio.Event()
        self._stopping = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def totals(self) -> Totals:
        return Totals(self._batches, self._events, self._rejected, self._bytes)

    @property
    def failure(self) -> CollectError | None:
        """Why the collector stopped writing, if it did."""
        error = self._appender.failure if self._appender else None
        if error is None or self._sink is None:
            return None
        return CollectError(f"cannot write {self._sink.name}: {error.strerror or error}")

    async def wait_failed(self) -> None:
        """Returns when writing has failed (the collector then only answers 503)."""
        await self._failed.wait()

    async def start(self) -> str:
        """Open the output and listen; returns the URL to POST to (with the real port for port 0)."""
        # Imported here: aiohttp takes half a second to import, which no other command should pay.
        from aiohttp import web

        options = self.options
        where = _hostport(options.host, options.port)
        self._loop = asyncio.get_running_loop()
        self._sink = _Sink(self.output, fsync=options.fsync, append=options.append)
        try:
            address = await self._resolve(options.host, options.port, where)
            app = web.Application(client_max_size=options.max_batch_bytes)
            app.router.add_post("/", self._receive)
            app.router.add_get("/", self._status)
            # stop() has waited out the grace period before aiohttp's shutdown runs: what is still
            # in hand then is an upload that will not arrive whole.
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, address, options.port)
            try:
                await site.start()
            except OSError as error:
                reason = os.strerror(error.errno).lower() if error.errno else str(error)
                hint = ""
                if error.errno == errno.EADDRINUSE:
                    hint = " (another collector? choose another port, or 0 for any free one)"
                raise CollectError(f"cannot listen on {where}: {reason}{hint}") from None
        except BaseException:
            await self._close(remove_if_new=True)
            raise
        port = int(self._runner.addresses[0][1])  # the real one when options.port is 0
        self._sink.start_afresh()
        self._appender = _Appender(self._sink)
        self.url = _url(address, port)
        return self.url

    @staticmethod
    async def _resolve(host: str, port: int, where: str) -> str:
        """The one address to bind: a name with several addresses would get several sockets (and,
        on port 0, several ports), and the URL printed must name the socket that listens."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as error:
            raise CollectError(f"cannot listen on {where}: unknown host ({error.strerror})") from None
        return str(infos[0][4][0])

    @property
    def stopping(self) -> bool:
        """Whether stop() has begun: new batches are refused from then on."""
        return self._stopping

    @property
    def in_hand(self) -> int:
        """Requests being received or stored right now."""
        return self._in_hand

    async def stop(self) -> None:
        """Stop listening, let the uploads in hand finish (up to `grace` seconds, or until `hurry()`),
        close the file. Requests arriving meanwhile on open connections are answered 503."""
        if self._closed:
            return
        self._stopping = True
        if self._runner is not None:
            # aiohttp's own graceful shutdown stops reading from every connection at once, so an
            # upload whose body is still arriving would be cut off: stop listening first, and let
            # the uploads in hand arrive whole before handing over to it.
            for site in list(self._runner.sites):
                await site.stop()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained(), self.options.grace)
        await self._close()

    def hurry(self) -> None:
        """Stop waiting for the uploads in hand: those not yet received whole are dropped unanswered.
        Safe to call from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._hurried.set)

    async def _drained(self) -> None:
        while self._in_hand and not self._hurried.is_set():
            self._settled.clear()
            waits = [asyncio.create_task(self._settled.wait()), asyncio.create_task(self._hurried.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()

    async def _close(self, *, remove_if_new: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._appender is not None:
                await self._appender.idle()
        finally:
            if self._sink is not None:
                self._sink.close(remove_if_new=remove_if_new)

    def note(self, message: str) -> None:
        """Tell the person running the collector (rejections, stopping)."""
        if self._on_note is not None:
            self._on_note(message)

    def _reject(self, request: web.Request, status: int, message: str) -> web.Response:
        from aiohttp import web

        self._rejected += 1
        self.note(f"rejected a batch from {request.remote} ({status}): {message}")
        return web.Response(status=status, text=message + "\n")

    async def _receive(self, request: web.Request) -> web.Response:
        if self._stopping:
            response = self._reject(request, 503, "collector is stopping: nothing of this batch was written")
            response.force_close()
            return response
        self._in_hand += 1
        try:
            return await self._store(request)
        finally:
            self._in_hand -= 1
            self._settled.set()

    async def _store(self, request: web.Request) -> web.Response:
        from aiohttp import web
        from aiohttp.http_exceptions import HttpProcessingError

        limit = self.options.max_batch_bytes
        too_big = f"batch larger than {limit:,} bytes: send smaller batches, or raise --max-batch-bytes"
        # A declared size over the limit is refused before a byte of the body is read.
        if request.content_length is not None and request.content_length > limit:
            return self._reject(request, 413, too_big)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject(request, 413, too_big)
        except (ConnectionError, HttpProcessingError, web.RequestPayloadError) as error:
            # The client went away mid-body, or sent a body that does not decode (bad chunking,
            # bad gzip): there is no whole batch to store, and maybe no one to answer.
            reason = " ".join(str(error).split()).removeprefix("400, message: ") or type(error).__name__
            return self._reject(request, 400, f"the body did not arrive whole ({reason})")
        try:
            data, count = parse_batch(body)
        except BatchError as error:
            return self._reject(request, 400, str(error))
        assert self._appender is not None
        if data:
            try:
                await self._appender.append(data)
            except OSError:
                self._failed.set()
                return web.Response(status=503, text=f"{self.failure}\n")
        self._batches += 1
        self._events += count
        self._bytes += len(data)
        return web.json_response({"accepted": count})

    async def _status(self, request: web.Request) -> web.Response:
        from aiohttp import web

        totals = self.totals
        return web.Response(text=(
            "tracetree collect: POST newline-delimited JSON objects here.\n"
            f"{totals.batches} batches, {totals.events} events stored, {totals.rejected} rejected.\n"))


@contextlib.contextmanager
def collecting(
    output: str,
    options: CollectOptions | None = None,
    *,
    on_note: Callable[[str], None] | None = None,
) -> Iterator[Collector]:
    """A collector served from a thread of its own for the duration of the block (port 0 by
    default); `collector.url` is where to POST. Leaving the block stops it gracefully."""
    options = options or CollectOptions(port=0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tracetree-collect", daemon=True)
    thread.start()

    def call(step: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(step(), loop).result()

    try:
        collector = Collector(output, options, on_note=on_note)
        try:
            call(collector.start)
            yield collector
        finally:
            call(collector.stop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def run_collector(
    output: str,
    options: CollectOptions | None = None,
    *,
    ready: Callable[[str], None],
    on_note: Callable[[str], None] | None = None,
    on_collector: Callable[[Collector], None] | None = None,
) -> Totals:
    """Serve until SIGINT or SIGTERM, then stop gracefully and return the totals.

    `ready(url)` is called once listening. Raises `CollectError` when the address cannot be
    bound or the file cannot be opened, or (after stopping) when writing failed.
    """
    return asyncio.run(_serve(Collector(output, options, on_note=on_note), ready, on_collector))


async def _serve(
    collector: Collector,
    ready: Callable[[str], None],
    on_collector: Callable[[Collector], None] | None,
) -> Totals:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def interrupted() -> None:
        if not stop.is_set():
            stop.set()
        else:
            collector.hurry()  # a second Ctrl-C: stop waiting for slow uploads

    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, interrupted)
    try:
        url = await collector.start()
        if on_collector is not None:
            on_collector(collector)
        ready(url)
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(collector.wait_failed())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        if collector.in_hand:
            collector.note(f"stopping: finishing {_count(collector.in_hand, 'upload', 'uploads')} in hand "
                           f"(up to {collector.options.grace:g} s; Ctrl-C again to drop them)")
        await collector.stop()
    finally:
        for number in signals:
            loop.remove_signal_handler(number)
    failure = collector.failure
    if failure is not None:
        raise failure
    return collector.totals


def is_loopback(host: str) -> bool:
    """Whether `host` (as given to --listen) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe(totals: Totals) -> str:
    """Totals in one line, for the terminal.

    >>> describe(Totals(batches=1, events=1200, rejected=0, bytes=480000))
    '1 batch, 1,200 events, 0 rejected (480,000 bytes written)'
    """
    return (f"{_count(totals.batches, 'batch', 'batches')}, {_count(totals.events, 'event', 'events')}, "
            f"{totals.rejected:,} rejected ({totals.bytes:,} bytes written)")


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"
