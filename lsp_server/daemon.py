"""The CLI's warm helper, the daemon's side: ``semcode daemon`` keeps one index folder and its model loaded and
answers the CLI's `search`, `related` and `status` over a Unix socket until idle. Life cycle, protocol and the CLI's
side: ``daemon_client.py`` (whose names are re-exported here)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from .daemon_client import (
    IDLE_S,
    MAX_CONNECTIONS,
    MAX_REQUEST_BYTES,
    NO_DAEMON_ENV,
    PROTOCOL,
    REQUEST_TIMEOUT_S,
    SEND_TIMEOUT_S,
    Lines,
    ask,
    daemon_key,
    runtime_dir,
    socket_path,
    spawn,
    stop,
)

if TYPE_CHECKING:
    from indexer.store import Hit, StoredChunk
    from semcode.engine import Engine
    from semcode.settings import Settings
    from semcode.workspace import Folder

log = logging.getLogger(__name__)
__all__ = [  # with the CLI's side (daemon_client), for callers that hold this module (tests, benchmarks)
    "IDLE_S", "NO_DAEMON_ENV", "PROTOCOL", "Daemon", "HitRow", "ask", "chunk_row", "daemon_key", "hit_row",
    "run_daemon", "runtime_dir", "search_rows", "socket_path", "spawn", "stop",
]  # fmt: skip


class HitRow(TypedDict):
    """One hit on the wire and in ``--json`` (0-based lines)."""

    path: str
    repo: str
    start_line: int
    end_line: int
    symbol: str | None
    kind: str
    language: str
    score: float
    reasons: list[str]


def hit_row(h: Hit) -> HitRow:
    c = h.chunk
    return HitRow(
        path=c.path, repo=c.repo, start_line=c.start_line, end_line=c.end_line, symbol=c.qualified_name,
        kind=c.kind, language=c.language, score=round(h.score, 6), reasons=list(h.reasons),
    )  # fmt: skip


def chunk_row(c: StoredChunk) -> dict[str, Any]:
    return {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "symbol": c.qualified_name}


# -- the daemon's side -----------------------------------------------------------------------------------------------


class Daemon:
    """Answers requests for one index folder (see the module docstring). Each connection is served on a thread of
    its own, at most ``MAX_CONNECTIONS`` at once: the engine's reads may run on any thread, so one slow or hostile
    client holds one thread (for ``REQUEST_TIMEOUT_S`` at most while its request is not whole), never the others."""

    BACKLOG = 64
    EXIT_WAIT_S = 30.0  # how long an exiting daemon lets the answers in progress finish

    def __init__(self, engine: Engine, sock: Path, idle_s: float) -> None:
        self.engine, self.sock, self.idle_s = engine, sock, idle_s
        self.running = True
        self.lock = threading.Condition()  # guards active, last and the engine's folder list
        self.active, self.last = 0, time.monotonic()
        self.handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "search": self.search, "related": self.related, "status": self.status, "ping": self.ping,
            "stop": self.stop,
        }  # fmt: skip

    def serve(self) -> None:
        """Listen and answer until idle or stopped (the caller holds the key's lock)."""
        with contextlib.suppress(FileNotFoundError):
            self.sock.unlink()  # ours to replace: we hold the lock
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(self.sock))
            server.listen(self.BACKLOG)
            server.settimeout(1.0)
            log.info("daemon %d serving %s", os.getpid(), self.sock)
            while self.running and not self.idle():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                self.start(conn)
        with contextlib.suppress(FileNotFoundError):
            self.sock.unlink()
        with self.lock:  # the answers in progress finish before the engine closes
            self.lock.wait_for(lambda: self.active == 0, self.EXIT_WAIT_S)

    def idle(self) -> bool:
        with self.lock:
            return self.active == 0 and time.monotonic() - self.last >= self.idle_s

    def start(self, conn: socket.socket) -> None:
        """Serve `conn` on a thread of its own, or answer "busy" at once when ``MAX_CONNECTIONS`` are served."""
        with self.lock:
            self.last = time.monotonic()
            full = self.active >= MAX_CONNECTIONS
            self.active += 0 if full else 1
        if full:
            with conn, contextlib.suppress(OSError):
                conn.settimeout(0)  # a fresh socket's buffer takes one short line; never block the accept loop
                busy = f"the daemon at {self.sock} is busy ({MAX_CONNECTIONS} connections)"
                conn.sendall(self.error_line(busy, expected=False, busy=True))
            return
        threading.Thread(target=self.connection, args=(conn,), name="semcode-daemon-conn", daemon=True).start()

    def connection(self, conn: socket.socket) -> None:
        try:
            with conn:
                self.answer(conn)
        finally:
            with self.lock:
                self.active -= 1
                self.last = time.monotonic()
                self.lock.notify_all()

    def answer(self, conn: socket.socket) -> None:
        """One request: the whole line within ``REQUEST_TIMEOUT_S`` and ``MAX_REQUEST_BYTES`` (else an error
        answer), an acknowledgement, then the answer."""
        try:
            request = json.loads(Lines(conn).next(REQUEST_TIMEOUT_S, MAX_REQUEST_BYTES))
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
        except (OSError, ValueError) as e:  # half a request, an oversized one, garbage: that client's problem only
            with contextlib.suppress(OSError):
                conn.settimeout(SEND_TIMEOUT_S)
                conn.sendall(self.error_line(str(e), expected=isinstance(e, ValueError)))
            return
        conn.settimeout(SEND_TIMEOUT_S)
        with contextlib.suppress(OSError):  # a client gone already (`stop` does not wait) still gets its request done
            conn.sendall(json.dumps({"version": PROTOCOL, "accepted": True}).encode() + b"\n")
        try:
            out = {"version": PROTOCOL, "ok": True} | self.handle(request)
        except (OSError, ValueError) as e:  # a client that went away or a bad request: its problem only
            out = {"version": PROTOCOL, "ok": False, "error": str(e), "expected": isinstance(e, ValueError)}
        except Exception as e:
            log.exception("request failed")
            out = {"version": PROTOCOL, "ok": False, "error": f"{type(e).__name__}: {e}", "expected": False}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(out).encode() + b"\n")

    @staticmethod
    def error_line(error: str, expected: bool, busy: bool = False) -> bytes:
        out = {"version": PROTOCOL, "ok": False, "error": error, "expected": expected}
        out |= {"busy": True} if busy else {}
        return json.dumps(out).encode() + b"\n"

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("version") != PROTOCOL:
            self.running = False  # a CLI of another version: it starts its own daemon after this one exits
            return {}
        handler = self.handlers.get(request.get("cmd", ""))
        if handler is None:
            raise ValueError(f"unknown daemon command {request.get('cmd')!r}")
        return handler(request.get("args") or {})

    def folder(self, root: str) -> Folder:
        path = Path(root)
        with self.lock:  # two requests naming a new root at once add it once
            return self.engine.add_folder(path) or next(f for f in self.engine.folders if f.root == path.resolve())

    def search(self, args: dict[str, Any]) -> dict[str, Any]:
        return search_rows(self.engine, self.folder(args["root"]), args)

    def related(self, args: dict[str, Any]) -> dict[str, Any]:
        folder = self.folder(args["root"])
        chunk, hits = self.engine.related(
            folder, args["path"], args["line"], args["limit"], languages=args.get("languages"),
            path_glob=args.get("path_glob"),
        )  # fmt: skip
        return {"chunk": None if chunk is None else chunk_row(chunk), "hits": [hit_row(h) for h in hits]}

    def status(self, args: dict[str, Any]) -> dict[str, Any]:
        folder = self.folder(args["root"])
        store = self.engine.store(folder, create=False)
        incomplete = store is not None and store.incomplete(folder.repo)
        out = {"stats": self.engine.stats(folder), "skipped": self.engine.skipped_files(folder)}
        return out | {"model": self.engine.model_id(), "incomplete": incomplete}

    def ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "model": self.engine.model, "folders": [str(f.root) for f in self.engine.folders]}

    def stop(self, args: dict[str, Any]) -> dict[str, Any]:
        self.running = False
        return {}


