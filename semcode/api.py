"""The public Python API: ``semcode.open(roots) -> Index``.

Line numbers are 0-based and end lines inclusive everywhere in this API, as in ``semcode search --json`` (an
editor's line 42 is ``41`` here). Paths in hits are relative to their repository root (``Hit.repo``).

Requests are held to ``semcode.limits`` as at every front door: past a limit, ValueError naming the field; a query
longer than ``MAX_QUERY_CHARS`` is cut, with a ``semcode.limits.LimitWarning``; a search past its deadline raises
``semcode.limits.SearchTimeout`` (a ValueError).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from .engine import Engine
from .limits import LimitWarning
from .query import SearchQuery
from .settings import Settings
from .workspace import Folder, index_root

if TYPE_CHECKING:
    from indexer.index import IndexReport, Progress
    from indexer.search import Mode
    from indexer.store import Hit as StoreHit


@dataclass(frozen=True)
class Hit:
    """One search or related-code result (0-based lines, end inclusive)."""

    path: str  # relative to `repo`, POSIX separators
    repo: str  # the repository root (absolute)
    start_line: int
    end_line: int
    symbol: str | None  # qualified name (Class.method), None for a span without one
    kind: str  # function, method, class, module, section, text, ...
    language: str
    score: float  # semantic: cosine similarity; lexical: BM25; hybrid: reciprocal rank fusion
    reasons: tuple[str, ...]  # the signals that placed it: "semantic", "lexical", "definition", "path", ...
    text: str  # the chunk as embedded (a path/symbol header line, then the code)

    @classmethod
    def from_store(cls, h: StoreHit) -> Hit:
        c = h.chunk
        return cls(
            c.path, c.repo, c.start_line, c.end_line, c.qualified_name, c.kind, c.language, h.score, h.reasons, c.text
        )


class Hits(list[Hit]):
    """A search's hits (a list) and ``embedded``, the share of the searched chunks that have vectors: below 1.0
    while a full update embeds them, semantic matching covers only that share (every file is searchable by its
    text, names and paths from the moment its rows are written). ``partial``: one sentence per searched index that
    may miss files (a run that has not looked at every file yet, or one cut short; empty when every index is
    whole)."""

    def __init__(self, hits: Iterable[Hit], embedded: float = 1.0, partial: Sequence[str] = ()) -> None:
        super().__init__(hits)
        self.embedded = embedded
        self.partial = list(partial)


@dataclass(frozen=True)
class UpdateSummary:
    """What ``Index.update`` did, per repository root."""

    reports: dict[str, IndexReport]

    @property
    def files_changed(self) -> int:
        return sum(r.files_changed for r in self.reports.values())

    @property
    def chunks_written(self) -> int:
        return sum(r.chunks_written for r in self.reports.values())


@dataclass(frozen=True)
class RepositoryStatus:
    root: str
    index_dir: str
    state: str  # "new" (no index of it yet), "indexing", "ready" or "error"
    files: int
    chunks: int
    pending: int  # files the running update has still to look at
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    last_error: str | None = None
    embedded: float = 1.0  # share of its chunks that have vectors (below 1.0 while a full update embeds them)


@dataclass(frozen=True)
class Status:
    model: str
    read_only: bool
    repositories: list[RepositoryStatus]

    @property
    def state(self) -> str:
        """The worst state of any repository: error, indexing, new, ready."""
        states = {r.state for r in self.repositories}
        return next((s for s in ("error", "indexing", "new") if s in states), "ready")


class Index:
    """The indexes of one or more repository roots with one model. Use as a context manager, or call ``close``.

    Reads (``search``, ``related``, ``read``, ``status``) may run from any thread, also while ``update`` runs in
    another; writes go through one writer thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.engine.close_now()

    @property
    def roots(self) -> list[Path]:
        return [f.root for f in self.engine.folders]

    def update(self, progress: Callable[[Progress], None] | None = None, *, rebuild: bool = False) -> UpdateSummary:
        """Bring every root's index up to date, incrementally (as ``semcode index``): only changed files are
        re-chunked, only new chunks encoded. ``progress(p)`` is called after every batch (``p.files_done``,
        ``p.files_total``, ``p.chunks_written``, ...). ``rebuild`` deletes the index first."""
        on_progress = None if progress is None else (lambda _folder, p: progress(p))
        reports = self.engine.update(on_progress, rebuild=rebuild)
        return UpdateSummary({str(root): r for root, r in reports.items()})

    def search(
        self,
        query: str,
        limit: int = 10,
        mode: Mode = "hybrid",
        paths: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        repo: str | None = None,
        group_by: Literal["chunk", "file"] = "chunk",
    ) -> Hits:
        """The best `limit` chunks for a natural-language or code query (``Hits``: a list; ``.embedded`` says how
        much of the index has vectors yet). ``mode``: "hybrid" (semantic + lexical,
        ranked by ``semcode.ranking``: each hit's ``reasons`` name the signals that placed it), "semantic" or
        "lexical" (no model needed). ``paths``: globs relative to a root (``src/**/*.py``; ``!tests/**`` leaves
        paths out); ``languages``: e.g. ["python", "go"]; ``repo``: one root only; ``group_by="file"``: one hit per
        file. Limits: ``semcode.limits`` (module docstring). A filter that matches no indexed file raises
        ``EmptyFilter`` (a ValueError)."""
        if group_by not in ("chunk", "file"):
            raise ValueError(f'group_by must be "chunk" or "file", got {group_by!r}')
        q = SearchQuery(query, limit, mode, paths, languages, group_by == "file")
        for note in q.warnings:
            warnings.warn(note, LimitWarning, stacklevel=2)
        hits = self.engine.search(q, repo=_repo(repo))
        partial = self.engine.partial_notes(repo=_repo(repo))
        return Hits((Hit.from_store(h) for h in hits), self.engine.coverage(repo=_repo(repo)).share, partial)

    def related(self, path: str | os.PathLike[str], line: int, limit: int = 10) -> list[Hit]:
        """Code like the chunk that covers `path`:`line` (0-based), the chunk itself excluded. `path`: relative to
        a root, or absolute. Raises ValueError when no indexed chunk covers that line (saying what was wrong: no
        such file, a file the index does not hold, a line past its end; lines in the message are 1-based), or past
        a limit."""
        folder, rel = self.engine.locate(os.fspath(path))
        chunk, hits = self.engine.related(folder, rel, line, limit)
        if chunk is None:
            raise ValueError(self.engine.why_no_chunk(folder, rel, line))
        return [Hit.from_store(h) for h in hits]

    def read(self, path: str | os.PathLike[str], start_line: int | None = None, end_line: int | None = None) -> str:
        """Lines `start_line`..`end_line` (0-based, inclusive; default the whole file) of an indexed file."""
        folder, rel = self.engine.locate(os.fspath(path))
        return self.engine.read(folder, rel, start_line, end_line).text

    def status(self) -> Status:
        """What each root's index holds, its state, and the files it skipped with their reasons."""
        repos = [_repository_status(self.engine, f) for f in self.engine.folders]
        return Status(self.engine.model_id(), self.engine.read_only, repos)


