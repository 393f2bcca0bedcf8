"""The semcode language server: protocol glue only, one thin handler per method, delegating to ``indexer``.

Threads: the event loop answers requests; one writer thread (``SemcodeServer.index_pool``) runs full index runs and
saves; once a folder is indexed its watcher thread is its only writer; queries (encoding + store reads) run in the
loop's default executor, so a query never waits behind an indexing batch or the event loop.

Custom requests: ``semcode/search``, ``semcode/related``, ``semcode/status``; command ``semcode.reindex``;
``workspace/symbol`` answered from hybrid search. Notifications to the client: ``$/progress`` for each full index
run, ``semcode/indexChanged`` after each batch of watched changes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from indexer.chunk import chunk_header
from indexer.discover import DiscoverOptions
from indexer.index import IndexOptions, IndexReport, Progress, index_repository, repo_id, update_files
from indexer.search import Mode, related, search
from indexer.store import Hit, Store, StoredChunk
from indexer.watch import Watcher, watch_repository

from .options import Options, parse

log = logging.getLogger(__name__)

MODES: tuple[Mode, ...] = ("hybrid", "semantic", "lexical")
NO_MODEL = "no model configured: set initializationOptions.model"
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
        self.cancel = threading.Event()

    def relative(self, path: Path) -> str | None:
        """`path` relative to the root (POSIX), or None when it lies outside."""
        try:
            return path.resolve().relative_to(Path(self.repo)).as_posix()
        except ValueError:
            return None

    def refresh_counts(self) -> None:
        """Re-read the counts from the store (worker threads only: this reads LanceDB)."""
        if self.store is None:
            return
        records = self.store.files(self.repo).values()
        self.files = sum(r.status == "indexed" for r in records)
        self.skipped = sum(r.status == "skipped" for r in records)
        self.chunks = int(self.store.stats()["rows"])

    def fail(self, message: str) -> None:
        self.state, self.last_error = "error", message


class SemcodeServer(LanguageServer):
    def __init__(self, name: str, version: str) -> None:
        super().__init__(name, version)
        self.options = Options()
        self.problems: list[str] = []
        self.workspaces: list[Workspace] = []
        self.encoder: Any = None  # encoder.Encoder, loaded at `initialized`
        self.index_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semcode-index")
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def show(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def index_options(self) -> IndexOptions:
        discover = DiscoverOptions(
            max_file_bytes=int(self.options.max_file_size * 1024 * 1024),
            extra_excludes=self.options.extra_excludes(),
        )
        return IndexOptions(discover=discover, max_tokens=self.encoder.max_tokens)

    def workspace_of(self, uri: str) -> tuple[Workspace, str]:
        """(workspace, relative path) of a document URI; InvalidParams when it is outside every workspace folder."""
        fs_path = to_fs_path(uri) if uri.startswith("file:") else None
        for ws in self.workspaces:
            rel = ws.relative(Path(fs_path)) if fs_path else None
            if rel is not None:
                return ws, rel
        raise JsonRpcInvalidParams(f"{uri} is outside the workspace folders")

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


def _search_all(ls: SemcodeServer, req: SearchRequest) -> list[Hit]:
    """Worker thread: every workspace x every path glob, merged by score (best per chunk)."""
    best: dict[tuple[str, str, int, int], Hit] = {}
    encoder = ls.encoder if req.mode != "lexical" else None
    globs: list[str | None] = [*req.paths] if req.paths else [None]
    for ws in ls.workspaces:
        if ws.store is None:
            continue
        for glob in globs:
            hits = search(
                ws.store, encoder, req.query, req.mode, req.limit, repo=ws.repo, languages=req.languages, path_glob=glob
            )
            for h in hits:
                key = (h.chunk.repo, h.chunk.path, h.chunk.start_line, h.chunk.end_line)
                if key not in best or best[key].score < h.score:
                    best[key] = h
    return sorted(best.values(), key=lambda h: -h.score)[: req.limit]


def _load_encoder(options: Options) -> Any:
    from encoder import load_encoder

    return load_encoder(options.model or "", device=options.device, threads=options.threads)


def _default_index_dir(options: Options, root: Path) -> str:
    from .cli import _index_dir

    return _index_dir(argparse.Namespace(index_dir=options.index_dir), root)


def _run_index(ls: SemcodeServer, ws: Workspace, progress: Callable[[Progress], None]) -> IndexReport:
    """Writer thread: open the store (first time) and bring the folder's index up to date."""
    enc = ls.encoder
    if ws.store is None:
        ws.store = Store.open(ws.index_dir, model_id=enc.name, dim=enc.dim)
    report = index_repository(
        ws.root, ws.store, enc, enc.tokenizer.count, ls.index_options(), progress, cancelled=ws.cancel.is_set
    )
    ws.refresh_counts()
    return report


