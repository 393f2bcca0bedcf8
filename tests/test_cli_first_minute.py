"""The CLI's first minute, end to end: real `semcode` subprocesses, a real LanceDB in tmp_path, the tiny random model.

Unindexed folders, the warm daemon's life cycle, `indexes`/`forget`, progress without a terminal, Ctrl-C during
`index`, `watch` events, `--help` texts and a closed stdout pipe. Every wait polls a condition up to a deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pytest

from lsp_server import daemon
from lsp_server.options import parse

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "lsp_server.cli"]
PROGRESS = re.compile(
    r"^semcode: indexing repo: (\d+/\d+ files, \d+ chunks|searchable by text; embedding \d+/\d+ chunks)"
)
LSP_KEYS = {  # every initializationOptions key, with a valid value
    "model": "some/model", "indexDir": "/tmp/index", "maxFileSize": 1.5, "include": ["a/"], "exclude": ["b/"],
    "device": "cpu", "threads": 2, "debounceMs": 100,
}  # fmt: skip


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    cmd = [*CLI, *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env or env_with(), timeout=300)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return value


def write_repo(root: Path, n_files: int) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / ".git").mkdir()
    for i in range(n_files):
        text = f"def scale_{i}(value):\n    return value * {i}\n\n\ndef shift_{i}(value):\n    return value + {i}\n"
        (root / f"pkg/mod_{i}.py").write_text(text)
    return root


class Lines:
    """A child's output stream read on a thread: wait (up to a deadline) for the next line that matches."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def wait_for(self, matches: Callable[[str], object], what: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if matches(line):
                return line
        raise AssertionError(f"no {what} within {timeout} s; last lines: {self.seen[-10:]}")

    def rest(self) -> list[str]:
        """Every line up to the end of the stream (call after the child exited)."""
        while (line := self.queue.get(timeout=30)) is not None:
            self.seen.append(line)
        return self.seen


@contextlib.contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A CLI in the background, killed on the way out if still running. SIGINT at its default: a suite started with
    `&` ignores it, and children would inherit that."""
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, cwd=ROOT,
        env=env or env_with(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Indexed:
    root: Path
    index: Path
    model: str

    def flags(self) -> list[str]:
        return ["--model", self.model, "--index-dir", str(self.index)]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Indexed:
    """40 files (80 chunks), indexed once for the module's readers."""
    base = tmp_path_factory.mktemp("indexed")
    done = Indexed(write_repo(base / "repo", 40), base / "index", str(model))
    out = cli("index", str(done.root), *done.flags(), "--quiet")
    assert out.returncode == 0, out.stderr
    return done


# -- never indexed -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["search", "scale"], ["related", "pkg/mod_0.py:1"], ["status"]])
def test_a_folder_never_indexed_is_an_error_and_nothing_is_created(tmp_path: Path, model: Path, command: list[str]):
    repo, cache = write_repo(tmp_path / "repo", 1), tmp_path / "cache"
    env = env_with(XDG_CACHE_HOME=str(cache))
    for where in (["--index-dir", str(tmp_path / "index")], []):  # a named index folder, then the default one
        out = cli(*command, "--model", str(model), *where, cwd=repo, env=env)
        assert out.returncode == 2, out
        assert "not indexed" in out.stderr and f"semcode index {repo}" in out.stderr
        assert out.stdout == "" and "Traceback" not in out.stderr
    assert not (tmp_path / "index").exists()
    assert not cache.exists() or list(cache.rglob("*")) == []


# -- the warm daemon ---------------------------------------------------------------------------------------------------


