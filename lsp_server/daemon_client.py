"""The CLI's warm helper, the CLI's side: where the daemon lives, asking it, starting and stopping it. It imports no
logging, no model code and no LanceDB, so that a warm query costs little more than starting Python; the daemon's side
is ``daemon.py``.

The warm helper: one daemon per user keeps the indexes in use and their models loaded, so that `semcode search`,
`related` and `status` answer in milliseconds instead of paying for imports and model loading every time (as dmypy
and eslint_d do). It serves every index folder and model: a request names both (``Target``), and the daemon keeps one
engine per (index folder, model settings), all of a model sharing one loaded encoder (``semcode.models``), so four
indexes cost little more memory than one.

Life cycle: the first CLI query finds no daemon, answers cold in its own process, and starts one in the background
(``semcode daemon serve``, a new session, its output in ``<socket>.log``), which opens that index at once. Later
queries connect to its Unix socket (``daemon.sock`` in ``$XDG_RUNTIME_DIR/semcode`` or ``/tmp/semcode-<uid>``, mode
0700), send one JSON request and read one JSON answer; an index it does not hold yet is opened on its first request.
An index unused for ``INDEX_IDLE_S`` is closed (its engine and store dropped), a model no open index uses for as long
is dropped, and the daemon exits after ``IDLE_S`` without a request. `semcode forget` first tells it to close the
index it deletes (``close_index``); `semcode daemon status` shows it (pid, uptime, memory, models, indexes) and
`semcode daemon stop` ends it. One daemon: it holds an exclusive ``flock`` on ``<socket>.lock`` for its whole life, so
a second one started by a concurrent CLI exits (after waiting ``LOCK_WAIT_S`` for a stopping one to go); a socket
left by a crashed daemon refuses connections and is replaced. The daemon reads an index as another process's writes
land (LanceDB commits are atomic), so `semcode index` and a running daemon need no coordination. ``--no-daemon`` (or
``$SEMCODE_NO_DAEMON=1``) keeps a CLI query cold and alone.

The protocol (one request per connection, newline-terminated JSON both ways): ``{"version", "cmd", "args": {...}}``
with ``"index": Target`` for the index commands (``"search" | "related" | "status"``), or one of the daemon's own
(``"ping"``: what it holds; ``"close"``: drop an index folder; ``"stop"``) -> ``{"version", "accepted": true}`` at
once, then ``{"ok": true, ...}`` or ``{"ok": false, "error": msg, "expected": bool}``; an expected error is one the
CLI prints as ``semcode: error: ...`` (exit 2). A request that is not whole within ``REQUEST_TIMEOUT_S`` or longer
than ``MAX_REQUEST_BYTES`` gets an error answer (no acknowledgement) and the connection is closed. A daemon asked in
another version stops, and the CLI starts one of its own.

Other local processes, friendly or not: the daemon serves each connection on its own thread (at most
``MAX_CONNECTIONS``; past them a ``busy`` answer), so a client that sends half a request holds one thread for a few
seconds, not the daemon. The CLI waits ``ACK_TIMEOUT_S`` for the acknowledgement (a daemon that is stopped, swamped
or stuck), then answers cold with one line on stderr; a full listen backlog (EAGAIN) is the same, and only a socket
that refuses connections is taken for a dead daemon's and removed. A runtime folder that is not the user's own
(another user created ``/tmp/semcode-<uid>`` first) or that others may enter is never used: the CLI answers cold
and says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from semcode.config import configured_model

if TYPE_CHECKING:
    pass

PROTOCOL = 4  # bump when a request or answer changes; a daemon of another version is stopped and replaced
IDLE_S = 600.0  # the daemon exits after this long without a request
INDEX_IDLE_S = 600.0  # an index unused this long is closed, and a model no open index used this long is dropped
LOCK_WAIT_S = 10.0  # a new daemon waits this long for a stopping one to release the lock
CONNECT_TIMEOUT_S = 2.0
ACK_TIMEOUT_S = 5.0  # a daemon that has not acknowledged a request by then is not waited for: the CLI answers cold
ANSWER_TIMEOUT_S = 120.0  # once acknowledged, a query may take its time (semcode.limits.SEARCH_DEADLINE_S and more)
REQUEST_TIMEOUT_S = 5.0  # the daemon's wait for a whole request line
SEND_TIMEOUT_S = 10.0  # the daemon's wait for a client to take its answer
MAX_REQUEST_BYTES = 1 << 20  # a request line longer than this is refused (a query is at most a few KB)
MAX_CONNECTIONS = 16  # connections the daemon serves at once; past them it answers "busy" at once
NO_DAEMON_ENV = "SEMCODE_NO_DAEMON"
SOCKET_NAME = "daemon.sock"


# -- where the daemon lives ----------------------------------------------------------------------------------------


class UnsafeRuntimeDir(PermissionError):
    """The runtime folder is not the user's own private folder (see ``runtime_dir``)."""


