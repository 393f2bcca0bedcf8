"""indexer/store.py against a real LanceDB directory in tmp_path (no mocks), with 8-d deterministic vectors."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from indexer.sql import glob_to_regex
from indexer.store import FileRecord, Store, StoredChunk, StoreError, names_text, table_names
from indexer.types import Chunk

DIM = 8
REPO = "/repo"
MODEL = "test/model-a"


def unit(i: int, j: int | None = None) -> np.ndarray:
    """A unit vector along axis i (optionally mixed with axis j)."""
    v = np.zeros(DIM, np.float32)
    v[i] = 1.0
    if j is not None:
        v[j] = 0.5
    return v / np.linalg.norm(v)


def chunk(
    path: str, text: str, *, line: int = 0, lines: int = 3, symbol: str | None = None, **kw: object
) -> StoredChunk:
    fields: dict[str, object] = {
        "repo": REPO,
        "path": path,
        "language": "python",
        "kind": "function" if symbol else "block",
        "symbol": symbol,
        "parent": None,
        "start_line": line,
        "start_col": 0,
        "end_line": line + lines - 1,
        "end_col": 1,
        "start_byte": line * 10,
        "end_byte": (line + lines) * 10,
        "tokens": len(text.split()),
        "text": text,
    }
    fields.update(kw)
    fields["content_hash"] = Chunk(**{k: v for k, v in fields.items() if k != "repo"}).content_hash  # type: ignore[arg-type]
    return StoredChunk(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "index", MODEL, DIM)
    s.replace_file_chunks(
        REPO,
        {
            "src/cache.py": [
                (
                    chunk(
                        "src/cache.py", "class LRUCache:\n    evict the least recently used entry", symbol="LRUCache"
                    ),
                    unit(0),
                ),
                (
                    chunk("src/cache.py", "def get(self, key): return lookup", line=5, symbol="get", parent="LRUCache"),
                    unit(1),
                ),
            ],
            "cmd/main.go": [
                (
                    chunk("cmd/main.go", "func parseArgs() flags command line", symbol="parseArgs", language="go"),
                    unit(2),
                ),
            ],
        },
    )
    return s


def paths(hits: list) -> list[tuple[str, str | None]]:
    return [(h.chunk.path, h.chunk.symbol) for h in hits]


def test_search_vector_returns_nearest_with_cosine_score(store: Store) -> None:
    hits = store.search_vector(unit(2, 0), 2)
    assert paths(hits) == [("cmd/main.go", "parseArgs"), ("src/cache.py", "LRUCache")]
    assert hits[0].score == pytest.approx(float(unit(2, 0) @ unit(2)), abs=1e-5)
    assert hits[0].reasons == ("semantic",)
    assert hits[0].chunk.qualified_name == "parseArgs" and hits[0].chunk.end_line == 2


def test_search_text_by_word_and_by_symbol(store: Store) -> None:
    assert paths(store.search_text("evict", 5)) == [("src/cache.py", "LRUCache")]
    # a symbol part that the text never spells out on its own: the `names` column carries "lru cache"
    assert ("src/cache.py", "LRUCache") in paths(store.search_text("cache", 5))
    assert paths(store.search_text("parseArgs", 5))[0] == ("cmd/main.go", "parseArgs")
    hits = store.search_text("LRUCache.get", 5)
    assert ("src/cache.py", "get") in paths(hits)
    assert all(h.reasons == ("lexical",) and h.score > 0 for h in hits)
    assert store.search_text("  ", 5) == []
    store.search_text('it\'s (odd) "query" AND OR ~*', 5)  # query syntax is not interpreted: must not raise


def test_hybrid_fuses_and_reports_reasons(store: Store) -> None:
    hits = store.search_hybrid(unit(0), "lookup", 3)
    by = {(h.chunk.path, h.chunk.symbol): h for h in hits}
    assert by[("src/cache.py", "LRUCache")].reasons == ("semantic",)
    assert by[("src/cache.py", "get")].reasons == ("semantic", "lexical")
    assert hits[0].chunk.symbol == "get"  # in both lists: rank 2 + rank 1 beats rank 1 alone
    assert hits[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_filters(store: Store) -> None:
    other = chunk("src/cache.py", "evict other repo", repo="/other")
    store.replace_file_chunks("/other", {"src/cache.py": [(other, unit(0))]})
    assert {h.chunk.repo for h in store.search_text("evict", 5)} == {REPO, "/other"}
    assert {h.chunk.repo for h in store.search_text("evict", 5, repo="/other")} == {"/other"}
    assert paths(store.search_vector(unit(0), 5, repo=REPO, languages=["go"])) == [("cmd/main.go", "parseArgs")]
    assert {h.chunk.path for h in store.search_vector(unit(0), 5, path_glob="*.go")} == {"cmd/main.go"}
    assert {h.chunk.path for h in store.search_vector(unit(0), 5, path_glob="src/**/*.py")} == {"src/cache.py"}
    assert store.search_vector(unit(0), 5, path_glob="cmd/*.py") == []
    assert len(store.search_hybrid(unit(0), "evict", 5, repo=REPO, path_glob="src/*")) == 2


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("*.go", "a/b/c.go", True),
        ("*.go", "c.go", True),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/x/y/a.py", True),
        ("src/*.py", "src/x/a.py", False),
        ("/a.py", "b/a.py", False),
        ("docs/", "docs/x/y.md", True),
        ("a[0-9].c", "a7.c", True),
        ("a(b)+.c", "a(b)+.c", True),
    ],
)
def test_glob_to_regex(glob: str, path: str, matches: bool) -> None:
    assert bool(re.match(glob_to_regex(glob), path)) is matches


def test_replace_file_chunks_replaces_and_clears(store: Store) -> None:
    new = chunk("src/cache.py", "class LRUCache:\n    drop the oldest entry", symbol="LRUCache")
    store.replace_file_chunks(REPO, {"src/cache.py": [(new, unit(3))]})
    assert store.search_text("evict", 5) == []
    assert paths(store.search_text("oldest", 5)) == [("src/cache.py", "LRUCache")]
    assert store.stats()["rows"] == 2  # the new chunk + main.go's
    other = chunk("lib/other.py", "def other(): pass", symbol="other", repo="other-repo")
    store.replace_file_chunks("other-repo", {"lib/other.py": [(other, unit(4))]})
    assert (store.count_chunks(REPO), store.count_chunks("other-repo"), store.count_chunks()) == (2, 1, 3)
    assert store.count_chunks("it's-not-there") == 0  # quoted, not an SQL error
    store.replace_file_chunks("other-repo", {"lib/other.py": []})
    store.replace_file_chunks(REPO, {"cmd/main.go": []})
    assert store.search_text("parseArgs", 5) == []
    assert store.stats()["rows"] == 1


def test_rows_renumbered_between_lookup_and_delete_are_deleted_by_key(store: Store, tmp_path: Path) -> None:
    """A commit deletes a changed file's old rows by row id, checked against their keys; when another process
    compacted the table after the lookup (rows renumbered), the keys it missed are deleted by key: the file ends
    with its new rows only, and no other file loses a row."""
    for i in range(4):  # several fragments, so that a compaction renumbers the rows
        extra = chunk(f"src/extra{i}.py", f"def extra{i}(): return {i}", symbol=f"extra{i}")
        store.replace_file_chunks(REPO, {f"src/extra{i}.py": [(extra, unit(4 + i % 4, 0))]})
    other = Store.open(tmp_path / "index", MODEL, DIM)
    table = store._chunks
    real_add, real_delete, deletes = table.add, table.delete, []

    def add_then_compact(*args: object, **kwargs: object) -> object:
        done = real_add(*args, **kwargs)
        other.compact(prune_vectors=False)  # another writer's compaction between the lookup and the delete
        return done

    def delete(where: str) -> object:
        deletes.append(where)
        return real_delete(where)

    table.add, table.delete = add_then_compact, delete  # type: ignore[method-assign]
    new = chunk("src/cache.py", "class LRUCache:\n    drop the oldest entry", symbol="LRUCache")
    store.replace_file_chunks(REPO, {"src/cache.py": [(new, unit(3))]})
    assert len(deletes) == 2 and deletes[0].startswith("_rowid IN")  # by row id first, then by key
    assert [c.text for c in store.chunks(REPO) if c.path == "src/cache.py"] == [new.text]
    assert store.count_chunks(REPO) == 1 + 1 + 4  # the new chunk, main.go's, the extras


def test_unchanged_rows_survive_and_metadata_change_is_applied(store: Store) -> None:
    main = chunk("cmd/main.go", "func parseArgs() flags command line", symbol="parseArgs", language="go")
    moved = chunk("cmd/main.go", "func parseArgs() flags command line", symbol="parseArgs", language="go", parent="X")
    store.replace_file_chunks(REPO, {"cmd/main.go": [(main, unit(2))]})
    assert store.stats()["rows"] == 3
    store.replace_file_chunks(REPO, {"cmd/main.go": [(moved, unit(2))]})
    assert store.chunk_at(REPO, "cmd/main.go", 1) == moved


def test_write_path_indexes_exist(store: Store) -> None:
    """The write path's lookups go through scalar indexes, not a scan of the table (issue 26)."""
    indexed = {
        kind: {(tuple(ix.columns), ix.index_type) for ix in table.list_indices()}
        for kind, table in (("chunks", store._chunks), ("files", store._files), ("vectors", store._vectors))
    }
    assert {(("path",), "BTree"), (("key",), "BTree"), (("text",), "FTS"), (("names",), "FTS")} <= indexed["chunks"]
    assert {(("path",), "BTree"), (("repo",), "Bitmap")} <= indexed["files"]
    assert (("repo",), "Bitmap") in indexed["chunks"]
    assert (("content_hash",), "BTree") in indexed["vectors"]


