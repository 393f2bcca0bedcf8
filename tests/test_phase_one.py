"""A new index's phase 1 in a child process (``semcode.phase_one``, ``Engine(phase_one_apart=True)``: the servers).

The child writes the same index an in-process run writes; a search during it waits for it and answers with hits; a
child that fails leaves the work to the in-process run; a cancelled one is killed and the next run completes the
index; a small tree or an existing index never starts one. A real LanceDB on disk, real child processes, the tiny
random ModernBERT.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import semcode.phase_one as phase_one
from semcode.engine import Engine
from semcode.query import SearchQuery
from semcode.settings import Settings

FILES = phase_one.APART_MIN_FILES + 6


def make_repo(root: Path, files: int = FILES) -> Path:
    for i in range(files):
        package = root / f"pkg{i % 5}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"mod{i}.py").write_text(
            f'def handler_{i}(request):\n    """Answer request number {i}."""\n    return request.reply({i})\n\n\n'
            f"class Store{i}:\n    def save(self, item):\n        return item\n",
            encoding="utf-8",
        )
    (root / "README.md").write_text("# A repository\n\nwith a zebracorn in its readme\n", encoding="utf-8")
    return root


def rows(engine: Engine) -> dict[tuple[str, int, int], tuple[str, tuple[float, ...]]]:
    """(path, start line, end line) -> (text, vector rounded) of every chunk row."""
    store = engine.store(engine.folders[0], create=False)
    assert store is not None
    chunks, vectors = store.chunks_with_vectors(engine.folders[0].repo)
    return {
        (c.path, c.start_line, c.end_line): (c.text, tuple(np.round(v, 5).tolist()))
        for c, v in zip(chunks, vectors, strict=True)
    }


def apart_engine(tmp_path: Path, model: Path, root: Path) -> Engine:
    """An engine that runs a new index's phase 1 in a child (as the servers do), its index in ``tmp_path / "i"``."""
    return Engine(Settings(model=str(model), index_dir=str(tmp_path / "i")), [root], phase_one_apart=True)


@pytest.fixture()
def spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The results of every ``run_apart`` (the real one runs)."""
    results: list[bool] = []
    real = phase_one.run_apart

    def recorded(*args: object, **kwargs: object) -> bool:
        results.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return results[-1]

    monkeypatch.setattr(phase_one, "run_apart", recorded)
    return results


def test_apart_builds_the_index_an_in_process_run_builds(tmp_path: Path, model: Path, spy: list[bool]) -> None:
    root = make_repo(tmp_path / "repo")
    apart = Engine(Settings(model=str(model), index_dir=str(tmp_path / "a")), [root], phase_one_apart=True)
    here = Engine(Settings(model=str(model), index_dir=str(tmp_path / "b")), [root])
    try:
        seen: list[tuple[str, int, int]] = []
        report = apart.index_folder(apart.folders[0], lambda p: seen.append((p.phase, p.files_done, p.files_total)))
        assert spy == [True]  # a child did phase 1
        rows_ = [s for s in seen if s[0] == "rows"]  # the child's progress reaches the caller (an editor's bar)
        assert rows_ and rows_[-1] == ("rows", FILES + 1, FILES + 1) and seen[-1][0] == "vectors"
        assert seen.index(rows_[-1]) < seen.index(next(s for s in seen if s[0] == "vectors"))
        assert report.chunks_written == 0 and report.files_unchanged == FILES + 1  # ... so this run only embedded
        assert report.chunks_encoded > 0
        here.index_folder(here.folders[0])
        assert spy == [True]  # (not asked to: no child)
        a, b = rows(apart), rows(here)
        assert a == b and len(a) >= FILES
        assert all(any(vector) for _, vector in a.values())  # every row embedded
        folder = apart.folders[0]
        assert folder.state == "ready" and folder.files == FILES + 1 and not folder.interrupted
        # the index exists now: the next run is an ordinary in-process update
        apart.index_folder(folder)
        assert spy == [True]
    finally:
        apart.close_now()
        here.close_now()


def test_a_search_during_phase_one_waits_for_it(tmp_path: Path, model: Path, spy: list[bool]) -> None:
    root = make_repo(tmp_path / "repo")
    engine = apart_engine(tmp_path, model, root)
    run = threading.Thread(target=engine.index_folder, args=(engine.folders[0],))
    try:
        run.start()
        deadline = time.monotonic() + 60
        assert engine.apart is not None
        index_dir = engine.folders[0].index_dir
        while not engine.apart.building(index_dir) and run.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert engine.apart.building(index_dir), "the child never started"
        assert engine.store(engine.folders[0], create=False) is None  # not opened here while the child builds it
        hits = engine.search(SearchQuery("zebracorn", mode="lexical"))
        assert [h.chunk.path for h in hits][:1] == ["README.md"]  # the answer waited for phase 1
    finally:
        run.join()
        engine.close_now()
    assert spy == [True]


def test_the_index_is_opened_beside_the_child_before_its_rows_are_in(
    tmp_path: Path, model: Path, spy: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child says when its tables exist; the engine opens the index then (off the first search's path), and
    hands that store out once the child's rows are in."""
    root = make_repo(tmp_path / "repo")
    engine = apart_engine(tmp_path, model, root)
    assert engine.apart is not None
    opened: list[tuple[bool, object]] = []
    real = Engine._open_beside_child

    def recorded(self: Engine, where: str) -> None:
        real(self, where)
        opened.append((engine.apart.building(where), self._stores.get(where)))  # type: ignore[union-attr]

    monkeypatch.setattr(Engine, "_open_beside_child", recorded)
    try:
        engine.index_folder(engine.folders[0], vector_index=False)
        assert spy == [True]
        assert len(opened) == 1 and opened[0][0]  # opened while the child was still building the index
        assert engine.store(engine.folders[0]) is opened[0][1]  # ... and that store is the one served
        assert engine.folders[0].files == FILES + 1
    finally:
        engine.close_now()


