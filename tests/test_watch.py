"""The watcher with a real watchdog observer on real files: per-path debounce, moves and deletes, ignored paths, a
failing callback, a burst of creates; then end to end into a real Store (tiny model) and through ``semcode watch``.

Nothing waits on a timer alone: every wait polls a condition every 20 ms up to a deadline.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.index import IndexOptions, IndexReport, index_repository, repo_id
from indexer.store import Store
from indexer.watch import Watcher, excluded_dirs, watch_repository

ROOT = Path(__file__).resolve().parent.parent

# watchdog's inotify emitter can add a watch twice for a folder created with its parents at once ("mkdir -p"); it
# warns and overwrites the callback, which is harmless
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id .* already exists:RuntimeWarning")


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Batches:
    """Collects the watcher's batches; `flush` writes a sentinel file and waits for it, after which every event that
    happened before has been delivered (an older quiet path is always ready no later than a newer one)."""

    def __init__(self, root: Path, fail_first: int = 0) -> None:
        self.root = root
        self.batches: list[list[str]] = []
        self.fail_first = fail_first
        self._lock = threading.Lock()
        self._sentinels = 0

    def __call__(self, batch: list[str]) -> None:
        with self._lock:
            self.batches.append(batch)
            if self.fail_first > 0:
                self.fail_first -= 1
                raise RuntimeError("callback failure for the test")

    def delivered(self) -> list[str]:
        with self._lock:
            return [p for b in self.batches for p in b]

    def wait_for(self, *paths: str) -> None:
        wait_until(lambda: set(paths) <= set(self.delivered()), what=f"delivery of {paths}")

    def flush(self) -> None:
        self._sentinels += 1
        name = f"sentinel_{self._sentinels}.py"
        (self.root / name).write_text("x = 1\n")
        self.wait_for(name)

    def since_flush(self) -> list[str]:
        return [p for p in self.delivered() if not p.startswith("sentinel_")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    return root


def test_debounce_delivers_each_path_once(repo):
    got = Batches(repo)
    with Watcher(repo, got, debounce_s=0.5):
        for name in ("a.py", "b.py", "c.py"):
            (repo / name).write_text("def f(): pass\n")
        for i in range(5):  # rewritten within the debounce window: still one delivery
            (repo / "a.py").write_text(f"def f(): return {i}\n")
        got.flush()
    assert sorted(got.since_flush()) == ["a.py", "b.py", "c.py"]
    assert all(b == sorted(b) for b in got.batches)


def test_delete_and_move(repo):
    (repo / "pkg").mkdir()
    (repo / "gone.py").write_text("x = 1\n")
    (repo / "old.py").write_text("y = 2\n")
    (repo / "pkg/inner.py").write_text("z = 3\n")
    got = Batches(repo)
    with Watcher(repo, got, debounce_s=0.2):
        (repo / "gone.py").unlink()
        (repo / "old.py").rename(repo / "new.py")
        shutil.move(repo / "pkg", repo.parent / "moved_out")  # a folder leaving the tree: its own path
        got.flush()
    assert sorted(got.since_flush()) == ["gone.py", "new.py", "old.py", "pkg"]


def test_git_and_ignored_paths_are_never_delivered(repo):
    got = Batches(repo)
    with Watcher(repo, got, debounce_s=0.2, ignore=excluded_dirs(["node_modules", "*.egg-info"])):
        (repo / ".git/objects").mkdir(parents=True)
        (repo / ".git/HEAD").write_text("ref: refs/heads/main\n")
        (repo / ".git/objects/ab").write_text("blob\n")
        (repo / "node_modules/dep").mkdir(parents=True)
        (repo / "node_modules/dep/index.js").write_text("module.exports = 1\n")
        (repo / "pkg.egg-info").mkdir()
        (repo / "pkg.egg-info/PKG-INFO").write_text("Name: pkg\n")
        (repo / "kept.py").write_text("k = 1\n")
        got.flush()
    assert got.since_flush() == ["kept.py"]


def test_failing_callback_does_not_stop_the_watcher(repo, caplog):
    got = Batches(repo, fail_first=1)
    with Watcher(repo, got, debounce_s=0.2):
        (repo / "first.py").write_text("a = 1\n")
        got.wait_for("first.py")
        (repo / "second.py").write_text("b = 2\n")
        got.wait_for("second.py")
    assert "callback failure for the test" in caplog.text


def test_burst_of_creates_arrives_in_few_batches(repo):
    got = Batches(repo)
    names = [f"pkg/mod_{i:03d}.py" for i in range(200)]
    with Watcher(repo, got, debounce_s=0.3):
        (repo / "pkg").mkdir()
        for name in names:
            (repo / name).write_text(f"v = {name!r}\n")
        got.wait_for(*names)
    assert len(got.batches) < 20
    assert set(names) <= set(got.delivered())


def test_stop_is_idempotent(repo):
    watcher = Watcher(repo, lambda batch: None)
    watcher.stop()  # never started
    watcher.start()
    watcher.stop()
    watcher.stop()


# ---------------------------------------------------------------------------------------------------- end to end


def small_repo(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    (root / "pkg").mkdir()
    for i in range(3):
        (root / f"pkg/mod_{i}.py").write_text(f"def function_{i}(value):\n    return value * {i}\n")
    return root


def test_watch_repository_end_to_end(tmp_path, enc):
    root = small_repo(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    options = IndexOptions()
    index_repository(root, store, enc, enc.tokenizer.count, options)
    repo = repo_id(root)
    reports: list[IndexReport] = []

    def found(name: str) -> bool:
        return any(h.chunk.symbol == name for h in store.search_text(name, 10, repo=repo))

    with watch_repository(root, store, enc, enc.tokenizer.count, options, debounce_s=0.2, on_report=reports.append):
        new = root / "pkg/fresh.py"
        new.write_text("def zebra_quantum_unique_fn(x):\n    return x + 42\n")
        wait_until(lambda: found("zebra_quantum_unique_fn"), timeout=15, what="the new function in the index")
        new.unlink()
        wait_until(lambda: not found("zebra_quantum_unique_fn"), timeout=15, what="the deleted function to go")
        # a folder moved out of the repository takes its indexed files with it
        shutil.move(root / "pkg", tmp_path / "elsewhere")
        wait_until(lambda: not store.files(repo), timeout=15, what="the moved folder's files to leave the index")
    assert not found("function_1")
    assert reports and sum(r.files_deleted for r in reports) == 4  # fresh.py, then the three modules


def test_watch_repository_hands_batches_to_the_run_hook(tmp_path, enc):
    """``run`` decides where a batch is indexed: here on a worker thread of the test's own, as the server's writer."""
    root = small_repo(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    index_repository(root, store, enc, enc.tokenizer.count, IndexOptions())
    jobs: queue.Queue = queue.Queue()
    ran_on: list[str] = []

    def writer() -> None:
        while (job := jobs.get()) is not None:
            handle, batch, done = job
            ran_on.append(threading.current_thread().name)
            handle(batch)
            done.set()

    def run(handle, batch):
        done = threading.Event()
        jobs.put((handle, batch, done))
        done.wait()

    worker = threading.Thread(target=writer, name="test-writer")
    worker.start()
    reports: list[IndexReport] = []
    try:
        with watch_repository(root, store, enc, enc.tokenizer.count, debounce_s=0.2, on_report=reports.append, run=run):
            (root / "pkg/mod_1.py").write_text("def renamed_function_one(value):\n    return value\n")
            wait_until(lambda: reports, timeout=15, what="a batch through the run hook")
    finally:
        jobs.put(None)
        worker.join()
    assert set(ran_on) == {"test-writer"}
    assert reports[0].files_changed == 1
    assert any(h.chunk.symbol == "renamed_function_one" for h in store.search_text("renamed_function_one", 5))


def test_cli_watch(tmp_path, model):
    root = small_repo(tmp_path / "repo")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lsp_server.cli", "watch", str(root), "--model", str(model)]
    cmd += ["--index-dir", str(tmp_path / "index"), "--debounce", "0.2", "--device", "cpu"]
    err = (tmp_path / "stderr.txt").open("w")
    # a suite started in the background (`cmd &` in a script) runs with SIGINT ignored, which children inherit and
    # Python then leaves ignored: give the child the default disposition, as a terminal would
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        bufsize=1,
        cwd=ROOT,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_line_with(text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s")

    try:
        next_line_with("watching", timeout=120)
        (root / "pkg/added.py").write_text("def added_by_test(x):\n    return x\n")
        line = next_line_with("updated", timeout=30)
        assert "1 changed" in line and "chunks encoded" in line
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        seen = []
        while not lines.empty():
            seen.append(lines.get())
        stderr = (tmp_path / "stderr.txt").read_text()[-2000:]
        assert code == 0, f"exit {code} after Ctrl-C; stdout after the edit: {seen!r}; stderr: {stderr}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
