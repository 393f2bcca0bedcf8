"""A read cache on local disk for an index on object storage, used by serving processes (the daemon, an MCP or
language server with ``--read-only`` on an ``s3://`` index): the index's files are fetched once and read locally.

The open-source LanceDB has no cache for object storage: every query opens manifests and reads index pages with
ranged GETs (published first queries from S3: 500-1000 ms). A Lance table is made of immutable files (data files,
deletion files, index files, transaction files, one manifest per version), so a copy of those files is a complete
table that a local LanceDB opens as it is, and a new version on the object store is a few new files to fetch.

``Mirror.sync`` brings the copy up to date:

- every file whose (size, mtime) the copy lacks is fetched (whole, to a temporary name, then renamed; in parallel),
  manifests (``_versions/``) and semcode's own small files last, so a reader of the copy never meets a version whose
  files are not there yet;
- a file gone from the object store (an old version its writer cleaned up) is deleted from the copy only after
  ``GRACE_S``, as the writer's own clean-up spares versions a running query may still read (``Store.compact``);
- ``changed`` checks first, with one listing of each table's ``_versions/`` folder and of the top level, whether
  there is anything new: a serving process calls it every ``CHECK_INTERVAL_S`` (``Store``'s refresh thread);
- the cache is bounded: an index larger than ``max_bytes`` is not copied (``TooBig``: it is then served from the
  object store directly), and copies of other indexes are removed, least recently used first, to keep the cache
  folder within ``max_bytes``.

The copy is read-only by design (only ``Store.open(..., read_only=True)`` uses it), kept in a folder private to the
user, and checked against the object store's manifests (a new version is fetched within ``CHECK_INTERVAL_S``).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from indexer.storage import Location, describe, private_file

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 5.0  # how often a serving process looks for a new version on the object store
GRACE_S = 60.0  # a file gone from the object store stays this long in the copy (queries may still read it)
FETCH_THREADS = 8  # objects fetched at once (I/O bound)
STATE = "semcode-mirror.json"  # in each copy: what was fetched, when used, what went missing remotely
DEFAULT_MAX_BYTES = 10 << 30
# set when the interpreter exits (before pyarrow finalizes S3: atexit runs last registered first): a refresh
# thread still running then stops without a word
EXITING = threading.Event()
atexit.register(EXITING.set)


class TooBig(Exception):
    """The index is larger than the cache may hold; it is served from the object store."""


@dataclass
class SyncReport:
    fetched: int = 0  # files fetched
    fetched_bytes: int = 0
    removed: int = 0  # files deleted from the copy (gone from the object store for GRACE_S)
    total_bytes: int = 0  # the index's size
    seconds: float = 0.0


def _order(rel: str) -> int:
    """Fetch order: data, index and transaction files, then manifests, then the top level's small files."""
    if "/_versions/" in f"/{rel}":
        return 1
    return 2 if "/" not in rel else 0