def test_a_failed_early_open_is_logged_and_the_run_goes_on(
    tmp_path: Path, model: Path, spy: list[bool], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_repo(tmp_path / "repo")
    engine = apart_engine(tmp_path, model, root)

    def broken(self: Engine, where: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(Engine, "_open_beside_child", broken)
    try:
        with caplog.at_level(logging.WARNING, logger="semcode.phase_one"):
            engine.index_folder(engine.folders[0], vector_index=False)
        assert spy == [True] and "disk on fire" in caplog.text
        hits = engine.search(SearchQuery("zebracorn", mode="lexical"))
        assert [h.chunk.path for h in hits][:1] == ["README.md"]
    finally:
        engine.close_now()


def test_a_failed_child_leaves_the_work_to_the_run(
    tmp_path: Path, model: Path, spy: list[bool], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_repo(tmp_path / "repo")
    monkeypatch.setattr(phase_one, "CHILD", "semcode.no_such_module")
    engine = apart_engine(tmp_path, model, root)
    try:
        with caplog.at_level(logging.WARNING, logger="semcode.phase_one"):
            report = engine.index_folder(engine.folders[0])
        assert spy == [False]
        assert "in a child process failed" in caplog.text and "no_such_module" in caplog.text
        assert report.files_changed == FILES + 1 and report.chunks_written >= FILES  # all of it, in this process
        assert engine.folders[0].state == "ready" and engine.folders[0].files == FILES + 1
    finally:
        engine.close_now()


def test_a_cancelled_child_is_killed_and_the_next_run_completes(tmp_path: Path, model: Path, spy: list[bool]) -> None:
    root = make_repo(tmp_path / "repo", files=400)
    engine = apart_engine(tmp_path, model, root)
    try:
        seen: list[bool] = []

        def cancelled() -> bool:  # from the moment the child runs
            assert engine.apart is not None
            seen.append(engine.apart.building(engine.folders[0].index_dir) or any(seen))
            return seen[-1]

        report = engine.index_folder(engine.folders[0], cancelled=cancelled)
        assert spy == [False] and report.cancelled
        report = engine.index_folder(engine.folders[0])  # the index exists (or not): no child either way
        assert not report.cancelled and engine.folders[0].files == 401 and not engine.folders[0].interrupted
        assert len(spy) <= 2 and all(r is True for r in spy[1:])
    finally:
        engine.close_now()


def test_no_child_for_a_small_tree_or_an_existing_index(tmp_path: Path, model: Path) -> None:
    small = make_repo(tmp_path / "small", files=phase_one.APART_MIN_FILES - 2)  # + README: one short
    settings = Settings(model=str(model), index_dir=str(tmp_path / "i"))
    engine = Engine(settings, [small])
    assert not phase_one.worth_apart(settings, engine.folders[0])
    big = make_repo(tmp_path / "big")
    other = Engine(settings, [big])
    assert phase_one.worth_apart(settings, other.folders[0])
    (tmp_path / "i").mkdir()
    assert not phase_one.worth_apart(settings, other.folders[0])  # an index folder exists: an update, not a build
    uri = Settings(model=str(model), index_dir="s3://bucket/prefix")
    assert not phase_one.worth_apart(uri, Engine(uri, [big]).folders[0])  # object storage: in-process


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_mcp_first_search_on_a_new_repository_has_hits(tmp_path: Path, model: Path) -> None:
    """``semcode mcp`` on a repository with no index: its first ``search_code`` (asked at once) waits for phase 1,
    done in a child process, and answers with hits, not "being built"."""
    import os
    import sys

    from mcp import Client, StdioServerParameters

    root = make_repo(tmp_path / "repo")
    args = ["-m", "lsp_server.cli", "mcp", str(root), "--index-dir", str(tmp_path / "i"), "--model", str(model)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(tmp_path))
    async with Client(params) as client:
        result = await client.call_tool("search_code", {"query": "zebracorn", "mode": "lexical"})
        hits = (result.structured_content or {}).get("hits") or []
        assert hits and hits[0]["path"] == "README.md", result.content


ANSWERED = [
    SearchQuery("zebracorn", mode="lexical"),
    SearchQuery("answer request number 7"),
    SearchQuery("save an item in the store", 5, "semantic"),
    SearchQuery("handler", 20, "hybrid", ["pkg1/**"], None, True),
    SearchQuery("Store3.save"),
]


def outcome(engine: Engine, q: SearchQuery) -> object:
    """A search's hits, or the type and text of its error."""
    try:
        return engine.search(q)
    except ValueError as e:
        return (type(e).__name__, str(e))


def test_the_child_answers_searches_while_the_server_opens_the_index(
    tmp_path: Path, model: Path, spy: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once every row is in, the child answers the engine's searches and coverage (its own engine over the index it
    built) while the engine opens the index itself: the answers of an engine reading the same index then, errors
    included; then the child exits and the run goes on."""
    root = make_repo(tmp_path / "repo")
    engine = apart_engine(tmp_path, model, root)
    assert engine.apart is not None
    opening, may_open = threading.Event(), threading.Event()
    real = Engine._open_beside_child

    def held(self: Engine, where: str) -> None:
        opening.set()
        assert may_open.wait(60)
        real(self, where)

    monkeypatch.setattr(Engine, "_open_beside_child", held)
    run = threading.Thread(target=engine.index_folder, args=(engine.folders[0],), kwargs={"vector_index": False})
    reader = Engine(Settings(model=str(model), index_dir=str(tmp_path / "i")), [root], read_only=True)
    try:
        run.start()
        assert opening.wait(60), "the hand-over never began"
        index_dir = engine.folders[0].index_dir
        by_child = [outcome(engine, q) for q in [*ANSWERED, SearchQuery("handler", paths=["nowhere/**"])]]
        coverage = engine.coverage()
        assert engine.apart.handing_over(index_dir) is not None and index_dir not in engine._stores  # (not open here)
        store_meanwhile: list[object] = []
        asking = threading.Thread(target=lambda: store_meanwhile.append(engine.store(engine.folders[0])))
        asking.start()  # (related, read: they wait for the engine's own store)
        time.sleep(0.2)
        assert asking.is_alive() and not store_meanwhile
        assert by_child == [outcome(reader, q) for q in [*ANSWERED, SearchQuery("handler", paths=["nowhere/**"])]]
        assert [h.chunk.path for h in by_child[0]][:1] == ["README.md"]  # type: ignore[index]
        assert by_child[-1][0] == "EmptyFilter"  # type: ignore[index]
        assert coverage == reader.coverage() and coverage.embedded == 0 and coverage.pending >= FILES
        may_open.set()
        asking.join(60)
        assert store_meanwhile and store_meanwhile[0] is engine._stores[index_dir]
        run.join(120)
        assert not run.is_alive() and spy == [True]  # the child exited once the engine had the index open
        assert engine.apart.search(engine.folders, ANSWERED[0], None, False) is None  # the engine's own answers now
        assert engine.coverage().embedded > 0  # (and this run embedded the rows since)
    finally:
        may_open.set()
        run.join()
        reader.close_now()
        engine.close_now()
