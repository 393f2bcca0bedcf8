"""The semcode language server: protocol glue only, one thin handler per method, delegating to the core
(``semcode.Engine``), which owns the workspace folders' indexes, the model and the single writer.

Threads: the event loop answers requests and notifications; the engine's writer thread makes every write (full
runs, saves, buffers, reverts, watcher batches; short jobs also run between the files of a full run); one query thread
(``query_pool``) encodes queries and reads the indexes, never waiting behind a write (a request cancelled while it
waits there never runs); a daemon thread per vector-index build (searches stay exact until it is ready).

Open documents: ``didOpen``/``didChange`` index the buffer's text ``debounceMs`` after the last change
(``indexer.index.update_buffer``); ``didClose`` reverts to the file on disk; ``semcode/related`` on an open
document first indexes its pending text, so the query chunk is the buffer's.

Custom requests: ``semcode/search``, ``semcode/related``, ``semcode/status``; command ``semcode.reindex`` (coalesced
while a run goes; a run is cancellable through its progress token); ``workspace/symbol`` answered from hybrid search.
Notifications to the client: ``$/progress`` for each full index run, ``semcode/indexChanged`` after each batch of
watched changes. Errors: a failed request is answered with an error and logged (``window/logMessage``); a failed
notification handler is logged and shown (``window/showMessage``); a failed background job is logged (a failed
index run is also shown); bad framing and bodies that are no JSON-RPC message are skipped, answered when their id is
known, and logged (``lsp_server.protocol``). The server goes on serving after any of them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
)
from pygls.uris import from_fs_path, to_fs_path

from indexer.coverage import Coverage
from semcode.engine import Engine
from semcode.query import SearchQuery
from semcode.search_gate import Busy
from semcode.workspace import Folder

from .convert import field, hit_json, limit_of, line_of, origin_json, search_query, str_list, symbol_information
from .options import Options, parse
from .protocol import AnsweringProtocol, ExpectedErrorsOneLine, MessagingServer, ProgressReporter

REQUEST_FAILED = -32803  # LSP's RequestFailed: a well-formed request the server could not answer now

if TYPE_CHECKING:  # LanceDB and torch load in the background after `initialize` has been answered
    from indexer.index import IndexReport
    from indexer.store import Hit

log = logging.getLogger(__name__)


class Workspace(Folder):
    """A workspace folder (``semcode.workspace.Folder``) plus the state of its full runs."""

    def __init__(self, root: Path, index_dir: str) -> None:
        super().__init__(root, index_dir)
        self.state = "indexing"
        self.run: asyncio.Future[None] | None = None  # the full run in progress or queued
        self.walking = False  # that run has begun (a reindex request now needs another run after it)
        self.again = False


class SemcodeServer(MessagingServer):
    def __init__(self, name: str, version: str) -> None:
        super().__init__(name, version, protocol_cls=AnsweringProtocol)
        self.options = Options()
        self.problems: list[str] = []
        self.engine = Engine(open_on_read=False)  # made anew from the options at `initialize`
        self.model_error: str | None = None
        self.indexing = False  # `_start` has scheduled the first runs (new folders are indexed at once from then)
        self.query_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semcode-query")
        self.timers: dict[str, asyncio.TimerHandle] = {}  # document URI -> its debounced buffer indexing
        self.syncs: dict[str, asyncio.Future[IndexReport]] = {}  # document URI -> its buffer indexing in progress
        self.dirty: set[str] = set()  # URIs whose unsaved text the index may hold
        self.opened: asyncio.Future[None] | None = None  # opening the folders' existing indexes (at `initialized`)

    @property
    def workspaces(self) -> list[Workspace]:
        return cast(list[Workspace], self.engine.folders)

    @property
    def encoder(self) -> Any:  # encoder.Encoder once `_start` loaded it
        return self.engine.encoder

    def workspace_of(self, uri: str) -> tuple[Workspace, str]:
        """(workspace, relative path) of a document URI; InvalidParams when it is outside every workspace folder."""
        fs_path = to_fs_path(uri) if uri.startswith("file:") else None
        found = self.engine.folder_of(Path(fs_path)) if fs_path and os.path.isabs(fs_path) else None
        if found is None:
            raise JsonRpcInvalidParams(f"{uri} is outside the workspace folders")
        return cast(Workspace, found[0]), found[1]

    def open_text(self, uri: str) -> str | None:
        """The text of an open document (None when it is not open)."""
        doc = self.protocol.workspace.text_documents.get(unquote(uri))
        return None if doc is None else doc.source

    def open_documents(self, ws: Workspace) -> list[str]:
        uris = [d.uri for d in self.protocol.workspace.text_documents.values() if d.uri.startswith("file:")]
        return [uri for uri in uris if ws.relative(Path(to_fs_path(uri) or "")) is not None]

    def summary(self) -> dict[str, Any]:
        states = {ws.state for ws in self.workspaces} or {"error"}
        state = next(s for s in ("error", "indexing", "ready") if s in states)
        # while the model loads, searches answer from what is indexed (queries encoded by the NumPy encoder)
        model_state = "ready" if self.encoder is not None else "error" if self.model_error else "loading"
        return {
            "state": state,
            "files": sum(ws.files for ws in self.workspaces),
            "chunks": sum(ws.chunks for ws in self.workspaces),
            "pending": sum(ws.pending for ws in self.workspaces),
            "modelState": model_state,
            # share of the chunks that have vectors: below 1 while a full run embeds them (all searchable by text)
            "embedded": int(sum((ws.coverage for ws in self.workspaces), Coverage()).share * 1000) / 1000,
            # why answers may miss files: a first run still walking, or one cut short (Folder.partial)
            "partial": [note for ws in self.workspaces if (note := ws.partial()) is not None],
        }


server = SemcodeServer("semcode", "0.1.0")


# -- the query thread ---------------------------------------------------------------------------------------------


async def _query(ls: SemcodeServer, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn` on the query thread. A cancelled request stops waiting here; if `fn` has not started, it never runs."""
    return await asyncio.get_running_loop().run_in_executor(ls.query_pool, functools.partial(fn, *args, **kwargs))


