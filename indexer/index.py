"""Orchestration: what changed in a repository -> what to re-chunk -> what to re-embed -> what to write.

``index_repository`` is a plain function (the CLI and the LSP server call it, through ``semcode.Engine``):

1. Walk the repository (``discover``). A file whose size and mtime match its record is unchanged: not even read.
2. A file that looks changed is read; if its text hashes as recorded, only the record's mtime is refreshed.
3. Changed files are chunked; chunks whose content hash already has a vector for this model are not encoded
   again (a branch switch, a move or a revert costs no encoding).
4. Phase 1: chunks are written in batches of files without vectors (those the vector cache holds excepted), and
   each file's record only after its chunks: a kill -9 at any moment leaves records that are either complete or
   missing, and the next run redoes the missing ones. When phase 1 ends every file is searchable by text, names
   and paths, ``related`` and ``read``: seconds, not the minutes embedding takes.
5. Phase 2: the rows without a vector are embedded in a useful order (``embed_order``: source before tests, docs
   and vendored code; recently changed files first; small files before giant ones) in slices of a few seconds of
   encoding; each slice's vectors go into the vector cache, then into their rows (``Store.set_vectors``). A kill
   loses at most one slice; the next run finds the rows still without a vector (``Store.pending``) and goes on
   where it stopped. Files of ``embed_policy.lexical_only`` (lockfiles, data, generated code) keep their rows
   and are never embedded.
6. Files that disappeared leave the index; old table versions are compacted at the end.

``update_files`` and ``update_buffer`` (a save, a watcher event: a few files) do both phases at once: their rows are
written with their vectors in one commit, also while a phase 2 of a full run is going on (the engine's writer runs
them between that run's slices).

The steps are also callable one by one, for a driver that spreads the reading and chunking over other processes
(``ray_index``): ``plan_changes`` (1, reads only) and ``remove_vanished`` (6's deletions, before any file is
processed), ``prepare_file`` (2 and 3 for one file; writes nothing, runs anywhere) and ``write_prepared`` (the
rows and records of prepared files, with their vectors). ``index_repository`` is these steps in one process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from .chunk import chunk_source
from .discover import (
    EXCLUDED_PREFIX,
    DiscoverOptions,
    discover,
    discover_paths,
    invalid_name,
    is_ignored,
    read_source,
    secret_pattern,
)
from .embed_policy import lexical_only
from .identity import repo_id
from .languages import is_parsed, language_for
from .read import CONTENT_CHECKS, check_text, replace_surrogates, too_big
from .secrets import INCLUDE_SECRETS_HINT
from .store import FileRecord, PendingRow, Store, StoredChunk
from .text_kinds import text_kind
from .types import Chunk, Skip, SourceFile

EMBED_TOKENS = 512
"""How many tokens of a chunk its vector reads (its first ones; ``IndexOptions.embed_tokens``, ``--embed-tokens``).
Chunks stay whole (up to ``max_tokens``, 8192) for the text index, ``read`` and answers; only the vector stops
here. Measured on the 250 developer questions over 10 projects (``benchmarks/questions.py``, the shipped model):
NDCG@10 hybrid 0.863 with whole chunks, 0.864 read to 1,024, 512 or 256 tokens; semantic alone 0.612, 0.614,
0.617, 0.623 (the model card's held-out classes agree: a class cut to 256 tokens scores above the whole class).
Long chunks cost the most per token (global attention grows with the square of the length): 400 of click's chunks
took 8.8 s to encode whole and 6.4 s read to 512 tokens (int8, 2 cores)."""


class TextEncoder(Protocol):
    """What indexing needs from an encoder (``encoder.Encoder`` fits)."""

    @property
    def dim(self) -> int: ...

    def encode(
        self,
        texts: list[str],
        kind: Literal["document", "query"] = "document",
        progress: Callable[[int, int], None] | None = None,
        max_tokens: int | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class IndexOptions:
    discover: DiscoverOptions = field(default_factory=DiscoverOptions)
    max_tokens: int = 8192
    with_header: bool = True
    batch_files: int = 1000  # files per write batch at most (one LanceDB version per batch, not per file)
    batch_chunks: int = 2048  # or fewer files when they hold this many chunks
    checkpoint_seconds: float = 5.0  # or fewer when encoding them would take longer; vectors are kept this often
    vector_index_min_rows: int | None = 100_000  # build an IVF_PQ index past this many rows (None: never)
    embed: bool = True  # False: phase 1 only (every file's rows; the next run embeds them)
    embed_tokens: int = EMBED_TOKENS  # a chunk's vector reads its first this many tokens (see EMBED_TOKENS)


@dataclass
class IndexReport:
    files_seen: int = 0
    files_unchanged: int = 0
    files_changed: int = 0
    files_deleted: int = 0
    chunks_written: int = 0
    chunks_encoded: int = 0  # chunks whose vector had to be computed (the rest came from the cache)
    tokens_encoded: int = 0
    skipped: list[Skip] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    cancelled: bool = False
    searchable_seconds: float | None = None  # when phase 1 ended: every file searchable by text (None: it did not)
    chunks_pending: int = 0  # rows still without a vector when the run ended (a cancelled phase 2)
    text_only: dict[str, str] = field(default_factory=dict)  # path -> why its chunks are not embedded
    code_files_seen: int = 0  # files the walk found in a language semcode parses (the rest: docs, config, data)

    def excluded_note(self) -> str | None:
        """When the walk found no code, but left folders out by the built-in excludes (an npm package's whole code
        in ``dist/``): one sentence naming them and the way to index them; else None."""
        folders = [s.path for s in self.skipped if s.reason.startswith(EXCLUDED_PREFIX)]
        if not folders or self.code_files_seen:
            return None
        shown = ", ".join(f"{f}/" for f in folders[:5]) + (f" and {len(folders) - 5} more" if len(folders) > 5 else "")
        return (
            f"no code found outside the folders the built-in excludes leave out ({shown}); to index one, add a "
            f"line such as '!{folders[0]}/' to .semcodeignore"
        )


@dataclass
class Progress:
    """Passed to the progress callback after every batch. ``phase`` "rows": files are read, chunked and written
    (``files_done`` of ``files_total``); "vectors": their chunks are embedded (``chunks_embedded`` of
    ``chunks_to_embed``; every file is searchable by text already)."""

    files_done: int
    files_total: int
    chunks_written: int
    tokens_encoded: int
    seconds: float
    phase: Literal["rows", "vectors"] = "rows"
    chunks_embedded: int = 0
    chunks_to_embed: int = 0
    phase_seconds: float = 0.0  # since the phase began
    tokens_to_embed: int = 0  # tokens phase 2 encodes in all (``tokens_encoded`` counts those done so far)


TEXT_ONLY = "searched by text only: "  # how an indexed file's record starts its reason when it has no vectors
MIN_CHECKPOINT_TOKENS = 1_024  # the first slice and batch (before any encoding was timed), and the least after
# A long run compacts as it goes (and at its end): rows written since the full-text index was last brought up to
# date are searched flat, about 100x slower (measured at 50k rows: 6 ms indexed, 580 ms flat), and phase 2 rewrites
# every row it embeds. So it compacts after phase 1, and then whenever COMPACT_COST_SHARE of the time since the last
# compaction would pay for the next one (at most every COMPACT_MIN_INTERVAL_S): about 10% of the run at most.
COMPACT_MIN_INTERVAL_S = 30.0
COMPACT_COST_SHARE = 0.1
# phase 2's order (``embed_order``): kinds of text, then how recently a file changed (days), then size
KIND_ORDER = {"code": 0, "config": 1, "test": 2, "docs": 2, "example": 2, "benchmark": 2, "vendored": 3, "generated": 3}
RECENCY_DAYS = (1, 7, 30, 365)


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """One changed file, read and chunked (``prepare_file``): the hash of its text and its chunks, or None when the
    text hashes as its record says (only the record's size and mtime change)."""

    path: str
    digest: str
    chunks: list[Chunk] | None
    problems: list[str] = field(default_factory=list)
    text_only: str | None = None  # why its chunks get no vector (``embed_policy.lexical_only``), or None
    same_content: bool = False  # re-chunked though its text is what the index holds (a resumed run's recheck)


@dataclass
class RepoPlan:
    """What a full run of one repository has to do (``plan_changes``): the files that look changed, the records of
    vanished files, the skip records that changed, and whether every file must be read again."""

    root: Path
    repo: str
    records: dict[str, FileRecord]  # the files table as it was when the plan was made
    todo: list[tuple[str, os.stat_result]]  # (path, its stat at the walk: `walk_stat`): to read (and chunk if changed)
    gone: list[str]  # recorded paths the walk no longer found
    skips: list[FileRecord]  # skip records that are new or changed
    recheck: bool  # checks or chunking changed since the last complete run: every file is read and chunked once
    report: IndexReport


def walk_stat(root: Path, path: str) -> os.stat_result:
    """The stat of a walked file that its record keeps and its read is checked against (``read_source``'s
    ``expected``): the file's own (``lstat``: a symlink swapped in later is never taken for the file); for a symlinked
    file discover indexes at the link's path, its target's (its size and mtime say when the text changed; the read
    checks again that the link stays inside the root). Raises OSError (the file vanished)."""
    full = os.path.join(root, path)
    st = os.lstat(full)
    return os.stat(full) if stat.S_ISLNK(st.st_mode) else st


def recorded_hash(records: dict[str, FileRecord], path: str) -> str | None:
    """The content hash of a file's indexed record (None: no record, or a skip record)."""
    old = records.get(path)
    return old.content_hash if old is not None and old.status == "indexed" else None


@dataclass
class _Run:
    """What one indexing call works with: passed to the helpers instead of a dozen arguments."""

    root: Path
    repo: str
    store: Store
    encoder: TextEncoder
    count_tokens: Callable[[list[str]], list[int]]
    opts: IndexOptions
    records: dict[str, FileRecord]  # the files table as it was when the call began
    report: IndexReport = field(default_factory=IndexReport)
    t0: float = field(default_factory=time.perf_counter)
    rate: float = 0.0  # tokens encoded per second, measured as the run goes (0: not yet)
    compacted: float = field(default_factory=time.perf_counter)  # when the run last compacted (its start at first)
    compact_seconds: float = 0.0  # how long that took

    def compact(self) -> None:
        """Compact the tables (not pruning the vector cache: the run still reads it) and time it."""
        t0 = time.perf_counter()
        self.store.compact(prune_vectors=False)
        self.compacted, self.compact_seconds = time.perf_counter(), time.perf_counter() - t0

    def compact_when_due(self) -> None:
        """Compact when enough time has passed since the last compaction for this one to cost at most
        ``COMPACT_COST_SHARE`` of it (see ``COMPACT_MIN_INTERVAL_S``)."""
        since = time.perf_counter() - self.compacted
        if since >= max(COMPACT_MIN_INTERVAL_S, self.compact_seconds / COMPACT_COST_SHARE):
            self.compact()

    def embed_cost(self, tokens: int) -> int:
        """The tokens the encoder reads of a chunk of `tokens` tokens (``IndexOptions.embed_tokens``)."""
        return min(tokens, self.opts.embed_tokens)

    def checkpoint_tokens(self) -> int:
        """Tokens that take about ``checkpoint_seconds`` to encode: the most work a kill may lose."""
        return max(MIN_CHECKPOINT_TOKENS, int(self.rate * self.opts.checkpoint_seconds))

    def measured(self, tokens: int, seconds: float) -> None:
        if tokens >= 256 and seconds > 0:  # tiny slices time the overhead, not the encoder
            rate = tokens / seconds
            self.rate = rate if not self.rate else 0.5 * self.rate + 0.5 * rate

    @classmethod
    def start(
        cls,
        root: Path,
        store: Store,
        encoder: TextEncoder,
        count_tokens: Callable[[list[str]], list[int]],
        options: IndexOptions | None,
    ) -> _Run:
        repo = repo_id(root)
        return cls(root, repo, store, encoder, count_tokens, options or IndexOptions(), store.files(repo))

    def finish(self) -> IndexReport:
        self.report.seconds = time.perf_counter() - self.t0
        return self.report


def index_repository(
    root: Path,
    store: Store,
    encoder: TextEncoder,
    count_tokens: Callable[[list[str]], list[int]],
    options: IndexOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> IndexReport:
    """Bring the index of one repository up to date. Safe to interrupt at any point (see module docstring)."""
    run = _Run.start(root, store, encoder, count_tokens, options)
    plan = plan_changes(root, store, run.opts, run.records, run.report)
    remove_vanished(store, plan)
    _process(run, plan.todo, progress, cancelled, rechunk=plan.recheck)
    if not run.report.cancelled:
        run.report.searchable_seconds = time.perf_counter() - run.t0
        if plan.recheck:
            store.set_checks_version(plan.repo, CONTENT_CHECKS)
        if run.report.chunks_written:
            run.compact()  # the new rows join the full-text index: lexical searches stay fast during phase 2
        if run.opts.embed:
            _embed_pending(run, len(plan.todo), progress, cancelled)
    run.report.chunks_pending = len(store.pending(run.repo)) if run.report.cancelled or not run.opts.embed else 0
    if run.opts.embed or run.report.cancelled or not run.report.chunks_written:
        store.compact()  # (phase 1 alone compacted as it ended)
    if run.opts.vector_index_min_rows is not None and run.opts.embed and not run.report.cancelled:
        # below the threshold a flat scan is exact and fast; rows added later are searched flat until compaction
        store.ensure_vector_index(run.opts.vector_index_min_rows)
    return run.finish()


def plan_changes(
    root: Path,
    store: Store,
    options: IndexOptions,
    records: dict[str, FileRecord] | None = None,
    report: IndexReport | None = None,
) -> RepoPlan:
    """Walk the repository and compare it with its file records (``records``: ``store.files(repo)`` when not
    given): a file whose size and mtime match its indexed record is unchanged and not even read. Reads only;
    counts go into ``report`` (files seen, unchanged, skipped by the walk, deleted)."""
    repo = repo_id(root)
    records = store.files(repo) if records is None else records
    report = IndexReport() if report is None else report
    # content checks added since this repository's last complete run (secrets by content): read every file once
    recheck = store.checks_version(repo) < CONTENT_CHECKS
    seen: set[str] = set()
    todo: list[tuple[str, os.stat_result]] = []
    refreshed: list[FileRecord] = []
    for item in discover(root, options.discover):
        if isinstance(item, Skip):
            report.skipped.append(item)
            seen.add(item.path)
            refreshed.append(FileRecord(repo, item.path, 0, 0, "", "skipped", item.reason))
            continue
        seen.add(item)
        report.files_seen += 1
        report.code_files_seen += is_parsed(language_for(item) or "")
        try:
            st = walk_stat(root, item)
        except OSError:
            continue  # vanished since discovery: it will be treated as deleted next run
        old = records.get(item)
        same = old is not None and old.status == "indexed" and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns)
        if same and not recheck:
            report.files_unchanged += 1
            continue
        todo.append((item, st))
    gone = sorted(set(records) - seen)
    report.files_deleted = len(gone)
    # skip records change rarely; they are written once, in one batch
    skips = [r for r in refreshed if records.get(r.path) != r]
    return RepoPlan(root, repo, records, todo, gone, skips, recheck, report)


def remove_vanished(store: Store, plan: RepoPlan) -> None:
    """The writes a plan makes before any file is processed: vanished files leave the index, and the walk's skip
    records are written (a file that became skipped loses its chunks)."""
    if plan.gone:
        store.delete_files(plan.repo, plan.gone)
    if plan.skips:
        store.delete_files(plan.repo, [r.path for r in plan.skips if r.path in plan.records])
        store.upsert_files(plan.skips)


def prepare_file(
    root: Path,
    path: str,
    recorded: str | None,
    options: IndexOptions,
    count_tokens: Callable[[list[str]], list[int]],
    expected: os.stat_result | None = None,
) -> Prepared | Skip:
    """Read one file that looks changed and chunk it, unless its text hashes as ``recorded`` (the content hash of
    its indexed record: ``recorded_hash``). Writes nothing, so it runs in any process; never raises for a
    bad file (a ``Skip`` says why it cannot be indexed). ``expected``: the path's stat at the walk (``walk_stat``,
    kept in ``RepoPlan.todo``); a file swapped for a symlink or another file since is skipped, never read."""
    src = read_source(root, path, options.discover, expected)
    if isinstance(src, Skip):
        return src
    digest = text_hash(src.text)
    text_only = lexical_only(path, src.language, src.text)
    if recorded == digest:
        return Prepared(path, digest, None, text_only=text_only)  # same content, new mtime: refresh the record only
    result = chunk_source(src, count_tokens, max_tokens=options.max_tokens, with_header=options.with_header)
    return Prepared(path, digest, result.chunks, result.problems, text_only)


def write_prepared(
    store: Store,
    files: Sequence[tuple[str, os.stat_result, Prepared | Skip]],
    vectors: dict[str, np.ndarray],
    *,
    vectors_cached: bool = False,
) -> tuple[int, int]:
    """Commit prepared files (``(repo, stat at the walk, prepare_file's result)``, of one repository or several):
    their chunk rows in one merge, then their records. A chunk whose content hash `vectors` lacks is written
    without a vector (phase 2 embeds it); the chunks of a text-only file never get one, and its record says why.
    A skipped file loses its rows and gets a skip record. Returns (files whose chunks were written, chunks written).

    Records last: a crash between the two leaves the files looking changed, so the next run redoes them."""
    rows: dict[tuple[str, str], list[tuple[StoredChunk, np.ndarray | None]]] = {}
    records: list[FileRecord] = []
    text_only: set[tuple[str, str]] = set()
    for repo, st, item in files:
        if isinstance(item, Skip):
            rows[(repo, item.path)] = []
            records.append(FileRecord(repo, item.path, st.st_size, st.st_mtime_ns, "", "skipped", item.reason))
            continue
        if item.chunks is not None:
            pairs = [(StoredChunk.from_chunk(repo, c), vectors.get(c.content_hash)) for c in item.chunks]
            rows[(repo, item.path)] = pairs
        if item.text_only is not None:
            text_only.add((repo, item.path))
        reason = None if item.text_only is None else f"{TEXT_ONLY}{item.text_only}"
        records.append(FileRecord(repo, item.path, st.st_size, st.st_mtime_ns, item.digest, "indexed", reason))
    if rows:
        store.replace_chunks(rows, vectors_cached=vectors_cached, text_only=text_only)
    store.upsert_files(records)
    changed = [item for _, _, item in files if isinstance(item, Prepared) and item.chunks is not None]
    return len(changed), sum(len(item.chunks or ()) for item in changed)


def update_files(
    root: Path,
    store: Store,
    encoder: TextEncoder,
    count_tokens: Callable[[list[str]], list[int]],
    paths: list[str],
    options: IndexOptions | None = None,
) -> IndexReport:
    """Bring the given repository-relative paths up to date (a save, a watcher event): changed files are
    re-chunked, vanished or newly ignored ones leave the index. No compaction (call ``store.compact()`` now and
    then)."""
    run = _Run.start(root, store, encoder, count_tokens, options)
    opts, report, repo, records = run.opts, run.report, run.repo, run.records
    todo: list[tuple[str, os.stat_result]] = []
    gone: list[str] = []
    wanted = sorted(set(paths))
    found: set[str] = set()
    present = [p for p in wanted if (root / p).exists() and not is_ignored(root, p, opts.discover)]
    for item in discover_paths([root / p for p in present], root, opts.discover):
        if isinstance(item, Skip):
            report.skipped.append(item)
            continue
        found.add(item)
        try:
            todo.append((item, walk_stat(root, item)))
        except OSError:
            continue
    for p in wanted:
        if p not in found and p in records:
            gone.append(p)  # deleted, now ignored, or now skipped: it leaves the index
    if gone:
        store.delete_files(repo, gone)
        report.files_deleted = len(gone)
    report.files_seen = len(todo)
    _process(run, todo, encode=True)
    return run.finish()


def update_buffer(
    root: Path,
    store: Store,
    encoder: TextEncoder,
    count_tokens: Callable[[list[str]], list[int]],
    path: str,
    text: str,
    options: IndexOptions | None = None,
) -> IndexReport:
    """Index `text` as the content of `path` (repository-relative, POSIX): an editor's buffer, saved or not, and
    whether or not the file exists on disk.

    The path must be one the walk would index (not ignored, not secret-bearing, a supported type, a valid UTF-8
    name) and the text must pass the checks a file's content does (size, NUL bytes, line length, no secret in the
    text); otherwise the report lists it as skipped and the index keeps what it had. Lone surrogates in the text
    become U+FFFD. An empty buffer is indexed as empty (no chunks): it replaces what the index held for the path.
    Nothing is written when the file's record already holds this text. The record gets the text's content hash with
    size -1 and mtime 0, which no file on disk matches, so the next ``index_repository`` or ``update_files`` of the
    path reads the disk again: ``update_files([path])`` reverts to the saved content (a closed buffer), and an index
    left holding unsaved text (a crash) heals on the next run."""
    run = _Run.start(root, store, encoder, count_tokens, options)
    opts, report = run.opts, run.report
    if (bad := invalid_name(path)) is not None:  # a name in another encoding: it could not be stored
        report.skipped.append(bad)
        return run.finish()
    text, replaced = replace_surrogates(text)
    digest = text_hash(text)
    old = run.records.get(path)
    if old is not None and old.status == "indexed" and old.content_hash == digest:
        return run.finish()  # the index already holds this text
    language = language_for(path)
    secret = None if opts.discover.include_secrets else secret_pattern(path.rsplit("/", 1)[-1])
    size = len(text.encode("utf-8"))
    reason: str | None = None
    if secret:  # checked first, as the walk does
        reason = f"secret-bearing file (matches {secret!r}); {INCLUDE_SECRETS_HINT}"
    elif language is None:
        reason = "unsupported file type"
    elif is_ignored(root, path, opts.discover):
        reason = "ignored"
    elif size > opts.discover.max_file_bytes:
        reason = too_big(size, opts.discover)
    else:
        reason = check_text(text, opts.discover)  # NUL characters, a minified line, a secret in the text
    if language is None or reason is not None:
        report.skipped.append(Skip(path, reason or "unsupported file type"))
        return run.finish()
    src = SourceFile(path, language, text, size, replaced)
    result = chunk_source(src, run.count_tokens, max_tokens=opts.max_tokens, with_header=opts.with_header)
    if result.problems:
        report.problems[path] = result.problems
    report.files_seen = 1
    unsaved = os.stat_result((0, 0, 0, 0, 0, 0, -1, 0, 0, 0), {"st_mtime_ns": 0})  # the record's size and mtime
    _write_batch(run, [(unsaved, Prepared(path, digest, result.chunks))])
    return run.finish()


def _process(
    run: _Run,
    todo: list[tuple[str, os.stat_result]],
    progress: Callable[[Progress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    *,
    rechunk: bool = False,
    encode: bool = False,
) -> None:
    """Phase 1: read, chunk and write the files in ``todo`` in batches (file records after their chunks), with the
    vectors the cache already holds and none for the rest (``_embed_pending`` fills them in); with ``encode``, both
    phases at once (``update_files``: a few files).

    Progress is reported and cancellation checked after every file; a batch closes at ``batch_files`` files or
    ``batch_chunks`` chunks, so rows land every second or so; now and then (``_Run.compact_when_due``) the tables
    are compacted, so a long run leaves a bounded number of table versions and fragments."""
    root, store, opts, records, report = run.root, run.store, run.opts, run.records, run.report
    done = 0
    batch: list[tuple[os.stat_result, Prepared]] = []
    batch_chunks = 0
    for path, st in todo:
        if cancelled is not None and cancelled():
            report.cancelled = True
            break
        recorded = None if rechunk else recorded_hash(records, path)
        item = prepare_file(root, path, recorded, opts, run.count_tokens, expected=st)
        if rechunk and isinstance(item, Prepared) and item.digest == recorded_hash(records, path):
            item = dataclasses.replace(item, same_content=True)
        if isinstance(item, Skip):  # recorded at once (also when the run is cancelled before the next batch)
            report.skipped.append(item)
            if path in records:
                store.delete_files(run.repo, [path])
            store.upsert_files([FileRecord(run.repo, path, st.st_size, st.st_mtime_ns, "", "skipped", item.reason)])
            done += 1
            continue
        batch.append((st, item))
        if item.chunks is not None:
            if item.problems:
                report.problems[path] = item.problems
            batch_chunks += len(item.chunks)
        if len(batch) >= opts.batch_files or batch_chunks >= opts.batch_chunks:
            done += _write_batch(run, batch, encode=encode)
            batch, batch_chunks = [], 0
            run.compact_when_due()
            _report(progress, done, len(todo), report, run.t0)
    if batch and not report.cancelled:
        done += _write_batch(run, batch, encode=encode)
        _report(progress, done, len(todo), report, run.t0)


def embed_order(rows: Sequence[PendingRow], records: dict[str, FileRecord], now_ns: int) -> list[PendingRow]:
    """The order phase 2 embeds rows in: code before configuration, then tests, docs, examples and benchmarks, then
    vendored and generated code (``text_kinds.text_kind``); within those, files changed in the last day, week,
    month, year, then older (their records' mtime); then small files before large ones; then by path."""

    def key(row: PendingRow) -> tuple[int, int, int, str]:
        record = records.get(row.path)
        kind = text_kind(row.path, language_for(row.path) or "text")
        age_days = (now_ns - record.mtime_ns) / 86_400e9 if record is not None and record.mtime_ns > 0 else 0.0
        recency = next((i for i, days in enumerate(RECENCY_DAYS) if age_days <= days), len(RECENCY_DAYS))
        size = record.size if record is not None and record.size >= 0 else 0
        return KIND_ORDER.get(kind, 2), recency, size, row.path

    return sorted(rows, key=key)


def _embed_pending(
    run: _Run,
    files_total: int,
    progress: Callable[[Progress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> None:
    """Phase 2: give every row of the repository that has no vector yet its vector, in ``embed_order``: content the
    vector cache holds first (no encoding), then the rest in slices of about ``checkpoint_seconds`` of encoding,
    each slice's vectors kept in the cache and then written into its rows. Cancellation is checked between slices
    and, inside one, after every encoder batch (nothing of an abandoned slice is written); progress is reported
    after every encoder batch."""
    store, report = run.store, run.report
    pending = store.pending(run.repo)
    if not pending:
        return
    rows = embed_order(pending, store.files(run.repo), time.time_ns())
    cached = store.cached_vectors(sorted({r.content_hash for r in rows}))
    store.set_vectors({r.key: cached[r.content_hash] for r in rows if r.content_hash in cached})
    keys_of: dict[str, list[str]] = {}  # content hash -> the rows that hold it, in order of first need
    for r in rows:
        if r.content_hash not in cached:
            keys_of.setdefault(r.content_hash, []).append(r.key)
    first = {r.content_hash: r for r in reversed(rows) if r.content_hash in keys_of}  # (reversed: the first wins)
    todo = [first[h] for h in keys_of]
    total, embedded = len(rows), len(rows) - sum(len(k) for k in keys_of.values())
    tokens_before, t_phase = report.tokens_encoded, time.perf_counter()
    cost = run.embed_cost
    tokens_total = sum(cost(r.tokens) for r in todo)

    def show(texts_done: int = 0, texts_total: int = 1, tokens: int = 0) -> None:
        if cancelled is not None and texts_done and cancelled():
            raise _Cancelled
        if progress is not None:
            now = time.perf_counter()
            seconds = (now - run.t0, now - t_phase)
            tokens_done = tokens_before + tokens
            p = Progress(files_total, files_total, report.chunks_written, tokens_done, seconds[0], "vectors")
            progress(dataclasses.replace(p, chunks_embedded=embedded, chunks_to_embed=total,
                                         phase_seconds=seconds[1], tokens_to_embed=tokens_total))  # fmt: skip

    show()
    start = 0
    while start < len(todo):
        if cancelled is not None and cancelled():
            report.cancelled = True
            return
        budget, end, tokens = run.checkpoint_tokens(), start, 0
        while end < len(todo) and (end == start or tokens + cost(todo[end].tokens) <= budget):
            tokens += cost(todo[end].tokens)
            end += 1
        part, texts = _slice_texts(store, todo[start:end], keys_of)
        done_before, part_tokens = report.tokens_encoded - tokens_before, sum(cost(r.tokens) for r in part)

        def encoding(texts_done: int, texts_total: int, before: int = done_before, size: int = part_tokens) -> None:
            show(texts_done, texts_total, before + size * texts_done // max(texts_total, 1))

        t0 = time.perf_counter()
        try:
            vectors = run.encoder.encode(texts, kind="document", progress=encoding, max_tokens=run.opts.embed_tokens)
        except _Cancelled:
            report.cancelled = True
            return
        run.measured(tokens, time.perf_counter() - t0)
        by_hash = {r.content_hash: v for r, v in zip(part, vectors, strict=True)}
        store.cache_vectors(by_hash)  # first the cache: a kill before the rows are written loses no encoding
        store.set_vectors({key: by_hash[h] for h in by_hash for key in keys_of[h]})
        report.chunks_encoded += len(part)
        report.tokens_encoded += part_tokens
        embedded += sum(len(keys_of[h]) for h in by_hash)
        run.compact_when_due()
        show(0, 1, report.tokens_encoded - tokens_before)
        start = end


class _Cancelled(Exception):
    """Raised from the encoder's progress callback to stop a cancelled run mid-batch (nothing of it is written)."""


def _slice_texts(
    store: Store, part: list[PendingRow], keys_of: dict[str, list[str]]
) -> tuple[list[PendingRow], list[str]]:
    """The rows of a phase 2 slice that still exist, and their texts. A row a save replaced meanwhile is gone, but
    another row of the same content may still need the vector: any row holding the content gives its text."""
    found = store.texts([key for r in part for key in keys_of[r.content_hash]])
    kept: list[PendingRow] = []
    texts: list[str] = []
    for r in part:
        text = next((found[k] for k in keys_of[r.content_hash] if k in found), None)
        if text is not None:
            kept.append(r)
            texts.append(text)
    return kept, texts


def _write_batch(run: _Run, batch: Sequence[tuple[os.stat_result, Prepared]], *, encode: bool = True) -> int:
    """Write ``batch`` with the vectors the cache holds and, when ``encode``, the others encoded now (both phases at
    once: a save); without, the rows of new content are written without a vector (phase 1)."""
    store, report = run.store, run.report
    all_chunks = [c for _, item in batch if item.text_only is None for c in item.chunks or ()]
    vectors = store.cached_vectors(sorted({c.content_hash for c in all_chunks}))
    missing = [c for c in {c.content_hash: c for c in all_chunks}.values() if c.content_hash not in vectors]
    if missing and encode:
        vectors.update(_encode_in_slices(run, missing))
    # (every vector is in the cache: found there, or kept by its encoding slice)
    files, chunks = write_prepared(store, [(run.repo, st, item) for st, item in batch], vectors, vectors_cached=True)
    report.text_only.update((item.path, item.text_only) for _, item in batch if item.text_only is not None)
    same = sum(item.chunks is not None and item.same_content for _, item in batch)  # re-chunked for new checks
    report.files_changed += files - same
    report.files_unchanged += same + sum(item.chunks is None for _, item in batch)  # same text as indexed
    report.chunks_written += chunks
    return len(batch)


def _encode_in_slices(run: _Run, missing: list[Chunk]) -> dict[str, np.ndarray]:
    """Vectors of ``missing`` (one chunk per content hash), encoded in slices of about ``checkpoint_seconds`` each;
    each slice's vectors are kept in the store's vector cache at once, so a run killed mid-batch (a save of one
    giant file) loses at most one slice of encoding: the next run finds the rest cached."""
    store, encoder, report = run.store, run.encoder, run.report
    out: dict[str, np.ndarray] = {}
    start = 0
    while start < len(missing):
        budget, end, tokens = run.checkpoint_tokens(), start, 0
        while end < len(missing) and (end == start or tokens + run.embed_cost(missing[end].tokens) <= budget):
            tokens += run.embed_cost(missing[end].tokens)
            end += 1
        part = missing[start:end]
        t0 = time.perf_counter()
        new = encoder.encode([c.text for c in part], kind="document", max_tokens=run.opts.embed_tokens)
        run.measured(tokens, time.perf_counter() - t0)
        part_vectors = {c.content_hash: v for c, v in zip(part, new, strict=True)}
        store.cache_vectors(part_vectors)
        out.update(part_vectors)
        report.chunks_encoded += len(part)
        report.tokens_encoded += tokens
        start = end
    return out


def _report(cb: Callable[[Progress], None] | None, done: int, total: int, r: IndexReport, t0: float) -> None:
    if cb is not None:
        seconds = time.perf_counter() - t0
        cb(Progress(done, total, r.chunks_written, r.tokens_encoded, seconds, phase_seconds=seconds))
