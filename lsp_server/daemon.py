"""The CLI's warm helper, the daemon's side: ``semcode daemon serve`` is the user's one daemon. It answers the CLI's
`search`, `related` and `status` for every index folder and model over one Unix socket: one engine per (index
folder, model settings), opened on its first request, the engines of one model sharing its loaded encoders
(``semcode.models.ModelCache``: four indexes hold one model, not four). An index unused for ``--index-idle`` seconds
is closed (its engine and store dropped) and a model no open index used for as long is dropped; the daemon exits
after ``--idle`` seconds without a request. Life cycle, protocol and the CLI's side: ``daemon_client.py`` (whose
names are re-exported here)."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import inf
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypedDict

from semcode.models import ModelCache, ModelKey

from .daemon_client import (
    IDLE_S,
    INDEX_IDLE_S,
    LOCK_WAIT_S,
    MAX_CONNECTIONS,
    MAX_REQUEST_BYTES,
    NO_DAEMON_ENV,
    PROTOCOL,
    REQUEST_TIMEOUT_S,
    SEND_TIMEOUT_S,
    Lines,
    Target,
    ask,
    index_key,
    runtime_dir,
    socket_path,
    spawn,
    stop,
    target,
)

if TYPE_CHECKING:
    from indexer.store import Hit, StoredChunk
    from semcode.engine import Engine
    from semcode.workspace import Folder

log = logging.getLogger(__name__)
__all__ = [  # with the CLI's side (daemon_client), for callers that hold this module (tests, benchmarks)
    "IDLE_S", "INDEX_IDLE_S", "NO_DAEMON_ENV", "PROTOCOL", "Daemon", "HitRow", "Target", "answer_here", "ask",
    "chunk_row", "hit_row", "run_daemon", "runtime_dir", "search_rows", "socket_path", "spawn", "stop", "target",
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


# -- the index commands: one answer, warm (the daemon) or cold (the CLI's own process) -------------------------------


def search_rows(engine: Engine, folder: Folder, args: dict[str, Any]) -> dict[str, Any]:
    """A search request's answer: the hits, and when there are none, how many files the folder's index holds (0:
    it was never indexed)."""
    from semcode.query import SearchQuery

    q = SearchQuery(
        args["query"], args["limit"], args["mode"], args.get("paths"), args.get("languages"),
        group_by_file=bool(args.get("group_by_file", False)),
    )  # fmt: skip
    hits = engine.search(q, repo=args.get("repo"), everywhere=args.get("everywhere", False))
    if not hits and engine.store(folder, create=False) is not None:
        folder.refresh_counts()
    out: dict[str, Any] = {"hits": [hit_row(h) for h in hits]}
    out["indexed_files"] = folder.files + folder.skipped if not hits else None
    coverage = engine.coverage(repo=args.get("repo"), everywhere=args.get("everywhere", False))
    out |= {"embedded": coverage.share, "pending": coverage.pending}  # (below 1.0 while a run embeds the index)
    out["partial"] = engine.partial_notes(repo=args.get("repo"), everywhere=args.get("everywhere", False))
    return out | ({"warnings": list(q.warnings)} if q.warnings else {})  # a query cut to semcode.limits


def related_rows(engine: Engine, folder: Folder, args: dict[str, Any]) -> dict[str, Any]:
    chunk, hits = engine.related(
        folder, args["path"], args["line"], args["limit"], languages=args.get("languages"),
        path_glob=args.get("path_glob"),
    )  # fmt: skip
    out = {"chunk": None if chunk is None else chunk_row(chunk), "hits": [hit_row(h) for h in hits]}
    return out | ({"why": engine.why_no_chunk(folder, args["path"], args["line"])} if chunk is None else {})


def index_status(engine: Engine, folder: Folder, args: dict[str, Any]) -> dict[str, Any]:
    store = engine.store(folder, create=False)
    incomplete = store is not None and store.incomplete(folder.repo)
    out = {"stats": engine.stats(folder), "skipped": engine.skipped_files(folder)}
    out["text_only"] = engine.text_only_files(folder)  # indexed, never embedded (lockfiles, data, generated code)
    return out | {"model": engine.model_id(), "incomplete": incomplete}


INDEX_COMMANDS: dict[str, Callable[[Engine, Folder, dict[str, Any]], dict[str, Any]]] = {
    "search": search_rows, "related": related_rows, "status": index_status,
}  # fmt: skip


def served_folder(engine: Engine, root: str) -> Folder:
    """`root`'s folder in `engine`, added on first need (callers that share an engine hold a lock around this)."""
    path = Path(root)
    return engine.add_folder(path) or next(f for f in engine.folders if f.root == path.resolve())