class Warm:
    """Daemon-enabled CLI runs with their daemon's socket in a private XDG_RUNTIME_DIR; `cleanup` stops what they
    started."""

    def __init__(self, run: Path, indexed: Indexed) -> None:
        self.run, self.indexed = run, indexed
        self.env = {k: v for k, v in env_with(XDG_RUNTIME_DIR=str(run)).items() if k != daemon.NO_DAEMON_ENV}
        self.sock = daemon.socket_path()  # where every CLI looks: one daemon per user

    def search(self, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        args = ["search", "value", "--mode", "lexical", "--json", *self.indexed.flags(), *extra]
        out = cli(*args, env=self.env, cwd=cwd or self.indexed.root)
        assert out.returncode == 0, out.stderr
        assert out.stdout.count("\n") == 10
        return out

    def ping(self) -> dict[str, Any] | None:
        answer = daemon.ask(self.sock, "ping", {})
        return answer if answer is not None and answer["ok"] else None

    def serving(self) -> dict[str, Any]:
        try:
            return wait_until(self.ping, f"a daemon at {self.sock}")
        except AssertionError as e:
            log = Path(f"{self.sock}.log")
            raise AssertionError(f"{e}; its log: {log.read_text()[-2000:] if log.exists() else 'none'}") from None

    def pids(self) -> list[int]:
        """Live `semcode daemon serve` processes started with this test's XDG_RUNTIME_DIR."""
        found = []
        for proc in Path("/proc").iterdir():
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
                ours = b"lsp_server.cli" in args and b"daemon" in args
                if ours and f"XDG_RUNTIME_DIR={self.run}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except (OSError, ValueError):
                continue
        return found

    def files(self) -> list[str]:
        return sorted(p.name for p in self.run.rglob("*") if not p.is_dir())

    def cleanup(self) -> None:
        for sock in (self.run / "semcode").glob("*.sock"):
            daemon.stop(sock)
        try:
            wait_until(lambda: not self.pids(), "the daemons to stop", timeout=20)
        finally:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def warm(tmp_path: Path, indexed: Indexed, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warm]:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # this process computes the same socket paths
    (tmp_path / "run").mkdir()
    helper = Warm(tmp_path / "run", indexed)
    try:
        yield helper
    finally:
        helper.cleanup()


def roots_served(answer: dict[str, Any]) -> dict[str, list[str]]:
    """A daemon's `ping` answer -> the roots of each open index."""
    return {i["index_dir"]: i["roots"] for i in answer["indexes"]}


def test_the_first_search_starts_a_daemon_that_answers_the_next(warm: Warm, tmp_path: Path) -> None:
    cold = warm.search()  # no daemon yet: answered in the CLI's own process, which starts one
    first = warm.serving()
    assert warm.pids() == [first["pid"]] and roots_served(first) == {str(warm.indexed.index): [str(warm.indexed.root)]}
    assert warm.sock.name in warm.files()
    # from another folder: the daemon serves that folder too (it shows in `ping`), with the same answer
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert warm.search(cwd=elsewhere).stdout == cold.stdout
    again = warm.ping()
    assert again is not None and again["pid"] == first["pid"]
    assert roots_served(again) == {str(warm.indexed.index): [str(warm.indexed.root), str(elsewhere)]}
    assert warm.search("--no-daemon").stdout == cold.stdout


def test_an_idle_daemon_exits_and_removes_its_socket(warm: Warm) -> None:
    args = ["daemon", "serve", "--root", str(warm.indexed.root), "--index-dir", str(warm.indexed.index)]
    with running(*args, "--model", warm.indexed.model, "--idle", "2", env=warm.env) as proc:
        warm.serving()
        assert proc.wait(timeout=60) == 0
    assert not warm.sock.exists() and warm.pids() == []


def test_a_stale_socket_is_replaced(warm: Warm) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(warm.sock))  # closed without unlinking: the file stays, nobody listens
    assert warm.sock.is_socket()  # (no ping here: an answerless socket is removed by whoever asks first)
    warm.search()
    assert warm.serving()["pid"] in warm.pids()