def _update(ls: SemcodeServer, ws: Workspace, paths: list[str]) -> None:
    assert ws.store is not None
    update_files(ws.root, ws.store, ls.encoder, ls.encoder.tokenizer.count, paths, ls.index_options())
    ws.refresh_counts()


class _ProgressReporter:
    """$/progress for one run, callable from any thread; silent when the client cannot show progress."""

    def __init__(self, ls: SemcodeServer, token: str | None) -> None:
        self.ls, self.token = ls, token
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def begin(cls, ls: SemcodeServer, title: str) -> _ProgressReporter:
        window = ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return cls(ls, None)
        token = f"semcode-index-{uuid.uuid4().hex[:8]}"
        await ls.work_done_progress.create_async(token)
        ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, percentage=0, cancellable=False))
        return cls(ls, token)

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


async def _index(ls: SemcodeServer, ws: Workspace) -> None:
    """Index one folder in the writer thread with progress, then watch it."""
    if ws.watcher is not None:
        ws.watcher.stop()  # the writer thread is the only writer while a full run goes
        ws.watcher = None
    ws.state, ws.last_error = "indexing", None
    progress = await _ProgressReporter.begin(ls, f"semcode: indexing {ws.root.name}")

    def on_progress(p: Progress) -> None:
        ws.pending = p.files_total - p.files_done
        progress.report(p)

    loop = asyncio.get_running_loop()
    try:
        report = await loop.run_in_executor(ls.index_pool, _run_index, ls, ws, on_progress)
    except Exception as e:
        log.exception("indexing %s failed", ws.root)
        ws.fail(f"indexing failed: {e}")
        progress.end(f"failed: {e}")
        ls.show(types.MessageType.Error, f"semcode: indexing {ws.root} failed: {e}")
        return
    ws.pending = 0
    ws.state = "ready"
    progress.end(f"{ws.files} files, {ws.chunks} chunks, {len(report.skipped)} skipped ({report.seconds:.1f} s)")
    _watch(ls, ws)


def _on_watch_report(ls: SemcodeServer, ws: Workspace) -> Callable[[IndexReport], None]:
    """After each watcher batch: refresh the counts and tell the client (``semcode/indexChanged``)."""
    loop = asyncio.get_running_loop()

    def on_report(r: IndexReport) -> None:  # watcher thread
        ws.refresh_counts()
        params = {"uri": from_fs_path(str(ws.root)), "changed": r.files_changed, "deleted": r.files_deleted}
        params |= {"skipped": [s.path for s in r.skipped], "index": ls.summary()}
        loop.call_soon_threadsafe(ls.protocol.notify, "semcode/indexChanged", params)

    return on_report


def _watch(ls: SemcodeServer, ws: Workspace) -> None:
    if ws.store is None or ws.cancel.is_set():
        return
    watcher = watch_repository(
        ws.root,
        ws.store,
        ls.encoder,
        ls.encoder.tokenizer.count,
        ls.index_options(),
        debounce_s=ls.options.debounce_ms / 1000,
        on_report=_on_watch_report(ls, ws),
    )
    try:
        watcher.start()
    except OSError as e:  # e.g. the inotify watch limit: the index stays, saves still update it
        ws.last_error = f"cannot watch {ws.root}: {e}"
        ls.show(types.MessageType.Warning, f"semcode: {ws.last_error}")
        return
    ws.watcher = watcher


async def _start(ls: SemcodeServer) -> None:
    if ls.options.model is None:
        for ws in ls.workspaces:
            ws.fail(NO_MODEL)
        ls.show(types.MessageType.Error, f"semcode: {NO_MODEL}")
        return
    try:
        ls.encoder = await asyncio.to_thread(_load_encoder, ls.options)
    except Exception as e:
        for ws in ls.workspaces:
            ws.fail(f"cannot load the model {ls.options.model}: {e}")
        ls.show(types.MessageType.Error, f"semcode: cannot load the model {ls.options.model}: {e}")
        return
    for ws in ls.workspaces:
        await _index(ls, ws)