def answer_here(engine: Engine, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
    """An index command answered in this process (the CLI's cold path), by the code the daemon runs."""
    return INDEX_COMMANDS[cmd](engine, served_folder(engine, args["root"]), args)


# -- the daemon's side -----------------------------------------------------------------------------------------------


@dataclass
class OpenIndex:
    """An index the daemon holds: its engine, the model its encoders are shared under, the requests in progress and
    when it was last used (``time.monotonic``)."""

    engine: Engine
    model: ModelKey
    users: int = 0
    last: float = field(default_factory=time.monotonic)
    warming: threading.Thread | None = None  # opening its store and loading its encoder (``warm_up``)

    def warm(self) -> bool:
        return self.warming is not None and self.warming.is_alive()

    def wait_warm(self, timeout_s: float) -> None:
        """Let its warm-up end before the engine closes or the process exits: a thread still loading torch or
        opening LanceDB when the interpreter ends aborts the process ("terminate called without an active
        exception")."""
        if self.warming is not None:
            self.warming.join(timeout_s)


class Daemon:
    """Answers requests for every index (see the module docstring). Each connection is served on a thread of its
    own, at most ``MAX_CONNECTIONS`` at once: an engine's reads may run on any thread, so one slow or hostile client
    holds one thread (for ``REQUEST_TIMEOUT_S`` at most while its request is not whole), never the others."""

    BACKLOG = 64
    EXIT_WAIT_S = 30.0  # how long an exiting daemon (or a closing index) lets the answers in progress finish

    def __init__(self, sock: Path, idle_s: float, index_idle_s: float = INDEX_IDLE_S, threads: int = 1) -> None:
        self.sock, self.idle_s, self.index_idle_s, self.threads = sock, idle_s, index_idle_s, threads
        self.models = ModelCache()
        self.running = True
        self.started = time.monotonic()
        self.lock = threading.Condition()  # guards active, last, indexes, model_used and each engine's folders
        self.active, self.last = 0, time.monotonic()
        self.indexes: dict[tuple[str, ModelKey], OpenIndex] = {}
        self.model_used: dict[ModelKey, float] = {}  # a model's last use by any index (time.monotonic)
        self.handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": self.ping, "close": self.close, "stop": self.stop,
        }  # fmt: skip

    def serve(self) -> None:
        """Listen and answer until idle or stopped (the caller holds the daemon's lock), closing idle indexes."""
        with contextlib.suppress(FileNotFoundError):
            self.sock.unlink()  # ours to replace: we hold the lock
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(self.sock))
            server.listen(self.BACKLOG)
            server.settimeout(1.0)
            with self.lock:  # idle from now on: opening the first index may have taken longer than --idle
                self.last = time.monotonic()
            log.info("daemon %d serving %s", os.getpid(), self.sock)
            while self.running and not self.idle():
                self.sweep()
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                self.start(conn)
        with contextlib.suppress(FileNotFoundError):
            self.sock.unlink()
        with self.lock:  # the answers in progress finish before the engines close
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
        cmd, args = request.get("cmd", ""), request.get("args") or {}
        if cmd in INDEX_COMMANDS:
            with self.using(checked_target(request.get("index")), args["root"]) as (engine, folder):
                return INDEX_COMMANDS[cmd](engine, folder, args)
        handler = self.handlers.get(cmd)
        if handler is None:
            raise ValueError(f"unknown daemon command {cmd!r}")
        return handler(args)

    # -- the indexes it holds -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def using(self, where: Target, root: str) -> Iterator[tuple[Engine, Folder]]:
        """The engine of `where` (opened on first use) and `root`'s folder in it, counted as in use meanwhile: an
        index in use is never closed for idleness."""
        with self.lock:
            held, folder = self.open(where, root)
            held.users += 1
        try:
            yield held.engine, folder
        finally:
            with self.lock:
                held.users -= 1
                held.last = self.model_used[held.model] = time.monotonic()
                self.lock.notify_all()

    def open(self, where: Target, root: str) -> tuple[OpenIndex, Folder]:
        """The open index of `where`, opened now if it is not, and `root`'s folder in it (call with the lock held:
        two requests naming a new index or root at once add it once). A new index opens its store and loads its
        model's encoder on a thread of its own (the encoder shared with the indexes of that model): meanwhile its
        queries are encoded by the torch-free query encoder."""
        from semcode.engine import Engine
        from semcode.settings import Settings

        settings = Settings(
            model=where["model"], index_dir=where["index_dir"], device=where["device"], dtype=where["dtype"],
            max_tokens=where["max_tokens"], threads=self.threads,
        )  # fmt: skip
        key = (where["index_dir"], ModelKey.of(where["model"], settings))
        held = self.indexes.get(key)
        if held is None:
            held = self.indexes[key] = OpenIndex(Engine(settings, models=self.models), key[1])
            self.model_used[key[1]] = time.monotonic()
            folder = served_folder(held.engine, root)
            held.warming = threading.Thread(
                target=warm_up, args=(held.engine,), name="semcode-daemon-load", daemon=True
            )
            held.warming.start()
            log.info("opened %s (%s)", where["index_dir"], where["model"])
            return held, folder
        return held, served_folder(held.engine, root)

    def sweep(self) -> None:
        """Close the indexes unused for ``index_idle_s``, then drop the models no open index used for as long."""
        now = time.monotonic()
        with self.lock:
            idle = [
                k for k, held in self.indexes.items()
                if held.users == 0 and not held.warm() and now - held.last >= self.index_idle_s
            ]  # fmt: skip
            closing = [self.indexes.pop(k) for k in idle]
            in_use = {held.model for held in self.indexes.values()}
            known = dict.fromkeys([*self.models.loaded(), *self.model_used])  # (a closed index may load one late)
            unused = [m for m in known if m not in in_use and now - self.model_used.get(m, -inf) >= self.index_idle_s]
            for m in unused:
                self.model_used.pop(m, None)
        for held in closing:
            log.info("closing %s: idle", held.engine.settings.index_dir)
            held.engine.close_now()  # (its warm-up was over: see `idle`)
        for m in unused:
            if self.models.drop(m):
                log.info("dropped the model %s: idle", m.model)
        if closing or unused:
            release_memory()

    def close_all(self) -> None:
        with self.lock:
            closing, self.indexes = list(self.indexes.values()), {}
        for held in closing:
            held.wait_warm(self.EXIT_WAIT_S)
            held.engine.close_now()

    # -- its own commands ---------------------------------------------------------------------------------------------

    def ping(self, args: dict[str, Any]) -> dict[str, Any]:
        """Who answers and what it holds (`semcode daemon status`): pid, uptime, memory, models, open indexes."""
        now = time.monotonic()
        with self.lock:
            held = list(self.indexes.items())
            used = dict(self.model_used)
        indexes = [
            {"index_dir": index_dir, "model": model.model, "roots": [str(f.root) for f in h.engine.folders],
             "idle_s": round(now - h.last, 1), "in_use": h.users}
            for (index_dir, model), h in held
        ]  # fmt: skip
        models = [
            {"model": m.model, "device": m.device, "dtype": m.dtype, "max_tokens": m.max_tokens,
             "loaded": self.models.kinds(m), "indexes": sum(1 for (_, k), _h in held if k == m),
             "idle_s": round(now - used[m], 1) if m in used else None}
            for m in self.models.loaded()
        ]  # fmt: skip
        return {
            "pid": os.getpid(), "uptime_s": round(now - self.started, 1), "rss_bytes": rss_bytes(),
            "idle_s": self.idle_s, "index_idle_s": self.index_idle_s, "models": models, "indexes": indexes,
        }  # fmt: skip

    def close(self, args: dict[str, Any]) -> dict[str, Any]:
        """Close every open index of the folder ``args["index_dir"]`` (any model), once its answers in progress are
        done: `semcode forget` asks before it deletes the folder."""
        where = index_key(str(args["index_dir"]))
        with self.lock:
            closing = [self.indexes.pop(k) for k in [k for k in self.indexes if k[0] == where]]
            self.lock.wait_for(lambda: all(held.users == 0 for held in closing), self.EXIT_WAIT_S)
        for held in closing:
            held.wait_warm(self.EXIT_WAIT_S)
            held.engine.close_now()
        if closing:
            log.info("closed %s: asked to", where)
            release_memory()
        return {"closed": len(closing)}

    def stop(self, args: dict[str, Any]) -> dict[str, Any]:
        self.running = False
        return {}