async def _search(ls: SemcodeServer, q: SearchQuery) -> list[Hit]:
    """``Engine.search`` on the query thread; a cancelled request stops it before its next folder x path search."""
    stop = threading.Event()
    try:
        hits: list[Hit] = await _query(ls, ls.engine.search, q, stop=stop.is_set)
    finally:
        stop.set()
    return hits


# -- full runs, watchers, vector indexes --------------------------------------------------------------------------


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
    progress = await ProgressReporter.begin(ls, f"semcode: indexing {ws.root.name}")
    if ws.cancel.is_set():  # removed, or shutting down, while the watcher stopped or the client made the token
        progress.end("stopped")
        return
    run = functools.partial(ls.engine.index_folder, ws, progress.report, progress.cancelled.is_set, vector_index=False)
    ws.walking = True
    try:
        report = await asyncio.wrap_future(ls.engine.writer.submit(run))
    except Exception as e:
        log.exception("indexing %s failed", ws.root)
        ws.fail(f"indexing failed: {e}")
        progress.end(f"failed: {e}")
        ls.show(types.MessageType.Error, f"semcode: indexing {ws.root} failed: {e}")
        return
    finally:
        ws.walking = False
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
        ls.engine.build_vector_index(ws, functools.partial(_vector_index_done, ls))


def _vector_index_done(ls: SemcodeServer, message: str, ok: bool) -> None:  # any thread
    ls.from_thread(ls.log, types.MessageType.Info if ok else types.MessageType.Warning, f"semcode: {message}")


def _on_watch_report(ls: SemcodeServer, ws: Workspace) -> Callable[[IndexReport], None]:
    """After each watcher batch (writer thread): refresh the counts, tell the client (``semcode/indexChanged``), and
    re-apply open buffers whose file the batch may have indexed from disk."""

    def on_report(r: IndexReport) -> None:
        params = {"uri": from_fs_path(str(ws.root)), "changed": r.files_changed, "deleted": r.files_deleted}
        params |= {"skipped": [s.path for s in r.skipped], "index": ls.summary()}
        ls.from_thread(ls.protocol.notify, "semcode/indexChanged", params)
        ls.from_thread(_resync_dirty, ls, ws)

    return on_report


