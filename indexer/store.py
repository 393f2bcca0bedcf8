"""The index on disk: every LanceDB call in the project lives in this module.

One directory holds the tables of any number of embedding models. Each model gets three tables, named from a slug of
the model id plus a short hash of it (so two models never share rows, and a model change re-embeds everything):

- ``chunks_<slug>_<hash8>``: one row per chunk (metadata, text, a ``names`` column for symbol search, the vector,
  ``embed``). Native full-text (BM25) indexes on ``text`` and ``names``; optionally an IVF_PQ index on ``vector``.
  The vector may be null: a full run writes every row first (phase 1: searchable by text at once) and fills the
  vectors in afterwards (phase 2: ``pending``, ``set_vectors``); vector search skips null rows. ``embed`` false
  marks the rows of files searched by text only (``indexer/embed_policy.py``), which never get one.
- ``vectors_<slug>_<hash8>``: the embedding cache, ``content_hash -> vector``; a chunk whose text did not change
  is never embedded again, whatever file or position it moves to.
- ``files_<slug>_<hash8>``: one row per file seen (size, mtime, hash of the bytes, indexed or skipped and why).

Writes are batched, and what a batch costs does not grow with the table: ``replace_chunks`` reads the row keys of
the batch's files through a scalar (BTREE) index on ``path``, appends the rows that are new, then deletes the rows of
those files that are gone: two commits, whose order keeps every state safe (between them a file shows old and new
rows, never none; a kill there leaves the file's record as it was, so the next run redoes the file). A
``merge_insert`` over the whole table did this in one commit but joined the batch with every row: 0.7-2 s a commit
at 1M rows against 0.06 s (``benchmarks/scale.py``). The vector cache is appended to after a lookup by
``content_hash`` (indexed) and file records replaced the same way. Every commit is a table version; ``compact``
folds small fragments, brings indexes up to date (incrementally) and removes old versions.

Full-text search in LanceDB 0.40 also scans rows added after the index was built (they are searched flat), and rows
deleted since are left out, so new rows are searchable at once; ``compact`` (``optimize``) folds them into the index.

References: LanceDB Python API (``Table.merge_insert``, ``Table.optimize``, ``lancedb.index.FTS``/``IvfPq``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from indexer import vector_segments
from indexer.identity import REBUILD, check_format, claim_dir, delete_index, read_marker, update_marker
from indexer.lancedb_import import FTS, Bitmap, BTree, IvfPq, lancedb  # LanceDB without its REST client's import time
from indexer.read_cache import Mirror
from indexer.search_lists import TextList, VectorList, fetch
from indexer.sql import batches, search_filter, sql_in, sql_str
from indexer.storage import Location, describe, location
from indexer.types import Coverage, Hit, StoredChunk, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Row:
    """A chunk row about to be written: its key, the chunk, its vector (None: not embedded yet) and whether it is to
    be embedded at all."""

    key: str
    chunk: StoredChunk
    vector: np.ndarray | None
    embed: bool


@dataclass(frozen=True)
class FileRecord:
    repo: str
    path: str
    size: int
    mtime_ns: int
    content_hash: str  # hash of the file's bytes
    status: str  # "indexed" | "skipped"
    reason: str | None  # why it was skipped


# --------------------------------------------------------------------------------------------------------- schemas

_CHUNK_FIELDS = [f for f in StoredChunk.__dataclass_fields__]
_INT_FIELDS = {"start_line", "start_col", "end_line", "end_col", "start_byte", "end_byte", "tokens"}
_NULLABLE = {"symbol", "parent", "reason"}


def _chunk_schema(dim: int) -> pa.Schema:
    fields = [pa.field("key", pa.string(), nullable=False)]
    for name in _CHUNK_FIELDS:
        typ = pa.int64() if name in _INT_FIELDS else pa.string()
        fields.append(pa.field(name, typ, nullable=name in _NULLABLE))
    fields.append(pa.field("names", pa.string(), nullable=False))  # full-text column for symbol search
    fields.append(pa.field("vector", pa.list_(pa.float32(), dim), nullable=True))  # null until phase 2 embeds it
    fields.append(pa.field("embed", pa.bool_(), nullable=False))  # False: searched by text only (embed_policy.py)
    return pa.schema(fields)


def _legacy_chunk_schema(dim: int) -> pa.Schema:
    """The chunk table before two-phase indexing: no ``embed`` column, every row with its vector. A writable open
    migrates it (``_migrate``); a read-only one reads it as it is (every row embedded)."""
    return pa.schema([f for f in _chunk_schema(dim) if f.name != "embed"])


def _vector_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [pa.field("content_hash", pa.string(), nullable=False), pa.field("vector", pa.list_(pa.float32(), dim))]
    )


def _file_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("repo", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),
            pa.field("size", pa.int64(), nullable=False),
            pa.field("mtime_ns", pa.int64(), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=True),
        ]
    )


def _same_layout(a: pa.Schema, b: pa.Schema) -> bool:
    """Names and types equal (nullability and metadata may differ after a round trip)."""
    return a.names == b.names and all(x.type == y.type for x, y in zip(a, b, strict=True))


def table_names(model_id: str) -> dict[str, str]:
    """The tables of one model: {"chunks": ..., "vectors": ..., "files": ...}."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")[:40] or "model"
    tag = hashlib.blake2b(model_id.encode("utf-8"), digest_size=4).hexdigest()
    return {kind: f"{kind}_{slug}_{tag}" for kind in ("chunks", "vectors", "files")}


_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+")


