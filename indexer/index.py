"""Orchestration: what changed in a repository -> what to re-chunk -> what to re-embed -> what to write.

``index_repository`` is a plain function (the CLI and the LSP server call it, through ``semcode.Engine``):

1. Walk the repository (``discover``). A file whose size and mtime match its record is unchanged: not even read.
2. A file that looks changed is read; if its text hashes as recorded, only the record's mtime is refreshed.
3. Changed files are chunked; chunks whose content hash already has a vector for this model are not encoded
   again (a branch switch, a move or a revert costs no encoding).
4. Chunks are written in batches of files (a batch closes after a few seconds of encoding), and each file's
   record only after its chunks: a kill -9 at any moment leaves records that are either complete or missing, and
   the next run redoes the missing ones without re-encoding what was already stored. Vectors are kept by content
   hash after every few seconds of encoding, also inside a batch or a single huge file, so a kill loses at most
   those last seconds of encoding.
5. Files that disappeared leave the index; old table versions are compacted at the end.

The steps are also callable one by one, for a driver that spreads the reading and chunking over other processes
(``ray_index``): ``plan_changes`` (1, reads only) and ``remove_vanished`` (5's deletions, before any file is
processed), ``prepare_file`` (2 and 3 for one file; writes nothing, runs anywhere) and ``write_prepared`` (4: the
rows and records of prepared files, with their vectors). ``index_repository`` is these steps in one process.
"""

from __future__ import annotations

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
    DiscoverOptions,
    discover,
    discover_paths,
    invalid_name,
    is_ignored,
    read_source,
    secret_pattern,
)
from .identity import repo_id
from .languages import language_for
from .read import CONTENT_CHECKS, check_text, replace_surrogates, too_big
from .store import FileRecord, Store, StoredChunk
from .types import Chunk, Skip, SourceFile


