"""indexer/read_cache.py and Store's use of it: an index on a real S3 endpoint on loopback (moto's server), copied
to a local read cache by a read-only store, served from the copy once it is whole, kept up to date when the index
changes, bounded in size; searches give the same answers from the copy as from the object store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import indexer.read_cache as read_cache_module
from indexer.read_cache import Mirror, TooBig
from indexer.storage import location
from indexer.store import FileRecord, Store, StoredChunk
from semcode.engine import Engine
from semcode.settings import Settings
from tests.test_object_storage import BUCKET, S3, s3_with_bucket

pytestmark = pytest.mark.timeout(180)

DIM = 8
MODEL = "test/read-cache"
REPO = "/repo"


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def rows(path: str, words: list[str], seed: int) -> list[tuple[StoredChunk, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for i, word in enumerate(words):
        text = f"def {word}():\n    return '{word} {path}'\n"
        chunk = StoredChunk(REPO, path, "python", "function", word, None, i * 3, 0, i * 3 + 1, 0, 0, 0, 6, text,
                            f"{path}:{word}:{seed}")  # fmt: skip
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append((chunk, v / np.linalg.norm(v)))
    return out


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with s3_with_bucket() as server:
        yield server


@pytest.fixture
def index(s3: S3, request: pytest.FixtureRequest) -> Iterator[tuple[str, Store]]:
    """A writable store on S3 holding two files; yields (its URI, the store)."""
    uri = f"s3://{BUCKET}/{request.node.name}"
    writer = Store.open(uri, MODEL, DIM, storage_options=s3.options())
    writer.replace_file_chunks(REPO, {"a.py": rows("a.py", ["zorblax", "wibble"], 1)})
    writer.replace_file_chunks(REPO, {"b.py": rows("b.py", ["snorkel"], 2)})
    writer.upsert_files([FileRecord(REPO, p, 10, 1, p, "indexed", None) for p in ("a.py", "b.py")])
    yield uri, writer
    writer.close()


def answers(store: Store) -> tuple[list, list]:
    text = [(h.chunk.path, h.chunk.symbol) for h in store.search_text("snorkel zorblax", 5)]
    vector = [(h.chunk.path, h.chunk.symbol) for h in store.search_vector(rows("a.py", ["zorblax"], 1)[0][1], 3)]
    return text, vector


def test_a_read_only_store_serves_from_its_copy_and_follows_changes(
    s3: S3, index: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, writer = index
    monkeypatch.setattr(read_cache_module, "CHECK_INTERVAL_S", 0.1)
    direct = Store.open(uri, MODEL, DIM, storage_options=s3.options(), read_only=True)
    expected = answers(direct)
    assert expected[0] and expected[1]
    copy = Mirror(location(uri, s3.options()), tmp_path / "cache", max_bytes=1 << 30)
    reader = Store.open(uri, MODEL, DIM, storage_options=s3.options(), read_only=True, read_cache=copy)
    try:
        wait_for(lambda: reader.serving_copy)
        assert answers(reader) == expected  # the same answers from the copy
        assert Path(copy.local).is_dir() and not (Path(copy.local).stat().st_mode & 0o077)  # private to the user
        # the index changes on the object store: the copy follows within a few checks
        writer.replace_file_chunks(REPO, {"c.py": rows("c.py", ["quuxly"], 3)})
        wait_for(lambda: [h.chunk.path for h in reader.search_text("quuxly", 5)] == ["c.py"])
        writer.replace_file_chunks(REPO, {"a.py": []})  # a file leaves the index
        wait_for(lambda: reader.search_text("zorblax", 5) == [])
        # nothing new: a sync fetches nothing (every file was fetched once)
        wait_for(lambda: not copy.changed())
        assert copy.sync().fetched == 0
    finally:
        reader.close()
        direct.close()


def test_an_earlier_copy_serves_at_once_and_is_brought_up_to_date(
    s3: S3, index: tuple[str, Store], tmp_path: Path
) -> None:
    uri, writer = index
    where = location(uri, s3.options())
    first = Mirror(where, tmp_path / "cache")
    first.sync()
    writer.replace_file_chunks(REPO, {"d.py": rows("d.py", ["frobnic"], 4)})  # after the copy was made
    reader = Store.open(
        uri, MODEL, DIM, storage_options=s3.options(), read_only=True, read_cache=Mirror(where, tmp_path / "cache")
    )
    try:
        assert reader.serving_copy  # at once: the copy an earlier process left
        wait_for(lambda: [h.chunk.path for h in reader.search_text("frobnic", 5)] == ["d.py"])
    finally:
        reader.close()


def test_an_index_larger_than_the_cache_is_served_from_the_object_store(
    s3: S3, index: tuple[str, Store], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri, _writer = index
    copy = Mirror(location(uri, s3.options()), tmp_path / "cache", max_bytes=1000)
    with pytest.raises(TooBig, match="more than the read cache's"):
        copy.sync()
    with caplog.at_level(logging.WARNING, logger="indexer.read_cache"):
        reader = Store.open(uri, MODEL, DIM, storage_options=s3.options(), read_only=True, read_cache=copy)
        try:
            wait_for(lambda: "served from the object store" in caplog.text)
            assert not reader.serving_copy
            assert [h.chunk.path for h in reader.search_text("snorkel", 5)] == ["b.py"]
        finally:
            reader.close()
    assert not any(Path(copy.local).glob("*.lance"))


def test_the_cache_keeps_within_its_size_least_recently_used_out(s3: S3, tmp_path: Path) -> None:
    uris = []
    for name in ("one", "two"):
        uri = f"s3://{BUCKET}/evict-{name}"
        with Store.open(uri, MODEL, DIM, storage_options=s3.options()) as w:
            w.replace_file_chunks(REPO, {"a.py": rows("a.py", ["alpha", "beta"], 5)})
        uris.append(uri)
    one = Mirror(location(uris[0], s3.options()), tmp_path / "cache")
    size = one.sync().total_bytes
    two = Mirror(location(uris[1], s3.options()), tmp_path / "cache", max_bytes=int(size * 1.5))
    two.sync()  # both do not fit: the least recently used copy goes
    assert not Path(one.local).exists() and Path(two.local).is_dir()


def test_the_engine_uses_the_read_cache_for_a_read_only_index_on_object_storage(
    s3: S3, index: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _writer = index
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    settings = Settings(model=None, index_dir=uri, storage_options=s3.options())
    for gb, cached in (("1", True), ("0", False)):
        monkeypatch.setenv("SEMCODE_READ_CACHE_GB", gb)
        engine = Engine(settings, [], read_only=True)
        where = engine.location(uri)
        copy = engine._read_cache(where)
        assert (copy is not None) == cached
        if copy is not None:
            assert Path(copy.local).is_relative_to(tmp_path / "xdg" / "semcode" / "object-cache")
    monkeypatch.setenv("SEMCODE_READ_CACHE_GB", "lots")
    with pytest.raises(ValueError, match="read_cache_gb"):
        Engine(settings, [], read_only=True)._read_cache(location(uri, s3.options()))