def names_text(chunk: StoredChunk) -> str:
    """The full-text ``names`` column: the qualified name plus the parts of its camelCase words (``LRUCache.get_item``
    gives ``LRUCache.get_item lru cache``), so a lexical query for a part of a name finds the symbol. The FTS tokenizer
    itself splits on punctuation and underscores and lower-cases, but does not split camelCase."""
    qualified = chunk.qualified_name
    if not qualified:
        return ""
    parts: list[str] = []
    for word in re.split(r"[^A-Za-z0-9]+", qualified):
        for part in _CAMEL.findall(word):
            low = part.lower()
            if low not in parts and low != word.lower():
                parts.append(low)
    return " ".join([qualified, *parts])


def _row_key(c: StoredChunk) -> str:
    """Identity of a chunk row: every stored field. An unchanged chunk keeps its key, so merge_insert leaves it
    alone; any change (even of metadata only, e.g. a renamed parent) gives a new key: old row deleted, new added."""
    raw = "\x1f".join("" if (v := getattr(c, f)) is None else str(v) for f in _CHUNK_FIELDS)
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


def _vectors(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A vector column as an (n, dim) matrix; a null vector (a row phase 2 has not embedded yet) is all zeros."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    if arr.null_count:
        out = np.zeros((len(arr), dim), dtype=np.float32)
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        out[valid] = _vectors(arr.filter(arr.is_valid()), dim)
        return out
    return np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(arr), dim)


@dataclass(frozen=True)
class PendingRow:
    """A chunk row phase 2 has to embed: its key, file, content hash and tokens (its text is read per slice)."""

    key: str
    path: str
    content_hash: str
    tokens: int


VERSION_TTL_S = 0.1  # how long a read-only store reuses the chunk table's version it read (``Store.version``)


# ----------------------------------------------------------------------------------------------------------- store


