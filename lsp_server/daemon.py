"""The CLI's warm helper: a small daemon that keeps one index folder and its model loaded, so that `semcode search`,
`related` and `status` answer in milliseconds instead of paying for imports and model loading every time (as dmypy
and eslint_d do).

Life cycle: the first CLI query for an (index folder, model) finds no daemon, answers cold in its own process, and
starts one in the background (``semcode daemon``, a new session, its output in ``<socket>.log``). Later queries
connect to its Unix socket (``$XDG_RUNTIME_DIR/semcode`` or ``/tmp/semcode-<uid>``, mode 0700), send one JSON
request and read one JSON answer. The daemon exits after ``--idle`` seconds without a request (default 600). One
daemon per key: it holds an exclusive ``flock`` on ``<socket>.lock`` for its whole life, so a second one started by
a concurrent CLI exits at once; a socket left by a crashed daemon refuses connections and is replaced. The daemon
reads the index as another process's writes land (LanceDB commits are atomic), so `semcode index` and a running
daemon need no coordination. ``--no-daemon`` (or ``$SEMCODE_NO_DAEMON=1``) keeps a CLI query cold and alone.

The protocol (one request per connection, newline-terminated JSON both ways): ``{"version", "cmd": "search" |
"related" | "status" | "ping" | "stop", "args": {...}}`` -> ``{"ok": true, ...}`` or ``{"ok": false, "error": msg,
"expected": bool}``; an expected error is one the CLI prints as ``semcode: error: ...`` (exit 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from indexer.store import Hit, StoredChunk
    from semcode.engine import Engine
    from semcode.settings import Settings
    from semcode.workspace import Folder

log = logging.getLogger(__name__)
PROTOCOL = 1  # bump when a request or answer changes; a daemon of another version is stopped and replaced
IDLE_S = 600.0
CONNECT_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 120.0  # a query may wait for the daemon's model to finish loading
NO_DAEMON_ENV = "SEMCODE_NO_DAEMON"


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


# -- where a daemon lives ------------------------------------------------------------------------------------------


def runtime_dir() -> Path:
    """A private folder for sockets: ``$XDG_RUNTIME_DIR/semcode``, else ``/tmp/semcode-<uid>`` (mode 0700)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    tmp = os.environ.get("TMPDIR") or "/tmp"
    folder = Path(base) / "semcode" if base else Path(tmp) / f"semcode-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to another user; set XDG_RUNTIME_DIR")
    return folder


def daemon_key(settings: Settings, index_dir: str) -> str:
    """What a daemon serves: one index folder with one model and encoder settings."""
    from indexer.storage import is_uri

    where = index_dir if is_uri(index_dir) else str(Path(index_dir).resolve())  # a URI as it is (Path folds its //)
    parts = [where, settings.resolved_model(), str(settings.device), str(settings.dtype)]
    parts += [str(settings.threads), str(settings.max_tokens)]
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=8).hexdigest()


def socket_path(settings: Settings, index_dir: str) -> Path:
    return runtime_dir() / f"{daemon_key(settings, index_dir)}.sock"


# -- the CLI's side --------------------------------------------------------------------------------------------------


def ask(sock: Path, cmd: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The daemon's answer, or None when no daemon answers at `sock` (a stale socket file is removed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(CONNECT_TIMEOUT_S)
        try:
            s.connect(str(sock))
        except FileNotFoundError:
            return None
        except (ConnectionRefusedError, TimeoutError, OSError):
            with contextlib.suppress(OSError):
                sock.unlink()  # a crashed daemon's socket: nobody listens
            return None
        s.settimeout(ANSWER_TIMEOUT_S)
        try:
            s.sendall(json.dumps({"version": PROTOCOL, "cmd": cmd, "args": args}).encode() + b"\n")
            answer: dict[str, Any] = json.loads(_read_line(s))
        except (OSError, ValueError):
            return None  # it died meanwhile: the caller answers cold
    if answer.get("version") != PROTOCOL:
        stop(sock)
        return None
    return answer


def _read_line(s: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        part = s.recv(65536)
        if not part:
            raise ConnectionError("the daemon closed the connection")
        data += part
    return bytes(data)


def stop(sock: Path) -> None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(CONNECT_TIMEOUT_S)
        s.connect(str(sock))
        s.sendall(json.dumps({"version": PROTOCOL, "cmd": "stop", "args": {}}).encode() + b"\n")


def spawn(settings: Settings, index_dir: str, root: Path, sock: Path, idle_s: float = IDLE_S) -> None:
    """Start a daemon for this key in the background (it exits at once if another one holds the key)."""
    import subprocess

    cmd = [sys.executable, "-m", "lsp_server.cli", "daemon", "--index-dir", index_dir, "--root", str(root)]
    cmd += ["--model", settings.resolved_model(), "--idle", str(idle_s)]
    for flag, value in (("--device", settings.device), ("--dtype", settings.dtype), ("--threads", settings.threads)):
        if value is not None:
            cmd += [flag, str(value)]
    if settings.max_tokens is not None:
        cmd += ["--max-tokens", str(settings.max_tokens)]
    with open(f"{sock}.log", "ab") as out:
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)


# -- the daemon's side -----------------------------------------------------------------------------------------------


class Daemon:
    """Answers requests for one index folder (see the module docstring)."""

    def __init__(self, engine: Engine, sock: Path, idle_s: float) -> None:
        self.engine, self.sock, self.idle_s = engine, sock, idle_s
        self.running = True
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
            server.listen(16)
            server.settimeout(1.0)
            log.info("daemon %d serving %s", os.getpid(), self.sock)
            last = time.monotonic()
            while self.running and time.monotonic() - last < self.idle_s:
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    self.answer(conn)
                last = time.monotonic()
        with contextlib.suppress(FileNotFoundError):
            self.sock.unlink()

    def answer(self, conn: socket.socket) -> None:
        conn.settimeout(ANSWER_TIMEOUT_S)
        try:
            request = json.loads(_read_line(conn))
            out = {"version": PROTOCOL, "ok": True} | self.handle(request)
        except (OSError, ValueError) as e:  # a client that went away or sent garbage: its problem only
            out = {"version": PROTOCOL, "ok": False, "error": str(e), "expected": isinstance(e, ValueError)}
        except Exception as e:
            log.exception("request failed")
            out = {"version": PROTOCOL, "ok": False, "error": f"{type(e).__name__}: {e}", "expected": False}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(out).encode() + b"\n")

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
    from semcode.engine import SearchQuery

    q = SearchQuery(args["query"], args["limit"], args["mode"], args.get("paths"), args.get("languages"))
    hits = engine.search(q, repo=args.get("repo"), everywhere=args.get("everywhere", False))
    if not hits and engine.store(folder, create=False) is not None:
        folder.refresh_counts()
    out = {"hits": [hit_row(h) for h in hits], "indexed_files": folder.files + folder.skipped if not hits else None}
    return out | ({"warnings": list(q.warnings)} if q.warnings else {})  # a query cut to semcode.limits


def run_daemon(settings: Settings, index_dir: str, root: Path, idle_s: float) -> int:
    """``semcode daemon``: take the key's lock (or leave it to the daemon holding it), load the model and the
    index, then serve until idle."""
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
