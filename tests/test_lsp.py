"""End-to-end tests of the language server: a real server subprocess over stdio (pytest-lsp), a real index on disk,
a tiny random ModernBERT. Lexical search is used for exact assertions (the tiny model's vectors carry no meaning).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

from encoder.tiny import write_tiny_checkpoint

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


async def wait_until_settled(client: LanguageClient, deadline_s: float = 40) -> Any:
    """Status once indexing ended: waits on $/progress notifications between polls, never sleeps. The wait is
    registered before each poll, so a notification between the poll and the wait is not missed."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        progress = client.protocol.wait_for_notification_async("$/progress")
        status = await request(client, "semcode/status", {})
        if status.state != "indexing":
            return status
        await asyncio.wait_for(progress, max(0.1, end - loop.time()))


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
        filtered = await request(
            client, "semcode/search", {"query": "zorblax_triangle_area", "mode": "lexical", "paths": ["main.py"]}
        )
        assert {r.uri for r in filtered.results} == {from_fs_path(str(workspace / "main.py"))}
        hybrid = await request(client, "semcode/search", {"query": "triangle area", "limit": 2})
        assert 1 <= len(hybrid.results) <= 2

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


async def test_no_model_reports_error_and_still_answers(workspace: Path) -> None:
    async with session(workspace, _options(workspace, None)) as client:
        status = await wait_until_settled(client)
        assert status.state == "error"
        assert status.lastError == "no model configured: set initializationOptions.model"
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
        assert started == {"started": 1}
        status = await wait_until_settled(client)
        assert (status.state, status.files) == ("ready", 4)