class Store:
    """The tables of one embedding model in one index directory. Not thread-safe for concurrent writes from several
    threads; reads may run while another process writes (LanceDB commits are atomic)."""

    def __init__(
        self, where: Location, db: Any, model_id: str, dim: int, tables: dict[str, Any], *, legacy: bool = False
    ) -> None:
        self.location = where
        self.legacy = legacy  # a read-only open of a chunk table without the `embed` column: every row embedded
        self.root = where.root  # a local folder's Path, or the object-store URI
        self.model_id = model_id
        self.dim = dim
        self._db = db
        self._chunks = tables["chunks"]
        self._vectors = tables["vectors"]
        self._files = tables["files"]
        self._names = table_names(model_id)
        self.copy: Mirror | None = None  # the local read cache this read-only store serves from, once it is whole
        self.serving_copy = False
        self._stop_refresh = threading.Event()
        self._only_repo: tuple[int, str | None] | None = None  # (chunk table version, its only repo)
        self._coverage: dict[str | None, tuple[int, Coverage]] = {}  # repo -> (chunk table version, its coverage)
        self._rows: tuple[int, int] | None = None  # (chunk table version, its rows)
        self.read_only = False  # (``open`` sets it)
        self._version_read: tuple[float, int] | None = None  # (when, the chunk table's version) of a read-only store
        self._marker_read: tuple[float, dict[str, Any]] | None = None  # (when, the index's marker): the same

    # -- lifecycle ------------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        uri: str | Path | Location,
        model_id: str,
        dim: int,
        *,
        read_consistency_interval: timedelta | None = timedelta(0),
        storage_options: Mapping[str, str] | None = None,
        read_only: bool = False,
        read_cache: Mirror | None = None,
    ) -> Store:
        """Open (creating as needed) the index at `uri` for `model_id` with vectors of size `dim`. `uri`: a local
        folder or an object-store URI (``s3://bucket/prefix``, reached with `storage_options` and the environment,
        ``indexer/storage.py``); a storage problem is a StoreError naming the URI and the cause.

        `read_consistency_interval` 0 makes every read see commits by other processes (a cheap manifest check on a
        local disk); None never re-checks. `read_only` writes nothing (no marker, table or full-text index is
        created: an index another process maintains, maybe with read-only credentials) and refuses an index that
        has no tables of this model. `read_cache`: with `read_only`, an index on object storage is copied to that
        local read cache in the background and served from the copy once it is whole, the copy kept up to date
        (``indexer/read_cache.py``); until then, and when the index is larger than the cache, from the store."""
        where = location(uri, storage_options)
        root = where.root
        if read_only:
            check_format(where, read_marker(where))
        else:
            claim_dir(where)
        try:
            db = lancedb.connect(
                where.uri, read_consistency_interval=read_consistency_interval, storage_options=where.storage_options()
            )
        except Exception as e:  # pragma: no cover - connect only fails on unusable paths
            raise StoreError(f"cannot open the index at {root}: {describe(e, where.options)}") from e
        names = table_names(model_id)
        wanted = {"chunks": _chunk_schema(dim), "vectors": _vector_schema(dim), "files": _file_schema()}
        tables = {}
        legacy = False
        for kind, name in names.items():
            try:
                table = _open_table(db, name, wanted[kind], read_only)
                schema = table.schema
            except Exception as e:
                raise _open_error(where, name, model_id, e, read_only) from e
            if kind == "chunks" and _same_layout(schema, _legacy_chunk_schema(dim)):
                legacy = read_only  # an index of an older semcode: migrated when opened to write
                if not read_only:
                    _migrate(table)
                    schema = table.schema
            if not legacy and not _same_layout(schema, wanted[kind]):
                raise StoreError(
                    f"the index table {name} in {root} has another layout (made by another semcode version, or for"
                    f" another vector size than {dim}); {REBUILD}"
                )
            tables[kind] = table
        store = cls(where, db, model_id, dim, tables, legacy=legacy)
        store.read_only = read_only
        if read_only and read_cache is not None and where.remote:
            store._serve_from_copy(read_cache)
        if not read_only:
            update_marker(where, lambda m: m.setdefault("models", {}).update({model_id: dim}))
            store._ensure_indexes()
        return store

    @staticmethod
    def destroy(uri: str | Path | Location, *, storage_options: Mapping[str, str] | None = None) -> None:
        """Delete an index (for --rebuild). Refuses a location that holds something other than an index."""
        delete_index(location(uri, storage_options))

    def close(self) -> None:
        """Release the table handles (the sync LanceDB 0.40 connection has no close; commits are already durable).
        The Store must not be used afterwards."""
        self._stop_refresh.set()
        self._chunks = self._vectors = self._files = self._db = None

    # -- the read cache of an index on object storage ----------------------------------------------------------

    def _serve_from_copy(self, copy: Mirror) -> None:
        """Serve reads from `copy` once it is whole (at once when an earlier process left one, which the first
        refresh then brings up to date), and keep it up to date on a thread (``Mirror.keep_fresh``)."""
        self.copy = copy
        if copy.ready():
            try:
                self._switch_to_copy()
            except Exception as e:  # a damaged copy: the refresh fetches what is missing, then switches
                log.warning("read cache of %s: %s", self.location.uri, describe(e))
        copy.keep_fresh(lambda: self.serving_copy, self._switch_to_copy, self._stop_refresh)

    def _switch_to_copy(self) -> None:
        assert self.copy is not None
        db = lancedb.connect(self.copy.local, read_consistency_interval=timedelta(0))
        schemas = {"chunks": _chunk_schema(self.dim), "vectors": _vector_schema(self.dim), "files": _file_schema()}
        if self.legacy:
            schemas["chunks"] = _legacy_chunk_schema(self.dim)
        tables = {kind: _open_table(db, name, schemas[kind], True) for kind, name in self._names.items()}
        if self._stop_refresh.is_set():
            return
        self._db, self._chunks, self._vectors, self._files = db, tables["chunks"], tables["vectors"], tables["files"]
        self.serving_copy = True
        self.copy.touch()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- full runs: an interrupted one is recorded until a later run completes ------------------------------------

    def begin_run(self, repo: str) -> None:
        def add(m: dict[str, Any]) -> None:
            repos = m.setdefault("incomplete", {}).setdefault(self.model_id, [])
            if repo not in repos:
                repos.append(repo)

        update_marker(self.location, add)

    def end_run(self, repo: str) -> None:
        def remove(m: dict[str, Any]) -> None:
            repos = m.get("incomplete", {}).get(self.model_id, [])
            if repo in repos:
                repos.remove(repo)

        update_marker(self.location, remove)

    def checks_version(self, repo: str) -> int:
        """The version of the content checks (``indexer.read.CONTENT_CHECKS``) the last complete run of `repo`
        applied to every file; 0 when none did."""
        return int(read_marker(self.location).get("checks", {}).get(self.model_id, {}).get(repo, 0))

    def set_checks_version(self, repo: str, version: int) -> None:
        def put(m: dict[str, Any]) -> None:
            m.setdefault("checks", {}).setdefault(self.model_id, {})[repo] = version

        update_marker(self.location, put)

    def incomplete(self, repo: str) -> bool:
        """Whether the last full run of `repo` stopped before its end (Ctrl-C, a kill, a crash). Every answer asks
        (a read of the index's marker file); a read-only store reads it at most every ``VERSION_TTL_S``."""
        now = time.monotonic()
        if not self.read_only or self._marker_read is None or now - self._marker_read[0] >= VERSION_TTL_S:
            self._marker_read = (now, read_marker(self.location))
        return repo in self._marker_read[1].get("incomplete", {}).get(self.model_id, [])

    def _ensure_indexes(self) -> None:
        """Full-text indexes on `text` and `names`, and the scalar indexes that keep a write's lookups off a full
        scan: chunk rows and file records by `path` (BTREE) and `repo` (bitmap), chunk rows by `key`, cached vectors
        by `content_hash`. Built once (an index on an empty table is valid); rows written later are searched flat
        until `compact` folds them in."""
        for table, column, config in self._indexed():
            have = {tuple(ix.columns) for ix in table.list_indices()}
            if (column,) not in have:
                table.create_index(column, config=config(), replace=True)

    # -- writes ---------------------------------------------------------------------------------------------------

    def cached_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """The vectors already stored for these content hashes (the others need embedding)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for batch in batches(unique):
            table = (
                self._vectors.search()
                .where(sql_in("content_hash", batch))
                .select(["content_hash", "vector"])
                .limit(None)
                .to_arrow()
            )
            vectors = _vectors(table["vector"], self.dim)
            for h, v in zip(table["content_hash"].to_pylist(), vectors, strict=True):
                found[h] = v
        return found

    def _known_hashes(self, hashes: list[str]) -> set[str]:
        """Which of these content hashes the vector cache holds (their vectors are not read)."""
        known: set[str] = set()
        for batch in batches(list(dict.fromkeys(hashes))):
            table = self._vectors.search().where(sql_in("content_hash", batch)).select(["content_hash"]).limit(None)
            known.update(table.to_arrow()["content_hash"].to_pylist())
        return known

    def replace_file_chunks(
        self, repo: str, path_chunks: Mapping[str, Sequence[tuple[StoredChunk, np.ndarray | None]]]
    ) -> None:
        """Make the chunks of each file in `path_chunks` exactly the given ones (an empty list clears a file).

        Per 1000 files, one append of the new rows and one delete of the rows no longer there (rows whose key is
        unchanged stay untouched; see the module's docstring for the order). New vectors also go into the vector
        cache (insert if absent)."""
        self.replace_chunks({(repo, path): pairs for path, pairs in path_chunks.items()})

    def replace_chunks(
        self,
        file_chunks: Mapping[tuple[str, str], Sequence[tuple[StoredChunk, np.ndarray | None]]],
        *,
        vectors_cached: bool = False,
        text_only: Collection[tuple[str, str]] = (),
    ) -> None:
        """``replace_file_chunks`` for files of any repositories, keyed by (repo, path): one append and one delete
        per 1000 files whatever the repositories (a distributed job writes many small repositories in few commits).
        A vector may be None: the row is written without one (phase 1 of a full run) and ``pending`` lists it until
        ``set_vectors`` fills it in. Files in `text_only` are searched by text only: their rows never get a vector.
        `vectors_cached`: the caller has put every vector in the cache already (an indexing run does, slice by
        slice, as it encodes), so the cache is not checked again (a read of every content hash of the batch)."""
        if not file_chunks:
            return
        keys: set[str] = set()
        rows: list[_Row] = []
        for (repo, path), pairs in file_chunks.items():
            embed = (repo, path) not in text_only
            for chunk, vector in pairs:
                if chunk.repo != repo or chunk.path != path:
                    raise ValueError(f"chunk of {chunk.repo}:{chunk.path} passed under {repo}:{path}")
                key = _row_key(chunk)
                if key not in keys:  # an exact duplicate row would make the merge ambiguous
                    keys.add(key)
                    v = self._check_vector(vector) if vector is not None and embed else None
                    rows.append(_Row(key, chunk, v, embed))
        if not vectors_cached:
            self.cache_vectors({r.chunk.content_hash: r.vector for r in rows if r.vector is not None})
        by_file: dict[tuple[str, str], list[_Row]] = {}
        for row in rows:
            by_file.setdefault((row.chunk.repo, row.chunk.path), []).append(row)
        for batch in batches(list(file_chunks)):
            where = _files_filter(batch)
            found = self._chunks.search().where(where).select(["key"]).with_row_id(True).limit(None).to_arrow()
            had: dict[str, list[int]] = {}  # key -> the row ids of its rows (one, unless a crash left a twin)
            for key, row_id in zip(found["key"].to_pylist(), found["_rowid"].to_pylist(), strict=True):
                had.setdefault(key, []).append(row_id)
            batch_rows = [r for f in batch for r in by_file.get(f, [])]
            new = [r for r in batch_rows if r.key not in had]  # an unchanged row stays as it is, vector and all
            if new:
                self._chunks.add(self._chunk_table(new), on_bad_vectors="null")  # a null vector: not embedded yet
            gone = sorted(set(had).difference(r.key for r in batch_rows))
            for stale in batches(gone):  # after the append: a reader never sees these files without rows
                self._delete_rows(where, stale, [i for key in stale for i in had[key]])

    def _delete_rows(self, where: str, keys: Sequence[str], row_ids: list[int]) -> None:
        """Delete the chunk rows with these keys (of the files `where` selects), found at `row_ids` just before. By row
        id, checked against the keys: it costs the same at any table size, where a filter on the files' keys grows
        with the table (a 4,096-chunk commit's deletes at 100k / 5M rows: 0.05 / 0.04 s by row id, 0.06 / 0.1-0.7 s
        by key; ``benchmarks/scale.py``). Rows that moved meanwhile (another process compacted the table, which
        renumbers rows) are deleted by key, as before."""
        ids = ", ".join(str(int(i)) for i in row_ids)
        result = self._chunks.delete(f"_rowid IN ({ids}) AND {sql_in('key', keys)}")
        if getattr(result, "num_deleted_rows", None) != len(row_ids):
            self._chunks.delete(f"({where}) AND {sql_in('key', keys)}")

    def delete_files(self, repo: str, paths: list[str]) -> None:
        """Forget these files: their chunks and their file records (cached vectors stay for reuse)."""
        unique = list(dict.fromkeys(paths))
        for batch in batches(unique):
            where = f"repo = {sql_str(repo)} AND {sql_in('path', batch)}"
            self._chunks.delete(where)
            self._files.delete(where)

    def forget_repo(self, repo: str) -> int:
        """Remove a repository from the index: its chunks, its file records and its entries in the marker (cached
        vectors stay until ``compact`` prunes them). Returns the number of chunk rows removed."""
        where = f"repo = {sql_str(repo)}"
        rows = self.count_chunks(repo)
        if rows:
            self._chunks.delete(where)
        if self._files.count_rows(where):
            self._files.delete(where)

        def drop(m: dict[str, Any]) -> None:
            for section in ("incomplete", "checks"):
                entry = m.get(section, {}).get(self.model_id)
                if isinstance(entry, list) and repo in entry:
                    entry.remove(repo)
                elif isinstance(entry, dict):
                    entry.pop(repo, None)

        update_marker(self.location, drop)
        return rows

    def upsert_files(self, records: list[FileRecord]) -> None:
        if not records:
            return
        latest = {(r.repo, r.path): r for r in records}  # the last record of a file wins
        data = pa.Table.from_pylist(
            [
                {
                    "repo": r.repo,
                    "path": r.path,
                    "size": r.size,
                    "mtime_ns": r.mtime_ns,
                    "content_hash": r.content_hash,
                    "status": r.status,
                    "reason": r.reason,
                }
                for r in latest.values()
            ],
            schema=_file_schema(),
        )
        # the old records go first: a kill between the two commits leaves these files without a record, and the
        # next run redoes them (never a record that claims rows that are not there)
        for batch in batches(list(latest)):
            self._files.delete(_files_filter(batch))
        self._files.add(data)

    def _check_vector(self, vector: np.ndarray) -> np.ndarray:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dim:
            raise ValueError(f"vector of size {v.shape[0]}, the index holds size {self.dim}")
        return v

    def cache_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Keep these vectors by content hash (insert if absent): an indexing run calls it every few seconds of
        encoding, so a killed run loses at most the last slice of its work."""
        vectors = {h: self._check_vector(v) for h, v in vectors.items()}
        known = self._known_hashes(list(vectors))
        new = {h: v for h, v in vectors.items() if h not in known}
        if not new:
            return  # no commit, no new table version
        data = pa.table(
            {
                "content_hash": pa.array(list(new), pa.string()),
                "vector": self._vector_array(list(new.values())),
            },
            schema=_vector_schema(self.dim),
        )
        # An index has one writer (the engine's, or a distributed job's driver); should two ever cache the same
        # content, the copies are equal and a lookup keeps one.
        self._vectors.add(data)

    def _vector_array(self, vectors: Sequence[np.ndarray | None]) -> pa.FixedSizeListArray:
        """A vector column; a None is a null vector (zeros under a null mask)."""
        if not vectors:
            return pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(0, np.float32), pa.float32()), self.dim)
        zero = np.zeros(self.dim, np.float32)
        flat = np.stack([zero if v is None else v for v in vectors]).astype(np.float32, copy=False).reshape(-1)
        values = pa.array(flat, pa.float32())
        if all(v is not None for v in vectors):
            return pa.FixedSizeListArray.from_arrays(values, self.dim)
        mask = pa.array([v is None for v in vectors], pa.bool_())
        return pa.FixedSizeListArray.from_arrays(values, self.dim, mask=mask)

    def _chunk_table(self, rows: list[_Row]) -> pa.Table:
        columns: dict[str, Any] = {"key": [r.key for r in rows], "embed": [r.embed for r in rows]}
        for name in _CHUNK_FIELDS:
            columns[name] = [getattr(r.chunk, name) for r in rows]
        columns["names"] = [names_text(r.chunk) for r in rows]
        schema = _chunk_schema(self.dim)
        arrays = [
            self._vector_array([r.vector for r in rows]) if f.name == "vector" else pa.array(columns[f.name], f.type)
            for f in schema
        ]
        return pa.Table.from_arrays(arrays, schema=schema)

    # -- phase 2: rows written without a vector get one ---------------------------------------------------------

    def pending(self, repo: str) -> list[PendingRow]:
        """The rows of `repo` that are to be embedded and have no vector yet (in no particular order)."""
        if self.legacy:
            return []
        where = f"repo = {sql_str(repo)} AND embed AND vector IS NULL"
        columns = ["key", "path", "content_hash", "tokens"]
        table = self._chunks.search().where(where).select(columns).limit(None).to_arrow()
        return [PendingRow(**row) for row in table.to_pylist()]

    def texts(self, keys: Sequence[str]) -> dict[str, str]:
        """The text of the rows with these keys (rows deleted meanwhile are absent)."""
        out: dict[str, str] = {}
        for batch in batches(list(dict.fromkeys(keys))):
            table = self._chunks.search().where(sql_in("key", batch)).select(["key", "text"]).limit(None).to_arrow()
            out.update(zip(table["key"].to_pylist(), table["text"].to_pylist(), strict=True))
        return out

    def set_vectors(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Fill in the vectors of rows by key, in one commit (phase 2). A row deleted or replaced meanwhile (a save
        while phase 2 runs) matches no key and is left alone; nothing is inserted."""
        if not vectors:
            return
        data = pa.table(
            {
                "key": pa.array(list(vectors), pa.string()),
                "vector": self._vector_array([self._check_vector(v) for v in vectors.values()]),
            }
        )
        self._chunks.merge_insert("key").when_matched_update_all().execute(data)

    def version(self) -> int:
        """The chunk table's version, which the figures cached here are keyed by. Each read is a trip to LanceDB's
        event loop and a check of the manifest (0.3 ms of CPU), and a search answer asked for it five times; a
        read-only store (a server of an index that other processes write) reads it at most every
        ``VERSION_TTL_S``: their commits reach its figures that much later (its searches see them at once)."""
        if not self.read_only:
            return int(self._chunks.version)
        now = time.monotonic()
        if self._version_read is None or now - self._version_read[0] >= VERSION_TTL_S:
            self._version_read = (now, int(self._chunks.version))
        return self._version_read[1]

    def coverage(self, repo: str | None = None) -> Coverage:
        """How many rows (of `repo`) have vectors, wait for one, or are searched by text only. Cached per table
        version (every search answer reports it: three counts cost milliseconds at 100k rows)."""
        version = self.version()
        cached = self._coverage.get(repo)
        if cached is not None and cached[0] == version:
            return cached[1]
        scope = "" if repo is None else f"repo = {sql_str(repo)} AND "
        total = self.count_chunks(repo)
        if self.legacy or not total:
            found = Coverage(embedded=total)
        else:
            text_only = int(self._chunks.count_rows(f"{scope}NOT embed"))
            pending = int(self._chunks.count_rows(f"{scope}embed AND vector IS NULL"))
            found = Coverage(embedded=total - text_only - pending, pending=pending, text_only=text_only)
        if len(self._coverage) > 64:
            self._coverage.clear()
        self._coverage[repo] = (version, found)
        return found

    # -- reads ----------------------------------------------------------------------------------------------------

    def files(self, repo: str) -> dict[str, FileRecord]:
        table = self._files.search().where(f"repo = {sql_str(repo)}").limit(None).to_arrow()
        return {row["path"]: FileRecord(**row) for row in table.to_pylist()}

    def file_record(self, repo: str, path: str) -> FileRecord | None:
        where = f"repo = {sql_str(repo)} AND path = {sql_str(path)}"
        rows = self._files.search().where(where).limit(1).to_arrow().to_pylist()
        return FileRecord(**rows[0]) if rows else None

    def count_files(self, repo: str) -> int:
        """How many of `repo`'s files are indexed (skipped ones not counted)."""
        return int(self._files.count_rows(f"repo = {sql_str(repo)} AND status = 'indexed'"))

    def search_vector(
        self,
        vector: np.ndarray,
        limit: int,
        *,
        repo: str | None = None,
        languages: Sequence[str] | None = None,
        path_glob: str | None = None,
        exclude: Sequence[str] = (),
    ) -> list[Hit]:
        """Nearest chunks by cosine distance; score = 1 - distance (the cosine similarity)."""
        where = search_filter(repo, languages, path_glob, exclude)
        return self.search_lists(vector, "", "", limit, 0, where)[0]

    def search_text(
        self,
        query: str,
        limit: int,
        *,
        repo: str | None = None,
        languages: Sequence[str] | None = None,
        path_glob: str | None = None,
        exclude: Sequence[str] = (),
        columns: Sequence[str] = ("text", "names"),
    ) -> list[Hit]:
        """BM25 full-text search over chunk text and symbol names (``columns=("names",)``: names only); score = the
        BM25 score."""
        if limit <= 0 or not re.search(r"\w", query):
            return []
        where = search_filter(repo, languages, path_glob, exclude)
        found = fetch(self._chunks, [TextList(query, limit, tuple(columns))], where, _CHUNK_FIELDS)
        return [Hit(_to_chunk(row), float(row["_score"]), ("lexical",)) for row in found[0].to_pylist()]

    def search_lists(
        self, vector: np.ndarray | None, text: str, names: str, depth: int, names_depth: int, where: str | None
    ) -> tuple[list[Hit], list[Hit], list[Hit]]:
        """A hybrid search's candidate lists, (semantic, lexical, names), each best first: the `depth` chunks
        nearest to `vector` (none without one), the `depth` best for `text` by BM25 over the chunk text, and the
        `names_depth` best for `names` over the symbol names ("" for no list). `where`: the SQL filter of
        ``search_filter``. The three run at once in one trip to LanceDB (``indexer/search_lists.py``)."""
        lists: list[tuple[int, VectorList | TextList]] = []  # (which of the three, its query)
        if vector is not None and depth > 0:
            lists.append((0, VectorList(self._check_vector(vector), depth)))
        if depth > 0 and re.search(r"\w", text):
            lists.append((1, TextList(text, depth, ("text",))))
        if names_depth > 0 and re.search(r"\w", names):
            lists.append((2, TextList(names, names_depth, ("names",))))
        out: tuple[list[Hit], list[Hit], list[Hit]] = ([], [], [])
        tables = fetch(self._chunks, [q for _, q in lists], where, _CHUNK_FIELDS)
        for (side, _), table in zip(lists, tables, strict=True):
            if side == 0:
                out[0].extend(Hit(_to_chunk(r), 1.0 - float(r["_distance"]), ("semantic",)) for r in table.to_pylist())
            else:
                out[side].extend(Hit(_to_chunk(r), float(r["_score"]), ("lexical",)) for r in table.to_pylist())
        return out

    def search_hybrid(
        self,
        vector: np.ndarray,
        query: str,
        limit: int,
        *,
        repo: str | None = None,
        languages: Sequence[str] | None = None,
        path_glob: str | None = None,
        exclude: Sequence[str] = (),
        k_rrf: int = 60,
    ) -> list[Hit]:
        """Reciprocal rank fusion of the semantic and lexical lists: score = sum of 1 / (k_rrf + rank), rank from 1.
        A chunk found by both lists has reasons ("semantic", "lexical")."""
        if limit <= 0:
            return []
        depth = max(2 * limit, limit + 10)
        filters: dict[str, Any] = {"repo": repo, "languages": languages, "path_glob": path_glob, "exclude": exclude}
        lists = [self.search_vector(vector, depth, **filters), self.search_text(query, depth, **filters)]
        fused: dict[StoredChunk, tuple[float, tuple[str, ...]]] = {}
        for hits in lists:
            for rank, hit in enumerate(hits, start=1):
                score, reasons = fused.get(hit.chunk, (0.0, ()))
                fused[hit.chunk] = (score + 1.0 / (k_rrf + rank), reasons + hit.reasons)
        ranked = sorted(fused.items(), key=lambda item: -item[1][0])
        return [Hit(chunk, score, reasons) for chunk, (score, reasons) in ranked[:limit]]

    def chunks(self, repo: str | None = None) -> list[StoredChunk]:
        """Every chunk row (of ``repo``), without vectors, in no particular order (benchmarks, exports)."""
        return self.chunks_with_vectors(repo, vectors=False)[0]

    def chunks_with_vectors(
        self, repo: str | None = None, *, vectors: bool = True
    ) -> tuple[list[StoredChunk], np.ndarray]:
        """Every chunk row (of ``repo``) and its row's vector, ``(n, dim)`` (``vectors=False``: ``(0, dim)``)."""
        query = self._chunks.search()
        if repo is not None:
            query = query.where(f"repo = {sql_str(repo)}")
        table = query.select([*_CHUNK_FIELDS, *(["vector"] if vectors else [])]).limit(None).to_arrow()
        matrix = _vectors(table["vector"], self.dim) if vectors else np.zeros((0, self.dim), np.float32)
        return [_to_chunk(row) for row in table.select(_CHUNK_FIELDS).to_pylist()], matrix

    def chunk_at(self, repo: str, path: str, line: int) -> StoredChunk | None:
        """The innermost chunk of `path` whose lines cover `line` (0-based), or None (also for a line no 64-bit SQL
        integer holds)."""
        if not 0 <= line < 2**63:
            return None
        where = f"repo = {sql_str(repo)} AND path = {sql_str(path)}"
        where += f" AND start_line <= {int(line)} AND end_line >= {int(line)}"
        table = self._chunks.search().where(where).select([*_CHUNK_FIELDS]).limit(None).to_arrow()
        chunks = [_to_chunk(row) for row in table.to_pylist()]
        if not chunks:
            return None
        return min(chunks, key=lambda c: (c.end_byte - c.start_byte, -c.start_byte))

    def row_vector(self, chunk: StoredChunk) -> np.ndarray | None:
        """The vector stored in `chunk`'s own row (None when the row is gone or has no vector yet). Not the vector
        cache's copy: a concurrent compaction may prune that (``_prune_vectors``) before an indexing run commits the
        rows."""
        where = f"key = {sql_str(_row_key(chunk))}"
        table = self._chunks.search().where(where).select(["vector"]).limit(1).to_arrow()
        if not table.num_rows or table["vector"].null_count:
            return None  # gone, or not embedded yet
        return _vectors(table["vector"], self.dim)[0]

    # -- maintenance ----------------------------------------------------------------------------------------------

    def only_repo(self) -> str | None:
        """The one repository every chunk row belongs to (None: several, or none). A search scoped to it needs no
        filter, which costs about 10 ms at 100k rows. Cached per table version; a search that drops the filter on
        its word keeps the rows of that repository only (``Engine``: a read-only store's version may be a moment
        old)."""
        version = self.version()
        if self._only_repo is None or self._only_repo[0] != version:
            head = self._chunks.head(1).column("repo").to_pylist()
            repo = head[0] if head else None
            if repo is not None and self.count_chunks(repo) != self._chunks.count_rows():
                repo = None
            self._only_repo = (version, repo)
        return self._only_repo[1]

    def count_matching(
        self,
        *,
        repo: str | None = None,
        languages: Sequence[str] | None = None,
        path_glob: str | None = None,
        exclude: Sequence[str] = (),
    ) -> int:
        """Chunk rows a search with these filters reads (0: the filters match nothing indexed)."""
        where = search_filter(repo, languages, path_glob, exclude)
        return int(self._chunks.count_rows(where) if where else self._chunks.count_rows())

    def count_chunks(self, repo: str | None = None) -> int:
        """Rows of the chunk table: all of them (cached per table version), or one repository's."""
        if repo is not None:
            return int(self._chunks.count_rows(f"repo = {sql_str(repo)}"))
        version = self.version()
        if self._rows is None or self._rows[0] != version:
            self._rows = (version, int(self._chunks.count_rows()))
        return self._rows[1]

    def stats(self) -> dict[str, Any]:
        """Counts, table versions and bytes on disk (the whole index directory, all models)."""
        fts = {ix.name: ix for ix in self._chunks.list_indices()}
        return {
            "model_id": self.model_id,
            "dim": self.dim,
            "rows": self._chunks.count_rows(),
            **_coverage_stats(self.coverage()),
            "files": self._files.count_rows("status = 'indexed'"),
            "skipped": self._files.count_rows("status = 'skipped'"),
            "vectors": self._vectors.count_rows(),
            "versions": {name: len(t.list_versions()) for name, t in self._tables()},
            "unindexed_text_rows": max((ix.num_unindexed_rows or 0 for ix in fts.values()), default=0),
            "bytes": self.location.size(),
        }

    def compact(self, *, keep_versions: timedelta = timedelta(seconds=60), prune_vectors: bool = True) -> None:
        """Merge small fragments, bring the indexes up to date and delete versions older than `keep_versions`.

        The grace period matters: a query running in another thread or process reads the version that was
        current when it started, and deleting that version's files under it fails the query ("Not found: ...
        .lance"; seen once in ~250 searches during a full index in benchmarks/lsp_latency.py with a zero grace).
        Versions younger than the grace period are removed by a later compaction, so the count still grows with
        batches, not with files. `prune_vectors` drops cached vectors of content no chunk has any more once they
        outnumber the live ones and the cache holds over twice as many vectors as the table has rows (a check of two
        counts first; the cache keeps up to twice the live content, so switching branches back and forth stays
        cheap)."""
        if prune_vectors:
            self._prune_vectors()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*cleanup_older_than.*", category=UserWarning)
            for _name, table in self._tables():
                table.optimize(cleanup_older_than=keep_versions)
        self._merge_vector_segments()

    def _merge_vector_segments(self) -> None:
        """Merge the vector index's segments once compactions have left more than ``MAX_SEGMENTS`` of them
        (``indexer/vector_segments.py``)."""
        name = next((ix.name for ix in self._chunks.list_indices() if ix.columns == ["vector"]), None)
        segments = (self._chunks.index_stats(name).num_indices or 1) if name is not None else 1
        if name is None or segments <= vector_segments.MAX_SEGMENTS:
            return
        try:
            vector_segments.merge(self._chunks.uri, name, segments, self.location.options)
        except Exception as e:  # (a commit of another process in between, a storage error: the next one retries)
            log.warning("merging the %d segments of the vector index failed: %s", segments, describe(e))

    def ensure_vector_index(self, min_rows: int = 100_000) -> bool:
        """Build an IVF_PQ (cosine) index on the chunk vectors once the table holds `min_rows` rows; below that a
        flat scan is fast enough and exact. Returns True when it built one. Later writes are added to the index by
        `compact` (optimize); rows not yet in it are still searched flat."""
        if self._chunks.count_rows() < min_rows:
            return False
        if any(ix.columns == ["vector"] for ix in self._chunks.list_indices()):
            return False
        self._chunks.create_index("vector", config=IvfPq(distance_type="cosine"), replace=True)
        return True

    def _prune_vectors(self) -> None:
        # counts first (cheap at any size): only a cache that outgrew the live rows by far is read in full
        if self._vectors.count_rows() <= 2 * max(self._chunks.count_rows(), 1000):
            return
        live = set(self._chunks.search().select(["content_hash"]).limit(None).to_arrow()["content_hash"].to_pylist())
        cached = self._vectors.search().select(["content_hash"]).limit(None).to_arrow()["content_hash"].to_pylist()
        orphans = [h for h in cached if h not in live]
        if len(orphans) <= max(len(live), 1000):
            return
        for batch in batches(orphans):
            self._vectors.delete(sql_in("content_hash", batch))

    def _indexed(self) -> list[tuple[Any, str, type]]:
        """(table, column, index config) of every index `_ensure_indexes` keeps."""
        return [
            (self._chunks, "text", FTS),
            (self._chunks, "names", FTS),
            (self._chunks, "path", BTree),
            (self._chunks, "repo", Bitmap),  # few values: a bitmap per repository; with `path`, a lookup reads no rows
            (self._chunks, "key", BTree),
            (self._files, "path", BTree),
            (self._files, "repo", Bitmap),
            (self._vectors, "content_hash", BTree),
        ]

    def _tables(self) -> list[tuple[str, Any]]:
        return [
            (self._names["chunks"], self._chunks),
            (self._names["vectors"], self._vectors),
            (self._names["files"], self._files),
        ]


def describe_index(
    uri: str | Path | Location, *, storage_options: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """What an index holds, per model: {"model", "dim", "repos": {repo: {"files", "chunks"}}, "updated" (seconds
    since the epoch of the last write), "incomplete": [repo, ...]}. Read-only; no table is created."""
    where = location(uri, storage_options)
    marker = read_marker(where)
    try:
        db = lancedb.connect(where.uri, storage_options=where.storage_options())
        existing = set(db.table_names())
    except Exception as e:
        raise StoreError(f"cannot read the index at {where.uri} ({describe(e, where.options)})") from e
    out = []
    for model, dim in sorted(marker.get("models", {}).items()):
        names = table_names(model)
        if not {names["files"], names["chunks"]} <= existing:
            continue
        files = db.open_table(names["files"]).to_arrow().select(["repo", "status"]).to_pylist()
        chunks = db.open_table(names["chunks"]).to_arrow().select(["repo"]).to_pylist()
        repos: dict[str, dict[str, int]] = {}
        for row in files:
            repos.setdefault(row["repo"], {"files": 0, "chunks": 0})["files"] += row["status"] == "indexed"
        for row in chunks:
            repos.setdefault(row["repo"], {"files": 0, "chunks": 0})["chunks"] += 1
        versions = db.open_table(names["files"]).list_versions()
        updated = max((v["timestamp"].timestamp() for v in versions), default=None)
        incomplete = marker.get("incomplete", {}).get(model, [])
        out.append({"model": model, "dim": dim, "repos": repos, "updated": updated, "incomplete": incomplete})
    return out


def _coverage_stats(c: Coverage) -> dict[str, Any]:
    """``stats``' view of the vectors: "embedded": "82%" while phase 2 goes on, rows pending and text only."""
    return {"embedded": c.percent, "rows_pending": c.pending, "rows_text_only": c.text_only}


def _migrate(table: Any) -> None:
    """Bring a chunk table of an older semcode to two-phase indexing: an ``embed`` column (true: every row there was
    embedded) and a vector column that may be null. Both are metadata or one cheap column, not a rewrite of rows."""
    table.add_columns({"embed": "true"})
    table.alter_columns({"path": "vector", "nullable": True})


def _files_filter(files: Sequence[tuple[str, str]]) -> str:
    """SQL for the rows of these (repo, path) files: one IN-list per repository, answered by the `path` index."""
    paths_by_repo: dict[str, list[str]] = {}
    for repo, path in files:
        paths_by_repo.setdefault(repo, []).append(path)
    return " OR ".join(f"(repo = {sql_str(r)} AND {sql_in('path', ps)})" for r, ps in paths_by_repo.items())


def _open_table(db: Any, name: str, schema: pa.Schema, read_only: bool) -> Any:
    """The table `name`, created with `schema` when it does not exist (never when `read_only`). An existing table is
    opened as it is, whatever its layout (``create_table(exist_ok=True)`` refuses one whose schema differs: an index
    of an older semcode, which ``Store.open`` migrates or names)."""
    try:
        return db.open_table(name)
    except Exception as e:
        if read_only or "was not found" not in str(e):
            raise
    return db.create_table(name, schema=schema, exist_ok=True)  # (exist_ok: another process may create it too)


def _open_error(where: Location, name: str, model_id: str, error: Exception, read_only: bool) -> StoreError:
    """The StoreError of a table that cannot be opened: the storage's cause for a remote location, a missing table
    of a read-only open, else a damaged index."""
    cause = describe(error, where.options)
    if read_only and "was not found" in str(error):
        return StoreError(f"the index at {where.uri} has no tables of the model {model_id} (index it with that model)")
    if where.remote:
        return StoreError(f"cannot open the index table {name} at {where.uri} ({cause})")
    return StoreError(f"the index table {name} in {where.uri} cannot be opened ({cause}); {REBUILD}")


def _to_chunk(row: dict[str, Any]) -> StoredChunk:
    return StoredChunk(**{name: row[name] for name in _CHUNK_FIELDS})