class Mirror:
    """The local copy of the index at `where` (an object-store location), under `root`."""

    def __init__(self, where: Location, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if not where.remote:
            raise ValueError(f"{where.uri}: a read cache is for an index on object storage")
        self.where = where
        self.root = root
        self.max_bytes = max_bytes
        self.folder = root / hashlib.sha256(where.uri.encode()).hexdigest()[:20]
        self._lock = threading.Lock()

    @property
    def local(self) -> str:
        """The copy's folder, as LanceDB opens it."""
        return str(self.folder)

    def ready(self) -> bool:
        """Whether a complete copy is there (one sync finished)."""
        return self._state().get("complete", False) is True

    def changed(self) -> bool:
        """Whether the object store has a file the copy lacks at the top level (semcode's marker) or in a table's
        ``_versions/`` (a new version): a few listings, not the whole index."""
        have = self._state().get("files", {})
        listing = self.where.files(recursive=False)
        for name in self.where.entries():
            if name.endswith(".lance"):
                listing |= self.where.files(f"{name}/_versions")
        return any(have.get(rel) != list(stat) for rel, stat in listing.items())

    def sync(self) -> SyncReport:
        """Bring the copy up to date with the object store (see the module's docstring). Raises TooBig."""
        with self._lock:
            t0 = time.perf_counter()
            remote = self.where.files()
            report = SyncReport(total_bytes=sum(size for size, _ in remote.values()))
            if report.total_bytes > self.max_bytes:
                raise TooBig(
                    f"{self.where.uri} holds {report.total_bytes / 2**30:.1f} GiB, more than the read cache's "
                    f"{self.max_bytes / 2**30:.1f} GiB: served from the object store"
                )
            Location(str(self.root)).make_dir()
            Location(self.local).make_dir()
            state = self._state()
            have: dict[str, list[int]] = state.get("files", {})
            wanted = [
                rel for rel, stat in remote.items() if have.get(rel) != list(stat) or not (self.folder / rel).is_file()
            ]
            for group in (0, 1, 2):
                batch = [rel for rel in wanted if _order(rel) == group]
                with ThreadPoolExecutor(FETCH_THREADS) as pool:
                    for rel, copied in zip(batch, pool.map(self._fetch, batch), strict=True):
                        have[rel] = list(remote[rel])
                        report.fetched += 1
                        report.fetched_bytes += copied
            now = time.time()
            missing: dict[str, float] = state.get("missing", {})
            for rel in [r for r in have if r not in remote]:
                since = missing.setdefault(rel, now)
                if now - since >= GRACE_S:
                    (self.folder / rel).unlink(missing_ok=True)
                    del have[rel], missing[rel]
                    report.removed += 1
            for rel in [r for r in missing if r in remote]:
                del missing[rel]
            self._save({"uri": self.where.uri, "files": have, "missing": missing, "used": now, "complete": True})
            report.seconds = time.perf_counter() - t0
            self._evict_others()
            return report

    def keep_fresh(self, serving: Callable[[], bool], switch: Callable[[], None], stop: threading.Event) -> None:
        """On a thread, until `stop` is set: sync the copy now and then every ``CHECK_INTERVAL_S`` when the object
        store has something new; once a sync has made it whole and the reader is not `serving` from it yet,
        `switch` the reader to it. An index over the bound ends the thread (served from the object store); an
        object store out of reach is logged, and whatever serves keeps serving."""

        def run() -> None:
            wait = 0.0
            while not stop.wait(wait) and not EXITING.is_set():
                wait = CHECK_INTERVAL_S
                try:
                    if serving() and not self.changed():
                        continue
                    report = self.sync()
                    if not serving() and not stop.is_set():
                        switch()
                        log.info(
                            "read cache of %s: %.2f GiB copied in %.1f s; served from %s",
                            self.where.uri, report.fetched_bytes / 2**30, report.seconds, self.local,
                        )  # fmt: skip
                except TooBig as e:
                    log.warning("read cache: %s", e)
                    return
                except Exception as e:
                    if stop.is_set() or EXITING.is_set():
                        return
                    log.warning("read cache of %s: %s", self.where.uri, describe(e, self.where.options))

        threading.Thread(target=run, name="semcode-read-cache", daemon=True).start()

    def touch(self) -> None:
        """Mark the copy as used now (eviction removes the least recently used copies first)."""
        state = self._state()
        if state:
            state["used"] = time.time()
            self._save(state)

    def _fetch(self, rel: str) -> int:
        dest = self.folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.where.download(rel, dest)

    def _state(self, folder: Path | None = None) -> dict:
        try:
            data = json.loads(((folder or self.folder) / STATE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, state: dict) -> None:
        with private_file(self.folder / STATE) as f:
            f.write(json.dumps(state).encode())

    def _evict_others(self) -> None:
        """Remove copies of other indexes, least recently used first, until the cache folder fits max_bytes."""
        copies = []
        for folder in self.root.iterdir() if self.root.is_dir() else ():
            if folder == self.folder or not folder.is_dir():
                continue
            state = self._state(folder)
            size = sum(s for s, _ in state.get("files", {}).values())
            copies.append((float(state.get("used", 0.0)), size, folder))
        total = sum(size for _, size, _ in copies) + sum(s for s, _ in self._state().get("files", {}).values())
        for _used, size, folder in sorted(copies, key=lambda c: c[0]):
            if total <= self.max_bytes:
                break
            log.info("read cache: removing the copy in %s (least recently used)", folder)
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