def search_rows(engine: Engine, folder: Folder, args: dict[str, Any]) -> dict[str, Any]:
    """A search request's answer, cold (the CLI's own process) or warm (the daemon): the hits, and when there are
    none, how many files the folder's index holds (0: it was never indexed)."""
    from semcode.query import SearchQuery

    q = SearchQuery(
        args["query"], args["limit"], args["mode"], args.get("paths"), args.get("languages"),
        group_by_file=bool(args.get("group_by_file", False)),
    )  # fmt: skip
    hits = engine.search(q, repo=args.get("repo"), everywhere=args.get("everywhere", False))
    if not hits and engine.store(folder, create=False) is not None:
        folder.refresh_counts()
    out = {"hits": [hit_row(h) for h in hits], "indexed_files": folder.files + folder.skipped if not hits else None}
    return out | ({"warnings": list(q.warnings)} if q.warnings else {})  # a query cut to semcode.limits


def run_daemon(settings: Settings, index_dir: str, root: Path, idle_s: float) -> int:
    """``semcode daemon``: take the key's lock (or leave it to the daemon holding it), load the model and the
    index, then serve until idle."""
    import dataclasses

    from semcode.engine import Engine

    sock = socket_path(settings, index_dir)  # the key of the settings the CLI asked with
    if settings.threads is None:  # one query at a time: a second torch thread costs CPU, not latency
        settings = dataclasses.replace(settings, threads=1)
    lock = open(f"{sock}.lock", "w")  # noqa: SIM115 - held for the daemon's whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another daemon serves this key
    engine = Engine(settings, [root])
    try:
        engine.load_encoder()  # the first warm query should not pay for it
        engine.store(engine.folders[0], create=False)
        Daemon(engine, sock, idle_s).serve()
    finally:
        engine.close_now()
        lock.close()
    return 0
