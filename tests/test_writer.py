"""Tests for semcode/writer.py: the order jobs run in, made deterministic with events (no sleeps, no timings).

The timeouts below only keep a broken writer from hanging the suite; nothing is asserted about time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from pathlib import Path

import pytest

from semcode import Engine, Settings
from semcode.writer import Writer

WAIT_S = 120  # a safety net, never a measurement


@pytest.fixture
def writer() -> Iterator[Writer]:
    writer = Writer()
    yield writer
    writer.close()
    writer.join(WAIT_S)


def hold(writer: Writer, log: list[str]) -> threading.Event:
    """Make the writer busy with an urgent job ("held") until the returned event is set."""
    running, release = threading.Event(), threading.Event()

    def held() -> None:
        running.set()
        release.wait(WAIT_S)
        log.append("held")

    writer.urgent(held)
    assert running.wait(WAIT_S)
    return release


def stream(writer: Writer, release: threading.Event, job: Callable[[int], Future[object]], until: Future[object]):
    """From another thread: queue urgent job 1, release the writer, then keep queueing urgent jobs while `until`
    is not done (at most 200): a stream of single-file updates. Returns the thread and its futures."""
    futures: list[Future[object]] = []

    def run() -> None:
        futures.append(job(1))
        release.set()
        n = 2
        while not until.done() and n <= 200:
            futures.append(job(n))
            n += 1

    thread = threading.Thread(target=run)
    thread.start()
    return thread, futures


def test_a_queued_full_run_starts_before_urgent_jobs_queued_after_it(writer: Writer) -> None:
    log: list[str] = []
    release = hold(writer, log)
    full = writer.submit(log.append, "full")  # queued behind the held urgent job
    thread, futures = stream(writer, release, lambda n: writer.urgent(log.append, f"u{n}"), full)
    thread.join(WAIT_S)
    for future in [full, *futures]:
        future.result(WAIT_S)
    # the held job's turn ran only the urgent jobs queued before the full run: u1 came after it
    assert log == ["held", "full"] + [f"u{n}" for n in range(1, len(futures) + 1)]


def test_urgent_jobs_queued_first_run_first(writer: Writer) -> None:
    log: list[str] = []
    release = hold(writer, log)
    jobs = [writer.urgent(log.append, "u1"), writer.submit(log.append, "full"), writer.urgent(log.append, "u2")]
    release.set()
    for job in jobs:
        job.result(WAIT_S)
    assert log == ["held", "u1", "full", "u2"]


def test_urgent_jobs_run_between_the_files_of_a_running_full_run(writer: Writer) -> None:
    """Each urgent job queues the next (a stream): each drain runs those queued when it is called, so the run goes
    on one file at a time and the stream gets one job in between; the rest run after it."""
    log: list[str] = []

    def update(n: int) -> None:
        log.append(f"u{n}")
        if n < 5:
            writer.urgent(update, n + 1)

    def full_run() -> None:
        for n in range(3):
            log.append(f"file{n}")
            if n == 0:
                writer.urgent(update, 0)
            writer.drain()

    writer.submit(full_run).result(WAIT_S)
    last = writer.urgent(log.append, "end")
    last.result(WAIT_S)
    assert log == ["file0", "u0", "file1", "u1", "file2", "u2", "u3", "u4", "u5", "end"]


def test_close_cancels_queued_jobs_of_both_kinds(writer: Writer) -> None:
    log: list[str] = []
    release = hold(writer, log)
    queued = [writer.submit(log.append, "full"), writer.urgent(log.append, "u")]
    writer.close()
    release.set()
    assert writer.join(WAIT_S)
    for future in queued:
        with pytest.raises(CancelledError):
            future.result(WAIT_S)
    assert writer.urgent(log.append, "late").cancelled()
    assert log == ["held"]


# ---------------------------------------------------------------------------------------------------------------
# through the engine: the MCP server's reindex tool queues a full run (writer.submit(index_folder)) and single-file
# updates (writer.urgent(update_files)) exactly so


@pytest.fixture
def engine(tmp_path: Path, model: Path) -> Iterator[Engine]:
    repo = tmp_path / "repo"
    repo.mkdir()
    for n in range(3):
        (repo / f"m{n}.py").write_text(f"def function_{n}(x):\n    return x + {n}\n")
    engine = Engine(Settings(model=str(model), index_dir=str(tmp_path / "index")), [repo])
    engine.update()
    yield engine
    engine.close_now()


def test_engine_full_reindex_starts_while_single_file_updates_keep_coming(engine: Engine) -> None:
    folder = engine.folders[0]
    for n in range(3, 6):  # what the full run has to do
        (folder.root / f"m{n}.py").write_text(f"def function_{n}(x):\n    return x * {n}\n")
    log: list[str] = []

    def update(n: int) -> Future[object]:
        future = engine.writer.urgent(engine.update_files, folder, ["m0.py"])
        # on the writer thread, as the job ends: "indexing" once the full run has started (it is "ready" before)
        future.add_done_callback(lambda _: log.append(f"update while {folder.state}"))
        return future

    release = hold(engine.writer, log)
    full = engine.writer.submit(engine.index_folder, folder)
    full.add_done_callback(lambda _: log.append("full run done"))
    thread, updates = stream(engine.writer, release, update, full)
    thread.join(WAIT_S)
    assert full.result(WAIT_S).files_changed == 3
    for future in updates:
        future.result(WAIT_S)
    # every update queued after the full run ran after it started: between its files, or after it
    done = log.index("full run done")
    assert log[:done] == ["held"] + ["update while indexing"] * (done - 1)
    assert log[done + 1 :] == ["update while ready"] * (len(updates) - done + 1)


def test_engine_update_queued_during_a_full_run_runs_before_its_next_file(engine: Engine) -> None:
    folder = engine.folders[0]
    for n in range(3, 6):
        (folder.root / f"m{n}.py").write_text(f"def function_{n}(x):\n    return x * {n}\n")
    log: list[str] = []

    def between_files() -> bool:
        log.append("file")
        if log.count("file") == 1:
            update = engine.writer.urgent(engine.update_files, folder, ["m0.py"])
            update.add_done_callback(lambda _: log.append("update"))
        return False

    report = engine.writer.submit(engine.index_folder, folder, None, between_files).result(WAIT_S)
    assert report.files_changed == 3
    assert log[:3] == ["file", "update", "file"]
