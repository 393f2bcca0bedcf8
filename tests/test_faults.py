"""Faults through the real CLI: subprocesses, a real LanceDB in tmp_path, the tiny random model.

A full disk (simulated with RLIMIT_FSIZE: a write past the limit fails with EFBIG, where a full disk gives ENOSPC;
mounting a small tmpfs needs privileges a test cannot count on), a read-only index folder (for root, the child drops
the capabilities that let root write anywhere), an index folder that vanishes between runs or while `watch` holds it,
SIGINT at several moments of start-up, and a Ctrl-C the kernel hands to a thread other than the main one
(LanceDB's) during `watch`, `index` and the stdio servers (`mcp`, `lsp`). Each ends with one ``semcode: error: ...``
line and exit 2 (or ``semcode: interrupted`` and exit 130; `watch` and `lsp` stop with 0), never a traceback, and the
index opens afterwards.

Children run with ``-B``: a child under a file size limit must not write (truncated) bytecode caches.
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from tests.raw_lsp import RawServer, request

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-B", "-m", "lsp_server.cli"]
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3

pytestmark = pytest.mark.timeout(300)


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "SEMCODE_NO_DAEMON": "1"}


def cli(*args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*CLI, *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env(), preexec_fn=preexec, timeout=240)


def write_repo(root: Path, n_files: int, prefix: str = "scale") -> None:
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)
    for i in range(n_files):
        text = f"def {prefix}_{i}(v):\n    return v * {i}\n\n\ndef {prefix}_up_{i}(v):\n    return v + {i}\n"
        (root / f"pkg/{prefix}_{i}.py").write_text(text)


def house_error(out: subprocess.CompletedProcess[str], *says: str) -> str:
    """The run ended with exit 2 and one `semcode: error:` line saying all of `says`, and no traceback."""
    errors = [line for line in out.stderr.splitlines() if line.startswith("semcode: error: ")]
    assert out.returncode == 2 and len(errors) == 1, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr and all(s in errors[0] for s in says), out.stderr[-3000:]
    return errors[0]


class Repo:
    def __init__(self, tmp_path: Path, model: Path) -> None:
        self.root, self.index, self.model = tmp_path / "repo", tmp_path / "index", model
        write_repo(self.root, 20)

    def flags(self, index: Path | None = None) -> list[str]:
        return ["--model", str(self.model), "--index-dir", str(index or self.index)]

    def index_now(self, **kwargs: Callable[[], None]) -> subprocess.CompletedProcess[str]:
        return cli("index", str(self.root), *self.flags(), "--quiet", **kwargs)

    def finds(self, symbol: str) -> bool:
        out = cli("search", symbol, "--repo", str(self.root), "--mode", "lexical", "--limit", "3", *self.flags())
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
        return f" {symbol} " in out.stdout


@pytest.fixture
def repo(tmp_path: Path, model: Path) -> Repo:
    r = Repo(tmp_path, model)
    assert r.index_now().returncode == 0
    return r


# -- a full disk ---------------------------------------------------------------------------------------------------


def file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_one_error_line_and_what_was_written_stays(repo: Repo) -> None:
    write_repo(repo.root, 40, prefix="grown")
    out = repo.index_now(preexec=file_size_limit(1024))
    house_error(out, "no room to write", str(repo.index), "free some disk space")
    status = cli("status", "--repo", str(repo.root), *repo.flags())
    assert status.returncode == 0 and "incomplete" in status.stdout, status.stdout + status.stderr
    assert repo.finds("scale_3")  # what the first run wrote
    assert repo.index_now().returncode == 0  # room again: the run completes
    assert repo.finds("grown_17")


# -- a read-only index folder --------------------------------------------------------------------------------------


def cannot_override_permissions() -> None:
    """In the child, before exec: root drops the capabilities that let it write where the mode says no."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def chmod_tree(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_a_read_only_index_folder_is_one_error_line_and_still_searchable(repo: Repo, tmp_path: Path) -> None:
    (repo.root / "pkg/added.py").write_text("def added_later(x):\n    return x\n")
    chmod_tree(repo.index, writable=False)
    try:
        out = repo.index_now(preexec=cannot_override_permissions)
        house_error(out, f"cannot write {repo.index} (Permission denied)", "--index-dir")
        search = ["search", "scale_3", "--repo", str(repo.root), "--mode", "lexical", *repo.flags()]
        read = cli(*search, preexec=cannot_override_permissions)
        assert read.returncode == 0 and " scale_3 " in read.stdout, read.stderr[-3000:]  # reading needs no writes
    finally:
        chmod_tree(repo.index, writable=True)
    assert repo.index_now().returncode == 0 and repo.finds("added_later")

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    new = cli("index", str(repo.root), *repo.flags(locked / "index"), preexec=cannot_override_permissions)
    house_error(new, f"cannot write {locked / 'index'} (Permission denied)")


