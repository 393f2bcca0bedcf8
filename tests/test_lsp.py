"""End-to-end tests of the language server: a real server subprocess over stdio (pytest-lsp), a real index on disk,
a tiny random ModernBERT. Lexical search is used for exact assertions (the tiny model's vectors carry no meaning).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcMethodNotFound,
    JsonRpcRequestCancelled,
)
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

from encoder.tiny import write_tiny_checkpoint
from semcode.limits import MAX_PATH_GLOBS
from semcode.relevance import relevance

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.timeout(60)]

REPO_ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "pkg/geometry.py": (
        "import math\n\n\n"
        "def zorblax_triangle_area(a, b, c):\n"
        "    s = (a + b + c) / 2\n"
        "    return math.sqrt(s * (s - a) * (s - b) * (s - c))\n\n\n"
        "def quimbly_circle_area(r):\n"
        "    return math.pi * r * r\n"
    ),
    "pkg/text.py": (
        "def flurbish_words(text):\n"
        "    return [w for w in text.split() if w]\n\n\n"
        "class Snorkel:\n"
        "    def wibble(self, x):\n"
        "        return x * 2\n"
    ),
    "main.py": "from pkg.geometry import zorblax_triangle_area\n\nprint(zorblax_triangle_area(3, 4, 5))\n",
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@asynccontextmanager
async def session(root: Path, init_options: dict[str, Any]) -> AsyncIterator[LanguageClient]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    config = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server.cli", "lsp"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    caps = types.ClientCapabilities(window=types.WindowClientCapabilities(work_done_progress=True))
    uri = from_fs_path(str(root)) or ""
    await client.initialize_session(
        types.InitializeParams(
            capabilities=caps,
            root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name=root.name)],
            initialization_options=init_options,
        )
    )
    try:
        yield client
    finally:
        await client.shutdown_session()
        await client.stop()


async def request(client: LanguageClient, method: str, params: Any) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async(method, params), 20)


async def poll(check: Callable[[], Awaitable[Any]], what: str, deadline_s: float = 20) -> Any:
    """`check()` until it returns something truthy. The deadline is generous: no figure is asserted."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not (value := await check()):
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


async def found(client: LanguageClient, symbol: str) -> Any:
    """The lexical hit whose symbol is `symbol`, or None."""
    answer = await request(client, "semcode/search", {"query": symbol, "mode": "lexical"})
    return next((r for r in answer.results if r.symbol == symbol), None)


def did_open(client: LanguageClient, path: Path, text: str) -> str:
    uri = from_fs_path(str(path)) or ""
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text)))
    return uri


def did_change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    change = types.TextDocumentContentChangeWholeDocument(text=text)
    doc = types.VersionedTextDocumentIdentifier(uri=uri, version=version)
    client.text_document_did_change(types.DidChangeTextDocumentParams(doc, [change]))


def send_raw(client: LanguageClient, body: bytes) -> None:
    """A message as bytes: what the typed client refuses to build."""
    assert client.protocol.writer is not None
    client.protocol.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


async def raw_request(client: LanguageClient, message: dict[str, Any]) -> Any:
    """Send a request as raw JSON and wait for its answer (registered where the client looks answers up)."""
    answer: Future[Any] = Future()
    client.protocol._request_futures[message["id"]] = answer
    send_raw(client, json.dumps(message).encode())
    return await asyncio.wait_for(asyncio.wrap_future(answer), 20)