def runtime_dir(create: bool = True) -> Path:
    """A private folder for sockets: ``$XDG_RUNTIME_DIR/semcode``, else ``$TMPDIR/semcode-<uid>`` (mode 0700).
    Raises ``UnsafeRuntimeDir`` when it is not a real folder of this user's that nobody else may enter (another user
    may have created it first, or a symlink in its place): nothing is connected to or created there then. With
    `create` False a missing folder is not made (FileNotFoundError): asking whether a daemon runs creates nothing."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    tmp = os.environ.get("TMPDIR") or "/tmp"
    folder = Path(base) / "semcode" if base else Path(tmp) / f"semcode-{os.getuid()}"
    if create:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700, parents=True)
    st = folder.lstat()  # not stat: a symlink someone else planted is refused, not followed
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise UnsafeRuntimeDir(f"{folder} is not a folder of yours (another user may have made it first)")
    if st.st_mode & 0o077:
        raise UnsafeRuntimeDir(f"{folder} is open to other users (mode {stat.S_IMODE(st.st_mode):o}, expected 700)")
    return folder


def socket_path() -> Path:
    """The socket of the user's one daemon, whatever the index and model (requests name those: ``Target``)."""
    return runtime_dir() / SOCKET_NAME


def running_socket() -> Path | None:
    """The daemon's socket when one may be listening there (the file exists); None when there is none, or no safe
    runtime folder. Creates nothing."""
    try:
        sock = runtime_dir(create=False) / SOCKET_NAME
    except OSError:  # no runtime folder (so no daemon), or one that is not ours to use
        return None
    return sock if sock.exists() else None


class Target(TypedDict):
    """What an index command is about: one index folder read with one model, loaded so (the settings of a
    ``semcode.models.ModelKey``). Resolved by the CLI (``target``): the daemon serves CLIs of any folder and
    environment."""

    index_dir: str
    model: str
    device: str | None
    dtype: str | None
    max_tokens: int | None


def index_key(index_dir: str) -> str:
    """One name per index: a local folder resolved (the daemon's current folder is not the CLI's), a URI as it is
    (Path would fold its //)."""
    from indexer.storage import is_uri

    return index_dir if is_uri(index_dir) else str(Path(index_dir).resolve())


def target(index_dir: str, model: str | None, device: str | None, dtype: str | None,
           max_tokens: int | None) -> Target:  # fmt: skip
    """The ``Target`` of a CLI's flags (taken one by one: the warm path names it without building a ``Settings``):
    the model by the front doors' resolution (``configured_model``), a local model folder made absolute."""
    name = configured_model(model)
    folder = Path(name).expanduser()
    name = str(folder.resolve()) if folder.is_dir() else name
    return Target(index_dir=index_key(index_dir), model=name, device=device, dtype=dtype, max_tokens=max_tokens)


