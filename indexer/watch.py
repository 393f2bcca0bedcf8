"""Keep an index current while files change: watchdog events -> per-path debounce -> batches -> ``update_files``.

``Watcher`` knows nothing of indexing: it turns file-system events under a root into sorted batches of
repository-relative POSIX paths, delivered to one callback on one worker thread (never concurrently).

- Paths are ``os.fsdecode``d: a name that is not UTF-8 arrives with lone surrogates, and ``update_files`` (through
  ``discover_paths``) reports it as skipped rather than storing it.
- Created, modified, closed-after-write and deleted files count; a move is a delete of its source plus a create of
  its destination. A folder that is created, deleted or moved is delivered as the folder's own path (the consumer
  walks it or drops what was under it); "folder modified" events (one per change inside) are dropped.
- Paths inside ``.git`` (and the other VCS folders discovery never enters), and whatever ``ignore(rel)`` rejects,
  are dropped. ``ignore`` should be cheap (it runs for every event, on the observer's thread); full ignore rules are
  applied later by ``update_files`` anyway (see ``excluded_dirs``).
- Per-path debounce: a path is ready once no event for it arrived for ``debounce_s``. Ready paths are delivered
  together when the whole tree has been quiet for ``debounce_s`` (so a burst of 500 creates is one batch, or a few),
  or, while other paths keep changing, once the oldest ready path has waited ``max_wait_s`` more (so a file being
  rewritten continuously never holds the others back). A path is never delivered before it is quiet.
- An exception in the callback is logged and the watcher goes on with the next batch. ``stop`` drops paths not yet
  delivered (the next full ``index_repository`` picks up anything missed).

``watch_repository`` wires a Watcher to ``update_files`` and compacts the store now and then.
"""

from __future__ import annotations

import bisect
import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from .discover import VCS_DIRS, escape_path
from .index import IndexOptions, IndexReport, TextEncoder, repo_id, update_files
from .languages import language_for
from .store import Store

log = logging.getLogger(__name__)
OBSERVER_JOIN_S = 5.0  # how long stop() waits for watchdog's threads

_FILE_EVENTS = {"created", "modified", "deleted", "moved", "closed"}  # not opened, closed_no_write, attrib
_DIR_EVENTS = {"created", "deleted", "moved"}  # a folder's "modified" is noise: its files report themselves


def excluded_dirs(names: Iterable[str]) -> Callable[[str], bool]:
    """An ``ignore`` for Watcher: True when any segment of the path is one of `names` (folder names or globs such as
    ``*.egg-info``, as in ``DiscoverOptions.exclude_dirs``). A cheap prefilter, not the gitignore rules."""
    plain = frozenset(n for n in names if not any(c in n for c in "*?["))
    globs = tuple(n for n in names if n not in plain)

    def ignore(rel: str) -> bool:
        return any(part in plain or any(fnmatch.fnmatchcase(part, g) for g in globs) for part in rel.split("/"))

    return ignore


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        kinds = _DIR_EVENTS if event.is_directory else _FILE_EVENTS
        if event.event_type not in kinds:
            return
        self._watcher._add(os.fsdecode(event.src_path))
        if event.event_type == "moved":
            self._watcher._add(os.fsdecode(event.dest_path))


