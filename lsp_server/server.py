"""The semcode language server: protocol glue only, one thin handler per method, delegating to ``indexer``.

Threads:

- the event loop answers requests and notifications;
- one writer thread (``Writer``) makes every write to the indexes, one at a time: full index runs, saves, open
  buffers, reverts on close and the watchers' batches (several folders may share one index). Short jobs (all but full
  runs) are urgent: they also run between the files of a full run, so an edit never waits for a whole folder;
- one query thread (``SemcodeServer.query_pool``) encodes queries and reads the indexes. A query never waits behind an
  indexing batch: the encoder has no lock (the writer and the query thread each run their own forward pass), and
  LanceDB readers do not wait for writers. A request cancelled (``$/cancelRequest``) while it waits there never runs;
- a daemon thread per vector-index build, started after a full run leaves more rows than the threshold; searches
  stay exact (flat) until the index is ready.

Open documents: ``didOpen``/``didChange`` index the buffer's text ``debounceMs`` after the last change
(``indexer.index.update_buffer``); ``didClose`` reverts to the file on disk; ``semcode/related`` on an open
document first indexes its pending text, so the query chunk is the buffer's.

Custom requests: ``semcode/search``, ``semcode/related``, ``semcode/status``; command ``semcode.reindex`` (coalesced
while a run goes; a run is cancellable through its progress token); ``workspace/symbol`` answered from hybrid search.
Notifications to the client: ``$/progress`` for each full index run, ``semcode/indexChanged`` after each batch of
watched changes. Errors: a failed request is answered with an error and logged (``window/logMessage``); a failed
notification handler or a malformed message is logged and shown (``window/showMessage``); a failed background job
is logged (a failed index run is also shown). The server goes on serving after any of them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import (
    FeatureNotificationError,
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path, to_fs_path

from indexer.chunk import chunk_header
from indexer.discover import DiscoverOptions
from indexer.index import IndexOptions, IndexReport, Progress, index_repository, repo_id, update_buffer, update_files
from indexer.search import Mode, related, search
from indexer.store import Hit, Store, StoredChunk
from indexer.watch import Watcher, watch_repository

from .options import Options, configured_model, parse

log = logging.getLogger(__name__)

MODES: tuple[Mode, ...] = ("hybrid", "semantic", "lexical")
VECTOR_INDEX_MIN_ROWS = IndexOptions().vector_index_min_rows  # built in the background, not inside the run
BUFFER_WRITES_PER_COMPACTION = 50
_SYMBOL_KINDS = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "struct": types.SymbolKind.Struct,
    "interface": types.SymbolKind.Interface,
    "enum": types.SymbolKind.Enum,
    "module": types.SymbolKind.Module,
    "section": types.SymbolKind.String,
    "text": types.SymbolKind.File,
}


class Writer:
    """The one thread that writes to the indexes. Jobs run one at a time; ``urgent`` ones in the order they came,
    and also whenever the running job calls ``drain`` (a full run does, between files), so they never wait for a
    whole run."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semcode-writer")
        self._urgent: deque[tuple[Callable[[], Any], Future[Any]]] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._pool.submit(fn, *args)

    def urgent(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:  # any thread
        future: Future[Any] = Future()
        self._urgent.append((functools.partial(fn, *args), future))
        try:
            self._pool.submit(self.drain)
        except RuntimeError:  # closed
            self.close()
        return future

    def drain(self) -> None:
        """Run the urgent jobs queued so far (on the writer thread only)."""
        while True:
            try:
                job, future = self._urgent.popleft()
            except IndexError:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except Exception as e:
                    future.set_exception(e)

    def close(self) -> None:
        """No new jobs; queued ones are cancelled; a running one finishes (a full run stops at its next file once
        its folder's ``cancel`` is set)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        while True:
            try:
                _job, future = self._urgent.popleft()
            except IndexError:
                return
            future.cancel()


class Workspace:
    """One workspace folder: its root, index and state ("indexing", "ready" or "error")."""

    def __init__(self, root: Path, index_dir: str) -> None:
        self.root = root
        self.repo = repo_id(root)
        self.index_dir = index_dir
        self.store: Store | None = None
        self.watcher: Watcher | None = None
        self.state = "indexing"
        self.files = self.chunks = self.skipped = self.pending = 0
        self.last_error: str | None = None
        self.cancel = threading.Event()  # the folder was removed or the server shuts down
        self.run: asyncio.Future[None] | None = None  # the full run in progress or queued
        self.walking = False  # that run has begun (a reindex request now needs another run after it)
        self.again = False

    def relative(self, path: Path) -> str | None:
        """`path` relative to the root (POSIX), or None when it lies outside."""
        try:
            return path.resolve().relative_to(Path(self.repo)).as_posix()
        except ValueError:
            return None

    def refresh_counts(self) -> None:
        """Re-read this folder's counts from the store (worker threads only: this reads LanceDB)."""
        if self.store is None:
            return
        records = self.store.files(self.repo).values()
        self.files = sum(r.status == "indexed" for r in records)
        self.skipped = sum(r.status == "skipped" for r in records)
        self.chunks = self.store.count_chunks(self.repo)

    def fail(self, message: str) -> None:
        self.state, self.last_error = "error", message


class _Protocol(LanguageServerProtocol):
    def structure_message(self, data: Any) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcInvalidParams:
            if isinstance(data, Mapping) and "id" in data and "method" in data:  # pygls would leave it unanswered
                error = JsonRpcInvalidParams(f"{data['method']}: invalid params")
                self._send_response(data["id"], error=error.to_response_error())
            raise


class SemcodeServer(LanguageServer):
    def __init__(self, name: str, version: str) -> None:
        super().__init__(name, version, protocol_cls=_Protocol)
        self.options = Options()
        self.problems: list[str] = []
        self.workspaces: list[Workspace] = []
        self.encoder: Any = None  # encoder.Encoder, loaded at `initialized`
        self.model_error: str | None = None
        self.stores: dict[str, Store] = {}  # index folder -> its store (writer thread only)
        self.buffer_writes: dict[str, int] = {}  # index folder -> buffer writes since its last compaction (writer)
        self.writer = Writer()
        self.query_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semcode-query")
        self.building: set[str] = set()  # index folders whose vector index is being built
        self.timers: dict[str, asyncio.TimerHandle] = {}  # document URI -> its debounced buffer indexing
        self.syncs: dict[str, asyncio.Future[IndexReport]] = {}  # document URI -> its buffer indexing in progress
        self.dirty: set[str] = set()  # URIs whose unsaved text the index may hold
        self.tasks: set[asyncio.Future[Any]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def spawn(self, work: Awaitable[Any], what: str) -> asyncio.Future[Any]:
        """Run `work` in the background; a failure is logged to the client as "semcode: {what} failed: ..."."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._task_done, what))
        return task

    def _task_done(self, what: str, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            log.error("%s failed", what, exc_info=e)
            self.log(types.MessageType.Error, f"semcode: {what} failed: {e}")

    def show(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, kind: types.MessageType, message: str) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def from_thread(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` on the event loop (notifications are sent from there only)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(fn, *args)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls calls this for every handler exception and malformed message. A request's error is in its answer;
        an unexpected one is logged too. Anything else has no answer to carry it: log it and show it."""
        if source is FeatureRequestError:
            if isinstance(error, JsonRpcInternalError) or not isinstance(error, JsonRpcException):
                self.log(types.MessageType.Error, f"semcode: a request failed: {error}")
            return
        what = "a notification failed" if source is FeatureNotificationError else "protocol error"
        self.log(types.MessageType.Error, f"semcode: {what}: {error}")
        self.show(types.MessageType.Error, f"semcode: {what}: {error}")

    def index_options(self) -> IndexOptions:
        discover = DiscoverOptions(
            max_file_bytes=int(self.options.max_file_size * 1024 * 1024),
            extra_excludes=self.options.extra_excludes(),
        )
        return IndexOptions(discover=discover, max_tokens=self.encoder.max_tokens, vector_index_min_rows=None)

    def workspace_of(self, uri: str) -> tuple[Workspace, str]:
        """(workspace, relative path) of a document URI; InvalidParams when it is outside every workspace folder."""
        fs_path = to_fs_path(uri) if uri.startswith("file:") else None
        for ws in self.workspaces:
            rel = ws.relative(Path(fs_path)) if fs_path else None
            if rel is not None:
                return ws, rel
        raise JsonRpcInvalidParams(f"{uri} is outside the workspace folders")

    def open_text(self, uri: str) -> str | None:
        """The text of an open document (None when it is not open)."""
        doc = self.protocol.workspace.text_documents.get(unquote(uri))
        return None if doc is None else doc.source

    def open_documents(self, ws: Workspace) -> list[str]:
        return [doc.uri for doc in self.protocol.workspace.text_documents.values() if _inside(ws, doc.uri)]

    def summary(self) -> dict[str, Any]:
        states = {ws.state for ws in self.workspaces} or {"error"}
        state = next(s for s in ("error", "indexing", "ready") if s in states)
        return {
            "state": state,
            "files": sum(ws.files for ws in self.workspaces),
            "chunks": sum(ws.chunks for ws in self.workspaces),
            "pending": sum(ws.pending for ws in self.workspaces),
        }


server = SemcodeServer("semcode", "0.1.0")


# -- helpers (protocol conversion, worker-thread bodies) ----------------------------------------------------------


def _field(params: Any, key: str, default: Any = None) -> Any:
    """A field of custom params, which pygls passes as attribute objects (or dicts from other callers)."""
    if isinstance(params, Mapping):
        return params.get(key, default)
    return getattr(params, key, default)


def _str_list(params: Any, key: str, method: str) -> list[str] | None:
    value = _field(params, key)
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise JsonRpcInvalidParams(f"{method}: {key!r} must be a list of strings")
    return list(value)


def _limit(params: Any, method: str, default: int = 20) -> int:
    limit = _field(params, "limit", default)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise JsonRpcInvalidParams(f"{method}: 'limit' must be an integer from 1 to 1000, got {limit!r}")
    return limit


@dataclass(frozen=True)
class SearchRequest:
    query: str
    limit: int = 20
    mode: Mode = "hybrid"
    paths: list[str] | None = None
    languages: list[str] | None = None

    @classmethod
    def parse(cls, params: Any, method: str = "semcode/search") -> SearchRequest:
        query = _field(params, "query")
        if not isinstance(query, str):
            raise JsonRpcInvalidParams(f"{method}: 'query' (a string) is required")
        mode = _field(params, "mode", "hybrid")
        if mode not in MODES:
            raise JsonRpcInvalidParams(f"{method}: 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
        languages = _str_list(params, "languages", method)
        return cls(query, _limit(params, method), mode, _str_list(params, "paths", method), languages)


def _range(c: StoredChunk) -> dict[str, Any]:
    return {
        "start": {"line": c.start_line, "character": c.start_col},
        "end": {"line": c.end_line, "character": c.end_col},
    }


def _uri(c: StoredChunk) -> str:
    return from_fs_path(str(Path(c.repo) / c.path)) or ""


def _preview(c: StoredChunk, lines: int = 3) -> str:
    text = c.text.splitlines()
    header = chunk_header(c.qualified_name)
    if header and text and text[0] == header:
        text = text[1:]
    return "\n".join(text[:lines])


def _hit(h: Hit) -> dict[str, Any]:
    c = h.chunk
    return {
        "uri": _uri(c),
        "range": _range(c),
        "score": h.score,
        "symbol": c.qualified_name,
        "kind": c.kind,
        "language": c.language,
        "preview": _preview(c),
        "reasons": list(h.reasons),
    }


def _search_all(ls: SemcodeServer, req: SearchRequest, stop: Callable[[], bool]) -> list[Hit]:
    """Query thread: every workspace x every path glob, merged by score (best per chunk); `stop()` is checked
    before each search."""
    best: dict[tuple[str, str, int, int], Hit] = {}
    encoder = ls.encoder if req.mode != "lexical" else None
    globs: list[str | None] = [*req.paths] if req.paths else [None]
    for ws in list(ls.workspaces):
        if ws.store is None:
            continue
        for glob in globs:
            if stop():
                return []
            hits = search(
                ws.store, encoder, req.query, req.mode, req.limit, repo=ws.repo, languages=req.languages, path_glob=glob
            )
            for h in hits:
                key = (h.chunk.repo, h.chunk.path, h.chunk.start_line, h.chunk.end_line)
                if key not in best or best[key].score < h.score:
                    best[key] = h
    return sorted(best.values(), key=lambda h: -h.score)[: req.limit]


async def _query(ls: SemcodeServer, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn` on the query thread. A cancelled request stops waiting here; if `fn` has not started, it never runs."""
    return await asyncio.get_running_loop().run_in_executor(ls.query_pool, functools.partial(fn, *args, **kwargs))


async def _search(ls: SemcodeServer, req: SearchRequest) -> list[Hit]:
    """`_search_all` on the query thread; a cancelled request stops it before its next folder x path search."""
    stop = threading.Event()
    try:
        hits: list[Hit] = await _query(ls, _search_all, ls, req, stop.is_set)
    finally:
        stop.set()
    return hits


def _inside(ws: Workspace, uri: str) -> bool:
    fs_path = to_fs_path(uri) if uri.startswith("file:") else None
    return fs_path is not None and ws.relative(Path(fs_path)) is not None


def _load_encoder(options: Options) -> Any:
    from encoder import load_encoder

    return load_encoder(configured_model(options.model), device=options.device, threads=options.threads)


def _default_index_dir(options: Options, root: Path) -> str:
    from .cli import _index_dir

    return _index_dir(argparse.Namespace(index_dir=options.index_dir), root)


# -- writer-thread bodies -----------------------------------------------------------------------------------------


def _run_index(
    ls: SemcodeServer, ws: Workspace, progress: Callable[[Progress], None], stop: Callable[[], bool]
) -> IndexReport:
    """Open the store (first time; folders that name the same index share it) and bring the folder's index up to
    date. Urgent jobs (buffers, saves, other folders' watchers) run between its files."""
    enc = ls.encoder
    if ws.store is None:
        if ws.index_dir not in ls.stores:
            ls.stores[ws.index_dir] = Store.open(ws.index_dir, model_id=enc.name, dim=enc.dim)
        ws.store = ls.stores[ws.index_dir]

    def between_files() -> bool:
        ls.writer.drain()
        return stop()

    ws.walking = True
    try:
        report = index_repository(
            ws.root, ws.store, enc, enc.tokenizer.count, ls.index_options(), progress, cancelled=between_files
        )
    finally:
        ws.walking = False
    ws.refresh_counts()
    return report


def _update(ls: SemcodeServer, ws: Workspace, paths: list[str]) -> IndexReport:
    assert ws.store is not None
    report = update_files(ws.root, ws.store, ls.encoder, ls.encoder.tokenizer.count, paths, ls.index_options())
    ws.refresh_counts()
    return report


def _update_buffer(ls: SemcodeServer, ws: Workspace, rel: str, text: str) -> IndexReport:
    """Index an open document's text; compact its store every `BUFFER_WRITES_PER_COMPACTION` buffer writes (each
    writes a few table versions, and typing goes on for hours)."""
    assert ws.store is not None
    enc = ls.encoder
    report = update_buffer(ws.root, ws.store, enc, enc.tokenizer.count, rel, text, ls.index_options())
    if report.files_changed:
        writes = ls.buffer_writes[ws.index_dir] = ls.buffer_writes.get(ws.index_dir, 0) + 1
        if writes >= BUFFER_WRITES_PER_COMPACTION:
            ws.store.compact()
            ls.buffer_writes[ws.index_dir] = 0
        ws.refresh_counts()
    return report


# -- full runs, watchers, vector indexes --------------------------------------------------------------------------


class _ProgressReporter:
    """$/progress for one run, callable from any thread; silent when the client cannot show progress. The client
    may cancel the run through the token (``window/workDoneProgress/cancel``): `cancelled` is then set."""

    def __init__(self, ls: SemcodeServer, token: str | None) -> None:
        self.ls, self.token = ls, token
        self.loop = asyncio.get_running_loop()
        self.cancelled = threading.Event()

    @classmethod
    async def begin(cls, ls: SemcodeServer, title: str) -> _ProgressReporter:
        window = ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return cls(ls, None)
        token = f"semcode-index-{uuid.uuid4().hex[:8]}"
        await ls.work_done_progress.create_async(token)
        reporter = cls(ls, token)
        value = types.WorkDoneProgressBegin(title=title, percentage=0, cancellable=True)
        ls.work_done_progress.begin(token, value)
        ls.work_done_progress.tokens[token].add_done_callback(lambda _: reporter.cancelled.set())
        return reporter

    def report(self, p: Progress) -> None:  # any thread
        if self.token is None:
            return
        pct = int(100 * p.files_done / p.files_total) if p.files_total else 100
        msg = f"{p.files_done}/{p.files_total} files, {p.chunks_written} chunks"
        value = types.WorkDoneProgressReport(message=msg, percentage=pct)
        self.loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token, value)

    def end(self, message: str) -> None:  # event loop thread
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)


def _schedule_index(ls: SemcodeServer, ws: Workspace) -> bool:
    """Start a full run of the folder; False when one is already queued or running (it is reused, and if it has
    begun walking, one more run follows it)."""
    ws.state = "indexing"  # at once, so a status request right after says so
    if ws.run is not None and not ws.run.done():
        ws.again = ws.again or ws.walking
        return False
    ws.run = ls.spawn(_index(ls, ws), f"indexing {ws.root}")
    return True


async def _index(ls: SemcodeServer, ws: Workspace) -> None:
    while True:
        ws.again = False
        await _index_once(ls, ws)
        if not ws.again or ws.cancel.is_set():
            return


async def _index_once(ls: SemcodeServer, ws: Workspace) -> None:
    """Index one folder on the writer thread with progress, then watch it and re-apply its open buffers."""
    if ws.watcher is not None:  # the run re-reads everything; the watcher restarts after it
        watcher, ws.watcher = ws.watcher, None
        await asyncio.to_thread(watcher.stop)
    ws.state, ws.last_error = "indexing", None
    progress = await _ProgressReporter.begin(ls, f"semcode: indexing {ws.root.name}")

    def on_progress(p: Progress) -> None:
        ws.pending = p.files_total - p.files_done
        progress.report(p)

    def stop() -> bool:
        return ws.cancel.is_set() or progress.cancelled.is_set()

    if ws.cancel.is_set():  # removed, or shutting down, while the watcher stopped or the client made the token
        progress.end("stopped")
        return
    try:
        report = await asyncio.wrap_future(ls.writer.submit(_run_index, ls, ws, on_progress, stop))
    except Exception as e:
        log.exception("indexing %s failed", ws.root)
        ws.fail(f"indexing failed: {e}")
        progress.end(f"failed: {e}")
        ls.show(types.MessageType.Error, f"semcode: indexing {ws.root} failed: {e}")
        return
    ws.pending = 0
    if ws.cancel.is_set():  # the folder was removed, or the server shuts down
        progress.end("stopped")
        return
    ws.state = "ready"
    summary = f"{ws.files} files, {ws.chunks} chunks, {len(report.skipped)} skipped ({report.seconds:.1f} s)"
    progress.end(f"cancelled: {summary}; semcode.reindex completes it" if report.cancelled else summary)
    _watch(ls, ws)
    for uri in ls.open_documents(ws):  # the run indexed the files on disk: the open buffers win again
        _sync_soon(ls, uri, 0)
    if not report.cancelled:
        _build_vector_index(ls, ws)


def _build_vector_index(ls: SemcodeServer, ws: Workspace) -> None:
    """Build the vector index in a daemon thread once the folder's index holds more rows than the threshold.

    Writes go on meanwhile; a compaction that commits first makes LanceDB refuse the build ("retryable commit
    conflict"), so it is retried twice; it is tried again after the next full run."""
    store, key = ws.store, ws.index_dir
    if store is None or VECTOR_INDEX_MIN_ROWS is None or key in ls.building:
        return
    ls.building.add(key)

    def build() -> None:
        try:
            for attempt in range(3):
                try:
                    if store.ensure_vector_index(VECTOR_INDEX_MIN_ROWS):
                        ls.from_thread(ls.log, types.MessageType.Info, f"semcode: vector index of {key} ready")
                    return
                except Exception as e:
                    if attempt == 2 or "retryable" not in str(e).lower():
                        message = f"semcode: building the vector index of {key} failed ({e}); searches stay flat"
                        ls.from_thread(ls.log, types.MessageType.Warning, message)
                        return
        finally:
            ls.from_thread(ls.building.discard, key)

    threading.Thread(target=build, name="semcode-vector-index", daemon=True).start()


def _on_watch_report(ls: SemcodeServer, ws: Workspace) -> Callable[[IndexReport], None]:
    """After each watcher batch (writer thread): refresh the counts, tell the client (``semcode/indexChanged``), and
    re-apply open buffers whose file the batch may have indexed from disk."""

    def on_report(r: IndexReport) -> None:
        ws.refresh_counts()
        params = {"uri": from_fs_path(str(ws.root)), "changed": r.files_changed, "deleted": r.files_deleted}
        params |= {"skipped": [s.path for s in r.skipped], "index": ls.summary()}
        ls.from_thread(ls.protocol.notify, "semcode/indexChanged", params)
        ls.from_thread(_resync_dirty, ls, ws)

    return on_report


def _watch(ls: SemcodeServer, ws: Workspace) -> None:
    if ws.store is None or ws.cancel.is_set():
        return

    def on_writer(handle: Callable[[list[str]], None], batch: list[str]) -> None:
        # indexer.watch calls this on the watcher's thread; the batch runs on the writer (one writer per store)
        try:
            ls.writer.urgent(handle, batch).result()
        except CancelledError:
            pass  # the server shuts down
        except Exception as e:
            ls.from_thread(ls.log, types.MessageType.Error, f"semcode: indexing changes in {ws.root} failed: {e}")
            raise

    watcher = watch_repository(
        ws.root,
        ws.store,
        ls.encoder,
        ls.encoder.tokenizer.count,
        ls.index_options(),
        debounce_s=ls.options.debounce_ms / 1000,
        on_report=_on_watch_report(ls, ws),
        run=on_writer,
    )
    try:
        watcher.start()
    except OSError as e:  # e.g. the inotify watch limit: the index stays, saves still update it
        ws.last_error = f"cannot watch {ws.root}: {e}"
        ls.show(types.MessageType.Warning, f"semcode: {ws.last_error}")
        return
    ws.watcher = watcher


async def _start(ls: SemcodeServer) -> None:
    try:
        ls.encoder = await asyncio.to_thread(_load_encoder, ls.options)
    except Exception as e:
        ls.model_error = f"cannot load the model {ls.options.model or '(the default)'}: {e}"
    if ls.model_error is not None:
        for ws in ls.workspaces:
            ws.fail(ls.model_error)
        ls.show(types.MessageType.Error, f"semcode: {ls.model_error}")
        return
    for ws in ls.workspaces:  # folders added meanwhile included
        _schedule_index(ls, ws)


def _add_folder(ls: SemcodeServer, uri: str) -> Workspace | None:
    root = Path(to_fs_path(uri) or uri).resolve()
    if any(ws.root == root for ws in ls.workspaces):
        return None
    ws = Workspace(root, _default_index_dir(ls.options, root))
    ls.workspaces.append(ws)
    return ws


def _remove_folder(ls: SemcodeServer, ws: Workspace) -> None:
    """Stop indexing and watching the folder; its index stays on disk for the next time."""
    ws.cancel.set()  # a full run stops at its next file
    ls.workspaces.remove(ws)
    for uri in ls.open_documents(ws):
        if (timer := ls.timers.pop(uri, None)) is not None:
            timer.cancel()
    if ws.watcher is not None:
        watcher, ws.watcher = ws.watcher, None
        ls.spawn(asyncio.to_thread(watcher.stop), f"unwatching {ws.root}")


# -- open documents -----------------------------------------------------------------------------------------------


def _sync_soon(ls: SemcodeServer, uri: str, delay_s: float | None = None) -> None:
    """Index the document's text `delay_s` (default: debounceMs) after the last call for it."""
    if (timer := ls.timers.pop(uri, None)) is not None:
        timer.cancel()
    delay = ls.options.debounce_ms / 1000 if delay_s is None else delay_s
    loop = asyncio.get_running_loop()
    ls.timers[uri] = loop.call_later(delay, lambda: ls.spawn(_sync(ls, uri), f"indexing the buffer of {uri}"))


async def _sync(ls: SemcodeServer, uri: str) -> None:
    """Index the open document's current text now (an urgent writer job). Cancelling the caller does not cancel the
    job; its failure is logged."""
    if (timer := ls.timers.pop(uri, None)) is not None:
        timer.cancel()
    text = ls.open_text(uri)
    if text is None or ls.encoder is None:
        return
    try:
        ws, rel = ls.workspace_of(uri)
    except JsonRpcInvalidParams:
        return  # a file outside the workspace folders: not ours to index
    if ws.store is None:
        return  # the folder's first run has not opened its index: the buffer is indexed after that run
    job = asyncio.wrap_future(ls.writer.urgent(_update_buffer, ls, ws, rel, text))
    ls.syncs[uri] = job
    job.add_done_callback(functools.partial(_synced, ls, uri))
    await asyncio.wait({job})


def _synced(ls: SemcodeServer, uri: str, job: asyncio.Future[IndexReport]) -> None:
    if ls.syncs.get(uri) is job:
        del ls.syncs[uri]
    if job.cancelled():
        return
    if (e := job.exception()) is not None:
        log.error("indexing the buffer of %s failed", uri, exc_info=e)
        ls.log(types.MessageType.Error, f"semcode: indexing the buffer of {uri} failed: {e}")
    elif job.result().files_changed and ls.open_text(uri) is not None:
        ls.dirty.add(uri)


async def _flush(ls: SemcodeServer, uri: str) -> None:
    """Wait until the index holds the open document's latest text (a debounced change is indexed now)."""
    if uri in ls.timers:
        await _sync(ls, uri)
    elif (job := ls.syncs.get(uri)) is not None:
        await asyncio.wait({job})


def _resync_dirty(ls: SemcodeServer, ws: Workspace) -> None:
    for uri in ls.open_documents(ws):
        if uri in ls.dirty:
            _sync_soon(ls, uri, 0)


# -- handlers -----------------------------------------------------------------------------------------------------


@server.feature(types.INITIALIZE)
def initialize(ls: SemcodeServer, params: types.InitializeParams) -> None:
    ls.loop = asyncio.get_running_loop()
    ls.options, ls.problems = parse(params.initialization_options)
    uris = [f.uri for f in params.workspace_folders or []] or ([params.root_uri] if params.root_uri else [])
    for uri in uris:
        _add_folder(ls, uri)


@server.feature(types.INITIALIZED)
async def initialized(ls: SemcodeServer, params: types.InitializedParams) -> None:
    for problem in ls.problems:
        ls.show(types.MessageType.Warning, problem)
    if not ls.workspaces:
        ls.show(types.MessageType.Warning, "semcode: no workspace folder: nothing to index")
    ls.spawn(_start(ls), "starting")


@server.feature(types.SHUTDOWN)
async def shutdown(ls: SemcodeServer, params: None) -> None:
    for ws in ls.workspaces:
        ws.cancel.set()  # an index run stops at its next file
    for timer in ls.timers.values():
        timer.cancel()
    ls.timers.clear()
    ls.writer.close()
    ls.query_pool.shutdown(wait=False, cancel_futures=True)
    watchers = [ws.watcher for ws in ls.workspaces if ws.watcher is not None]
    await asyncio.gather(*(asyncio.to_thread(w.stop) for w in watchers))


@server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
def did_change_workspace_folders(ls: SemcodeServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    for folder in params.event.removed:
        root = Path(to_fs_path(folder.uri) or folder.uri).resolve()
        for gone in [ws for ws in ls.workspaces if ws.root == root]:
            _remove_folder(ls, gone)
    for folder in params.event.added:
        added = _add_folder(ls, folder.uri)
        if added is None:
            continue
        if ls.model_error is not None:
            added.fail(ls.model_error)
        elif ls.encoder is not None:  # otherwise the model is loading, and `_start` indexes every folder after
            _schedule_index(ls, added)


@server.feature("semcode/search")
async def semcode_search(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    req = SearchRequest.parse(params)
    if req.mode != "lexical" and ls.encoder is None and any(ws.store for ws in ls.workspaces):
        raise JsonRpcException(f"semcode/search: no model loaded; {req.mode} search needs one")
    try:
        hits = await _search(ls, req)
    except ValueError as e:  # e.g. a glob the store cannot translate
        raise JsonRpcInvalidParams(f"semcode/search: {e}") from e
    return {"results": [_hit(h) for h in hits], "index": ls.summary()}


@server.feature("semcode/related")
async def semcode_related(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    uri = _field(_field(params, "textDocument"), "uri")
    line = _field(_field(params, "position"), "line")
    if not isinstance(uri, str) or isinstance(line, bool) or not isinstance(line, int) or line < 0:
        raise JsonRpcInvalidParams("semcode/related: 'textDocument.uri' and 'position.line' (>= 0) are required")
    ws, rel = ls.workspace_of(uri)
    limit = _limit(params, "semcode/related")
    languages = _str_list(params, "languages", "semcode/related")
    if ws.store is None:
        return {"results": [], "chunk": None, "index": ls.summary()}
    await _flush(ls, uri)  # an open document's latest text is indexed first: the query chunk is the buffer's
    chunk, hits = await _query(ls, related, ws.store, ws.repo, rel, line, limit, languages=languages)
    origin = None if chunk is None else {"uri": _uri(chunk), "range": _range(chunk), "symbol": chunk.qualified_name}
    return {"results": [_hit(h) for h in hits], "chunk": origin, "index": ls.summary()}


@server.feature("semcode/status")
def semcode_status(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    device = str(ls.encoder.device) if ls.encoder is not None else ls.options.device
    model = ls.encoder.name if ls.encoder is not None else ls.options.model
    folders = []
    for ws in ls.workspaces:
        row = {"root": str(ws.root), "state": ws.state, "files": ws.files, "chunks": ws.chunks}
        row |= {"pending": ws.pending, "skipped": ws.skipped, "indexDir": ws.index_dir}
        row |= {"vectorIndex": "building"} if ws.index_dir in ls.building else {}
        folders.append(row | ({"lastError": ws.last_error} if ws.last_error else {}))
    out = {**ls.summary(), "skipped": sum(ws.skipped for ws in ls.workspaces), "model": model}
    out |= {"device": device, "indexDir": ls.workspaces[0].index_dir if ls.workspaces else None}
    errors = [
        f"{ws.root}: {ws.last_error}" if len(folders) > 1 else ws.last_error for ws in ls.workspaces if ws.last_error
    ]
    if errors or not ls.workspaces:
        out["lastError"] = "; ".join(errors) if errors else "no workspace folder"
    return out | {"workspaces": folders}


@server.feature(types.WORKSPACE_SYMBOL)
async def workspace_symbol(
    ls: SemcodeServer, params: types.WorkspaceSymbolParams
) -> list[types.SymbolInformation] | None:
    if not params.query.strip():
        return []
    req = SearchRequest(params.query, limit=50, mode="hybrid" if ls.encoder is not None else "lexical")
    hits = await _search(ls, req)
    out = []
    for h in hits:
        c = h.chunk
        rng = types.Range(types.Position(c.start_line, c.start_col), types.Position(c.end_line, c.end_col))
        out.append(
            types.SymbolInformation(
                name=c.symbol or _preview(c, 1) or c.path,
                kind=_SYMBOL_KINDS.get(c.kind, types.SymbolKind.Object),
                location=types.Location(uri=_uri(c), range=rng),
                container_name=c.parent or c.path,
            )
        )
    return out


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_open_or_change(
    ls: SemcodeServer, params: types.DidOpenTextDocumentParams | types.DidChangeTextDocumentParams
) -> None:
    _sync_soon(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SemcodeServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if (timer := ls.timers.pop(uri, None)) is not None:
        timer.cancel()
    if uri not in ls.dirty and uri not in ls.syncs:
        return  # the index holds the file on disk already
    ls.dirty.discard(uri)
    try:
        ws, rel = ls.workspace_of(uri)
    except JsonRpcInvalidParams:
        return
    if ws.store is not None:  # after any buffer job still queued: urgent jobs run in order
        ls.spawn(asyncio.wrap_future(ls.writer.urgent(_update, ls, ws, [rel])), f"reverting {uri} to the file")


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: SemcodeServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.dirty.discard(params.text_document.uri)  # the file now holds the buffer's text
    try:
        ws, rel = ls.workspace_of(params.text_document.uri)
    except JsonRpcInvalidParams:
        return  # a file outside the workspace: not ours to index
    if ws.watcher is not None or ws.store is None or ls.encoder is None:
        return  # the watcher sees the write itself; before the first run: that run does it
    await asyncio.wrap_future(ls.writer.urgent(_update, ls, ws, [rel]))


@server.command("semcode.reindex")
async def reindex(ls: SemcodeServer, *args: Any) -> dict[str, Any]:
    if ls.encoder is None:
        raise JsonRpcException(f"semcode.reindex: no model loaded ({ls.summary()['state']})")
    started = sum(_schedule_index(ls, ws) for ws in ls.workspaces)
    return {"started": started, "coalesced": len(ls.workspaces) - started}


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="semcode-lsp: %(message)s")
    server.start_io()