async def wait_until_settled(client: LanguageClient, deadline_s: float = 40) -> Any:
    """Status once indexing ended: waits on $/progress notifications (or a shown message: a model that cannot load
    ends the start with one, and no run) between polls, never sleeps. The waits are registered before each poll,
    so a notification between the poll and the wait is not missed."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        waits = {
            asyncio.ensure_future(client.protocol.wait_for_notification_async(m))
            for m in ("$/progress", "window/showMessage")
        }
        status = await request(client, "semcode/status", {})
        if status.state != "indexing":
            return status  # (the waits left are resolved by later notifications; cancelling them upsets pytest-lsp)
        done, _ = await asyncio.wait(waits, timeout=max(0.1, end - loop.time()), return_when="FIRST_COMPLETED")
        if not done:
            raise TimeoutError(f"still indexing after {deadline_s} s: {status}")


def _options(root: Path, model: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"indexDir": str(root.parent / "index"), "debounceMs": 50, "unknownKey": 1}
    if model is not None:
        out["model"] = model
    return out


async def test_index_search_symbol_related_status(workspace: Path, tiny_model: str) -> None:
    async with session(workspace, _options(workspace, tiny_model)) as client:
        status = await wait_until_settled(client)
        assert status.state == "ready", status
        assert (status.files, status.skipped, status.pending) == (3, 0, 0)
        assert status.chunks >= 4
        assert status.model == tiny_model
        assert status.indexDir == str(workspace.parent / "index")
        assert status.device == "cpu"
        # the unknown option was reported, and progress ran begin -> end
        assert any("unknownKey" in m.message for m in client.messages)
        (reports,) = client.progress_reports.values()
        assert isinstance(reports[0], types.WorkDoneProgressBegin)
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)

        geometry = from_fs_path(str(workspace / "pkg/geometry.py"))
        found = await request(client, "semcode/search", {"query": "zorblax_triangle_area", "mode": "lexical"})
        assert found.index.state == "ready"
        (top,) = [r for r in found.results if r.symbol == "zorblax_triangle_area"]  # main.py only calls it
        assert (top.uri, top.symbol, top.kind, top.language) == (
            geometry,
            "zorblax_triangle_area",
            "function",
            "python",
        )
        assert (top.range.start.line, top.range.end.line) == (3, 5)
        assert top.preview.startswith("def zorblax_triangle_area(a, b, c):")
        assert list(top.reasons) == ["lexical"]
        assert 0 < top.relevance < 1 and top.relevance == round(relevance("lexical", top.score), 4)  # one 0-1 scale
        assert list(found.index.partial) == []  # a whole index: nothing to warn about
        filtered = await request(
            client, "semcode/search", {"query": "zorblax_triangle_area", "mode": "lexical", "paths": ["main.py"]}
        )
        assert {r.uri for r in filtered.results} == {from_fs_path(str(workspace / "main.py"))}
        hybrid = await request(client, "semcode/search", {"query": "triangle area", "limit": 2})
        assert 1 <= len(hybrid.results) <= 2
        ranked = await request(client, "semcode/search", {"query": "zorblax_triangle_area", "groupBy": "file"})
        assert ranked.results[0].uri == geometry and "definition" in ranked.results[0].reasons
        assert len({r.uri for r in ranked.results}) == len(ranked.results)  # one hit per file
        without = await request(client, "semcode/search", {"query": "zorblax_triangle_area", "paths": ["!pkg/**"]})
        assert without.results and all("/pkg/" not in r.uri for r in without.results)
        with pytest.raises(JsonRpcInvalidParams, match="no indexed file matches the filter"):
            await request(client, "semcode/search", {"query": "zorblax", "paths": ["nowhere/**"]})
        with pytest.raises(JsonRpcInvalidParams, match="groupBy"):
            await request(client, "semcode/search", {"query": "zorblax", "groupBy": "folder"})

        symbols = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="flurbish_words"))
        assert symbols is not None
        match = [s for s in symbols if s.name == "flurbish_words"]
        assert match and match[0].kind == types.SymbolKind.Function
        assert match[0].location.uri == from_fs_path(str(workspace / "pkg/text.py"))

        rel = await request(
            client, "semcode/related", {"textDocument": {"uri": geometry}, "position": {"line": 4, "character": 0}}
        )
        assert rel.chunk.symbol == "zorblax_triangle_area"
        assert rel.results
        for r in rel.results:  # nothing overlapping the chunk itself
            assert r.uri != geometry or r.range.end.line < 3 or r.range.start.line > 5
        past = await request(
            client, "semcode/related", {"textDocument": {"uri": geometry}, "position": {"line": 900, "character": 0}}
        )
        assert past.chunk is None and "is past the end of pkg/geometry.py, which has" in past.why  # which was wrong


async def test_bad_input_is_an_error_and_the_server_keeps_serving(workspace: Path, tiny_model: str) -> None:
    async with session(workspace, _options(workspace, tiny_model)) as client:
        assert (await wait_until_settled(client)).state == "ready"
        for bad in ({}, {"query": 3}, {"query": "x", "limit": 0}, {"query": "x", "mode": "fuzzy"}):
            with pytest.raises(JsonRpcInvalidParams):
                await request(client, "semcode/search", bad)
        outside = {"textDocument": {"uri": "file:///etc/passwd"}, "position": {"line": 0, "character": 0}}
        with pytest.raises(JsonRpcInvalidParams, match="outside"):
            await request(client, "semcode/related", outside)
        ok = await request(client, "semcode/search", {"query": "Snorkel", "mode": "lexical"})
        assert ok.results[0].symbol == "Snorkel"


async def test_a_model_that_cannot_load_reports_error_and_still_answers(workspace: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    async with session(workspace, _options(workspace, missing)) as client:
        status = await wait_until_settled(client)
        assert status.state == "error"
        assert status.lastError.startswith(f"cannot load the model {missing}: ")
        assert "built-in default model" in status.lastError
        assert any(m.type == types.MessageType.Error for m in client.messages)
        empty = await request(client, "semcode/search", {"query": "zorblax_triangle_area", "mode": "lexical"})
        assert (list(empty.results), empty.index.state) == ([], "error")


async def test_watcher_and_reindex_keep_the_index_fresh(workspace: Path, tiny_model: str) -> None:
    async with session(workspace, _options(workspace, tiny_model)) as client:
        assert (await wait_until_settled(client)).files == 3
        changed = client.protocol.wait_for_notification_async("semcode/indexChanged")
        (workspace / "pkg/fresh.py").write_text("def glorptastic_helper():\n    return 42\n")
        note = await asyncio.wait_for(changed, 20)
        assert (note.changed, note.index.files) == (1, 4)
        found = await request(client, "semcode/search", {"query": "glorptastic_helper", "mode": "lexical"})
        assert found.results[0].uri == from_fs_path(str(workspace / "pkg/fresh.py"))

        started = await client.workspace_execute_command_async(types.ExecuteCommandParams("semcode.reindex"))
        assert started == {"started": 1, "coalesced": 0}
        status = await wait_until_settled(client)
        assert (status.state, status.files) == ("ready", 4)


async def test_unsaved_buffers_are_searched_and_related_and_closing_reverts(workspace: Path, tiny_model: str) -> None:
    async with session(workspace, _options(workspace, tiny_model)) as client:
        assert (await wait_until_settled(client)).state == "ready"
        path = workspace / "pkg/geometry.py"
        saved = path.read_text()
        uri = did_open(client, path, saved)

        # an unsaved edit becomes searchable once the debounce (50 ms here) has passed
        edited = saved + "\n\ndef blorptastic_perimeter(a, b, c):\n    return a + b + c\n"
        did_change(client, uri, 2, edited)
        t0 = asyncio.get_running_loop().time()
        hit = await poll(lambda: found(client, "blorptastic_perimeter"), "the unsaved function")
        print(f"unsaved edit searchable after {asyncio.get_running_loop().time() - t0:.2f} s")
        assert (hit.uri, hit.range.start.line) == (
            uri,
            edited.splitlines().index("def blorptastic_perimeter(a, b, c):"),
        )
        assert path.read_text() == saved

        # related: the query chunk comes from the buffer as it is now, even within the debounce
        lines = edited.splitlines()
        at = lines.index("def quimbly_circle_area(r):")
        newer = "\n".join([*lines[:at], "def zanzibar_quux(x):", "    return x * 3", "", "", *lines[at:]]) + "\n"
        did_change(client, uri, 3, newer)
        position = {"line": at + 1, "character": 4}
        rel = await request(client, "semcode/related", {"textDocument": {"uri": uri}, "position": position})
        assert rel.chunk.symbol == "zanzibar_quux"
        start, end = rel.chunk.range.start.line, rel.chunk.range.end.line
        assert (start, end) == (at, at + 1)
        assert rel.results
        for r in rel.results:  # neither the chunk itself nor anything overlapping it
            assert r.uri != uri or r.range.end.line < start or r.range.start.line > end
        assert (await found(client, "quimbly_circle_area")).range.start.line == at + 4

        # closing the document: the file on disk is what the index holds again
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        await poll(lambda: _absent(client, "zanzibar_quux"), "the revert")
        assert await found(client, "blorptastic_perimeter") is None
        assert (await found(client, "quimbly_circle_area")).range.start.line == 8


async def _absent(client: LanguageClient, symbol: str) -> bool:
    return await found(client, symbol) is None


async def test_workspace_folders_added_and_removed(workspace: Path, tiny_model: str, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "lib").mkdir(parents=True)
    (other / "lib/reader.py").write_text("def quaxolotl_reader(path):\n    return open(path).read()\n")
    async with session(workspace, _options(workspace, tiny_model)) as client:
        assert (await wait_until_settled(client)).state == "ready"
        folder = types.WorkspaceFolder(uri=from_fs_path(str(other)) or "", name="other")
        event = types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event))
        status = await wait_until_settled(client)
        assert [(w.root, w.state) for w in status.workspaces] == [(str(workspace), "ready"), (str(other), "ready")]
        assert {w.indexDir for w in status.workspaces} == {str(workspace.parent / "index")}  # one index, two repos
        assert status.files == 4
        # each folder counts its own chunks, though the two share one index folder
        by_root = {w.root: w.chunks for w in status.workspaces}
        assert by_root[str(other)] == 1 and by_root[str(workspace)] >= 3
        assert status.chunks == sum(by_root.values())
        hit = await found(client, "quaxolotl_reader")
        assert hit.uri == from_fs_path(str(other / "lib/reader.py"))

        # the added folder is watched
        changed = client.protocol.wait_for_notification_async("semcode/indexChanged")
        (other / "lib/writer.py").write_text("def plimsoll_writer(path, text):\n    open(path, 'w').write(text)\n")
        note = await asyncio.wait_for(changed, 20)
        assert note.uri == from_fs_path(str(other))
        assert (await found(client, "plimsoll_writer")).uri == from_fs_path(str(other / "lib/writer.py"))

        # a removed folder is no longer searched (its rows stay in the index for the next time)
        gone = types.WorkspaceFolder(uri=from_fs_path(str(workspace)) or "", name="repo")
        event = types.WorkspaceFoldersChangeEvent(added=[], removed=[gone])
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(event))
        status = await request(client, "semcode/status", {})
        assert [w.root for w in status.workspaces] == [str(other)]
        assert await found(client, "zorblax_triangle_area") is None
        assert await found(client, "quaxolotl_reader") is not None


async def test_a_run_can_be_cancelled_and_reindex_requests_coalesce(tmp_path: Path, tiny_model: str) -> None:
    root = tmp_path / "big"
    (root / "pkg").mkdir(parents=True)
    for i in range(300):
        (root / f"pkg/mod_{i}.py").write_text(
            f"def scale_{i}(value):\n    return value * {i}\n\n\ndef shift_{i}(value):\n    return value + {i}\n"
        )
    async with session(root, _options(root, tiny_model)) as client:
        # cancel the first run through its progress token
        progress = client.protocol.wait_for_notification_async("$/progress")
        if not client.progress_reports:
            await asyncio.wait_for(progress, 30)
        (token,) = client.progress_reports
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        status = await wait_until_settled(client)
        assert status.state == "ready" and status.files < 300
        begin, *_, end = client.progress_reports[token]
        assert isinstance(begin, types.WorkDoneProgressBegin) and begin.cancellable
        assert isinstance(end, types.WorkDoneProgressEnd) and end.message and end.message.startswith("cancelled")

        # two reindex requests at once: one run, which completes the index
        command = types.ExecuteCommandParams("semcode.reindex")
        answers = await asyncio.gather(*(client.workspace_execute_command_async(command) for _ in range(2)))
        assert sorted(a["started"] for a in answers) == [0, 1]
        status = await wait_until_settled(client)
        assert (status.state, status.files) == ("ready", 300)
        assert len(client.progress_reports) == 2


async def test_a_cancelled_request_is_answered_and_stops(workspace: Path, tiny_model: str) -> None:
    async with session(workspace, _options(workspace, tiny_model)) as client:
        assert (await wait_until_settled(client)).state == "ready"
        # a long search (one search per path glob, as many as semcode.limits allows), cancelled at once
        globs = [f"pkg/nothing_{i}/*.py" for i in range(MAX_PATH_GLOBS)]
        params = {"query": "zorblax_triangle_area " * 100, "mode": "hybrid", "paths": globs}
        # (pygls' plain send_request writes at once; pytest-lsp's send_request_async only when awaited)
        long = asyncio.wrap_future(client.protocol.send_request("semcode/search", params, msg_id="long-search"))
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-search"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(long, 20)
        found_ = await request(client, "semcode/search", {"query": "zorblax_triangle_area", "mode": "lexical"})
        assert found_.results


async def test_malformed_requests_are_answered_and_the_server_goes_on(workspace: Path, tiny_model: str) -> None:
    async with session(workspace, _options(workspace, tiny_model)) as client:
        assert (await wait_until_settled(client)).state == "ready"
        logged = client.protocol.wait_for_notification_async("window/logMessage")
        send_raw(client, b'{"jsonrpc": "2.0", "id": 99, "method": "semcode/search", "params": {')  # not JSON
        assert (await asyncio.wait_for(logged, 20)).type == types.MessageType.Error
        # params that do not fit the method's type (no query): pygls alone would leave the request unanswered
        with pytest.raises(JsonRpcInvalidParams):
            await raw_request(client, {"jsonrpc": "2.0", "id": "raw-1", "method": "workspace/symbol", "params": {}})
        with pytest.raises(JsonRpcMethodNotFound):
            await request(client, "semcode/nonesuch", {})
        ok = await request(client, "semcode/search", {"query": "Snorkel", "mode": "lexical"})
        assert ok.results[0].symbol == "Snorkel"


async def test_handler_exceptions_are_reported_and_the_server_goes_on(workspace: Path, tiny_model: str) -> None:
    async with session(workspace, _options(workspace, tiny_model)) as client:
        assert (await wait_until_settled(client)).state == "ready"
        # a notification handler fails (a change to a document never opened): nothing answers it, so it is shown
        shown = client.protocol.wait_for_notification_async("window/showMessage")
        did_change(client, from_fs_path(str(workspace / "pkg/text.py")) or "", 2, "x = 1\n")
        message = await asyncio.wait_for(shown, 20)
        assert message.type == types.MessageType.Error and "KeyError" in message.message

        # a request handler fails (the index folder vanished): an error answer, a log line, and the server goes on
        shutil.rmtree(workspace.parent / "index")
        logged = client.protocol.wait_for_notification_async("window/logMessage")
        with pytest.raises(JsonRpcInternalError):
            await request(client, "semcode/search", {"query": "Snorkel", "mode": "lexical"})
        line = await asyncio.wait_for(logged, 20)
        assert line.type == types.MessageType.Error and "request failed" in line.message
        assert (await request(client, "semcode/status", {})).state == "ready"
        uri = did_open(client, workspace / "pkg/text.py", (workspace / "pkg/text.py").read_text())
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        assert (await request(client, "semcode/status", {})).files == 3