class Watcher:
    """Watch `root` recursively and call ``on_batch(sorted_paths)`` with debounced repository-relative paths (see the
    module docstring). ``start``/``stop`` or use it as a context manager; ``stop`` is idempotent and may be called
    from any thread, the callback's included."""

    def __init__(
        self,
        root: Path,
        on_batch: Callable[[list[str]], None],
        debounce_s: float = 0.3,
        ignore: Callable[[str], bool] | None = None,
        max_wait_s: float | None = None,
    ) -> None:
        self.root = Path(os.path.realpath(root))
        self.debounce_s = debounce_s
        self.max_wait_s = 3 * debounce_s if max_wait_s is None else max_wait_s
        self._on_batch = on_batch
        self._ignore = ignore
        self._prefix = str(self.root).rstrip(os.sep) + os.sep
        self._cond = threading.Condition()
        self._pending: dict[str, float] = {}  # path -> monotonic time of its latest event
        self._last_event = 0.0
        self._stopping = False
        self._started = False
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching (events from now on). Raises OSError when the platform refuses (e.g. the inotify watch
        limit); a second call does nothing."""
        with self._cond:
            if self._started:
                return
            self._started = True
        self._worker = threading.Thread(target=self._run, name="semcode-watch", daemon=True)
        self._worker.start()
        observer = Observer()
        observer.daemon = True
        observer.schedule(_Handler(self), str(self.root), recursive=True)
        try:
            observer.start()
        except BaseException:
            self.stop()
            raise
        self._observer = observer

    def stop(self) -> None:
        """Stop the observer and the worker (after the batch in progress, if any); undelivered paths are dropped."""
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._cond.notify_all()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            # bounded: a watchdog emitter blocked in a read of the inotify fd must not hang Ctrl-C (its threads
            # are daemons, so the process still exits)
            observer.join(timeout=OBSERVER_JOIN_S)
            if observer.is_alive():
                log.warning("watch: the file observer did not stop within %.0f s; leaving it", OBSERVER_JOIN_S)
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- events (observer thread) ---------------------------------------------------------------------------------

    def _relative(self, path: str) -> str | None:
        if not path.startswith(self._prefix):
            return None  # the root itself, or outside it
        rel = path[len(self._prefix) :]
        if os.sep != "/":
            rel = rel.replace(os.sep, "/")
        if any(part in VCS_DIRS for part in rel.split("/")):
            return None
        if self._ignore is not None and self._ignore(rel):
            return None
        return rel

    def _add(self, path: str) -> None:
        rel = self._relative(path)
        if rel is None:
            return
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return
            was_empty = not self._pending
            self._pending[rel] = now
            self._last_event = now
            if was_empty:
                self._cond.notify()  # a new event only moves deadlines later, except when nothing was pending

    # -- delivery (worker thread) ---------------------------------------------------------------------------------

    def _next_batch(self) -> list[str] | None:
        """Wait for the next batch; None when stopping."""
        with self._cond:
            while not self._stopping:
                if not self._pending:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                oldest = min(self._pending.values())
                all_quiet = self._last_event + self.debounce_s
                overdue = oldest + self.debounce_s + self.max_wait_s
                if now >= all_quiet or now >= overdue:
                    ready = sorted(p for p, t in self._pending.items() if now - t >= self.debounce_s)
                    for p in ready:
                        del self._pending[p]
                    if ready:
                        return ready
                self._cond.wait(max(min(all_quiet, overdue) - now, 0.001))
        return None

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._on_batch(batch)
            except Exception:
                first = escape_path(batch[0])  # a name that is not UTF-8 must not break a UTF-8 log
                log.exception("watch: handling %d changed paths failed (first: %s)", len(batch), first)


def watch_repository(
    root: Path,
    store: Store,
    encoder: TextEncoder,
    count_tokens: Callable[[list[str]], list[int]],
    options: IndexOptions | None = None,
    debounce_s: float = 0.3,
    on_report: Callable[[IndexReport], None] | None = None,
    *,
    compact_every: int = 20,
    max_unindexed_rows: int = 1000,
    run: Callable[[Callable[[list[str]], None], list[str]], None] | None = None,
) -> Watcher:
    """A Watcher (not yet started) that keeps the index of `root` current: each batch goes to ``update_files``, and
    the store is compacted every `compact_every` batches that wrote something, or sooner once more than
    `max_unindexed_rows` rows are missing from the full-text index. ``on_report(report)`` follows each batch that
    reached ``update_files``. Paths in the default excluded folders and in the index folder itself are dropped early.

    ``run(handle, batch)``, when given, is called on the watcher's thread instead of ``handle(batch)``: a server
    with one writer thread per store passes a function that runs ``handle`` there and waits for it.

    Paths of unsupported types that were never indexed are dropped; a delivered folder path also covers the indexed
    files recorded under it (a folder deleted or moved away takes its files out of the index)."""
    opts = options or IndexOptions()
    real_root = Path(os.path.realpath(root))
    repo = repo_id(real_root)
    dirs = excluded_dirs(opts.discover.exclude_dirs)
    index_rel = _relative_dir(Path(store.root), real_root)

    def ignore(rel: str) -> bool:
        if index_rel is not None and (rel == index_rel or rel.startswith(index_rel + "/")):
            return True
        return dirs(rel)

    writes = 0

    def on_batch(batch: list[str]) -> None:
        nonlocal writes
        records = sorted(store.files(repo))
        known = set(records)
        paths: set[str] = set()
        for p in batch:
            if p in known or language_for(p) is not None:
                paths.add(p)
                continue
            below = _under(records, p)
            if below or (real_root / p).is_dir():
                paths.add(p)
                paths.update(below)  # each is re-checked: gone ones leave the index
        if not paths:
            return
        report = update_files(real_root, store, encoder, count_tokens, sorted(paths), opts)
        if report.files_changed or report.files_deleted:
            writes += 1
            if writes >= compact_every or store.stats()["unindexed_text_rows"] > max_unindexed_rows:
                store.compact()
                writes = 0
        if on_report is not None:
            on_report(report)

    if run is None:
        return Watcher(real_root, on_batch, debounce_s=debounce_s, ignore=ignore)
    hand_over = run
    return Watcher(real_root, lambda batch: hand_over(on_batch, batch), debounce_s=debounce_s, ignore=ignore)


def _relative_dir(path: Path, root: Path) -> str | None:
    try:
        rel = Path(os.path.realpath(path)).relative_to(root).as_posix()
    except ValueError:
        return None
    return None if rel == "." else rel


def _under(sorted_paths: list[str], folder: str) -> list[str]:
    prefix = folder + "/"
    i = bisect.bisect_left(sorted_paths, prefix)
    out = []
    while i < len(sorted_paths) and sorted_paths[i].startswith(prefix):
        out.append(sorted_paths[i])
        i += 1
    return out
