"""A server of many clients: the search gate (bounded, first come first served, "busy" past its queue) and the
query batcher (queries that arrive together are encoded in one batch), on real threads; then both inside a real
engine over a real index."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from semcode import Busy, Engine, SearchQuery, Settings
from semcode.query_vectors import QueryBatcher
from semcode.search_gate import SearchGate


def wait_until(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.005)


def test_gate_runs_in_order_and_refuses_past_its_queue() -> None:
    gate = SearchGate(running=1, waiting=2)
    release = threading.Event()
    order: list[str] = []

    def search(name: str, hold: bool = False) -> None:
        with gate.slot():
            order.append(name)
            if hold:
                release.wait(10)

    first = threading.Thread(target=search, args=("first", True))
    first.start()
    wait_until(lambda: order == ["first"])
    waiting = [threading.Thread(target=search, args=(name,)) for name in ("second", "third")]
    for i, t in enumerate(waiting):
        t.start()
        wait_until(lambda i=i: len(gate._queue) == i + 1)
    with pytest.raises(Busy, match="busy: 1 searches running and 2 waiting; retry in a moment"):
        search("fourth")
    assert gate.refused == 1
    release.set()
    for t in (first, *waiting):
        t.join(10)
    assert order == ["first", "second", "third"]  # first come, first served; the refused one never ran
    search("later")  # the gate is free again
    assert order[-1] == "later"


def test_gate_lets_every_waiter_in_when_slots_free_together() -> None:
    """Two slots freed at once let both waiting searches run at once (the second in line is not left waiting for
    the first to finish)."""
    gate = SearchGate(running=2, waiting=4, max_wait_s=20)
    release = threading.Event()
    together = threading.Barrier(2, timeout=10)
    ran: list[str] = []

    def hold() -> None:
        with gate.slot():
            release.wait(10)

    def search(name: str) -> None:
        with gate.slot():
            together.wait()  # both waiting searches must hold a slot at the same time
            ran.append(name)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for t in holders:
        t.start()
    wait_until(lambda: gate._active == 2)
    waiters = [threading.Thread(target=search, args=(n,)) for n in ("a", "b")]
    for i, t in enumerate(waiters):
        t.start()
        wait_until(lambda i=i: len(gate._queue) == i + 1)
    release.set()
    for t in (*holders, *waiters):
        t.join(20)
    assert sorted(ran) == ["a", "b"]


def test_gate_refuses_a_wait_past_its_limit() -> None:
    gate = SearchGate(running=1, waiting=4, max_wait_s=0.2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    with pytest.raises(Busy, match="waited 0 s for a turn"), gate.slot():
        pass
    assert not gate._queue  # the refused request left the queue
    release.set()
    t.join(10)


def fake_vectors(texts: list[str]) -> np.ndarray:
    return np.array([[len(t), ord(t[0])] for t in texts], np.float32)


def test_batcher_encodes_queries_that_arrive_together_in_one_batch() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def encode_many(texts: list[str]) -> np.ndarray:
        seen.append(list(texts))
        started.set()
        release.wait(10)
        return fake_vectors(texts)

    batcher = QueryBatcher(encode_many)
    results: dict[str, np.ndarray] = {}

    def ask(text: str) -> None:
        results[text] = batcher.encode(text)

    lead = threading.Thread(target=ask, args=("a",))
    lead.start()
    started.wait(10)  # the first query is being encoded; these three arrive meanwhile
    others = [threading.Thread(target=ask, args=(t,)) for t in ("bb", "ccc", "dddd")]
    for t in others:
        t.start()
    wait_until(lambda: len(batcher._waiting) == 3)
    release.set()
    for t in (lead, *others):
        t.join(10)
    assert seen[0] == ["a"] and sorted(seen[1]) == ["bb", "ccc", "dddd"]  # one batch for the three
    assert (batcher.batches, batcher.queries) == (2, 4)
    for text, vector in results.items():  # each caller gets its own query's vector
        np.testing.assert_array_equal(vector, fake_vectors([text])[0])


def test_batcher_raises_a_batch_error_in_its_callers_and_goes_on() -> None:
    calls = 0

    def encode_many(texts: list[str]) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model failed")
        return fake_vectors(texts)

    batcher = QueryBatcher(encode_many)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.encode("x")
    np.testing.assert_array_equal(batcher.encode("yy"), fake_vectors(["yy"])[0])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("repo")
    (root / "cache.py").write_text("def evict(c):\n    '''Drop the least recently used entry.'''\n    c.pop()\n")
    (root / "net.py").write_text("def retry(request):\n    '''Send again with backoff.'''\n    return request\n")
    eng = Engine(Settings(index_dir=tmp_path_factory.mktemp("index")), [root])
    eng.index_folder(eng.folders[0])
    yield eng
    eng.close_now()


def test_engine_batches_concurrent_queries_with_the_vectors_of_each_alone(engine: Engine) -> None:
    queries = [f"drop the oldest cache entry {i}" for i in range(8)]
    alone = {q: engine.query_encoder().encode([q], kind="query")[0] for q in queries}
    barrier = threading.Barrier(len(queries))
    got: dict[str, np.ndarray] = {}

    def ask(q: str) -> None:
        barrier.wait(10)
        got[q] = engine.query_vector(q)

    before = engine._query_batcher.batches
    threads = [threading.Thread(target=ask, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert engine._query_batcher.batches - before < len(queries)  # some arrived together and shared a batch
    for q in queries:
        np.testing.assert_allclose(got[q], alone[q], atol=1e-5)


def test_engine_search_says_busy_when_its_gate_is_full(engine: Engine) -> None:
    q = SearchQuery("least recently used entry", 5, "hybrid")
    assert [h.chunk.path for h in engine.search(q)][:1] == ["cache.py"]
    gate, engine.gate = engine.gate, SearchGate(running=1, waiting=0)
    try:
        with engine.gate.slot():  # another client's search holds the only slot
            with pytest.raises(Busy, match="retry in a moment"):
                engine.search(q)
            with pytest.raises(Busy):
                engine.related(engine.folders[0], "cache.py", 0)
        assert engine.search(q)  # free again
    finally:
        engine.gate = gate


def test_a_served_index_with_rows_but_no_file_records_is_read_once(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A read-only server's folder reads an existing index's counts once ("ready" from then on), also an index
    whose rows came without file records (a synthetic or exported index): not again at every answer."""
    from indexer.store import Store

    source = engine.store(engine.folders[0])
    assert source is not None
    rows = source.chunks(engine.folders[0].repo)
    other = Engine(Settings(index_dir=str(tmp_path / "copy")), [tmp_path])
    folder = other.folders[0]
    try:
        store = other.store(folder)
        assert isinstance(store, Store)
        moved = [type(c)(**{**c.__dict__, "repo": folder.repo}) for c in rows]
        by_path: dict[str, list] = {}
        for c in moved:
            by_path.setdefault(c.path, []).append((c, None))
        store.replace_file_chunks(folder.repo, by_path)  # rows, no file records
        assert folder.state == "new"
        folder.refresh_counts()
        assert folder.state == "ready" and folder.files == 0 and folder.chunks == len(rows)
    finally:
        other.close_now()