def _watch(ls: SemcodeServer, ws: Workspace) -> None:
    if ws.store is None or ws.cancel.is_set():
        return

    def on_error(e: Exception) -> None:  # the watcher's thread
        ls.from_thread(ls.log, types.MessageType.Error, f"semcode: indexing changes in {ws.root} failed: {e}")

    try:
        ls.engine.watch(ws, _on_watch_report(ls, ws), on_error)
    except OSError as e:  # e.g. the inotify watch limit: the index stays, saves still update it
        ws.last_error = f"cannot watch {ws.root}: {e}"
        ls.show(types.MessageType.Warning, f"semcode: {ws.last_error}")


async def _start(ls: SemcodeServer) -> None:
    """Open the folders' existing indexes (lexical answers at once), then index every folder while the model loads:
    a full run's phase 1 needs only the tokenizer, so every file is searchable by text before the weights are in;
    its phase 2 waits for them."""
    await _existing_opened(ls)
    try:
        await asyncio.to_thread(ls.engine.tokenizer)  # a broken checkpoint fails here, before anything is written
    except Exception as e:
        ls.model_error = f"cannot load the model {ls.options.model or '(the default)'}: {e}"
    if ls.model_error is None:
        ls.indexing = True
        for ws in ls.workspaces:  # folders added meanwhile included
            _schedule_index(ls, ws)
        try:
            await asyncio.to_thread(ls.engine.load_encoder)
        except Exception as e:
            ls.model_error = f"cannot load the model {ls.options.model or '(the default)'}: {e}"
    if ls.model_error is not None:
        for ws in ls.workspaces:
            ws.fail(ls.model_error)
        ls.show(types.MessageType.Error, f"semcode: {ls.model_error}")


def _open_existing(ls: SemcodeServer) -> None:
    for ws in list(ls.workspaces):
        try:
            ls.engine.store(ws, create=False)
            ws.refresh_counts()  # the status shows what the existing index holds while the model loads
        except Exception as e:  # an unreadable model config or index: the first run reports it
            log.info("not opening the index of %s before the run: %s", ws.root, e)


async def _existing_opened(ls: SemcodeServer) -> None:
    """Wait until `initialized` has opened the folders' existing indexes: a query sent right after it answers from
    them (with NumPy-encoded queries while the model loads) instead of from no index at all."""
    if ls.opened is not None:
        await asyncio.wait({ls.opened})


def _add_folder(ls: SemcodeServer, uri: str) -> Workspace | None:
    return ls.engine.add_folder(Path(to_fs_path(uri) or uri), Workspace)


def _remove_folder(ls: SemcodeServer, ws: Workspace) -> None:
    """Stop indexing and watching the folder; its index stays on disk for the next time."""
    for uri in ls.open_documents(ws):
        if (timer := ls.timers.pop(uri, None)) is not None:
            timer.cancel()
    if (stop := ls.engine.remove_folder(ws)) is not None:
        ls.spawn(asyncio.to_thread(stop), f"unwatching {ws.root}")


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
    job = asyncio.wrap_future(ls.engine.writer.urgent(ls.engine.update_buffer, ws, rel, text))
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
    ls.engine = Engine(ls.options.settings(), open_on_read=False, phase_one_apart=True)
    uris = [f.uri for f in params.workspace_folders or []] or ([params.root_uri] if params.root_uri else [])
    for uri in uris:
        _add_folder(ls, uri)


@server.feature(types.INITIALIZED)
async def initialized(ls: SemcodeServer, params: types.InitializedParams) -> None:
    for problem in ls.problems:
        ls.show(types.MessageType.Warning, problem)
    if not ls.workspaces:
        ls.show(types.MessageType.Warning, "semcode: no workspace folder: nothing to index")
    ls.opened = ls.spawn(asyncio.to_thread(_open_existing, ls), "opening the existing indexes")
    ls.spawn(_start(ls), "starting")


@server.feature(types.SHUTDOWN)
async def shutdown(ls: SemcodeServer, params: None) -> None:
    for timer in ls.timers.values():
        timer.cancel()
    ls.timers.clear()
    stops = ls.engine.close()  # an index run stops at its next file; queued writes are cancelled
    ls.query_pool.shutdown(wait=False, cancel_futures=True)
    await asyncio.gather(*(asyncio.to_thread(stop) for stop in stops))


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
        elif ls.indexing:  # otherwise `_start` has not begun, and indexes every folder when it does
            _schedule_index(ls, added)