def test_two_clis_at_once_leave_one_daemon(warm: Warm) -> None:
    args = ["search", "value", "--mode", "lexical", "--json", *warm.indexed.flags()]
    with running(*args, env=warm.env) as one, running(*args, env=warm.env) as two:
        outs = [p.communicate(timeout=300) for p in (one, two)]
    assert [one.returncode, two.returncode] == [0, 0], outs
    assert outs[0][0] == outs[1][0] and outs[0][0].count("\n") == 10
    only = wait_until(lambda: (p := warm.ping()) and warm.pids() == [p["pid"]] and p, "exactly one daemon")
    with open(f"{warm.sock}.lock") as lock, pytest.raises(BlockingIOError):
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the one daemon holds the daemon's lock
    assert warm.pids() == [only["pid"]]


# what a query a daemon answers must not import: the model's code, LanceDB, and the standard library's slow starters
WARM_NEVER = ["torch", "numpy", "tokenizers", "lancedb", "pyarrow", "encoder.load", "semcode.settings"]
WARM_NEVER += ["semcode.engine", "dataclasses", "logging", "hashlib", "tomllib", "platformdirs", "shutil"]


def test_a_warm_answer_imports_only_what_it_needs(warm: Warm) -> None:
    warm.search()
    warm.serving()
    argv = ["search", "value", "--mode", "hybrid", "--json", *warm.indexed.flags()]
    probe = (
        f"import sys\nfrom lsp_server.cli import main\ncode = main({argv!r})\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=warm.env, cwd=warm.indexed.root, timeout=120
    )
    assert out.returncode == 0 and out.stdout.count("\n") == 10, out.stderr[-3000:]
    imported = set(out.stderr.split())
    assert "lsp_server.daemon_client" in imported and "lsp_server.daemon" not in imported  # answered warm
    assert not [m for m in WARM_NEVER if m in imported], sorted(m for m in WARM_NEVER if m in imported)


def test_a_killed_daemon_is_replaced(warm: Warm) -> None:
    cold = warm.search()
    crashed = warm.serving()["pid"]
    os.kill(crashed, signal.SIGKILL)
    wait_until(lambda: crashed not in warm.pids(), "the killed daemon to go")
    assert warm.sock.is_socket()  # left behind: nobody listens
    assert warm.search().stdout == cold.stdout  # answered cold
    assert warm.serving()["pid"] not in (crashed, None)


def test_no_daemon_and_status_start_no_daemon(warm: Warm) -> None:
    root, flags = warm.indexed.root, warm.indexed.flags()
    runs = [
        ["search", "value", "--mode", "lexical", "--no-daemon"],
        ["related", f"{root}/pkg/mod_3.py:2", "--no-daemon"],
        ["status", "--repo", str(root), "--no-daemon"],
        ["status", "--repo", str(root)],  # daemon allowed: status alone is not worth loading a model for
    ]
    for args in runs:
        out = cli(*args, *flags, env=warm.env)
        assert out.returncode == 0 and out.stdout, (args, out.stderr)
    assert [f for f in warm.files() if f.endswith((".sock", ".log"))] == [] and warm.pids() == []


# -- indexes and forget ------------------------------------------------------------------------------------------------


def test_indexes_lists_and_forget_deletes(tmp_path: Path, model: Path) -> None:
    root, index, junk = write_repo(tmp_path / "repo", 3), tmp_path / "index", tmp_path / "junk"
    env = env_with(XDG_CACHE_HOME=str(tmp_path / "cache"))  # the cache's own folders: none
    assert cli("index", str(root), "--model", str(model), "--index-dir", str(index), env=env).returncode == 0

    text = cli("indexes", "--index-dir", str(index), env=env)
    assert text.returncode == 0 and text.stdout.startswith(f"{index}  (")
    assert f"  {root}: 3 files, 6 chunks; {model}; " in text.stdout and "INCOMPLETE" not in text.stdout
    listed = cli("indexes", "--json", "--index-dir", str(index), env=env)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["indexDir"] == str(index) and row["bytes"] > 0
    (described,) = row["models"]
    assert (described["model"], described["repos"], described["incomplete"]) == (
        str(model), {str(root): {"files": 3, "chunks": 6}}, []
    )  # fmt: skip

    gone = cli("forget", str(root), "--index-dir", str(index), env=env)
    assert (gone.returncode, gone.stdout) == (0, f"deleted {index}\n") and not index.exists()
    assert cli("indexes", "--index-dir", str(index), env=env).stdout.startswith(f"no index in {index}, nor in ")

    junk.mkdir()
    (junk / "notes.txt").write_text("mine\n")
    refused = cli("forget", str(root), "--index-dir", str(junk), env=env)
    assert f"{junk}: not a semcode index (no marker); left alone" in refused.stderr
    assert refused.returncode == 2 and (junk / "notes.txt").read_text() == "mine\n"
    nothing = cli("forget", str(root), "--index-dir", str(tmp_path / "never"), env=env)
    assert nothing.returncode == 2 and f"{tmp_path / 'never'}: no index there" in nothing.stderr