# -- a vanished index folder ---------------------------------------------------------------------------------------


def test_an_index_folder_gone_between_runs_says_how_to_build_it_again(repo: Repo) -> None:
    shutil.rmtree(repo.index)
    for command in (["search", "scale_3"], ["status"]):
        out = cli(*command, "--repo", str(repo.root), *repo.flags())
        house_error(out, "is not indexed yet", f"semcode index {repo.root}")
    assert repo.index_now().returncode == 0 and repo.finds("scale_3")


class Lines:
    """A child's output read on a thread: wait (up to a deadline) for a line that matches."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while (line := self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))) is not None:
            if re.search(pattern, line):
                return
        raise AssertionError(f"the stream ended before a line matching {pattern!r}")

    def rest(self) -> list[str]:
        """The lines not yet read, up to the end of the stream (call once the child has exited)."""
        lines = []
        while (line := self.lines.get(timeout=30)) is not None:
            lines.append(line)
        return lines


def test_an_index_folder_that_vanishes_while_watched_ends_watch_with_one_error_line(repo: Repo) -> None:
    args = [*CLI, "watch", str(repo.root), *repo.flags(), "--debounce", "0.1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env())
    try:
        Lines(proc.stdout).wait_for("watching")
        shutil.rmtree(repo.index)
        (repo.root / "pkg/after.py").write_text("def written_after(x):\n    return x\n")
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    out = subprocess.CompletedProcess(args, proc.returncode, "", stderr)
    house_error(out, f"the index folder {repo.index} vanished", f"semcode index {repo.root}")
    assert repo.index_now().returncode == 0 and repo.finds("written_after")


# -- SIGINT ----------------------------------------------------------------------------------------------------------


def wait_for_library(proc: subprocess.Popen[str], name: str, timeout: float = 120.0) -> None:
    """Until the child has mapped a shared library whose file name contains `name` (an import under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with open(f"/proc/{proc.pid}/maps") as maps:
            if name in maps.read():
                return
        time.sleep(0.002)
    raise AssertionError(f"the child ended (or {timeout} s passed) before it loaded {name}")


# (command, the library whose loading marks the moment, then a short delay): the CLI's imports, then its work
MOMENTS = [
    ("search", "_lancedb", 0.0),
    ("search", "libarrow.so", 0.0),
    ("search", "_pydantic_core", 0.0),
    ("search", "tokenizers", 0.0),
    ("search", "tokenizers", 0.3),
    ("status", "libarrow.so", 0.0),
    ("index", "_lancedb", 0.0),
]


def test_sigint_at_any_moment_of_start_up_is_one_line_and_exit_130(repo: Repo) -> None:
    for command, library, delay in MOMENTS:
        where = ["--repo", str(repo.root)] if command != "index" else [str(repo.root)]
        args = [*CLI, command, *(["scale_3"] if command == "search" else []), *where, *repo.flags()]
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env(),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a suite run with `&` ignores it
        )  # fmt: skip
        try:
            wait_for_library(proc, library)
            time.sleep(delay)  # a moment a little later, not a wait for something
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        moment = f"{command} at {library} + {delay} s"
        assert "Traceback" not in stderr, (moment, stderr)
        if proc.returncode in (0, -signal.SIGINT) and stdout:  # it had finished: the signal came while it exited
            continue
        assert proc.returncode == 130, (moment, proc.returncode, stderr)
        said = [line for line in stderr.splitlines() if line.startswith("semcode: ")]
        assert said and said[0].startswith("semcode: interrupted"), (moment, stderr)  # `index` says what it kept
    assert repo.finds("scale_3")
    assert repo.index_now().returncode == 0


def interrupt_through_another_thread(pid: int) -> str:
    """SIGINT to one of LanceDB's threads of `pid`, not its main thread: a Ctrl-C the kernel happened to hand
    there (as it may: it is sent to the process) interrupts none of the main thread's blocking waits."""
    for tid in sorted(os.listdir(f"/proc/{pid}/task")):
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        if int(tid) != pid and name.startswith("lance"):
            assert ctypes.CDLL(None, use_errno=True).tgkill(pid, int(tid), signal.SIGINT) == 0
            return name
    raise AssertionError(f"no LanceDB thread in {pid}")


# (command and its arguments, a line on stdout or stderr that marks the moment, the exit code a Ctrl-C gives)
WAITS = [
    (["watch", "{root}", "--debounce", "0.1"], "watching", 0),
    (["index", "{root}", "--rebuild"], r"semcode: indexing repo: \d+/\d+ files", 130),
]