def test_a_rewrite_appends_new_rows_keeps_unchanged_ones_and_deletes_the_rest(store: Store) -> None:
    kept = chunk("src/cache.py", "def get(self, key): return lookup", line=5, symbol="get", parent="LRUCache")
    new = chunk("src/cache.py", "def put(self, key, value): store it", line=9, symbol="put", parent="LRUCache")
    store.compact()  # the rows are inside the indexes now: the lookups below read the indexes
    versions = store.stats()["versions"][table_names(MODEL)["chunks"]]
    # the unchanged row is passed without a vector: it keeps the one it has (it is not written again)
    store.replace_file_chunks(REPO, {"src/cache.py": [(kept, None), (new, unit(5))]})
    rows = {c.symbol: c for c in store.chunks(REPO)}
    assert set(rows) == {"get", "put", "parseArgs"}
    assert [h.chunk.symbol for h in store.search_vector(unit(1), 1)] == ["get"]  # its vector survived
    assert store.coverage().pending == 0
    assert store.stats()["versions"][table_names(MODEL)["chunks"]] == versions + 2  # one append, one delete
    store.replace_file_chunks(REPO, {"src/cache.py": [(kept, unit(1)), (new, unit(5))]})  # nothing changed
    assert store.stats()["versions"][table_names(MODEL)["chunks"]] == versions + 2  # no commit at all