# -- handlers -----------------------------------------------------------------------------------------------------


@server.feature(types.INITIALIZE)
def initialize(ls: SemcodeServer, params: types.InitializeParams) -> None:
    ls.options, ls.problems = parse(params.initialization_options)
    uris = [f.uri for f in params.workspace_folders or []] or ([params.root_uri] if params.root_uri else [])
    for uri in uris:
        root = Path(to_fs_path(uri) or uri).resolve()
        ls.workspaces.append(Workspace(root, _default_index_dir(ls.options, root)))
    # FIXME(next session): multi-root with one shared indexDir has one watcher per folder writing the same tables


@server.feature(types.INITIALIZED)
async def initialized(ls: SemcodeServer, params: types.InitializedParams) -> None:
    for problem in ls.problems:
        ls.show(types.MessageType.Warning, problem)
    if not ls.workspaces:
        ls.show(types.MessageType.Warning, "semcode: no workspace folder: nothing to index")
    ls.spawn(_start(ls))


@server.feature(types.SHUTDOWN)
def shutdown(ls: SemcodeServer, params: None) -> None:
    for ws in ls.workspaces:
        ws.cancel.set()  # an index run stops at its next batch
        if ws.watcher is not None:
            ws.watcher.stop()
    ls.index_pool.shutdown(wait=False, cancel_futures=True)


@server.feature("semcode/search")
async def semcode_search(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    req = SearchRequest.parse(params)
    if req.mode != "lexical" and ls.encoder is None and any(ws.store for ws in ls.workspaces):
        raise JsonRpcException(f"semcode/search: no model loaded; {req.mode} search needs one")
    try:
        hits = await asyncio.to_thread(_search_all, ls, req)
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
    # FIXME(next session): unsaved buffers (didOpen/didChange text) are not chunked yet; the saved version is used
    chunk, hits = await asyncio.to_thread(related, ws.store, ws.repo, rel, line, limit, languages=languages)
    origin = None if chunk is None else {"uri": _uri(chunk), "range": _range(chunk), "symbol": chunk.qualified_name}
    return {"results": [_hit(h) for h in hits], "chunk": origin, "index": ls.summary()}


@server.feature("semcode/status")
def semcode_status(ls: SemcodeServer, params: Any) -> dict[str, Any]:
    device = str(ls.encoder.device) if ls.encoder is not None else ls.options.device
    folders = []
    for ws in ls.workspaces:
        row = {"root": str(ws.root), "state": ws.state, "files": ws.files, "chunks": ws.chunks}
        row |= {"pending": ws.pending, "skipped": ws.skipped, "indexDir": ws.index_dir}
        folders.append(row | ({"lastError": ws.last_error} if ws.last_error else {}))
    out = {**ls.summary(), "skipped": sum(ws.skipped for ws in ls.workspaces), "model": ls.options.model}
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
    hits = await asyncio.to_thread(_search_all, ls, req)
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


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: SemcodeServer, params: types.DidSaveTextDocumentParams) -> None:
    try:
        ws, rel = ls.workspace_of(params.text_document.uri)
    except JsonRpcInvalidParams:
        return  # a file outside the workspace: not ours to index
    if ws.watcher is not None or ws.store is None or ls.encoder is None:
        return  # the watcher sees the write itself (one writer per store); before the first run: that run does it
    await asyncio.get_running_loop().run_in_executor(ls.index_pool, _update, ls, ws, [rel])
    # FIXME(next session): didOpen/didChange of unsaved buffers (chunk_source on the buffer text, not stored)


@server.command("semcode.reindex")
async def reindex(ls: SemcodeServer, *args: Any) -> dict[str, Any]:
    if ls.encoder is None:
        raise JsonRpcException(f"semcode.reindex: no model loaded ({ls.summary()['state']})")
    for ws in ls.workspaces:
        ws.state = "indexing"  # at once, so a status request right after this answer says so
        ls.spawn(_index(ls, ws))
    return {"started": len(ls.workspaces)}


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="semcode-lsp: %(message)s")
    server.start_io()