@pytest.mark.parametrize(("command", "moment", "code"), WAITS, ids=["watch", "index"])
def test_a_ctrl_c_the_kernel_hands_to_another_thread_still_stops_the_command(
    repo: Repo, command: list[str], moment: str, code: int
) -> None:
    assert repo.index_now().returncode == 0
    write_repo(repo.root, 300, "more")  # an index run long enough to be caught in the middle
    args = [*CLI, *[a.format(root=repo.root) for a in command], *repo.flags()]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a suite run with `&` ignores it
    )  # fmt: skip
    stderr = Lines(proc.stderr)
    try:
        (Lines(proc.stdout) if command[0] == "watch" else stderr).wait_for(moment)
        thread = interrupt_through_another_thread(proc.pid)
        proc.wait(timeout=60)  # before the fix: the main thread slept on (watch: for an hour)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    said = "".join(stderr.rest())
    assert proc.returncode == code and "Traceback" not in said, (thread, proc.returncode, said[-3000:])
    if command[0] == "index":  # (how much it kept depends on where the run was: a write batch finishes first)
        kept = r"kept (\d+ of \d+ files looked at|every file, searchable by text, and \d+ of \d+ chunks embedded)"
        assert re.search(kept, said), said[-3000:]
    assert repo.index_now().returncode == 0 and repo.finds("more_299")


def test_a_wait_for_the_writer_ends_on_a_ctrl_c_taken_by_another_thread() -> None:
    """In-process, without timing: the main thread waits for a job that will not end for a minute; another thread
    takes the SIGINT. Before the fix (``future.result()``) the KeyboardInterrupt came only once the job was done."""
    from concurrent.futures import Future

    from semcode.writer import result

    job: Future[None] = Future()
    finish = threading.Timer(60.0, job.set_result, args=(None,))
    # the SIGINT goes to the timer's own thread, a moment after the main thread began to wait
    taker = threading.Timer(0.5, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # (a suite run with `&` ignores it)
    try:
        finish.start()
        with pytest.raises(KeyboardInterrupt):
            taker.start()
            result(job)
        assert not job.done()  # interrupted while the job still ran
    finally:
        finish.cancel()
        taker.join()
        signal.signal(signal.SIGINT, previous)


def lance_thread_up(pid: int, timeout: float = 120.0) -> None:
    """Until `pid` runs a LanceDB thread (it has opened its index)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = [Path(f"/proc/{pid}/task/{t}/comm").read_text() for t in os.listdir(f"/proc/{pid}/task")]
        if any(n.startswith("lance") for n in names):
            return
        time.sleep(0.2)
    raise AssertionError(f"no LanceDB thread in {pid} within {timeout} s")


def quiet(pid: int, timeout: float = 120.0) -> None:
    """Until `pid` used no CPU for a whole second (it waits for input)."""

    def cpu() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline and (now := cpu()) != last:
        last = now
        time.sleep(1.0)


def test_a_ctrl_c_the_kernel_hands_to_another_thread_stops_the_mcp_server(repo: Repo) -> None:
    assert repo.index_now().returncode == 0
    proc = subprocess.Popen(
        [*CLI, "mcp", str(repo.root), *repo.flags()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=ROOT, env=env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a suite run with `&` ignores it
    )  # fmt: skip
    try:  # stdin stays open: a person at a terminal
        lance_thread_up(proc.pid)
        quiet(proc.pid)  # its start-up run over: nothing will wake its event loop
        thread = interrupt_through_another_thread(proc.pid)
        proc.wait(timeout=60)  # (not communicate: it would close stdin) before the fix: asleep in the event loop
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.stderr is not None
    said = proc.stderr.read().decode(errors="replace")
    assert proc.returncode == 130 and "Traceback" not in said, (thread, proc.returncode, said[-3000:])
    assert said.strip().splitlines()[-1] == "semcode: interrupted", said[-3000:]
    assert repo.index_now().returncode == 0


def test_a_ctrl_c_the_kernel_hands_to_another_thread_stops_an_idle_language_server(repo: Repo, tmp_path: Path) -> None:
    assert repo.index_now().returncode == 0
    server = RawServer(tmp_path / "stderr.txt", cwd=repo.root)
    try:
        server.start(repo.root, repo.index, repo.model)
        ready = lambda: server.ask(request(f"s{time.monotonic()}", "semcode/status", None))["result"]["state"]  # noqa: E731
        deadline = time.monotonic() + 120
        while ready() != "ready" and time.monotonic() < deadline:  # idle: nothing will wake its event loop
            time.sleep(0.2)
        thread = interrupt_through_another_thread(server.proc.pid)
        server.proc.wait(timeout=60)  # before the fix: asleep in the event loop until the next message
    finally:
        server.close()
    said = (tmp_path / "stderr.txt").read_text()
    assert server.proc.returncode == 0 and "Traceback" not in said, (thread, server.proc.returncode, said[-3000:])