def test_a_write_killed_between_append_and_delete_is_completed_by_the_next(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between its two commits a file shows old and new rows (never none); the next write of it converges."""
    new = chunk("src/cache.py", "class LRUCache:\n    drop the oldest entry", symbol="LRUCache")

    def killed(where: str) -> None:
        raise KeyboardInterrupt("killed between the commits")

    monkeypatch.setattr(store._chunks, "delete", killed)
    with pytest.raises(KeyboardInterrupt):
        store.replace_file_chunks(REPO, {"src/cache.py": [(new, unit(3))]})
    monkeypatch.undo()
    assert {c.symbol for c in store.chunks(REPO) if c.path == "src/cache.py"} == {"LRUCache", "get"}
    assert len([c for c in store.chunks(REPO) if c.path == "src/cache.py"]) == 3  # old two + new one
    store.replace_file_chunks(REPO, {"src/cache.py": [(new, unit(3))]})
    assert [c.text for c in store.chunks(REPO) if c.path == "src/cache.py"] == [new.text]
    assert store.search_text("evict", 5) == []


def test_phase_two_vectors_reach_rows_inside_the_key_index(store: Store) -> None:
    """set_vectors merges by key; with the key's BTREE index covering the rows (after compact) it still updates
    them (lancedb#3515 / lance#7596: an indexed merge could report 0 updates)."""
    later = [chunk("lib/later.py", f"def later_{i}(): return {i}", line=4 * i, symbol=f"later_{i}") for i in range(3)]
    store.replace_file_chunks(REPO, {"lib/later.py": [(c, None) for c in later]})
    store.compact()
    assert store.coverage().pending == 3
    pending = {p.content_hash: p.key for p in store.pending(REPO)}
    store.set_vectors({pending[c.content_hash]: unit(4 + i) for i, c in enumerate(later)})
    assert store.coverage().pending == 0
    assert [h.chunk.symbol for h in store.search_vector(unit(6), 1)] == ["later_2"]


def test_delete_files(store: Store) -> None:
    store.upsert_files([FileRecord(REPO, "src/cache.py", 10, 1, "h", "indexed", None)])
    store.delete_files(REPO, ["src/cache.py", "never/was.py"])
    assert {h.chunk.path for h in store.search_vector(unit(0), 5)} == {"cmd/main.go"}
    assert store.files(REPO) == {}


def test_cached_vectors(store: Store) -> None:
    c = chunk("src/cache.py", "def get(self, key): return lookup", line=5, symbol="get", parent="LRUCache")
    cached = store.cached_vectors([c.content_hash, "unknown", c.content_hash])
    assert set(cached) == {c.content_hash}
    np.testing.assert_allclose(cached[c.content_hash], unit(1))
    # the same content in another file: its vector comes from the cache; nothing new to embed
    copy = chunk("lib/copy.py", c.text, line=5, symbol="get", parent="LRUCache")
    before = store.stats()
    store.replace_file_chunks(REPO, {"lib/copy.py": [(copy, cached[copy.content_hash])]})
    after = store.stats()
    assert after["vectors"] == before["vectors"] == 3
    assert after["rows"] == 4
    name = table_names(MODEL)["vectors"]
    assert after["versions"][name] == before["versions"][name]  # no commit to the vector cache


def test_new_vectors_go_to_the_cache_unless_the_caller_cached_them(store: Store) -> None:
    fresh = chunk("lib/fresh.py", "def fresh(): return 1", symbol="fresh")
    store.replace_chunks({(REPO, "lib/fresh.py"): [(fresh, unit(3))]})
    assert set(store.cached_vectors([fresh.content_hash])) == {fresh.content_hash}
    # an indexing run caches each slice as it encodes: the commit then leaves the cache alone (no read, no commit)
    other = chunk("lib/other.py", "def other(): return 2", symbol="other")
    store.cache_vectors({other.content_hash: unit(4)})
    before = store.stats()
    store.replace_chunks({(REPO, "lib/other.py"): [(other, unit(4))]}, vectors_cached=True)
    after = store.stats()
    name = table_names(MODEL)["vectors"]
    assert after["versions"][name] == before["versions"][name] and after["rows"] == before["rows"] + 1
    assert [h.chunk.symbol for h in store.search_vector(unit(4), 1)] == ["other"]


def test_files_upsert_and_read(store: Store) -> None:
    a = FileRecord(REPO, "a.py", 10, 111, "ha", "indexed", None)
    b = FileRecord(REPO, "b.bin", 99, 222, "hb", "skipped", "binary")
    store.upsert_files([a, b, FileRecord("/other", "a.py", 1, 1, "x", "indexed", None)])
    a2 = FileRecord(REPO, "a.py", 12, 333, "ha2", "indexed", None)
    store.upsert_files([a2])
    assert store.files(REPO) == {"a.py": a2, "b.bin": b}
    s = store.stats()
    assert (s["files"], s["skipped"]) == (2, 1)


def test_chunk_at_returns_innermost(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "ix", MODEL, DIM)
    outer = chunk("m.py", "class A: many lines", line=0, lines=20, symbol="A")
    inner = chunk("m.py", "def f(): inner", line=4, lines=3, symbol="f", parent="A", start_byte=40, end_byte=70)
    s.replace_file_chunks(REPO, {"m.py": [(outer, unit(0)), (inner, unit(1))]})
    assert s.chunk_at(REPO, "m.py", 5) == inner
    assert s.chunk_at(REPO, "m.py", 19) == outer
    assert s.chunk_at(REPO, "m.py", 20) is None
    assert s.chunk_at(REPO, "other.py", 5) is None


def test_two_models_do_not_mix(tmp_path: Path, store: Store) -> None:
    other = Store.open(store.root, "another/model", 4)
    assert other.search_text("evict", 5) == []
    assert other.cached_vectors([c.content_hash for c in [chunk("x", "y")]]) == {}
    other.replace_file_chunks(REPO, {"z.py": [(chunk("z.py", "evict zebra"), np.ones(4, np.float32) / 2)]})
    assert paths(store.search_text("zebra", 5)) == []
    assert paths(other.search_text("evict", 5)) == [("z.py", None)]
    assert len(set(table_names(MODEL).values()) | set(table_names("another/model").values())) == 6


def test_compact_drops_versions_and_keeps_data(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "ix", MODEL, DIM)
    for i in range(20):
        s.replace_file_chunks(REPO, {f"f{i}.py": [(chunk(f"f{i}.py", f"word{i} common"), unit(i % DIM))]})
    name = table_names(MODEL)["chunks"]
    assert s.stats()["versions"][name] >= 20
    s.compact()  # the default grace period keeps recent versions: a reader may still be on one of them
    assert s.stats()["versions"][name] >= 20
    s.compact(keep_versions=timedelta(0))
    stats = s.stats()
    assert stats["versions"][name] <= 3
    assert stats["rows"] == 20 and stats["unindexed_text_rows"] == 0
    assert paths(s.search_text("word7", 5)) == [("f7.py", None)]
    assert len(s.search_vector(unit(1), 50)) == 20
    assert s.ensure_vector_index(min_rows=100_000) is False  # flat search below the threshold


def test_compaction_merges_the_vector_index_segments_it_leaves(tmp_path: Path) -> None:
    """Each compaction after new rows adds a segment to the IVF_PQ index; past ``MAX_SEGMENTS`` the next one merges
    them (with pylance, which the dev install has), and searches answer as before."""
    pytest.importorskip("lance")
    from indexer import vector_segments

    rng = np.random.default_rng(0)
    s = Store.open(tmp_path / "index", MODEL, DIM)

    def add(first: int, n: int) -> None:
        files = {}
        for i in range(first, first + n):
            v = rng.standard_normal(DIM).astype(np.float32)
            files[f"f{i}.py"] = [(chunk(f"f{i}.py", f"def f{i}(): return {i}"), v / np.linalg.norm(v))]
        s.replace_file_chunks(REPO, files)

    add(0, 512)
    assert s.ensure_vector_index(min_rows=512)
    counts = []
    for round_ in range(vector_segments.MAX_SEGMENTS + 1):
        add(512 + 16 * round_, 16)
        query = rng.standard_normal(DIM).astype(np.float32)
        before = [h.chunk.path for h in s.search_vector(query, 10)]
        s.compact(prune_vectors=False)
        counts.append(s._chunks.index_stats("vector_idx").num_indices)
        assert [h.chunk.path for h in s.search_vector(query, 10)][:5] == before[:5]
    top = vector_segments.MAX_SEGMENTS
    assert counts == [*range(2, top + 1), 1, 2]  # one more each time; the compaction that would leave top + 1 merges
    assert s.count_chunks() == 512 + 16 * len(counts) and len(s.search_vector(rng.standard_normal(DIM), 1000)) > 512


def test_without_pylance_the_segments_stay_and_the_user_is_told_once(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging
    import sys

    from indexer import vector_segments

    monkeypatch.setitem(sys.modules, "lance", None)  # (an import of it fails)
    monkeypatch.setattr(vector_segments, "_told", False)
    with caplog.at_level(logging.INFO, logger="indexer.vector_segments"):
        assert vector_segments.merge("/nowhere/chunks.lance", "vector_idx", 9, None) is False
        assert vector_segments.merge("/nowhere/chunks.lance", "vector_idx", 10, None) is False
    assert [r.getMessage() for r in caplog.records] == [
        "the vector index has 9 segments, and vector searches read each one; install pylance "
        "(pip install 'semcode[ray]') so that compaction merges them"
    ]


def test_reopen_keeps_data(tmp_path: Path, store: Store) -> None:
    store.upsert_files([FileRecord(REPO, "src/cache.py", 1, 2, "h", "indexed", None)])
    store.close()
    again = Store.open(store.root, MODEL, DIM)
    assert paths(again.search_text("evict", 5)) == [("src/cache.py", "LRUCache")]
    assert set(again.files(REPO)) == {"src/cache.py"}


def test_unusable_directories(tmp_path: Path, store: Store) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "notes.txt").write_text("hello")
    with pytest.raises(StoreError, match="not a semcode index"):
        Store.open(garbage, MODEL, DIM)
    with pytest.raises(StoreError, match="not a semcode index"):
        Store.destroy(garbage)
    assert (garbage / "notes.txt").exists()
    with pytest.raises(StoreError, match="--rebuild"):
        Store.open(store.root, MODEL, DIM + 1)  # same model, other vector size: incompatible layout
    (store.root / "semcode-store.json").write_text('{"format": 999}')
    with pytest.raises(StoreError, match="--rebuild"):
        Store.open(store.root, MODEL, DIM)
    Store.destroy(store.root)
    assert not store.root.exists()
    fresh = Store.open(store.root, MODEL, DIM)
    assert fresh.stats()["rows"] == 0


def test_quotes_in_paths_and_repos(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "ix", MODEL, DIM)
    repo = "/home/o'brien/repo"
    c = chunk("it's/a 'b'.py", "quoted path text", repo=repo)
    s.replace_file_chunks(repo, {c.path: [(c, unit(0))]})
    s.upsert_files([FileRecord(repo, c.path, 1, 1, "h", "indexed", None)])
    assert paths(s.search_text("quoted", 5, repo=repo, path_glob="it's/*.py")) == [(c.path, None)]
    assert s.chunk_at(repo, c.path, 1) == c
    assert set(s.files(repo)) == {c.path}
    s.delete_files(repo, [c.path])
    assert s.stats()["rows"] == 0 and s.files(repo) == {}


def test_names_text_splits_identifiers() -> None:
    assert names_text(chunk("a.py", "x", symbol="get_item", parent="LRUCache")) == "LRUCache.get_item lru cache"
    assert names_text(chunk("a.py", "x")) == ""


def make_legacy_index(where: Path) -> None:
    """An index as semcode wrote it before two-phase indexing: a chunk table without ``embed``, every vector set."""
    import lancedb
    import pyarrow as pa

    from indexer.store import _legacy_chunk_schema

    s = Store.open(where, MODEL, DIM)
    s.replace_file_chunks(REPO, {"src/a.py": [(chunk("src/a.py", "def load_config(): pass", symbol="load"), unit(0))]})
    old = s._chunks.to_arrow().drop_columns(["embed"])  # the same rows in the old layout
    s.close()
    db = lancedb.connect(str(where))
    name = table_names(MODEL)["chunks"]
    db.drop_table(name)
    schema = _legacy_chunk_schema(DIM)
    db.create_table(name, pa.Table.from_arrays([old[f.name] for f in schema], schema=schema))


def test_an_index_of_an_older_semcode_is_read_as_it_is_and_migrated_when_written(tmp_path: Path) -> None:
    where = tmp_path / "index"
    make_legacy_index(where)
    # read-only: nothing is changed, every row counts as embedded
    ro = Store.open(where, MODEL, DIM, read_only=True)
    assert ro.legacy and ro.pending(REPO) == [] and ro.coverage(REPO).share == 1.0
    assert ro.search_vector(unit(0), 1)[0].chunk.path == "src/a.py"
    assert "embed" not in ro._chunks.schema.names
    # opened to write: migrated (an `embed` column, a vector that may be null), its rows kept, new rows phase 2's
    rw = Store.open(where, MODEL, DIM)
    assert not rw.legacy and "embed" in rw._chunks.schema.names
    assert rw.coverage(REPO).embedded == 1 and rw.search_text("load_config", 1)[0].chunk.path == "src/a.py"
    rw.replace_file_chunks(REPO, {"src/b.py": [(chunk("src/b.py", "def save_config(): pass"), None)]})
    assert [p.path for p in rw.pending(REPO)] == ["src/b.py"] and rw.coverage(REPO).share == 0.5
    assert [h.chunk.path for h in rw.search_vector(unit(0), 5)] == ["src/a.py"]  # a row without a vector: not a hit
    rw.set_vectors({rw.pending(REPO)[0].key: unit(1)})
    assert rw.coverage(REPO).share == 1.0 and rw.search_vector(unit(1), 1)[0].chunk.path == "src/b.py"


@pytest.mark.parametrize("indexed", [False, True], ids=["flat", "ivf_pq"])
def test_search_lists_are_what_lancedb_sync_queries_give(tmp_path: Path, indexed: bool) -> None:
    """``Store.search_lists`` (three lists awaited together on LanceDB's async table) gives the rows and scores of
    LanceDB's own sync query builders, as the store ran them before: flat and through an IVF_PQ index, with and
    without a filter, including rows written after the indexes were built (searched flat)."""
    from indexer.search_lists import NPROBES, refine_factor
    from indexer.sql import search_filter

    rng = np.random.default_rng(1)
    words = ["parse", "cache", "token", "store", "index", "query", "route", "handler", "config", "encode"]
    s = Store.open(tmp_path / "index", MODEL, DIM)

    def add(first: int, n: int) -> None:
        files = {}
        for i in range(first, first + n):
            v = rng.standard_normal(DIM).astype(np.float32)
            text = " ".join(rng.choice(words, 6))
            lang, ext = ("go", "go") if i % 3 == 0 else ("python", "py")
            files[f"pkg{i % 4}/f{i}.{ext}"] = [
                (chunk(f"pkg{i % 4}/f{i}.{ext}", text, symbol=f"{rng.choice(words)}_{i}", language=lang), v)
            ]
        s.replace_file_chunks(REPO, files)

    add(0, 600)
    if indexed:
        assert s.ensure_vector_index(min_rows=512)
    s.compact(prune_vectors=False)
    add(600, 40)  # after the indexes: searched flat beside them
    table = s._chunks
    fields = list(StoredChunk.__dataclass_fields__)

    def sync(vector: np.ndarray, text: str, names: str, depth: int, where: str | None) -> tuple[list, list, list]:
        vq = table.search(vector, vector_column_name="vector").distance_type("cosine")
        vq = vq.nprobes(NPROBES).refine_factor(refine_factor(depth))
        tq = table.search(text, query_type="fts", fts_columns=["text"])
        nq = table.search(names, query_type="fts", fts_columns=["names"])
        if where:
            vq, tq, nq = (q.where(where, prefilter=True) for q in (vq, tq, nq))
        rows = [
            vq.select([*fields, "_distance"]).limit(depth).to_arrow().to_pylist(),
            tq.select([*fields, "_score"]).limit(depth).to_arrow().to_pylist(),
            nq.select([*fields, "_score"]).limit(min(depth, 50)).to_arrow().to_pylist(),
        ]
        semantic = [(r["path"], round(1.0 - r["_distance"], 5)) for r in rows[0]]
        return semantic, *([(r["path"], round(r["_score"], 5)) for r in side] for side in rows[1:])  # type: ignore[return-value]

    def tied(side: list[tuple[str, float]]) -> tuple[list[float], set[str]]:
        """The scores in order, and the rows above the last score (BM25 ties at the cut may fall either way)."""
        scores = [score for _, score in side]
        return scores, {path for path, score in side if score > min(scores, default=0.0)}

    filters = [
        None,
        search_filter(REPO, None, None),
        search_filter(None, ["go"], None),
        search_filter(None, None, "pkg1/**", ["**/f1*"]),
    ]
    compared = 0
    for where in filters:
        for _ in range(4):
            vector = rng.standard_normal(DIM).astype(np.float32)
            text, names = " ".join(rng.choice(words, 3)), str(rng.choice(words))
            lists = s.search_lists(vector, text, names, 40, 40, where)
            got = tuple([(h.chunk.path, round(h.score, 5)) for h in side] for side in lists)
            want = sync(vector, text, names, 40, where)
            assert [tied(side) for side in got] == [tied(side) for side in want]
            assert all(side for side in got)
            if where in (None, filters[1]):  # a lexical search alone: text and names at once, via search_text
                both = table.search(text, query_type="fts", fts_columns=["text", "names"])
                both = both.where(where, prefilter=True) if where else both
                want_both = [(r["path"], round(r["_score"], 5)) for r in both.limit(20).to_list()]
                found = s.search_text(text, 20, repo=REPO if where else None)
                got_both = [(h.chunk.path, round(h.score, 5)) for h in found]
                assert tied(got_both) == tied(want_both) and got_both
            compared += 1
    assert compared == 16
    # one list alone, and none: the same code path
    assert s.search_lists(None, "", "parse", 10, 10, None)[:2] == ([], [])
    assert s.search_lists(None, "", "", 10, 10, None) == ([], [], [])