def warm_up(engine: Engine) -> None:
    """Open a new index's store and load its encoder, so that its next queries need neither."""
    try:
        for folder in list(engine.folders):
            engine.store(folder, create=False)
        engine.load_encoder()
    except Exception:  # a broken model or index: each query says so in its own answer
        log.exception("opening %s failed", engine.settings.index_dir)


def checked_target(raw: object) -> Target:
    """A request's ``index``, its fields checked (a ValueError names what is wrong)."""
    if not isinstance(raw, dict):
        raise ValueError("an index command names its index: {index_dir, model, device, dtype, max_tokens}")
    for name in ("index_dir", "model"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise ValueError(f"the request's index.{name} must be a non-empty string")
    for name, kind in (("device", str), ("dtype", str), ("max_tokens", int)):
        value = raw.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ValueError(f"the request's index.{name} must be {kind.__name__} or null")
    return Target(
        index_dir=index_key(raw["index_dir"]), model=raw["model"], device=raw.get("device"), dtype=raw.get("dtype"),
        max_tokens=raw.get("max_tokens"),
    )  # fmt: skip


def rss_bytes() -> int | None:
    """This process's resident memory (``VmRSS`` of /proc/self/status); None where there is no /proc."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def release_memory() -> None:
    """Give what closed indexes and dropped models held back to the system: their cycles collected, then glibc's
    free heap trimmed (the encoder asks glibc to keep freed blocks for its next batch: ``encoder.device``)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run_daemon(idle_s: float, index_idle_s: float, threads: int | None, first: tuple[Target, str] | None) -> int:
    """``semcode daemon serve``: take the daemon's lock (or leave it to the daemon holding it), open `first` (the
    index the CLI that started it asked about) and serve until idle or stopped."""
    sock = socket_path()
    with open(f"{sock}.lock", "w") as lock:  # held for the daemon's whole life
        if not take_lock(lock, LOCK_WAIT_S):
            return 0  # another daemon serves
        daemon = Daemon(sock, idle_s, index_idle_s, threads or 1)  # one query at a time: a second thread costs CPU
        try:
            if first is not None:
                with daemon.lock:
                    daemon.open(*first)
            daemon.serve()
        finally:
            daemon.close_all()
    return 0


def take_lock(lock: IO[str], wait_s: float) -> bool:
    """An exclusive ``flock`` on `lock`, waiting up to `wait_s` for a daemon that is stopping (one of another
    version, say) to let it go; False when another daemon keeps it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
