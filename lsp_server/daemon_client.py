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
"related" | "status" | "ping" | "stop", "args": {...}}`` -> ``{"ok": true, ...}`` or ``{"ok": false, "error": msg,
"expected": bool}``; an expected error is one the CLI prints as ``semcode: error: ...`` (exit 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semcode.config import configured_model, short_hash

if TYPE_CHECKING:
    from semcode.settings import Settings

PROTOCOL = 2  # bump when a request or answer changes; a daemon of another version is stopped and replaced
IDLE_S = 600.0
CONNECT_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 120.0  # a query may wait for the daemon's model to finish loading
NO_DAEMON_ENV = "SEMCODE_NO_DAEMON"


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
            answer: dict[str, Any] = json.loads(read_line(s))
        except (OSError, ValueError):
            return None  # it died meanwhile: the caller answers cold
    if answer.get("version") != PROTOCOL:
        stop(sock)
        return None
    return answer


def read_line(s: socket.socket) -> bytes:
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
