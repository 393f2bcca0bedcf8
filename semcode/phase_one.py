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

The child: ``python -m semcode.phase_one`` with one JSON object on stdin (the settings and the root); on stdout
``{"opened": true}`` once it has created the index's tables and indexes (the server then opens the index beside it,
which writes nothing more, so that opening is off the first search's path), then one JSON object per batch
(``{"done", "total", "chunks", "seconds"}``: files looked at of all, chunk rows written); exit status 0 when every
file is indexed by text.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .settings import Settings
from .workspace import Folder

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from indexer.index import Progress

CHILD = "semcode.phase_one"  # the module the child runs
APART_MIN_FILES = 64  # below this many files, phase 1 ends before a child would have imported its modules
POLL_S = 0.2  # how often the parent checks for a cancellation while it waits for the child
WAIT_S = 5.0  # how long a search waits for a new index's phase 1 in a child process (``PhaseOneApart.wait``)


def worth_apart(settings: Settings, folder: Folder) -> bool:
    """Whether `folder`'s next run should do its phase 1 in a child: a local index that does not exist yet, of a
    tree with at least ``APART_MIN_FILES`` files the walk takes (not on Windows, where ``select`` takes no pipes)."""
    where = settings.index_location(folder.index_dir)
    if os.name == "nt" or where.remote or where.exists():
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
    opened: Callable[[], None] = lambda: None,
) -> bool:
    """Phase 1 of `folder` in a child process; ``meanwhile()`` runs on a thread of its own while the child works
    (e.g. the imports the rest of the run needs; joined before this returns). ``opened()`` once the child has
    created the index's tables and indexes (a failure there is logged: the child goes on), ``progress`` for each
    line the child reports (one per batch of rows it commits). True when the child indexed every file by text;
    False when it failed (logged) or was cancelled (killed)."""
    spec: dict[str, object] = {"root": str(folder.root), "settings": _settings_json(settings)}
    with tempfile.TemporaryFile() as errors:  # (a pipe read only at the end could fill up and stall a chatty child)
        status = _run_child(spec, errors, progress, cancelled, meanwhile, opened)
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace").strip()
    if status is None:
        return False
    if status != 0:
        log.warning("phase 1 of %s in a child process failed (status %s): %s", folder.root, status, said[-2000:])
        return False
    return True


def _run_child(
    spec: dict[str, object],
    errors: IO[bytes],
    progress: Callable[[ChildProgress], None],
    cancelled: Callable[[], bool],
    meanwhile: Callable[[], None],
    opened: Callable[[], None],
) -> int | None:
    """The child's exit status; None when it was cancelled (and killed)."""
    child = subprocess.Popen(
        [sys.executable, "-m", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        env={**os.environ, "SEMCODE_NO_DAEMON": "1"},
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(spec).encode())
    child.stdin.close()
    warming = threading.Thread(target=meanwhile, name="semcode-warm", daemon=True)
    warming.start()
    try:
        for line in _lines(child.stdout, cancelled):
            r = json.loads(line)
            if r.get("opened"):
                _opened(opened)
                continue
            progress(ChildProgress(int(r["done"]), int(r["total"]), int(r["chunks"]), float(r["seconds"])))
        return child.wait()
    except BaseException as e:  # cancelled, or a failure here: the child goes too
        child.kill()
        child.wait()
        if isinstance(e, _Stop):
            return None
        raise
    finally:
        warming.join()
        child.stdout.close()


def _opened(opened: Callable[[], None]) -> None:
    try:
        opened()
    except Exception as e:  # the search opens it after the child's rows, and says what is wrong then
        log.warning("opening the index beside its phase-1 child failed: %s", e)


class PhaseOneApart:
    """An engine's phase-1 children (``Engine(phase_one_apart=True)``): which index folders one is building (the
    engine opens none of them meanwhile), a wait for searches, and the run itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._building: dict[str, threading.Event] = {}  # index folder -> set when its child's rows are in
        # set once the first run has decided (and started its child, if any): a server starting up waits for it
        # before its own imports, which would otherwise hold the interpreter lock while the tree is counted
        self.decided = threading.Event()

    def building(self, index_dir: str) -> bool:
        with self._lock:
            return index_dir in self._building

    def wait(self, timeout: float = WAIT_S) -> None:
        """A search while a new index's phase 1 runs in a child waits for its rows, at most `timeout` seconds
        (phase 1 takes 1-3 s on a mid-sized project): its first answer then has hits instead of "being built"."""
        with self._lock:
            waits = list(self._building.values())
        deadline = time.monotonic() + timeout
        for done in waits:
            done.wait(max(0.0, deadline - time.monotonic()))

    def run(
        self,
        settings: Settings,
        folder: Folder,
        open_store: Callable[[], object],
        opened: Callable[[], None],
        progress: Callable[[Progress], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> None:
        """Phase 1 of `folder` in a child when it is worth it (``worth_apart``), while this thread's helper imports
        LanceDB; nothing otherwise. The engine's run that follows finds every file indexed by text (or, after a
        failure, does what is left). Searches wait from the start, also while the tree is being counted; they go
        on once every file's rows are committed, after ``open_store()`` (so that they need not open it).
        ``opened()`` opens the index for the engine once the child has created its tables (``run_apart``), while
        the child writes the rows."""
        done = threading.Event()
        with self._lock:
            self._building[folder.index_dir] = done

        def release(opened: bool) -> None:
            with self._lock:
                self._building.pop(folder.index_dir, None)
            try:
                if opened:
                    open_store()
            finally:
                done.set()

        def reported(p: ChildProgress) -> None:
            folder.pending, folder.total, folder.phase = p.total - p.done, p.total, "rows"
            if progress is not None:
                from indexer.index import Progress

                progress(Progress(p.done, p.total, p.chunks, 0, p.seconds, phase_seconds=p.seconds))
            if p.total and p.done == p.total and not done.is_set():
                release(True)  # every file's rows are committed; the child compacts the tables meanwhile

        def warm() -> None:
            # what a first search needs (LanceDB's import above all), while the child works on the other core; the
            # rest of the run's modules (chunking) load after the search has answered
            import indexer.search
            import indexer.store  # noqa: F401

        built = False
        try:
            if worth_apart(settings, folder):
                folder.state, folder.building, folder.last_error = "indexing", True, None
                stop = lambda: folder.cancel.is_set() or bool(cancelled and cancelled())  # noqa: E731
                self.decided.set()  # (the child starts a few milliseconds later)
                built = run_apart(settings, folder, reported, stop, warm, opened)
        finally:
            self.decided.set()
            if not done.is_set():
                release(built)


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
        engine.store(folder)  # the tables and indexes, created before the parent opens them too
        sys.stdout.write(json.dumps({"opened": True}) + "\n")
        sys.stdout.flush()
        result = engine.index_folder(folder, report, cancelled=lambda: os.getppid() != parent, embed=False)
    finally:
        engine.close()
    return 0 if not result.cancelled else 1


if __name__ == "__main__":
    sys.exit(main())
