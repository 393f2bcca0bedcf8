"""Repository identity, defined once: a served root, its repo id, paths relative to it, and its index folder.

``Folder`` is one repository root an engine serves, with the state every front door reports: "new" (no index of
it yet), "indexing", "ready" or "error", the counts of its index and the work still pending.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.coverage import Coverage
from indexer.identity import path_too_long, repo_id

if TYPE_CHECKING:
    from indexer.store import Store
    from indexer.watch import Watcher

__all__ = ["Folder", "PathOutside", "PathTooLong", "check_length", "find_root", "index_root", "repo_id"]


class PathOutside(ValueError):
    """A path that is not inside a served root (``..``, an absolute path elsewhere, a symlink out)."""


class PathTooLong(PathOutside):
    """A path no file can have: longer than the system's PATH_MAX, or with a name longer than its NAME_MAX. Its
    message repeats only the path's first 40 characters (it may be megabytes)."""


def check_length(path: str) -> None:
    """Raise ``PathTooLong`` for a path the system calls would refuse with ENAMETOOLONG (a 200 KB path from an
    agent; ``indexer.identity.path_too_long``): checked before any call, so every front door gets one clear error
    instead of an OSError."""
    if (why := path_too_long(path)) is not None:
        raise PathTooLong(why)


def find_root(path: Path, index_dir: str | None = None) -> Path:
    """The repository a path belongs to, for commands that read an index (search, related, status): the nearest
    ancestor that is an indexed root, else the nearest holding ``.git``, else the folder itself (or a file's
    folder). An indexed root is one with its own index in the user's cache, or, when `index_dir` is named, a root
    that index holds (``indexed_roots``). The walk stops at the first ``.git``: an indexed folder above a repository
    never captures it. A subfolder of an unpacked sdist (no ``.git``) thus finds the root the user indexed, instead
    of passing for a new repository. ValueError for a path no file can have (``path_too_long``)."""
    if (why := path_too_long(path)) is not None:
        raise ValueError(why)
    start = path.resolve()
    folder = start if start.is_dir() else start.parent
    named = indexed_roots(index_dir) if index_dir else None
    for candidate in (folder, *folder.parents):
        if named is not None and repo_id(candidate) in named:
            return candidate
        if named is None and _has_own_index(candidate):
            return candidate
        if (candidate / ".git").exists():
            return candidate
    return folder


def _has_own_index(root: Path) -> bool:
    from indexer.identity import is_index

    from .config import default_index_dir

    try:
        return is_index(Path(default_index_dir(root)))
    except OSError:
        return False


def indexed_roots(index_dir: str) -> set[str]:
    """The repository ids a named index holds runs of (complete or cut short), from its marker: one small read,
    no LanceDB. Empty for a place that is not an index yet, or cannot be read (the command itself says why), and for
    an object-store URI: no network before a command (``--repo`` names the root there)."""
    from indexer.errors import StoreError
    from indexer.identity import is_index, read_marker
    from indexer.storage import is_uri

    from .config import index_location

    if is_uri(index_dir):
        return set()
    try:
        where = index_location(index_dir)
        if not is_index(where):
            return set()
        marker = read_marker(where)
    except (OSError, ValueError, StoreError):
        return set()
    roots: set[str] = set()
    for section in ("checks", "incomplete"):  # {model: {repo: version}} and {model: [repo, ...]}
        for repos in (marker.get(section) or {}).values():
            roots.update(repos)
    return roots


def index_root(path: Path) -> Path:
    """The root to index for a folder named on a command line: the folder itself, resolved."""
    check_length(str(path))
    if not path.is_dir():
        raise ValueError(f"{path}: not a folder")
    return path.resolve()


class Folder:
    """One repository root served by an engine."""

    def __init__(self, root: Path, index_dir: str) -> None:
        self.root = root.resolve()
        self.repo = repo_id(self.root)
        self.index_dir = index_dir
        self.store: Store | None = None  # opened by the engine (folders naming one index folder share it)
        self.watcher: Watcher | None = None
        self.state = "new"
        self.files = self.chunks = self.skipped = 0
        self.pending = 0  # files the running full run has still to look at
        self.total = 0  # files that run looks at in all (0 before its walk is done)
        self.phase: str | None = None  # of the running full run: "rows" (files to look at) or "vectors" (to embed)
        self.coverage = Coverage()  # chunk rows embedded, waiting for a vector, searched by text only
        self.last_error: str | None = None
        self.interrupted = False  # its last full run was cut short and none finished since (the store's marker)
        self.building = False  # the running full run builds the index (none, or a cut one, before it): not a re-check
        self.cancel = threading.Event()  # the folder was removed or the engine closes: a full run stops

    def relative(self, path: Path) -> str | None:
        """`path` relative to the root (POSIX), or None when it lies outside (after resolving symlinks)."""
        try:
            return path.resolve().relative_to(Path(self.repo)).as_posix()
        except ValueError:
            return None

    def inside(self, rel: str) -> str:
        """A repository-relative path checked to stay inside the root (no ``..``, no absolute path, no symlink
        out; no longer than a path can be, root included): its normalised POSIX form. Raises ``PathOutside``."""
        check_length(rel)
        if not rel or os.path.isabs(rel) or "\\" in rel or "\0" in rel:
            raise PathOutside(f"{rel!r}: expected a path relative to {self.root}")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise PathOutside(f"{rel!r}: expected a path inside {self.root} (no '..')")
        clean = "/".join(parts)
        check_length(f"{self.root}/{clean}")  # (the system calls see the whole path)
        if self.relative(self.root / clean) != clean:
            raise PathOutside(f"{rel!r}: resolves outside {self.root} (a symlink out of the repository)")
        return clean

    def refresh_counts(self) -> None:
        """Re-read this folder's counts from its store (worker threads only: this reads LanceDB)."""
        if self.store is None:
            return
        records = self.store.files(self.repo).values()
        self.files = sum(r.status == "indexed" for r in records)
        self.skipped = sum(r.status == "skipped" for r in records)
        self.coverage = self.store.coverage(self.repo)
        self.chunks = self.coverage.embedded + self.coverage.pending + self.coverage.text_only
        self.interrupted = self.store.incomplete(self.repo)
        if self.state == "new" and self.files + self.skipped + self.chunks:
            # an index built earlier (or by another process): ready as of its last update (not read again at every
            # answer: a server's answers re-read a "new" folder's counts until it has some)
            self.state = "ready"

    def partial(self) -> str | None:
        """Why an answer from this folder's index may miss files, in one sentence, or None when it holds every file
        (vectors still being filled in are the coverage figure's business: ``Coverage.share``). Every front door
        passes it on with its answers: a run in progress that has not looked at every file yet, or a run that was
        cut short (Ctrl-C, a kill) and not finished since."""
        if self.state == "indexing" and self.phase == "rows" and self.total and self.building:
            done = self.total - self.pending
            return (
                f"the index of {self.root} is being built: {done} of {self.total} files looked at so far, "
                "so answers may miss the rest"
            )
        if self.state != "indexing" and self.interrupted:
            return (
                f"the index of {self.root} is partial: its last run was cut short with {self.files} files indexed; "
                f"run `semcode index {self.root}` to finish it"
            )
        return None

    def fail(self, message: str) -> None:
        self.state, self.last_error = "error", message
