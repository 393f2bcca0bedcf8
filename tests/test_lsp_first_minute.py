"""The language server's first minute: a real server subprocess, an index built beforehand, the tiny random model.

The first requests after `initialized` answer from the existing index (lexically while the model loads), the status
only moves forward (loading, indexing, ready), `shutdown` then `exit` with null params end the process, and a request
with invalid params costs one stderr line and no traceback. Waits poll up to a deadline; no time is asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

import semcode
from tests.raw_lsp import RawServer, frame, request

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-m", "lsp_server.cli", "lsp"]
FILES = {
    "pkg/geometry.py": "def zorblax_triangle_area(a, b, c):\n    s = (a + b + c) / 2\n    return s * (s - a)\n",
    "pkg/text.py": "def flurbish_words(text):\n    return [w for w in text.split() if w]\n",
}
PHASES = ("loading", "indexing", "ready")  # the order a fresh server goes through


@pytest.fixture
def indexed(tmp_path: Path, model: Path) -> tuple[Path, Path]:
    """A repository and its index, built before any server starts."""
    root, index = tmp_path / "repo", tmp_path / "index"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    with semcode.open(root, index_dir=index, model=str(model)) as ix:
        assert ix.update().files_changed == len(FILES)
    return root, index


def server_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def init_params(root: Path, index: Path, model: Path) -> dict[str, Any]:
    uri = from_fs_path(str(root)) or ""
    return {
        "capabilities": {}, "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": root.name}],
        "initializationOptions": {"indexDir": str(index), "model": str(model)},
    }  # fmt: skip


def phase(summary: Any) -> str:
    """loading, indexing or ready (or error): the model's loading comes first, whichever field says it."""
    if summary.state == "loading" or getattr(summary, "modelState", None) == "loading":
        return "loading"
    return str(summary.state)


# -- through pytest-lsp ------------------------------------------------------------------------------------------------


class Client(LanguageClient):
    """A pytest-lsp client that knows when the server process exited (pygls calls `server_exit`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exited = asyncio.Event()
        self.returncode: int | None = None

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        self.returncode = server.returncode
        self.exited.set()
        await super().server_exit(server)


def send(client: LanguageClient, method: str, params: Any) -> asyncio.Future[Any]:
    """Write a request now (pygls' plain send_request), in the order of the calls; await its answer later."""
    return asyncio.wrap_future(client.protocol.send_request(method, params))


def send_raw(client: LanguageClient, body: bytes) -> None:
    """A message as bytes: what the typed client refuses to build."""
    assert client.protocol.writer is not None
    client.protocol.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


async def raw_request(client: LanguageClient, message: dict[str, Any]) -> Any:
    """Send a request as raw JSON and wait for its answer (registered where the client looks answers up)."""
    answer: Future[Any] = Future()
    client.protocol._request_futures[message["id"]] = answer
    send_raw(client, json.dumps(message).encode())
    return await asyncio.wait_for(asyncio.wrap_future(answer), 30)


async def poll(check: Callable[[], Awaitable[Any]], what: str, deadline_s: float = 90) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not (value := await check()):
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


@pytest.mark.asyncio(loop_scope="function")
@pytest.mark.timeout(180)
async def test_first_requests_answer_from_the_existing_index_and_exit_ends_the_server(
    indexed: tuple[Path, Path], model: Path
) -> None:
    root, index = indexed
    config = ClientServerConfig(server_command=SERVER, server_env=server_env(), client_factory=Client)
    client = await config.start()
    assert isinstance(client, Client)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        raw = init_params(root, index, model)
        folders = [types.WorkspaceFolder(**f) for f in raw["workspaceFolders"]]
        params = types.InitializeParams(
            types.ClientCapabilities(), root_uri=raw["rootUri"], workspace_folders=folders,
            initialization_options=raw["initializationOptions"],
        )  # fmt: skip
        await asyncio.wait_for(client.initialize_session(params), 60)  # `initialized` follows at once
        print(f"initialize answered after {loop.time() - started:.2f} s")

        status, search = send(client, "semcode/status", {}), send(client, "semcode/search", {"query": "zorblax"})
        phases = [phase(await asyncio.wait_for(status, 30))]
        answer = await asyncio.wait_for(search, 30)  # hybrid: lexical (+ semantic once queries can be encoded)
        top = answer.results[0]
        assert top.symbol == "zorblax_triangle_area" and "lexical" in top.reasons, answer  # from the existing index
        if phase(answer.index) == "loading":  # the index's counts are known before the model is
            assert (answer.index.files, answer.index.chunks) == (2, 2), answer.index

        async def ready() -> Any:
            phases.append(phase(s := await asyncio.wait_for(send(client, "semcode/status", {}), 30)))
            return s if phases[-1] == "ready" else None

        final = await poll(ready, "the ready state")
        assert [PHASES.index(p) for p in phases] == sorted(PHASES.index(p) for p in phases), phases
        assert (final.files, final.chunks) == (2, 2)

        bye = {"jsonrpc": "2.0", "id": "bye", "method": "shutdown", "params": None}
        assert await raw_request(client, bye) is None
        send_raw(client, b'{"jsonrpc": "2.0", "method": "exit", "params": null}')
        await asyncio.wait_for(client.exited.wait(), 30)
        assert client.returncode == 0
    finally:
        if not client.exited.is_set():
            await asyncio.wait_for(client.shutdown_session(), 30)
        await client.stop()


# -- raw JSON-RPC, the server's stderr captured ------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_invalid_params_cost_one_stderr_line_and_no_traceback(
    indexed: tuple[Path, Path], model: Path, tmp_path: Path
) -> None:
    root, index = indexed
    server = RawServer(tmp_path / "stderr.txt", cwd=REPO_ROOT)
    try:
        assert "capabilities" in server.ask(request(1, "initialize", init_params(root, index, model)))["result"]
        server.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        bad = server.ask(request(2, "semcode/search", {"query": "zorblax_triangle_area", "limit": 0}))
        assert bad["error"]["code"] == -32602 and "limit must be an integer" in bad["error"]["message"], bad
        ok = server.ask(request(3, "semcode/search", {"query": "zorblax_triangle_area", "mode": "lexical"}))
        assert ok["result"]["results"][0]["symbol"] == "zorblax_triangle_area"  # and it goes on serving
        assert server.ask(request(4, "shutdown", None))["result"] is None
        server.write(frame({"jsonrpc": "2.0", "method": "exit", "params": None}))
        assert server.proc.wait(timeout=30) == 0
    finally:
        server.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if "limit must be an integer" in line]) == 1, stderr
