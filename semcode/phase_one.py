"""Phase 1 of a new index in a child process, beside the server that asked for it.

A server started on a repository with no index yet (``semcode mcp``, the language server) has its own imports to do
just when phase 1 should run: the MCP SDK and LanceDB cost about 1.5 s of one interpreter lock on two cores, and
phase 1 (read, chunk, write the rows) waits for that lock in the same process. Run apart, phase 1 has a core of its
own: the child reads, chunks and writes every file's rows and the full-text index (``Engine.index_folder(embed=
False)``), while the server's threads import what they need; then the server's own run finds every file indexed and
goes straight to phase 2 (embedding). The index is the one an in-process run writes: the same code writes it.

- Only for a new local index of a tree with at least ``APART_MIN_FILES`` files (a small tree is indexed before a
  child would have started), and only where the front door asks (``Engine(phase_one_apart=True)``).
- While the child runs, the server does not open that index (``Engine.store`` gives None for it: two processes
  creating one index's tables would race); its answers say the index is being built, with the child's progress.
- The child stops at its next file when the server is gone (its parent changes) or kills it (a server closing);
  what it committed stays, as after any kill, and the next run completes it. A child that fails leaves the work
  to the in-process run, which logs why.

The child: ``python -m semcode.phase_one`` with one JSON object on stdin (the settings and the root), one JSON
object per progress line on stdout (``{"done": N, "total": M}``), exit status 0 when every file is indexed by text.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .settings import Settings
from .workspace import Folder

log = logging.getLogger(__name__)

CHILD = "semcode.phase_one"  # the module the child runs
APART_MIN_FILES = 64  # below this many files, phase 1 ends before a child would have imported its modules
POLL_S = 0.2  # how often the parent checks for a cancellation while it waits for the child


def worth_apart(settings: Settings, folder: Folder) -> bool:
    """Whether `folder`'s next run should do its phase 1 in a child: a local index that does not exist yet, of a
    tree with at least ``APART_MIN_FILES`` files the walk takes."""
    where = settings.index_location(folder.index_dir)
    if where.remote or where.exists():
        return False
    from indexer.discover import discover

    found = 0
    for item in discover(folder.root, settings.discover_options()):
        found += isinstance(item, str)
        if found >= APART_MIN_FILES:
            return True
    return False


@dataclass(frozen=True)
class ChildProgress:
    """One progress line of the child: files looked at of all, chunk rows written, seconds since it started."""

    done: int
    total: int
    chunks: int
    seconds: float


def run_apart(
    settings: Settings,
    folder: Folder,
    progress: Callable[[ChildProgress], None],
    cancelled: Callable[[], bool],
    meanwhile: Callable[[], None] = lambda: None,
) -> bool:
    """Phase 1 of `folder` in a child process; ``meanwhile()`` runs on a thread of its own while the child works
    (e.g. the imports the rest of the run needs; joined before this returns). ``progress`` for each line the child
    reports (one per batch of rows it commits). True when the child indexed every file by text; False
    when it failed (logged) or was cancelled (killed)."""
    spec = {"root": str(folder.root), "settings": _settings_json(settings)}
    child = subprocess.Popen(
        [sys.executable, "-m", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SEMCODE_NO_DAEMON": "1"},
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdin.write(json.dumps(spec).encode())
    child.stdin.close()
    warming = threading.Thread(target=meanwhile, name="semcode-warm", daemon=True)
    warming.start()
    try:
        for line in _lines(child.stdout, cancelled):
            r = json.loads(line)
            progress(ChildProgress(int(r["done"]), int(r["total"]), int(r["chunks"]), float(r["seconds"])))
    except _Stop:
        child.kill()
        child.wait()
        return False
    finally:
        warming.join()
    status = child.wait()
    errors = child.stderr.read().decode("utf-8", "replace").strip()
    if status != 0:
        log.warning("phase 1 of %s in a child process failed (status %s): %s", folder.root, status, errors[-2000:])
        return False
    return True


class _Stop(Exception):
    pass


def _lines(stream: object, cancelled: Callable[[], bool]) -> Iterator[bytes]:
    """The child's stdout lines until it closes it; ``_Stop`` once `cancelled()` says so."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    pending = b""
    while True:
        if cancelled():
            raise _Stop
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())


def _settings_json(settings: Settings) -> dict[str, object]:
    data = dataclasses.asdict(settings)
    data["storage_options"] = dict(settings.storage_options) if settings.storage_options is not None else None
    return data


def _settings_from(data: dict[str, object]) -> Settings:
    fields = {f.name for f in dataclasses.fields(Settings)}
    known = {k: v for k, v in data.items() if k in fields}
    known["extra_excludes"] = tuple(known.get("extra_excludes") or ())  # type: ignore[arg-type]
    return Settings(**known)  # type: ignore[arg-type]


def main() -> int:
    """The child: phase 1 of the root on stdin, progress on stdout."""
    from indexer.index import Progress

    from .engine import Engine

    spec = json.loads(sys.stdin.read())
    parent = os.getppid()
    engine = Engine(_settings_from(spec["settings"]), [Path(spec["root"])])
    folder = engine.folders[0]

    def report(p: Progress) -> None:
        line = {"done": p.files_done, "total": p.files_total, "chunks": p.chunks_written, "seconds": p.seconds}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    try:
        result = engine.index_folder(folder, report, cancelled=lambda: os.getppid() != parent, embed=False)
    finally:
        engine.close()
    return 0 if not result.cancelled else 1


if __name__ == "__main__":
    sys.exit(main())