def test_forget_a_repository_deleted_since_it_was_indexed(tmp_path: Path, model: Path) -> None:
    root = write_repo(tmp_path / "repo", 2)
    env = env_with(XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert cli("index", str(root), "--model", str(model), env=env).returncode == 0
    (index,) = (tmp_path / "cache" / "semcode" / "indexes").iterdir()
    shutil.rmtree(root)
    gone = cli("forget", str(root), env=env)
    assert (gone.returncode, gone.stdout) == (0, f"deleted {index}\n"), gone.stderr
    assert not index.exists()
    for args in ([], [str(root), "--all"]):
        bad = cli("forget", *args, env=env)
        assert bad.returncode == 2 and "name the repositories whose index to delete, or --all" in bad.stderr


# -- index: progress, --quiet, Ctrl-C ----------------------------------------------------------------------------------


def test_progress_lines_without_a_terminal_and_none_when_quiet(tmp_path: Path, model: Path) -> None:
    root = write_repo(tmp_path / "repo", 3)
    out = cli("index", str(root), "--model", str(model), "--index-dir", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    progress = [line for line in out.stderr.splitlines() if PROGRESS.match(line)]
    assert "semcode: indexing repo: 3/3 files, 6 chunks" in progress, out.stderr  # phase 1: searchable by text
    phase2 = "semcode: indexing repo: searchable by text; embedding 6/6 chunks (100%), "
    assert progress[-1].startswith(phase2), out.stderr
    quiet = cli("index", str(root), "--model", str(model), "--index-dir", str(tmp_path / "b"), "--quiet")
    assert quiet.returncode == 0 and "3 changed" in quiet.stdout
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("semcode:")], quiet.stderr


def test_ctrl_c_keeps_what_was_written_and_status_says_incomplete(tmp_path: Path, model: Path) -> None:
    root, flags = write_repo(tmp_path / "repo", 300), ["--model", str(model), "--index-dir", str(tmp_path / "index")]
    with running("index", str(root), *flags) as proc:
        stderr = Lines(proc.stderr)
        stderr.wait_for(PROGRESS.match, "a progress line")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    said = "".join(stderr.rest())
    assert "kept" in said and f"run `semcode index {root}` to finish" in said and "Traceback" not in said

    def incomplete() -> bool:
        out = cli("status", "--json", "--repo", str(root), *flags)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["incomplete"]

    # cut in phase 1, files are missing: the index is incomplete. Cut in phase 2, every file is in it (by text):
    # only vectors are missing, which the coverage figure reports ("kept every file, searchable by text, ...")
    assert incomplete() is ("kept every file" not in said), said
    assert cli("index", str(root), *flags, "--quiet").returncode == 0
    assert incomplete() is False


# -- watch -------------------------------------------------------------------------------------------------------------


def test_watch_json_events_and_timestamped_text(tmp_path: Path, model: Path) -> None:
    root = write_repo(tmp_path / "repo", 2)
    flags = [str(root), "--model", str(model), "--index-dir", str(tmp_path / "index"), "--debounce", "0.1"]
    with running("watch", *flags, "--json") as proc:
        stdout = Lines(proc.stdout)
        stdout.wait_for(lambda line: '"watching"' in line, "the watching event")
        (root / "pkg/added.py").write_text("def added_by_test(x):\n    return x\n")
        stdout.wait_for(lambda line: '"update"' in line and json.loads(line)["changed"] >= 1, "an update")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    events = [json.loads(line) for line in stdout.rest()]
    assert all(datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S%z") for e in events)
    names = [e["event"] for e in events]
    assert names[:2] == ["indexed", "watching"] and "update" in names and names[-1] == "stopped", names

    with running("watch", *flags) as proc:
        stdout = Lines(proc.stdout)
        stdout.wait_for(lambda line: "watching" in line, "the watching line")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    lines = stdout.rest()
    assert len(lines) >= 3 and all(re.match(r"\d\d:\d\d:\d\d \S", line) for line in lines), lines


# -- help texts --------------------------------------------------------------------------------------------------------


def help_of(command: str) -> str:
    out = cli(command, "--help")
    assert out.returncode == 0, out.stderr
    return out.stdout


HELP = [  # command, what its --help says, what it no longer says (whitespace normalised: argparse wraps lines)
    ("search", ["how many hits (default 10)", "--mode {hybrid,semantic,lexical} default: hybrid"], []),
    ("chunks", ["without its '# Class.method' header line (never a path)"], ["path/symbol header"]),
]


@pytest.mark.parametrize(("command", "says", "not_says"), HELP, ids=[h[0] for h in HELP])
def test_help_shows_defaults_and_no_stale_claims(command: str, says: list[str], not_says: list[str]) -> None:
    text = " ".join(help_of(command).split())
    assert all(s in text for s in says) and not any(s in text for s in not_says), text


def test_lsp_help_lists_every_initialization_option() -> None:
    text = help_of("lsp")
    assert any("unknown option" in p for p in parse({"noSuchOption": 1})[1])  # the check below can fail
    for key, value in LSP_KEYS.items():
        assert parse({key: value})[1] == [], key
        assert re.search(rf"^\s+{key}\s", text, re.MULTILINE), f"{key} is not in `semcode lsp --help`"


# -- a closed pipe -----------------------------------------------------------------------------------------------------


# (10 hits fit stdout's buffer: written at the end, when the reader is long gone; 80 hits are written on the way)
@pytest.mark.parametrize(("lines_read", "limit"), [(0, "10"), (1, "1000")], ids=["closed-at-once", "after-one-line"])
def test_a_closed_stdout_pipe_exits_0_without_a_traceback(indexed: Indexed, lines_read: int, limit: str) -> None:
    env = {k: v for k, v in env_with().items() if k != "PYTHONUNBUFFERED"}  # stdout block-buffered, as usual
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # smaller than 80 hits: the writer meets the closed end
    args = ["search", "value", "--mode", "lexical", "--limit", limit, "--json", *indexed.flags()]
    proc = subprocess.Popen([*CLI, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        first = [reader.readline() for _ in range(lines_read)]
    _, err = proc.communicate(timeout=300)
    assert (proc.returncode, err) == (0, "")
    assert all(json.loads(line)["path"].startswith("pkg/") for line in first)


def test_forget_one_repository_of_a_shared_index_keeps_the_others(tmp_path: Path, model: Path) -> None:
    a, b, index = write_repo(tmp_path / "a", 2), write_repo(tmp_path / "b", 2), tmp_path / "shared"
    flags = ["--model", str(model), "--index-dir", str(index)]
    assert cli("index", str(a), str(b), *flags).returncode == 0
    out = cli("forget", str(a), "--index-dir", str(index))
    assert out.returncode == 0 and out.stdout.startswith(f"removed {a} from {index} ("), out.stderr
    listed = cli("indexes", "--json", "--index-dir", str(index))
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert set(row["models"][0]["repos"]) == {str(b)}
    last = cli("forget", str(b), "--index-dir", str(index))  # the last repository: the index goes
    assert (last.returncode, last.stdout) == (0, f"deleted {index}\n") and not index.exists()
