"""LSP protocol pieces of the server: a stdio reader that survives bad framing, answers for requests pygls would
leave unanswered (params that do not fit, a body that is not a JSON-RPC message), and ``$/progress``.

Framing (``FrameReader``): the client's bytes are split at ``Content-Length`` headers, never trusted blindly. Bytes
outside any message are skipped (logged); a header inside a body means the body's Content-Length was too large: the
body ends there and the next message is read (logged); a body that stops arriving is taken as it is when it is a
whole JSON object already (the Content-Length was too large), else reported once while the reader waits; a body cut
short (Content-Length too small) fails to parse and is answered as a parse error. The server never stops reading
because of what a client sent; at end of input it stops, logging any half-read message.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import signal
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import (
    FeatureNotificationError,
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from semcode import interrupts

if TYPE_CHECKING:
    from indexer.index import Progress

log = logging.getLogger("lsp_server.server")


async def _stop_on_ctrl_c(work: Awaitable[None], own_ctrl_c: bool) -> None:
    """`work`, cancelled by Ctrl-C through the event loop's own handler: the kernel may hand the signal to any thread
    (LanceDB's, the watcher's), and only the loop's wake-up pipe then wakes the main thread (asyncio's default
    handler would wait for the next event, maybe forever)."""
    if own_ctrl_c:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, task.cancel)
    await work


class MessagingServer(LanguageServer):
    """A LanguageServer that tells the user: background tasks whose failure is logged, messages and log lines,
    calls onto the event loop from other threads, and every handler error reported once (no traceback). Over stdio
    it reads with `serve_frames` (bad framing is skipped and logged) and answers through `AnsweringProtocol`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{"protocol_cls": AnsweringProtocol, **kwargs})
        self.tasks: set[asyncio.Future[Any]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve over stdio until the input ends or `exit`: pygls' stdio server with our reader (`serve_frames`)."""
        self._stop_event = stop = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(_stop_on_ctrl_c(serve_frames(self, stdin or sys.stdin.buffer, stop), interrupts.owned()))
        except BrokenPipeError:
            log.error("the client closed its end of the connection; stopping")
        except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
            pass
        finally:
            self.shutdown()

    def protocol_problem(self, message: str) -> None:
        """Something the client sent that is not a proper message: one log line here and one for the client."""
        log.warning("%s", message)
        self.log(types.MessageType.Error, f"semcode: protocol error: {message}")

    def spawn(self, work: Awaitable[Any], what: str) -> asyncio.Future[Any]:
        """Run `work` in the background; a failure is logged to the client as "semcode: {what} failed: ..."."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._task_done, what))
        return task

    def _task_done(self, what: str, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            log.error("%s failed", what, exc_info=e)
            self.log(types.MessageType.Error, f"semcode: {what} failed: {e}")

    def show(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, kind: types.MessageType, message: str) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def from_thread(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` on the event loop (notifications are sent from there only)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(fn, *args)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls calls this for every handler exception and malformed message. A request's error is in its answer;
        an unexpected one is logged too. Anything else has no answer to carry it: log it and show it."""
        if source is FeatureRequestError:
            if isinstance(error, JsonRpcInternalError) or not isinstance(error, JsonRpcException):
                self.log(types.MessageType.Error, f"semcode: a request failed: {error}")
            return
        what = "a notification failed" if source is FeatureNotificationError else "protocol error"
        self.log(types.MessageType.Error, f"semcode: {what}: {error}")
        self.show(types.MessageType.Error, f"semcode: {what}: {error}")


class ExpectedErrorsOneLine(logging.Filter):
    """pygls logs every failed request with its traceback; an expected error (bad params, a refusal we raise) is
    one line, an unexpected one keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "pygls.protocol.json_rpc" and str(record.msg).startswith("Unable to deserialize message"):
            return False  # a traceback for params that do not fit: AnsweringProtocol answers and logs them
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, JsonRpcException) and not isinstance(error, JsonRpcInternalError):
            record.msg, record.args, record.exc_info = f"{record.getMessage()}: {error}", (), None
        return True


class AnsweringProtocol(LanguageServerProtocol):
    """Every request gets an answer: pygls leaves unanswered a request whose params do not fit its type (or are
    missing), a body that is not JSON or not a JSON-RPC message, and any request after ``shutdown``."""

    def receive(self, body: bytes) -> None:
        """Handle one message body from the reader."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as e:
            why = "an empty message" if not body.strip() else f"a message that is not JSON ({e})"
            self.refuse(_guess_id(body), JsonRpcParseError(why), tell=True)
            return
        if (problem := _not_a_message(data)) is not None:
            msg_id = data.get("id") if isinstance(data, dict) else None
            self.refuse(msg_id if _valid_id(msg_id) else None, JsonRpcInvalidRequest(problem), tell=True)
            return
        if self._shutdown and "id" in data and data.get("method", types.EXIT) != types.EXIT:
            self.refuse(data["id"], JsonRpcInvalidRequest(f"{data['method']}: the server is shutting down"))
            return
        try:
            self.handle_message(self.structure_message(data))
        except JsonRpcException:
            pass  # answered, and logged, by structure_message
        except Exception:
            log.exception("cannot handle a message from the client")

    def structure_message(self, data: Any) -> Any:
        """The typed message. Params left out (JSON-RPC allows it) are tried as null, then as {}; params that do not
        fit the method's type get an InvalidParams answer (a request) or a log line (a notification)."""
        missing = isinstance(data, Mapping) and "method" in data and "params" not in data
        tries = [{**data, "params": None}, {**data, "params": {}}] if missing else [data]
        for attempt in tries:
            try:
                return super().structure_message(attempt)
            except Exception as e:
                failure = e
        method = data.get("method", "a response") if isinstance(data, Mapping) else "a message"
        error = JsonRpcInvalidParams(f"{method}: {'params are missing' if missing else 'invalid params'}")
        if isinstance(data, Mapping) and "id" in data and "method" in data:
            self.refuse(data["id"], error)
        else:
            log.warning("%s (ignored)", error)
        raise error from failure

    def refuse(self, msg_id: Any, error: JsonRpcException, tell: bool = False) -> None:
        """Answer `msg_id` (None: ``"id": null``, for a message whose id is unknown) with `error`, and log it; with
        `tell` (a protocol error rather than a bad request), the client's log gets the line too."""
        log.warning("%s", error)
        if msg_id is not None:
            self._send_response(msg_id, error=error.to_response_error())
        else:
            self._send_data({"jsonrpc": "2.0", "id": None, "error": {"code": error.code, "message": error.message}})
        if tell:
            message = f"semcode: protocol error: {error.message}"
            self.notify(types.WINDOW_LOG_MESSAGE, types.LogMessageParams(types.MessageType.Error, message))


def _valid_id(msg_id: Any) -> bool:
    return isinstance(msg_id, int | str) and not isinstance(msg_id, bool)


def _not_a_message(data: Any) -> str | None:
    """Why `data` is not a JSON-RPC 2.0 message (None when it is one)."""
    if not isinstance(data, dict):
        return f"a message must be a JSON object, not {type(data).__name__}"
    if data.get("jsonrpc") != "2.0":
        return 'a message needs "jsonrpc": "2.0"'
    if "method" in data and not isinstance(data["method"], str):
        return "a message's method must be a string"
    if "id" in data and not _valid_id(data["id"]) and ("method" in data or data["id"] is not None):
        return "a message's id must be an integer or a string"
    if "method" not in data and "id" not in data:
        return "a message needs a method (or an id, when it answers a request)"
    return None


def _guess_id(body: bytes) -> Any:
    """The id of a request whose body is not JSON (cut short, say), when it comes first: the client gets an answer."""
    m = REQUEST_ID.match(body)
    if m is None:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


class ProgressReporter:
    """$/progress for one run, callable from any thread; silent when the client cannot show progress. The client
    may cancel the run through the token (``window/workDoneProgress/cancel``): `cancelled` is then set."""

    def __init__(self, ls: LanguageServer, token: str | None) -> None:
        self.ls, self.token = ls, token
        self.loop = asyncio.get_running_loop()
        self.cancelled = threading.Event()

    @classmethod
    async def begin(cls, ls: LanguageServer, title: str) -> ProgressReporter:
        window = ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return cls(ls, None)
        token = f"semcode-index-{uuid.uuid4().hex[:8]}"
        await ls.work_done_progress.create_async(token)
        reporter = cls(ls, token)
        value = types.WorkDoneProgressBegin(title=title, percentage=0, cancellable=True)
        ls.work_done_progress.begin(token, value)
        ls.work_done_progress.tokens[token].add_done_callback(lambda _: reporter.cancelled.set())
        return reporter

    def report(self, p: Progress) -> None:  # any thread
        if self.token is None:
            return
        if p.phase == "vectors":  # every file is searchable by text; the vectors are being filled in
            pct = int(100 * p.chunks_embedded / p.chunks_to_embed) if p.chunks_to_embed else 100
            msg = f"searchable by text; embedding {p.chunks_embedded}/{p.chunks_to_embed} chunks"
        else:
            pct = int(100 * p.files_done / p.files_total) if p.files_total else 100
            msg = f"{p.files_done}/{p.files_total} files, {p.chunks_written} chunks"
        value = types.WorkDoneProgressReport(message=msg, percentage=pct)
        self.loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token, value)

    def end(self, message: str) -> None:  # event loop thread
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)