@server.feature("semcode/search")
async def semcode_search(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    q = search_query(params)
    await _existing_opened(ls)
    # while the model loads (modelState "loading"), queries are encoded by the NumPy query encoder
    if q.mode != "lexical" and ls.model_error is not None and any(ws.store for ws in ls.workspaces):
        raise JsonRpcException(f"semcode/search: no model loaded; {q.mode} search needs one")
    try:
        hits = await _search(ls, q)
    except Busy as e:  # a shared index's server at capacity: LSP's RequestFailed, the client may retry
        raise JsonRpcException(f"semcode/search: {e}", code=REQUEST_FAILED) from e
    except ValueError as e:  # e.g. a glob the store cannot translate
        raise JsonRpcInvalidParams(f"semcode/search: {e}") from e
    out = {"results": [hit_json(h, q.mode) for h in hits], "index": ls.summary()}
    return out | ({"warnings": list(q.warnings)} if q.warnings else {})  # a query cut to semcode.limits


@server.feature("semcode/related")
async def semcode_related(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    uri = field(field(params, "textDocument"), "uri")
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("semcode/related: 'textDocument.uri' (a string) is required")
    line = line_of(params, "semcode/related")
    ws, rel = ls.workspace_of(uri)
    limit = limit_of(params, "semcode/related")
    languages = str_list(params, "languages", "semcode/related")
    await _existing_opened(ls)
    if ws.store is None:
        return {"results": [], "chunk": None, "index": ls.summary()}
    await _flush(ls, uri)  # an open document's latest text is indexed first: the query chunk is the buffer's
    try:
        chunk, hits = await _query(ls, ls.engine.related, ws, rel, line, limit, languages=languages)
    except Busy as e:
        raise JsonRpcException(f"semcode/related: {e}", code=REQUEST_FAILED) from e
    except ValueError as e:  # past a limit of semcode.limits (e.g. a language semcode does not know)
        raise JsonRpcInvalidParams(f"semcode/related: {e}") from e
    out = {"results": [hit_json(h, "related") for h in hits], "chunk": origin_json(chunk), "index": ls.summary()}
    if chunk is None:  # which was wrong: the file (not indexed, and why) or the line (past its end)
        out["why"] = await _query(ls, ls.engine.why_no_chunk, ws, rel, line)
    return out


@server.feature("semcode/status")
def semcode_status(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    device = str(ls.encoder.device) if ls.encoder is not None else ls.options.device
    model = ls.encoder.name if ls.encoder is not None else ls.options.model
    folders = []
    for ws in ls.workspaces:
        row = {"root": str(ws.root), "state": ws.state, "files": ws.files, "chunks": ws.chunks}
        row |= {"pending": ws.pending, "skipped": ws.skipped, "indexDir": ws.index_dir}
        row |= {"embedded": int(ws.coverage.share * 1000) / 1000}
        row |= {"vectorIndex": "building"} if ws.index_dir in ls.engine.building else {}
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
    await _existing_opened(ls)
    q = SearchQuery(params.query, limit=50, mode="hybrid" if ls.encoder is not None else "lexical")
    hits = await _search(ls, q)
    return [symbol_information(h) for h in hits]


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
        revert = ls.engine.writer.urgent(ls.engine.update_files, ws, [rel])
        ls.spawn(asyncio.wrap_future(revert), f"reverting {uri} to the file")


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: SemcodeServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.dirty.discard(params.text_document.uri)  # the file now holds the buffer's text
    try:
        ws, rel = ls.workspace_of(params.text_document.uri)
    except JsonRpcInvalidParams:
        return  # a file outside the workspace: not ours to index
    if ws.watcher is not None or ws.store is None or ls.encoder is None:
        return  # the watcher sees the write itself; before the first run: that run does it
    await asyncio.wrap_future(ls.engine.writer.urgent(ls.engine.update_files, ws, [rel]))


@server.command("semcode.reindex")
async def reindex(ls: SemcodeServer, *args: Any) -> dict[str, Any]:
    if ls.encoder is None:
        raise JsonRpcException(f"semcode.reindex: no model loaded ({ls.summary()['state']})")
    started = sum(_schedule_index(ls, ws) for ws in ls.workspaces)
    return {"started": started, "coalesced": len(ls.workspaces) - started}


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="semcode-lsp: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(ExpectedErrorsOneLine())
    server.start_io()