class TextEncoder(Protocol):
    """What indexing needs from an encoder (``encoder.Encoder`` fits)."""

    @property
    def dim(self) -> int: ...

    def encode(
        self,
        texts: list[str],
        kind: Literal["document", "query"] = "document",
        progress: Callable[[int, int], None] | None = None,
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


@dataclass
class Progress:
    """Passed to the progress callback after every batch."""

    files_done: int
    files_total: int
    chunks_written: int
    tokens_encoded: int
    seconds: float


MIN_CHECKPOINT_TOKENS = 1_024  # the first slice and batch (before any encoding was timed), and the least after
COMPACT_EVERY_BATCHES = 100  # a long run compacts as it goes (its end compacts anyway)


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
    if plan.recheck and not run.report.cancelled:
        store.set_checks_version(plan.repo, CONTENT_CHECKS)
    store.compact()
    if run.opts.vector_index_min_rows is not None and not run.report.cancelled:
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
    if recorded == digest:
        return Prepared(path, digest, None)  # same content, new mtime: refresh the record only
    result = chunk_source(src, count_tokens, max_tokens=options.max_tokens, with_header=options.with_header)
    return Prepared(path, digest, result.chunks, result.problems)


def write_prepared(
    store: Store,
    files: Sequence[tuple[str, os.stat_result, Prepared | Skip]],
    vectors: dict[str, np.ndarray],
    *,
    vectors_cached: bool = False,
) -> tuple[int, int]:
    """Commit prepared files (``(repo, stat at the walk, prepare_file's result)``, of one repository or several):
    their chunk rows in one merge (``vectors`` holds a vector for every chunk's content hash), then their records.
    A skipped file loses its rows and gets a skip record. Returns (files whose chunks were written, chunks written).

    Records last: a crash between the two leaves the files looking changed, so the next run redoes them."""
    rows: dict[tuple[str, str], list[tuple[StoredChunk, np.ndarray]]] = {}
    records: list[FileRecord] = []
    for repo, st, item in files:
        if isinstance(item, Skip):
            rows[(repo, item.path)] = []
            records.append(FileRecord(repo, item.path, st.st_size, st.st_mtime_ns, "", "skipped", item.reason))
            continue
        if item.chunks is not None:
            rows[(repo, item.path)] = [(StoredChunk.from_chunk(repo, c), vectors[c.content_hash]) for c in item.chunks]
        records.append(FileRecord(repo, item.path, st.st_size, st.st_mtime_ns, item.digest, "indexed", None))
    if rows:
        store.replace_chunks(rows, vectors_cached=vectors_cached)
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
    _process(run, todo)
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
        reason = f"secret-bearing file (matches {secret!r}); set include_secrets to index it"
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
) -> None:
    """Read, chunk, encode and write the files in ``todo`` in batches (file records after their chunks).

    Progress is reported after every write batch and, while a batch is being encoded, after every encoder batch
    (files counted in proportion to the texts encoded); cancellation is checked at the same places, so a
    cancelled run stops within one encoder batch and writes no rows of the batch it was encoding (the vectors of
    its finished slices are kept). A batch closes after ``checkpoint_seconds`` of estimated encoding, so rows are
    written every few seconds; every ``COMPACT_EVERY_BATCHES`` batches the tables are compacted, so a long run
    leaves a bounded number of table versions and fragments."""
    root, store, opts, records, report = run.root, run.store, run.opts, run.records, run.report
    done = 0

    def write(batch: list[tuple[os.stat_result, Prepared]]) -> int | None:
        tokens_before = report.tokens_encoded  # (slices add to it as they are encoded)

        def encoding(texts_done: int, texts_total: int, tokens_total: int) -> None:
            if cancelled is not None and cancelled():
                raise _Cancelled
            if progress is not None:
                # the batch's files count as done only once written
                files = done + min(len(batch) - 1, len(batch) * texts_done // max(texts_total, 1))
                tokens = tokens_before + tokens_total * texts_done // max(texts_total, 1)
                progress(Progress(files, len(todo), report.chunks_written, tokens, time.perf_counter() - run.t0))

        try:
            return _write_batch(run, batch, encoding)
        except _Cancelled:
            report.cancelled = True
            return None

    batch: list[tuple[os.stat_result, Prepared]] = []
    batch_chunks = batch_tokens = batches = 0
    for path, st in todo:
        if cancelled is not None and cancelled():
            report.cancelled = True
            break
        recorded = None if rechunk else recorded_hash(records, path)
        item = prepare_file(root, path, recorded, opts, run.count_tokens, expected=st)
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
            batch_tokens += sum(c.tokens for c in item.chunks)
        full = len(batch) >= opts.batch_files or batch_chunks >= opts.batch_chunks
        if full or batch_tokens >= run.checkpoint_tokens():  # (tokens: an upper bound; cached content is free)
            written = write(batch)
            if written is None:
                return
            done += written
            batch, batch_chunks, batch_tokens = [], 0, 0
            batches += 1
            if batches % COMPACT_EVERY_BATCHES == 0:
                store.compact(prune_vectors=False)
            _report(progress, done, len(todo), report, run.t0)
    if batch:
        written = write(batch)
        if written is None:
            return
        done += written
        _report(progress, done, len(todo), report, run.t0)


class _Cancelled(Exception):
    """Raised from the encoder's progress callback to stop a cancelled run mid-batch (nothing of it is written)."""


def _write_batch(
    run: _Run,
    batch: Sequence[tuple[os.stat_result, Prepared]],
    encoding: Callable[[int, int, int], None] | None = None,
) -> int:
    """Encode what is new in ``batch`` and write it; ``encoding(texts_done, texts_total, tokens_total)`` is called
    after every encoder batch."""
    store, report = run.store, run.report
    all_chunks = [c for _, item in batch for c in item.chunks or ()]
    vectors = store.cached_vectors(sorted({c.content_hash for c in all_chunks}))
    missing = [c for c in {c.content_hash: c for c in all_chunks}.values() if c.content_hash not in vectors]
    if missing:
        vectors.update(_encode_in_slices(run, missing, encoding))
    # (every vector is in the cache: found there, or kept by its encoding slice)
    files, chunks = write_prepared(store, [(run.repo, st, item) for st, item in batch], vectors, vectors_cached=True)
    report.files_changed += files
    report.chunks_written += chunks
    return len(batch)


def _encode_in_slices(
    run: _Run, missing: list[Chunk], encoding: Callable[[int, int, int], None] | None
) -> dict[str, np.ndarray]:
    """Vectors of ``missing`` (one chunk per content hash), encoded in slices of about ``checkpoint_seconds`` each;
    each slice's vectors are kept in the store's vector cache at once, so a run killed (or cancelled) mid-batch
    loses at most one slice of encoding: the next run finds the rest cached."""
    store, encoder, report = run.store, run.encoder, run.report
    tokens_total = sum(c.tokens for c in missing)
    out: dict[str, np.ndarray] = {}
    start = 0
    while start < len(missing):
        budget, end, tokens = run.checkpoint_tokens(), start, 0
        while end < len(missing) and (end == start or tokens + missing[end].tokens <= budget):
            tokens += missing[end].tokens
            end += 1
        part = missing[start:end]

        def on_progress(done: int, _total: int, offset: int = start) -> None:
            if encoding is not None:
                encoding(offset + done, len(missing), tokens_total)

        t0 = time.perf_counter()
        new = encoder.encode([c.text for c in part], kind="document", progress=on_progress)
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
        cb(Progress(done, total, r.chunks_written, r.tokens_encoded, time.perf_counter() - t0))