# -- framing ------------------------------------------------------------------------------------------------------

CONTENT_LENGTH = re.compile(rb"content-length:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE)  # never inside valid JSON
HEADER_LINE = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:[^\r\n]*\r\n")
HEADER_LINE_AT_END = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:[^\r\n]*\r\n\Z")
MAX_MESSAGE_BYTES = 256 << 20  # a larger Content-Length is refused (its body is then skipped as junk)
MAX_HEADER_BYTES = 4096  # a header line longer than this is junk
MAX_JUNK_BYTES = 1 << 20  # bytes without any header kept at most (the tail may hold a header's beginning)
STALL_S = 0.5  # input quiet this long with a message half read: look at what came
REQUEST_ID = re.compile(rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"[^"]*"\s*,\s*)?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*[,}]')


def _headers_start(buf: bytearray, pos: int) -> int:
    """Where the header lines that end at `pos` begin (a Content-Type may come before the Content-Length)."""
    for _ in range(4):
        line_start = max(buf.rfind(b"\n", 0, max(pos - 1, 0)) + 1, pos - MAX_HEADER_BYTES, 0)
        m = HEADER_LINE_AT_END.search(buf, line_start, pos)
        if m is None:
            break
        pos = m.start()
        if pos != line_start:  # junk before it on the same line
            break
    return pos


def _headers_end(buf: bytearray, pos: int) -> int | None:
    """The end of the blank line that closes the headers from `pos` on; None while incomplete, -1 when malformed."""
    while True:
        if buf.startswith(b"\r\n", pos):
            return pos + 2
        if (m := HEADER_LINE.match(buf, pos)) is not None and m.end() - pos <= MAX_HEADER_BYTES:
            pos = m.end()
            continue
        complete = b"\n" in buf[pos : pos + MAX_HEADER_BYTES] or len(buf) - pos > MAX_HEADER_BYTES
        return -1 if complete else None


def whole_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        return False


class FrameReader:
    """Splits the client's bytes into message bodies at ``Content-Length`` headers and resynchronises after anything
    malformed (see the module docstring). `problem` gets one line per thing skipped or repaired."""

    def __init__(self, problem: Callable[[str], None]) -> None:
        self.buf = bytearray()
        self.problem = problem
        self.length: int | None = None  # the declared length of the body being read; None between messages
        self.scanned = 0  # how much of that body was searched for a header already
        self.told = False  # the wait for this body was reported

    @property
    def waiting(self) -> bool:
        """Bytes are here that make no message yet, and `stalled` has not looked at them since they came."""
        return (self.length is not None or bool(self.buf.strip())) and not self.told

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        self.told = False
        bodies = []
        while (self.length is not None or self._header()) and (body := self._body()) is not None:
            bodies.append(body)
        return bodies

    def stalled(self) -> list[bytes]:
        """Input went quiet with bytes waiting: take a body that is a whole JSON object already (its Content-Length
        was too large), drop junk, or say what the reader waits for."""
        self.told = True
        if self.length is None:  # junk, or headers that stopped half-way
            self._skip(len(self.buf))
            return []
        if whole_json_object(bytes(self.buf)):
            self.problem(f"a message's Content-Length was {self.length}, but only {len(self.buf)} bytes came")
            return [self._take(len(self.buf))]
        self.problem(f"waiting for {self.length - len(self.buf)} more bytes of a {self.length}-byte message")
        return []

    def eof(self) -> None:
        if self.length is not None or self.buf.strip():
            self.problem(f"input ended in the middle of a message ({len(self.buf)} bytes unread)")

    def _header(self) -> bool:
        """Read the next message's headers: True when its body comes next, False while more bytes are needed."""
        while (m := CONTENT_LENGTH.search(self.buf)) is not None:
            end, length = _headers_end(self.buf, m.end()), int(m.group(1))  # (m reads self.buf as it is now)
            if end is None:
                return False
            start = _headers_start(self.buf, m.start())
            self._skip(start)  # what came before the headers
            if end < 0:
                self.problem("a message header without the blank line that ends it: skipped")
                del self.buf[: m.end() - start]
                continue
            del self.buf[: end - start]
            if length <= MAX_MESSAGE_BYTES:
                self.length = length
                return True
            self.problem(f"refused a {length}-byte message (the limit is {MAX_MESSAGE_BYTES}); skipping its body")
        if len(self.buf) > MAX_JUNK_BYTES:
            self._skip(len(self.buf) - 64)
        return False

    def _body(self) -> bytes | None:
        """The body being read, once it is here; cut short where another message's header shows up in it."""
        assert self.length is not None
        m = CONTENT_LENGTH.search(self.buf, max(self.scanned - 64, 0), min(len(self.buf), self.length + 64))
        if m is not None and (cut := _headers_start(self.buf, m.start())) < self.length:
            self.problem(f"a message's Content-Length was {self.length}, but the next message began after {cut} bytes")
            return self._take(cut)
        if len(self.buf) >= self.length:
            return self._take(self.length)
        self.scanned = len(self.buf)
        return None

    def _take(self, n: int) -> bytes:
        body = bytes(self.buf[:n])
        del self.buf[:n]
        self.length, self.scanned = None, 0
        return body

    def _skip(self, n: int) -> None:
        junk = bytes(self.buf[:n])
        del self.buf[:n]
        if junk.strip():
            self.problem(f"skipped {len(junk)} bytes that are not part of a message: {junk[:60]!r}")


def _pump(fd: int, loop: asyncio.AbstractEventLoop, chunks: asyncio.Queue[bytes]) -> None:
    """The stdin thread: hand each chunk read to the event loop; b"" at end of input."""
    data = b"-"
    while data:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            data = b""
        try:
            loop.call_soon_threadsafe(chunks.put_nowait, data)
        except RuntimeError:  # the loop is closed: the server is exiting
            return


async def serve_frames(ls: MessagingServer, stdin: BinaryIO, stop: threading.Event) -> None:
    """Read messages from `stdin` until its end (or `stop`), handing each body to the protocol."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    threading.Thread(target=_pump, args=(stdin.fileno(), loop, chunks), name="semcode-stdin", daemon=True).start()
    frames = FrameReader(ls.protocol_problem)
    protocol = ls.protocol
    assert isinstance(protocol, AnsweringProtocol)
    while not stop.is_set():
        try:
            data = await asyncio.wait_for(chunks.get(), STALL_S if frames.waiting else None)
        except TimeoutError:
            data = None
        if data == b"":
            frames.eof()
            return
        try:
            bodies = frames.stalled() if data is None else frames.feed(data)
        except Exception:  # a bug here must not end the server: start afresh at the next header
            log.exception("reading the client's messages failed; skipping to the next message")
            frames = FrameReader(ls.protocol_problem)
            continue
        for body in bodies:
            protocol.receive(body)
