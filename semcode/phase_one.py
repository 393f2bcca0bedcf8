"""Phase 1 of a new index in a child process, beside the server that asked for it.

A server started on a repository with no index yet (``semcode mcp``, the language server) has its own imports to do
just when phase 1 should run: the MCP SDK and LanceDB cost about 1.5 s of one interpreter lock on two cores, and
phase 1 (read, chunk, write the rows) waits for that lock in the same process. Run apart, phase 1 has a core of its
own: the child reads, chunks and writes every file's rows and the full-text index (``Engine.index_folder(embed=
False)``), while the server imports the MCP SDK; then the server's own run finds every file indexed and goes
straight to phase 2 (embedding). The index is the one an in-process run writes: the same code writes it.

- Only for a new local index of a tree with at least ``APART_MIN_FILES`` files (a small tree is indexed before a
  child would have started), and only where the front door asks (``Engine(phase_one_apart=True)``).
- While the child runs, the server does not open that index (``Engine.store`` gives None for it: two processes
  creating one index's tables would race); its answers say the index is being built, with the child's progress.
- Once every row is in, the child answers the server's searches and coverage figures (``ChildAnswers``: its own
  engine over the index it built, which it has open with LanceDB imported), while the server opens the index
  itself; then the child exits. The server imports LanceDB (0.5 s of a core) only then: imported beside the child,
  it slowed the child down on two cores (koa: rows in at 1.31-1.82 s instead of 1.13-1.27 s, the MCP handshake
  answered at 1.27-1.50 s instead of 0.64-0.69 s).
- The child stops at its next file when the server is gone (its parent changes, or its stdin closes once it
  answers) or kills it (a server closing); what it committed stays, as after any kill, and the next run completes
  it. A child that fails leaves the work to the in-process run, which logs why.

The child: ``python -m semcode.phase_one`` with one JSON line on stdin (the settings and the root); on stdout
``{"opened": true}`` once it has created the index's tables and indexes, one JSON object per batch (``{"done",
"total", "chunks", "seconds"}``: files looked at of all, chunk rows written), and ``{"serving": true}`` just before
the last; from then on, each further stdin line a request (``{"id", "search": {...}, "repo", "everywhere"}`` or
``{"id", "coverage": true, ...}``) answered by a line with its id (``"hits"``, ``"coverage"`` or ``"error"``), until
stdin closes; exit status 0 when every file is indexed by text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .settings import Settings
from .workspace import Folder

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from indexer.coverage import Coverage
    from indexer.index import Progress
    from indexer.types import Hit

    from .query import SearchQuery

CHILD = "semcode.phase_one"  # the module the child runs
APART_MIN_FILES = 64  # below this many files, phase 1 ends before a child would have imported its modules
POLL_S = 0.2  # how often the parent checks for a cancellation while it waits for the child
WAIT_S = 5.0  # how long a search waits for a new index's phase 1 in a child process (``PhaseOneApart.wait``)
ASK_S = 30.0  # how long a search waits for the child's answer (``ChildAnswers.ask``) before searching itself
COVERAGE_S = 1.0  # a search's coverage figures stand for the answer that follows it (``PhaseOneApart.coverage``)
FIRST_ANSWER_S = 1.0  # how long the server waits for the child's first answer before it opens the index itself


def worth_apart(settings: Settings, folder: Folder) -> bool:
    """Whether `folder`'s next run should do its phase 1 in a child: a local index that does not exist yet, of a
    tree with at least ``APART_MIN_FILES`` files the walk takes (not on Windows, where ``select`` takes no pipes)."""
    where = settings.index_location(folder.index_dir)
    if os.name == "nt" or where.remote or where.exists():
        return False
    from indexer.discover import discover

    found = 0
    for item in discover(folder.root, settings.discover_options()):
        found += isinstance(item, str)
        if found >= APART_MIN_FILES:
            return True
    return False


@dataclass(frozen=True)
class ChildProgress:
    """One progress line of the child: files looked at of all, chunk rows written, seconds since it started."""

    done: int
    total: int
    chunks: int
    seconds: float


def run_apart(
    settings: Settings,
    folder: Folder,
    progress: Callable[[ChildProgress], None],
    cancelled: Callable[[], bool],
    serving: Callable[[ChildAnswers], None] = lambda answers: None,
) -> bool:
    """Phase 1 of `folder` in a child process. ``progress`` for each line the child reports (one per batch of rows
    it commits); ``serving(answers)`` once every row is in and the child answers searches of the new index
    (``ChildAnswers``), until ``answers.close()`` (or this run's end) lets it exit. True when the child indexed
    every file by text; False when it failed (logged) or was cancelled (killed)."""
    spec: dict[str, object] = {"root": str(folder.root), "settings": _settings_json(settings)}
    with tempfile.TemporaryFile() as errors:  # (a pipe read only at the end could fill up and stall a chatty child)
        status = _run_child(spec, errors, progress, cancelled, serving)
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace").strip()
    if status is None:
        return False
    if status != 0:
        log.warning("phase 1 of %s in a child process failed (status %s): %s", folder.root, status, said[-2000:])
        return False
    return True


def _run_child(
    spec: dict[str, object],
    errors: IO[bytes],
    progress: Callable[[ChildProgress], None],
    cancelled: Callable[[], bool],
    serving: Callable[[ChildAnswers], None],
) -> int | None:
    """The child's exit status; None when it was cancelled (and killed)."""
    child = subprocess.Popen(
        [sys.executable, "-m", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        env={**os.environ, "SEMCODE_NO_DAEMON": "1"},
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(spec).encode() + b"\n")
    child.stdin.flush()
    answers = ChildAnswers(child.stdin)
    try:
        for line in _lines(child.stdout, cancelled):
            r = json.loads(line)
            if "id" in r:
                answers.deliver(r)
            elif r.get("serving"):
                serving(answers)
            elif "done" in r:
                progress(ChildProgress(int(r["done"]), int(r["total"]), int(r["chunks"]), float(r["seconds"])))
        return child.wait()
    except BaseException as e:  # cancelled, or a failure here: the child goes too
        child.kill()
        child.wait()
        if isinstance(e, _Stop):
            return None
        raise
    finally:
        answers.close()
        child.stdout.close()


class ChildAnswers:
    """Searches of a new index asked of the phase-1 child that built it, while the server opens the index itself:
    the child has LanceDB imported and the index open, and the server's own import of LanceDB (0.5 s of a core)
    then runs after the child's work instead of beside it. One request at a time per line on the child's stdin,
    answered by id on its stdout; ``close()`` ends them (the child exits) and fails any still waiting."""

    def __init__(self, stdin: IO[bytes]) -> None:
        self._stdin = stdin
        self._lock = threading.Lock()
        self._waiting: dict[int, Future[dict[str, Any] | None]] = {}
        self._next = 0
        self._closed = False
        self.answered = threading.Event()  # set by the first answer delivered
        self.gone = threading.Event()  # set by ``close``: the engine has the index open (or the child is gone)

    def ask(self, request: dict[str, Any], timeout: float = ASK_S) -> dict[str, Any] | None:
        """The child's answer to `request`; None when it cannot answer (gone, closed, too slow)."""
        waiting: Future[dict[str, Any] | None] = Future()
        with self._lock:
            if self._closed:
                return None
            number, self._next = self._next, self._next + 1
            self._waiting[number] = waiting
            try:
                self._stdin.write(json.dumps({**request, "id": number}).encode() + b"\n")
                self._stdin.flush()
            except (OSError, ValueError):
                self._waiting.pop(number, None)
                return None
        try:
            return waiting.result(timeout)
        except TimeoutError:
            return None

    def deliver(self, answer: dict[str, Any]) -> None:
        with self._lock:
            waiting = self._waiting.pop(int(answer["id"]), None)
        if waiting is not None:
            waiting.set_result(answer)
        self.answered.set()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            left, self._waiting = list(self._waiting.values()), {}
            with contextlib.suppress(OSError):
                self._stdin.close()  # the child's request loop ends: it exits
        for waiting in left:
            waiting.set_result(None)
        self.gone.set()


class PhaseOneApart:
    """An engine's phase-1 children (``Engine(phase_one_apart=True)``): which index folders one is building (the
    engine opens none of them meanwhile), a wait for searches, the child's answers while the engine opens the new
    index, and the run itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._building: dict[str, threading.Event] = {}  # index folder -> set when its child's rows are in
        self._answers: dict[str, ChildAnswers] = {}  # index folder -> its child, answering searches of it
        # (index folder, repo, everywhere, when, figures): the coverage the child's last search answer carried
        self._covered: tuple[str, str | None, bool, float, list[int]] = ("", None, False, 0.0, [])
        # set once the first run has decided (and started its child, if any): a server starting up waits for it
        # before its own imports, which would otherwise hold the interpreter lock while the tree is counted
        self.decided = threading.Event()

    def building(self, index_dir: str) -> bool:
        with self._lock:
            return index_dir in self._building

    def wait(self, timeout: float = WAIT_S) -> None:
        """A search while a new index's phase 1 runs in a child waits for its rows, at most `timeout` seconds
        (phase 1 takes 1-3 s on a mid-sized project): its first answer then has hits instead of "being built"."""
        with self._lock:
            waits = list(self._building.values())
        deadline = time.monotonic() + timeout
        for done in waits:
            done.wait(max(0.0, deadline - time.monotonic()))

    def search(self, folders: Sequence[Folder], q: SearchQuery, repo: str | None, everywhere: bool) -> list[Hit] | None:
        """The hits of `q` as the child answers them (``Engine.search`` of the child's own engine over the index it
        built), while it answers for the engine's one folder; None otherwise (the engine searches itself). A bad
        request raises as the engine's own search would (``EmptyFilter``, ValueError)."""
        request = {
            "search": {"query": q.query, "limit": q.limit, "mode": q.mode, "paths": q.paths, "languages": q.languages,
                       "group_by_file": q.group_by_file},
            "repo": repo, "everywhere": everywhere,
        }  # fmt: skip
        answer = self._ask(folders, request)
        if answer is None:
            return None
        with self._lock:  # the coverage of what it searched, which the answer reports next (``coverage``)
            self._covered = (folders[0].index_dir, repo, everywhere, time.monotonic(), answer["coverage"])
        from indexer.types import Hit, StoredChunk

        return [Hit(StoredChunk(**chunk), float(score), tuple(why)) for chunk, score, why in answer["hits"]]

    def coverage(self, folders: Sequence[Folder], repo: str | None, everywhere: bool) -> Coverage | None:
        """``Engine.coverage`` as the child answers it (None: the engine reads it itself); the figures of a search of
        the same scope in the last ``COVERAGE_S`` seconds without asking again."""
        from indexer.coverage import Coverage

        with self._lock:
            where, *scope, when, figures = self._covered
            fresh = len(folders) == 1 and where == folders[0].index_dir and scope == [repo, everywhere]
            if fresh and time.monotonic() - when < COVERAGE_S and folders[0].index_dir in self._answers:
                return Coverage(*figures)
        answer = self._ask(folders, {"coverage": True, "repo": repo, "everywhere": everywhere})
        return None if answer is None else Coverage(*answer["coverage"])

    def handing_over(self, index_dir: str) -> ChildAnswers | None:
        """The child answering for `index_dir` while the engine opens it (None when none is)."""
        with self._lock:
            return self._answers.get(index_dir)

    def await_hand_over(self, index_dir: str) -> None:
        """Wait until the engine has `index_dir` open, when its child answers for it meanwhile (at most ``ASK_S``)."""
        if (child := self.handing_over(index_dir)) is not None:
            child.gone.wait(ASK_S)

    def _ask(self, folders: Sequence[Folder], request: dict[str, Any]) -> dict[str, Any] | None:
        if len(folders) > 1:  # a child knows its own index only: a search of several waits for the hand-over
            for folder in folders:
                self.await_hand_over(folder.index_dir)
            return None
        child = self.handing_over(folders[0].index_dir) if folders else None
        answer = child.ask(request) if child is not None else None
        if answer is not None and "error" in answer:
            kind, message = answer["error"]
            from .query import EmptyFilter

            raise EmptyFilter(message) if kind == "EmptyFilter" else ValueError(message)
        return answer

    def run(
        self,
        settings: Settings,
        folder: Folder,
        open_store: Callable[[], object],
        open_beside: Callable[[], None],
        progress: Callable[[Progress], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> None:
        """Phase 1 of `folder` in a child when it is worth it (``worth_apart``); nothing otherwise. The engine's run
        that follows finds every file indexed by text (or, after a failure, does what is left). Searches wait from
        the start, also while the tree is being counted. Once every file's rows are committed, the child answers
        them (``search``, ``coverage``) while ``open_beside()`` opens the index for the engine (LanceDB's import,
        which would otherwise have slowed the child down); then the engine answers them itself and the child exits.
        A child that says nothing of answering: the searches go on after ``open_store()``."""
        done = threading.Event()
        index_dir = folder.index_dir
        with self._lock:
            self._building[index_dir] = done

        def release(built: bool) -> None:
            with self._lock:
                self._building.pop(index_dir, None)
            try:
                if built:
                    open_store()
            finally:
                done.set()

        def serving(answers: ChildAnswers) -> None:
            with self._lock:
                self._answers[index_dir] = answers

        def hand_over(answers: ChildAnswers) -> None:
            # the searches that waited for the rows go first: LanceDB's import holds the interpreter lock for long
            # stretches, and their answers are assembled in this process
            answers.answered.wait(FIRST_ANSWER_S)
            try:
                open_beside()
            except Exception as e:  # a search opens it after the child has gone, and says what is wrong then
                log.warning("opening the index beside its phase-1 child failed: %s", e)
            finally:
                with self._lock:
                    self._answers.pop(index_dir, None)
                    self._building.pop(index_dir, None)
                answers.close()  # searches are the engine's own from now on; the child exits

        def reported(p: ChildProgress) -> None:
            folder.pending, folder.total, folder.phase = p.total - p.done, p.total, "rows"
            if progress is not None:
                from indexer.index import Progress

                progress(Progress(p.done, p.total, p.chunks, 0, p.seconds, phase_seconds=p.seconds))
            if p.total and p.done == p.total and not done.is_set():  # every file's rows are committed
                with self._lock:
                    answers = self._answers.get(index_dir)
                if answers is None:
                    release(True)
                    return
                done.set()  # the waiting searches go to the child
                threading.Thread(target=hand_over, args=(answers,), name="semcode-open", daemon=True).start()

        built = False
        try:
            if worth_apart(settings, folder):
                folder.state, folder.building, folder.last_error = "indexing", True, None
                stop = lambda: folder.cancel.is_set() or bool(cancelled and cancelled())  # noqa: E731
                self.decided.set()  # (the child starts a few milliseconds later)
                built = run_apart(settings, folder, reported, stop, serving)
        finally:
            self.decided.set()
            with self._lock:
                self._answers.pop(index_dir, None)
                if done.is_set():  # (normally the hand-over's; also when the child went before it ended)
                    self._building.pop(index_dir, None)
            if not done.is_set():
                release(built)


class _Stop(Exception):
    pass


def _lines(stream: object, cancelled: Callable[[], bool]) -> Iterator[bytes]:
    """The child's stdout lines until it closes it; ``_Stop`` once `cancelled()` says so."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    pending = b""
    while True:
        if cancelled():
            raise _Stop
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())


def _settings_json(settings: Settings) -> dict[str, object]:
    data = dataclasses.asdict(settings)
    data["storage_options"] = dict(settings.storage_options) if settings.storage_options is not None else None
    return data


def _settings_from(data: dict[str, object]) -> Settings:
    fields = {f.name for f in dataclasses.fields(Settings)}
    known = {k: v for k, v in data.items() if k in fields}
    known["extra_excludes"] = tuple(known.get("extra_excludes") or ())  # type: ignore[arg-type]
    return Settings(**known)  # type: ignore[arg-type]


def main() -> int:
    """The child: phase 1 of the root named on stdin's first line, progress on stdout; then, once every row is in,
    the parent's searches of the index, one JSON request a line on stdin, until stdin closes."""

    from .engine import Engine

    spec = json.loads(sys.stdin.readline())
    parent = os.getppid()
    engine = Engine(_settings_from(spec["settings"]), [Path(spec["root"])])
    folder = engine.folders[0]
    out = threading.Lock()  # progress (this thread) and answers (the answering thread) share stdout
    answering: list[threading.Thread] = []

    def say(line: dict[str, Any]) -> None:
        with out:
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    def report(p: Progress) -> None:
        if p.files_total and p.files_done == p.files_total and not answering:  # every row is in: answer from now on
            answering.append(threading.Thread(target=_answer, args=(engine, say), name="semcode-answer", daemon=True))
            answering[0].start()
            say({"serving": True})
        say({"done": p.files_done, "total": p.files_total, "chunks": p.chunks_written, "seconds": p.seconds})

    try:
        engine.store(folder)  # the tables and indexes, created before any row
        say({"opened": True})
        result = engine.index_folder(folder, report, cancelled=lambda: os.getppid() != parent, embed=False)
        for thread in answering:
            thread.join()  # until the parent closes stdin (it has opened the index, or it is gone)
    finally:
        engine.close()
    return 0 if not result.cancelled else 1


def _answer(engine: Any, say: Callable[[dict[str, Any]], None]) -> None:
    """The child's request loop: each line of stdin a search or coverage request, each answered by its id."""
    from .query import SearchQuery

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        answer: dict[str, Any] = {"id": request["id"]}
        try:
            repo, everywhere = request.get("repo"), bool(request.get("everywhere"))
            if "search" in request:
                hits = engine.search(SearchQuery(**request["search"]), repo=repo, everywhere=everywhere)
                answer["hits"] = [[dataclasses.asdict(h.chunk), h.score, list(h.reasons)] for h in hits]
            c = engine.coverage(repo=repo, everywhere=everywhere)  # (with every answer: an answer says it)
            answer["coverage"] = [c.embedded, c.pending, c.text_only]
        except Exception as e:  # the parent raises it as its own search would
            answer["error"] = [type(e).__name__, str(e)]
        say(answer)


if __name__ == "__main__":
    sys.exit(main())
