"""The CLI's warm helper, the CLI's side: where a daemon lives, asking it, starting and stopping it. It imports no
logging, no model code and no LanceDB, so that a warm query costs little more than starting Python; the daemon's side
is ``daemon.py``.

The warm helper: a small daemon that keeps one index folder and its model loaded, so that `semcode search`,
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
"related" | "status" | "ping" | "stop", "args": {...}}`` -> ``{"version", "accepted": true}`` at once, then
``{"ok": true, ...}`` or ``{"ok": false, "error": msg, "expected": bool}``; an expected error is one the CLI prints as
``semcode: error: ...`` (exit 2). A request that is not whole within ``REQUEST_TIMEOUT_S`` or longer than
``MAX_REQUEST_BYTES`` gets an error answer (no acknowledgement) and the connection is closed.

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
from typing import TYPE_CHECKING, Any

from semcode.config import configured_model, short_hash

if TYPE_CHECKING:
    from semcode.settings import Settings

PROTOCOL = 3  # bump when a request or answer changes; a daemon of another version is stopped and replaced
IDLE_S = 600.0
CONNECT_TIMEOUT_S = 2.0
ACK_TIMEOUT_S = 5.0  # a daemon that has not acknowledged a request by then is not waited for: the CLI answers cold
ANSWER_TIMEOUT_S = 120.0  # once acknowledged, a query may take its time (semcode.limits.SEARCH_DEADLINE_S and more)
REQUEST_TIMEOUT_S = 5.0  # the daemon's wait for a whole request line
SEND_TIMEOUT_S = 10.0  # the daemon's wait for a client to take its answer
MAX_REQUEST_BYTES = 1 << 20  # a request line longer than this is refused (a query is at most a few KB)
MAX_CONNECTIONS = 16  # connections the daemon serves at once; past them it answers "busy" at once
NO_DAEMON_ENV = "SEMCODE_NO_DAEMON"


# -- where a daemon lives ------------------------------------------------------------------------------------------


class UnsafeRuntimeDir(PermissionError):
    """The runtime folder is not the user's own private folder (see ``runtime_dir``)."""


def runtime_dir() -> Path:
    """A private folder for sockets: ``$XDG_RUNTIME_DIR/semcode``, else ``$TMPDIR/semcode-<uid>`` (mode 0700).
    Raises ``UnsafeRuntimeDir`` when it is not a real folder of this user's that nobody else may enter (another user
    may have created it first, or a symlink in its place): nothing is connected to or created there then."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    tmp = os.environ.get("TMPDIR") or "/tmp"
    folder = Path(base) / "semcode" if base else Path(tmp) / f"semcode-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    st = folder.lstat()  # not stat: a symlink someone else planted is refused, not followed
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise UnsafeRuntimeDir(f"{folder} is not a folder of yours (another user may have made it first)")
    if st.st_mode & 0o077:
        raise UnsafeRuntimeDir(f"{folder} is open to other users (mode {stat.S_IMODE(st.st_mode):o}, expected 700)")
    return folder


def daemon_key(index_dir: str, model: str | None, device: str | None, dtype: str | None, threads: int | None,
               max_tokens: int | None) -> str:  # fmt: skip
    """What a daemon serves: one index folder with one model and encoder settings (those of ``Settings``, taken one
    by one: the CLI's warm path names its daemon without building a ``Settings``)."""
    from indexer.storage import is_uri

    where = index_dir if is_uri(index_dir) else str(Path(index_dir).resolve())  # a URI as it is (Path folds its //)
    parts = [where, configured_model(model), str(device), str(dtype), str(threads), str(max_tokens)]
    return short_hash("\0".join(parts), 8)


def socket_path(settings: Settings, index_dir: str) -> Path:
    """The socket of the daemon serving `index_dir` with `settings`."""
    s = settings
    return runtime_dir() / f"{daemon_key(index_dir, s.model, s.device, s.dtype, s.threads, s.max_tokens)}.sock"


# -- the CLI's side --------------------------------------------------------------------------------------------------


def ask(sock: Path, cmd: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The daemon's answer; None when no daemon listens at `sock` (a socket that refuses connections, a dead
    daemon's, is removed); ``{"ok": false, "busy": true, "error": ...}`` when one is there but does not take or
    acknowledge the request in time (the caller answers cold and starts no other)."""
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
            s.sendall(json.dumps({"version": PROTOCOL, "cmd": cmd, "args": args}).encode() + b"\n")
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