# -- the CLI's side --------------------------------------------------------------------------------------------------


def ask(sock: Path, cmd: str, args: dict[str, Any], index: Target | None = None) -> dict[str, Any] | None:
    """The daemon's answer to `cmd` (about `index`, for an index command); None when no daemon listens at `sock` (a
    socket that refuses connections, a dead daemon's, is removed); ``{"ok": false, "busy": true, "error": ...}`` when
    one is there but does not take or acknowledge the request in time (the caller answers cold and starts no
    other)."""
    request = {"version": PROTOCOL, "cmd": cmd, "args": args} | ({"index": index} if index is not None else {})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(CONNECT_TIMEOUT_S)
        try:
            s.connect(str(sock))
        except FileNotFoundError:
            return None
        except ConnectionRefusedError:
            with contextlib.suppress(OSError):
                sock.unlink()  # a crashed daemon's socket: nobody listens
            return None
        except OSError as e:  # EAGAIN (its backlog is full), a timeout, ...: a daemon is there, busy; leave it be
            return busy(sock, "does not accept connections" if e.errno == errno.EAGAIN else f"cannot be reached ({e})")
        lines, wait = Lines(s), ACK_TIMEOUT_S
        try:
            s.sendall(json.dumps(request).encode() + b"\n")
            answer: dict[str, Any] = json.loads(lines.next(wait))
            if answer.get("accepted") and answer.get("version") == PROTOCOL:
                wait = ANSWER_TIMEOUT_S
                answer = json.loads(lines.next(wait))
        except TimeoutError:
            return busy(sock, f"did not answer within {wait:g} s")
        except (OSError, ValueError):
            return None  # it died meanwhile: the caller answers cold
    if answer.get("version") != PROTOCOL:
        stop(sock)
        return None
    return answer


def busy(sock: Path, what: str) -> dict[str, Any]:
    return {"version": PROTOCOL, "ok": False, "busy": True, "expected": False, "error": f"the daemon at {sock} {what}"}


class Lines:
    """Newline-terminated lines read from a socket, each within its own deadline (not per ``recv``: a sender of one
    byte a second would never time out) and, when given, a size limit."""

    def __init__(self, s: socket.socket) -> None:
        self.s, self.data = s, bytearray()

    def next(self, seconds: float, limit: int | None = None) -> bytes:
        deadline, seen = time.monotonic() + seconds, 0
        while (end := self.data.find(b"\n", seen)) < 0:
            if limit is not None and len(self.data) > limit:
                raise ValueError(f"a request over {limit} bytes")
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                self.s.settimeout(left)
                part = self.s.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"no whole line within {seconds:g} s") from None
            if not part:
                raise ConnectionError("the other side closed the connection")
            seen = len(self.data)
            self.data += part
        if limit is not None and end > limit:
            raise ValueError(f"a request over {limit} bytes")
        line = bytes(self.data[: end + 1])
        del self.data[: end + 1]
        return line