def test_a_large_index_reads_the_rarest_words_of_a_long_question(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import indexer.search
    import semcode.query_terms

    asked: list[str] = []
    real = indexer.search.candidates

    def candidates(store, query, *rest):  # type: ignore[no-untyped-def]
        asked.append(query)
        return real(store, query, *rest)

    monkeypatch.setattr(indexer.search, "candidates", candidates)
    q = SearchQuery("which part would drop the least recently used entry from the cache when it gets full", 5)
    engine.search(q)  # two rows: every word
    monkeypatch.setattr(semcode.query_terms, "LEXICAL_CAP_ROWS", 2)
    monkeypatch.setattr(semcode.query_terms, "MAX_TEXT_TERMS", 3)
    hits = engine.search(q)  # as if the table were large
    assert asked == ["drop least recently entry cache gets full", "drop least recently"]  # the 3 least common
    assert [h.chunk.path for h in hits][:1] == ["cache.py"]


def test_a_read_only_server_reads_the_version_once_a_moment_and_keeps_its_repository(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A read-only engine reads the chunk table's version at most every ``VERSION_TTL_S`` (one trip to LanceDB
    instead of five per answer). While it still believes the table holds its repository alone, another process's
    commit of a second repository's rows does not reach its answers: their hits are checked (the search itself
    already sees the new rows); once the version is read again, the filter is back."""
    import indexer.store
    from indexer.store import Store

    served = engine.folders[0]
    index_dir = engine.settings.index_dir
    reader = Engine(Settings(index_dir=index_dir), [served.root], read_only=True)
    try:
        store = reader.store(reader.folders[0])
        assert isinstance(store, Store) and store.read_only
        q = SearchQuery("least recently used entry evict", 10, "hybrid")
        first = reader.search(q)
        assert [h.chunk.path for h in first][:1] == ["cache.py"]
        assert store.only_repo() == served.repo  # no filter: the table holds this repository alone
        reads = []
        real = type(store._chunks).version
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(type(store._chunks), "version", property(lambda t: reads.append(1) or real.fget(t)))
            for _ in range(5):
                reader.search(q)
                reader.coverage()
            assert len(reads) <= 1  # within VERSION_TTL_S: at most the one read that renewed it

            writer = engine.store(served)  # another repository's rows, written as another process would
            assert writer is not None
            rows = writer.chunks(served.repo)
            foreign = [type(c)(**{**c.__dict__, "repo": "/elsewhere"}) for c in rows]
            writer.replace_file_chunks("/elsewhere", {c.path: [(c, None)] for c in foreign})
            mp.setattr(indexer.store, "VERSION_TTL_S", 3600.0)  # still the old version for the reader
            store._version_read = (time.monotonic(), store._version_read[1])  # type: ignore[index]
            stale = reader.search(q)
            assert stale and {h.chunk.repo for h in stale} == {served.repo}
            store._version_read = None  # the next read of the version
            assert store.only_repo() is None
            fresh = reader.search(q)
            assert [(h.chunk.path, h.chunk.repo) for h in fresh] == [(h.chunk.path, h.chunk.repo) for h in stale]
    finally:
        writer = engine.store(served)
        if writer is not None:
            writer.forget_repo("/elsewhere")
        reader.close_now()