def _repo(repo: str | None) -> str | None:
    return None if repo is None else str(Path(repo).resolve())


def _repository_status(engine: Engine, folder: Folder) -> RepositoryStatus:
    if folder.state != "indexing" and engine.store(folder, create=False) is not None:
        folder.refresh_counts()
    return RepositoryStatus(
        str(folder.root), folder.index_dir, folder.state, folder.files, folder.chunks, folder.pending,
        engine.skipped_files(folder), folder.last_error, folder.coverage.share,
    )  # fmt: skip


def open(
    roots: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    index_dir: str | os.PathLike[str] | None = None,
    model: str | None = None,
    *,
    read_only: bool = False,
    settings: Settings | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> Index:
    """Open the index of one repository root or several. ``index_dir``: one LanceDB folder for all of them, or an
    object-store URI (``s3://bucket/prefix``; default: one folder per root under the user cache dir, the folder
    ``semcode index`` uses). ``model``: a checkpoint folder or hub id (default: ``$SEMCODE_MODEL``, then ``model`` in
    ``~/.config/semcode/config.toml``, then the shipped model). ``read_only``: serve an index another process
    maintains (``update`` raises; nothing is written, so read-only credentials do). ``storage_options``: LanceDB's
    storage options for a URI (``aws_endpoint``, ``aws_region``, ...; default: ``[storage]`` in the config file,
    then the ``AWS_*`` environment). ``settings``: every other option (``semcode.Settings``). Nothing heavy happens
    here: the model loads on first need; a storage problem raises ``indexer.errors.StoreError`` naming the URI."""
    base = settings or Settings()
    s = replace(base, index_dir=os.fspath(index_dir) if index_dir is not None else base.index_dir)
    s = replace(s, model=model or base.model)
    if storage_options is not None:
        s = replace(s, storage_options=dict(storage_options))
    items = [roots] if isinstance(roots, str | os.PathLike) else list(roots)
    if not items:
        raise ValueError("semcode.open: no repository root given")
    return Index(Engine(s, [index_root(Path(r)) for r in items], read_only=read_only))