def stop(sock: Path) -> None:
    """Ask the daemon at `sock` to stop (it finishes the answers in progress); does not wait (``wait_gone``)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(CONNECT_TIMEOUT_S)
        s.connect(str(sock))
        s.sendall(json.dumps({"version": PROTOCOL, "cmd": "stop", "args": {}}).encode() + b"\n")


def wait_gone(sock: Path, timeout: float) -> bool:
    """Wait up to `timeout` seconds for the daemon of `sock` to exit (its lock released); True once it has."""
    import fcntl

    deadline = time.monotonic() + timeout
    with open(f"{sock}.lock", "a") as lock:  # (a missing lock file: no daemon ever ran here)
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
                continue
            fcntl.flock(lock, fcntl.LOCK_UN)  # (held for an instant: a daemon starting meanwhile waits for it)
            return True


def running_daemon() -> tuple[Path, dict[str, Any]] | None:
    """(the daemon's socket, its `ping` answer: what it holds); None when none runs. Raises ValueError for one that
    does not answer (stopped, swamped)."""
    sock = running_socket()
    answer = None if sock is None else ask(sock, "ping", {})
    if answer is not None and not answer["ok"]:
        raise ValueError(answer["error"])
    return None if sock is None or answer is None else (sock, answer)


def stop_running(wait_s: float = 60.0) -> int | None:
    """Stop the running daemon and wait until it is gone (`semcode daemon stop`): its pid; None when none ran.
    Raises ValueError when it still runs after `wait_s` seconds."""
    found = running_daemon()
    if found is None:
        return None
    sock, pid = found[0], int(found[1]["pid"])
    stop(sock)
    if not wait_gone(sock, wait_s):
        raise ValueError(f"asked the daemon (pid {pid}) to stop; it still runs after {wait_s:g} s")
    return pid


def close_index(index_dir: str) -> str | None:
    """Tell a running daemon to close `index_dir` (`semcode forget` does before deleting it, so that no daemon
    holds a deleted index). None when it did or no daemon runs; else why not (one that does not answer)."""
    sock = running_socket()
    answer = None if sock is None else ask(sock, "close", {"index_dir": index_key(index_dir)})
    return None if answer is None or answer["ok"] else str(answer["error"])


def spawn(sock: Path, first: Target, root: Path, idle_s: float = IDLE_S) -> None:
    """Start the daemon in the background, opening `first` (for `root`) at once (it exits if another one holds the
    lock)."""
    import subprocess

    cmd = [sys.executable, "-m", "lsp_server.cli", "daemon", "serve", "--idle", str(idle_s), "--root", str(root)]
    cmd += ["--index-dir", first["index_dir"], "--model", first["model"]]
    for flag, value in (
        ("--device", first["device"]),
        ("--dtype", first["dtype"]),
        ("--max-tokens", first["max_tokens"]),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    # run from the runtime folder, not the CLI's: `python -m` puts the current folder first on sys.path, and a
    # repository's own encoder.py or indexer/ must not stand in for semcode's (nor the daemon pin that folder)
    source = str(Path(__file__).resolve().parent.parent)  # where lsp_server was imported from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(f"{sock}.log", "ab") as out:
        subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, cwd=sock.parent, env=env
        )


def status_lines(sock: Path, answer: dict[str, Any]) -> list[str]:
    """`semcode daemon status` as text, from the daemon's `ping` answer."""
    rss = answer.get("rss_bytes")
    memory = f", {rss / 1e6:.1f} MB resident" if rss is not None else ""
    lines = [f"daemon: pid {answer['pid']}, up {duration(answer['uptime_s'])}{memory}; socket {sock}"]
    lines.append(
        f"  exits after {duration(answer['idle_s'])} without a request; closes an index (and drops a model) unused "
        f"for {duration(answer['index_idle_s'])}"
    )
    lines.append(f"models loaded: {len(answer['models'])}")
    for m in answer["models"]:
        how = ", ".join(f"{k} {m[k]}" for k in ("device", "dtype", "max_tokens") if m[k] is not None)
        idle = "" if m["idle_s"] is None else f", idle {duration(m['idle_s'])}"
        used = f"used by {m['indexes']} open {'index' if m['indexes'] == 1 else 'indexes'}"
        lines.append(f"  {m['model']}{f' ({how})' if how else ''}: {' + '.join(m['loaded'])}; {used}{idle}")
    lines.append(f"indexes open: {len(answer['indexes'])}")
    for i in answer["indexes"]:
        busy = f", {i['in_use']} requests in progress" if i["in_use"] else ""
        lines.append(f"  {i['index_dir']}: idle {duration(i['idle_s'])}{busy}; model {i['model']}")
        lines += [f"    root {root}" for root in i["roots"]]
    return lines


def duration(seconds: float) -> str:
    """12.3 s, 4 min 5 s, 10 min, 2 h 3 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
