"""End-to-end tests of the MCP server: the SDK's client against the real server in-process, over stdio (a
subprocess) and over streamable HTTP on loopback (a subprocess), a real index on disk, a tiny random ModernBERT.
Lexical search is used for exact assertions (the tiny model's vectors carry no meaning). Lines are 1-based.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

import semcode
from mcp_server.server import TOKEN_ENV
from mcp_server.tools import READ_LINES, SNIPPET_LINES, build_server
from semcode.engine import Engine
from semcode.settings import Settings
from tests.ports import free_port
from tests.processes import stop

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"search_code", "related_code", "read_code", "index_status", "reindex"}
HELPERS = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(9))
CONFIG_BODY = "".join(f"        settings.setdefault('key_{i}', {i})\n" for i in range(16))
APP = (
    f"import json\n\n\n{HELPERS}"
    "def parse_config_file(path):\n"
    "    with open(path) as f:\n"
    "        settings = json.load(f)\n"
    "    if settings:\n"
    f"{CONFIG_BODY}"
    "    return settings\n\n\n"
    "def main():\n"
    "    print(parse_config_file('app.json'))\n"
)
FILES = {
    "src/app.py": APP,
    "src/geometry.py": (
        "import math\n\n\n"
        "def zorblax_triangle_area(a, b, c):\n"
        "    s = (a + b + c) / 2\n"
        "    return math.sqrt(s * (s - a) * (s - b) * (s - c))\n\n\n"
        "def quimbly_circle_area(r):\n"
        "    return math.pi * r * r\n"
    ),
    "src/text.py": "class Snorkel:\n    def wibble(self, x):\n        return x * 2\n",
    "src/long.py": "".join(f"value_{i} = {i}\n" for i in range(450)),
    ".env": "API_KEY=hunter2\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    ".gitignore": "ignored.py\n",
    "ignored.py": "def hidden_gem():\n    return 1\n",
}


def line_of(text: str, start: str) -> int:
    """The 1-based line of `text` that starts with `start`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def make_repo(base: Path) -> Path:
    """The fixture repository under `base`, with a symlink out of it (to ``base/outside/secret.py``)."""
    root = base / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (base / "outside").mkdir()
    (base / "outside/secret.py").write_text("def outside_secret():\n    return 'leaked'\n")
    (root / "src/escape.py").symlink_to(base / "outside/secret.py")
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("mcp"))


@pytest.fixture(scope="module")
def engine(repo: Path, model: Path) -> Iterator[Engine]:
    """The engine of the in-process tests, over an index of `repo` it builds once (in ``repo/../index``)."""
    engine = Engine(Settings(model=str(model), index_dir=str(repo.parent / "index")), [repo])
    engine.update()
    yield engine
    engine.close_now()


async def call(client: Client, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> CallToolResult:
    return await asyncio.wait_for(client.call_tool(tool, args or {}, **kw), 120)


def text_of(result: CallToolResult) -> str:
    (content,) = result.content
    assert isinstance(content, TextContent)
    return content.text


async def ok(client: Client, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """The structured content of a call that must succeed."""
    result = await call(client, tool, args, **kw)
    assert not result.is_error and result.structured_content is not None, text_of(result)
    return result.structured_content


async def answer(engine: Engine, tool: str, args: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """(structured content, text) of one call that must succeed, on a fresh in-process connection."""
    async with Client(build_server(engine)) as client:
        result = await call(client, tool, args)
    assert not result.is_error and result.structured_content is not None, text_of(result)
    return result.structured_content, text_of(result)


async def find(client: Client, symbol: str) -> dict[str, Any] | None:
    """The lexical hit whose symbol is `symbol`, or None."""
    hits = (await ok(client, "search_code", {"query": symbol, "mode": "lexical"}))["hits"]
    return next((h for h in hits if h["symbol"] == symbol), None)


async def wait_ready(client: Client, deadline_s: float = 120) -> dict[str, Any]:
    """index_status, polled until the index is ready (indexing runs in the background after start)."""
    end = time.monotonic() + deadline_s
    while (status := await ok(client, "index_status"))["index"]["state"] != "ready":
        assert status["index"]["state"] != "error", status
        assert time.monotonic() < end, f"the index never got ready: {status}"
        await asyncio.sleep(0.1)
    return status


# -- in-process ------------------------------------------------------------------------------------------------


async def test_tools_have_input_and_output_schemas(engine: Engine) -> None:
    async with Client(build_server(engine)) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == TOOLS and len(tools) == len(TOOLS)
    for tool in tools:
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name


@pytest.mark.parametrize(
    ("symbol", "path", "first"),
    [
        ("zorblax_triangle_area", "src/geometry.py", "def zorblax_triangle_area("),
        ("Snorkel.wibble", "src/text.py", "    def wibble("),
        ("parse_config_file", "src/app.py", "def parse_config_file("),
    ],
)
@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
async def test_search_finds_a_known_function(engine: Engine, symbol: str, path: str, first: str, mode: str) -> None:
    found, text = await answer(engine, "search_code", {"query": symbol.rsplit(".")[-1], "mode": mode, "limit": 20})
    hit = next(h for h in found["hits"] if h["symbol"] == symbol)
    assert hit["path"] == path and hit["repo"] == str(engine.folders[0].root)
    assert hit["start_line"] == line_of(FILES[path], first)  # 1-based
    assert hit["end_line"] >= hit["start_line"] and hit["language"] == "python"
    assert "lexical" in hit["reasons"]
    if mode == "hybrid":  # ranked: the chunk that defines the queried name says so
        assert "definition" in hit["reasons"] and found["hits"][0]["symbol"] == symbol
    else:
        assert hit["reasons"] == ["lexical"]
    assert hit["snippet"].startswith(first.strip())
    assert len(hit["snippet"].splitlines()) <= SNIPPET_LINES
    assert f"{path}:{hit['start_line']}-{hit['end_line']}" in text
    if symbol == "parse_config_file":  # a long function: the snippet is cut
        assert hit["end_line"] - hit["start_line"] + 1 > SNIPPET_LINES
    assert found["index"]["state"] == "ready"


async def test_search_groups_by_file_and_leaves_paths_out(engine: Engine) -> None:
    found, text = await answer(engine, "search_code", {"query": "zorblax_triangle_area", "group_by": "file"})
    paths = [h["path"] for h in found["hits"]]
    assert paths[0] == "src/geometry.py" and len(set(paths)) == len(paths)
    assert "definition" in found["hits"][0]["reasons"] and "definition" in text
    kept, _ = await answer(engine, "search_code", {"query": "zorblax_triangle_area", "paths": ["!src/geometry.py"]})
    assert kept["hits"] and all(h["path"] != "src/geometry.py" for h in kept["hits"])


@pytest.mark.parametrize("absolute", [False, True])
async def test_related_code(engine: Engine, absolute: bool) -> None:
    root = engine.folders[0].root
    line = line_of(APP, "def parse_config_file(") + 2
    path = str(root / "src/app.py") if absolute else "src/app.py"
    related, _ = await answer(engine, "related_code", {"path": path, "line": line, "limit": 5})
    origin = related["origin"]
    assert origin["symbol"] == "parse_config_file" and origin["path"] == "src/app.py"
    assert origin["start_line"] <= line <= origin["end_line"]
    assert 0 < len(related["hits"]) <= 5
    assert all((h["path"], h["start_line"]) != ("src/app.py", origin["start_line"]) for h in related["hits"])
    assert all(h["start_line"] >= 1 and h["path"] != ".env" for h in related["hits"])


LONG = FILES["src/long.py"].splitlines()
APP_LINES = APP.splitlines()


@pytest.mark.parametrize(
    ("args", "first", "last", "lines", "truncated"),
    [
        ({"path": "src/app.py"}, 1, len(APP_LINES), APP_LINES, False),
        ({"path": "src/app.py", "start_line": 10, "end_line": 12}, 10, 12, APP_LINES[9:12], False),
        ({"path": "src/app.py", "start_line": 60, "end_line": 9999}, 60, len(APP_LINES), APP_LINES[59:], False),
        ({"path": "src/long.py"}, 1, READ_LINES, LONG[:READ_LINES], True),
        ({"path": "src/long.py", "start_line": READ_LINES + 1}, READ_LINES + 1, len(LONG), LONG[READ_LINES:], False),
    ],
)
async def test_read_code(
    engine: Engine, args: dict[str, Any], first: int, last: int, lines: list[str], truncated: bool
) -> None:
    read, text = await answer(engine, "read_code", args)
    assert (read["path"], read["start_line"], read["end_line"]) == (args["path"], first, last)
    assert read["text"].splitlines() == lines and read["truncated"] is truncated
    assert text.splitlines()[1].split(maxsplit=1)[0] == str(first)  # numbered lines, 1-based
    assert (f"start_line={last + 1}" in text) is truncated  # how to read the rest


async def test_index_status_lists_skipped_files_with_reasons(engine: Engine) -> None:
    status, text = await answer(engine, "index_status")
    assert status["index"]["state"] == "ready" and status["read_only"] is False
    (repository,) = status["repositories"]
    assert repository["files"] == 4 and repository["chunks"] > 0
    skipped = {s["path"]: s["reason"] for s in repository["skipped"]}
    assert "secret-bearing" in skipped[".env"] and "secret-bearing" in skipped["id_rsa"]
    assert "symlink pointing outside" in skipped["src/escape.py"]
    assert "ignored.py" not in skipped  # ignored: not looked at at all
    assert "skipped .env: secret-bearing" in text


@pytest.mark.parametrize("target", [{}, {"path": "src/geometry.py"}])
async def test_reindex_after_an_edit_finds_the_new_function_with_progress(
    tmp_path: Path, model: Path, target: dict[str, Any]
) -> None:
    root = make_repo(tmp_path)
    engine = Engine(Settings(model=str(model), index_dir=str(tmp_path / "index")), [root])
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    try:
        async with Client(build_server(engine)) as client:
            first = await ok(client, "reindex", progress_callback=on_progress)  # a full run, several files
            assert first["done"] and first["files_changed"] == 4 and first["skipped"] == 3
            # phase 1 counts files, then phase 2 counts the chunks it embeds (every file searchable by text)
            files = [p for p in progress if p[2] and p[2].endswith("chunks") and " files, " in p[2]]
            assert files and files[-1][0] == files[-1][1] == 4, progress
            embedding = [p for p in progress if p[2] and p[2].startswith("searchable by text; embedding ")]
            assert embedding and embedding[-1][0] == embedding[-1][1] > 0 and progress[-1] == embedding[-1], progress
            assert progress.index(files[-1]) < progress.index(embedding[0])
            assert await find(client, "snazzle_frobnicate") is None

            with (root / "src/geometry.py").open("a") as f:
                f.write("\n\ndef snazzle_frobnicate(n):\n    return n * 3\n")
            again = await ok(client, "reindex", target)
            assert again["done"] and again["files_changed"] == 1, again
            hit = await find(client, "snazzle_frobnicate")
            assert hit is not None and hit["path"] == "src/geometry.py"
            assert hit["start_line"] == line_of((root / "src/geometry.py").read_text(), "def snazzle_frobnicate")
    finally:
        engine.close_now()


# -- safety ----------------------------------------------------------------------------------------------------

SAFETY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("read_code", {"path": "../outside/secret.py"}, "no '..'"),
    ("related_code", {"path": "src/../../outside/secret.py", "line": 1}, "no '..'"),
    ("read_code", {"path": "{outside}"}, "outside the served repositories"),
    ("related_code", {"path": "{outside}", "line": 1}, "outside the served repositories"),
    ("read_code", {"path": "src/escape.py"}, "symlink out of the repository"),
    ("read_code", {"path": ".env"}, "secret-bearing"),
    ("read_code", {"path": "id_rsa"}, "secret-bearing"),
    ("related_code", {"path": ".env", "line": 1}, "secret-bearing"),
    ("reindex", {"path": "id_rsa"}, "secret-bearing"),
    ("read_code", {"path": "ignored.py"}, "not in the index"),
    ("related_code", {"path": "ignored.py", "line": 1}, "ignored.py is not in the index"),
    ("related_code", {"path": "src/missing.py", "line": 1}, "no such file"),
    ("related_code", {"path": "src/app.py", "line": 9999}, "past the end of src/app.py"),
    ("read_code", {"path": "src/missing.py"}, "not in the index"),
    ("search_code", {"query": "area", "limit": 0}, "search_code: limit must be at least 1, got 0"),
    ("search_code", {"query": "area", "limit": 101}, "search_code: limit must be at most 100, got 101"),
    ("search_code", {"query": "area", "mode": "bogus"}, "mode must be 'hybrid', 'semantic' or 'lexical', got 'bogus'"),
    ("search_code", {"query": "   "}, "query is empty"),
    ("search_code", {"query": "area", "repo": "elsewhere"}, "not a served repository"),
    ("search_code", {"query": "area", "paths": ["nowhere/**"]}, "no indexed file matches the filter"),
    ("search_code", {"query": "area", "group_by": "folder"}, "group_by"),
    ("read_code", {"path": "src/app.py", "start_line": 0}, "start_line"),
    ("read_code", {"path": "src/app.py", "start_line": 9999}, "no lines"),
    ("related_code", {"path": "src/app.py", "line": 0}, "line"),
    ("related_code", {"path": "src/app.py"}, "line"),
    ("read_code", {"path": "a" * 200_000}, "path too long"),  # no file can have it: no OSError, no traceback
    ("related_code", {"path": "src/" + "a" * 200_000, "line": 1}, "path too long"),
    ("read_code", {"path": "{outside}/" + "b/" * 100_000}, "path too long"),
    ("read_code", {"path": "src/" + "n" * 300 + ".py"}, "path too long"),  # one name past NAME_MAX
]


@pytest.mark.parametrize(("tool", "args", "message"), SAFETY_CASES)
async def test_bad_requests_are_tool_errors_and_the_server_keeps_answering(
    engine: Engine, repo: Path, tool: str, args: dict[str, Any], message: str
) -> None:
    async with Client(build_server(engine)) as client:
        await refused(client, repo, tool, args, message)


async def refused(client: Client, repo: Path, tool: str, args: dict[str, Any], message: str) -> None:
    """`tool`(`args`) is a tool error saying `message`, and the server answers the next call."""
    outside = str(repo.parent / "outside/secret.py")
    args = {k: v.format(outside=outside) if isinstance(v, str) else v for k, v in args.items()}
    result = await call(client, tool, args)
    assert result.is_error, result
    text = text_of(result)
    assert message in text and "leaked" not in text and "hunter2" not in text, text
    assert await find(client, "zorblax_triangle_area") is not None  # still answering


# -- read-only -------------------------------------------------------------------------------------------------


async def test_read_only_has_no_reindex_and_searches_an_existing_index(engine: Engine, repo: Path) -> None:
    reader = Engine(Settings(model=engine.model, index_dir=engine.folders[0].index_dir), [repo], read_only=True)
    try:
        async with Client(build_server(reader)) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS - {"reindex"}
            assert (await call(client, "reindex")).is_error
            hit = await find(client, "zorblax_triangle_area")
            assert hit is not None and hit["path"] == "src/geometry.py"
            assert (await ok(client, "search_code", {"query": "triangle area"}))["hits"]  # hybrid: loads the model
            assert (await ok(client, "index_status"))["read_only"] is True
    finally:
        reader.close_now()


# -- over stdio and HTTP (subprocesses) ------------------------------------------------------------------------

ENV = {k: v for k, v in os.environ.items() if k != TOKEN_ENV} | {"PYTHONPATH": str(REPO_ROOT)}


def mcp_args(root: Path, index_dir: Path, model: Path, *extra: str) -> list[str]:
    return ["-m", "lsp_server.cli", "mcp", str(root), "--index-dir", str(index_dir), "--model", str(model), *extra]


async def test_stdio(repo: Path, model: Path, tmp_path: Path) -> None:
    stream_errors: list[Exception] = []  # a line on stdout that is not a JSON-RPC message lands here

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            stream_errors.append(message)

    args = mcp_args(repo, tmp_path / "index", model)
    params = StdioServerParameters(command=sys.executable, args=args, env=ENV, cwd=str(tmp_path))
    async with Client(params, message_handler=on_message) as client:
        status = await wait_ready(client)
        assert status["repositories"][0]["files"] == 4
        hit = await find(client, "zorblax_triangle_area")
        assert hit is not None and hit["start_line"] == line_of(FILES["src/geometry.py"], "def zorblax")
        for tool, bad, message in SAFETY_CASES:  # tool errors; the process lives on
            await refused(client, repo, tool, bad, message)
    assert not stream_errors


@contextmanager
def http_server(
    tmp_path: Path, root: Path, model: Path, *extra: str, host: str = "127.0.0.1", env: Any = None
) -> Iterator[str]:
    """A ``semcode mcp --http`` subprocess; yields its URL once it accepts connections (on 127.0.0.1)."""
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    args = mcp_args(root, tmp_path / f"index-{port}", model, "--http", f"{host}:{port}", *extra)
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, *args], env=env or ENV, stdout=log, stderr=subprocess.STDOUT)
        try:
            end = time.monotonic() + 120
            while True:
                assert proc.poll() is None, f"the server exited: {log_path.read_text()}"
                assert time.monotonic() < end, f"the server never listened: {log_path.read_text()}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            stop(proc)


INIT_PARAMS = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}


async def raw_post(url: str, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        accept = {"Accept": "application/json, text/event-stream"}
        return await http.post(url, json=INITIALIZE, headers=accept | headers)


@asynccontextmanager
async def authorized(url: str, token: str) -> AsyncIterator[Client]:
    """The SDK client over HTTP, sending ``Authorization: Bearer <token>``."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_http_on_loopback_refuses_foreign_origins_and_hosts(repo: Path, model: Path, tmp_path: Path) -> None:
    with http_server(tmp_path, repo, model) as url:
        async with Client(url) as client:
            await wait_ready(client)
            hit = await find(client, "zorblax_triangle_area")
            assert hit is not None and hit["path"] == "src/geometry.py"
        port = url.split(":")[2].split("/")[0]
        for headers, refused in [
            ({"Origin": "http://evil.example"}, True),
            ({"Host": f"evil.example:{port}"}, True),
            ({"Origin": f"http://127.0.0.1:{port}"}, False),
            ({"Origin": f"http://localhost:{port}"}, False),
        ]:
            status = (await raw_post(url, headers)).status_code
            assert (400 <= status < 500) is refused, (headers, status)


async def test_http_with_a_token_needs_it(repo: Path, model: Path, tmp_path: Path) -> None:
    with http_server(tmp_path, repo, model, "--token", "secret") as url:
        for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "secret"}]:
            answer = await raw_post(url, headers)
            assert answer.status_code == 401 and "bearer token" in answer.text, headers
        async with authorized(url, "secret") as client:
            await wait_ready(client)
            assert await find(client, "zorblax_triangle_area") is not None


async def test_http_off_loopback_needs_a_token(repo: Path, model: Path, tmp_path: Path) -> None:
    args = mcp_args(repo, tmp_path / "index", model, "--http", f"0.0.0.0:{free_port()}")
    refused = subprocess.run([sys.executable, *args], env=ENV, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "--token" in refused.stderr, refused.stderr
    assert not (tmp_path / "index").exists()  # refused before anything started

    with http_server(tmp_path, repo, model, host="0.0.0.0", env=ENV | {TOKEN_ENV: "s3cret"}) as url:
        assert (await raw_post(url, {})).status_code == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert (await raw_post(url, bearer | {"Origin": "http://evil.example"})).status_code == 403  # DNS rebinding
        async with authorized(url, "s3cret") as client:
            assert (await ok(client, "index_status"))["repositories"][0]["root"] == str(repo.resolve())


# -- the Python API, as the README shows it ----------------------------------------------------------------------

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
API_EXAMPLE = README.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]  # as the README has it


async def test_python_api_example(repo: Path, model: Path, tmp_path: Path) -> None:
    code = (
        API_EXAMPLE.replace('"path/to/repo"', repr(str(repo)))
        .replace("index_dir=None", f"index_dir={str(tmp_path / 'index')!r}")
        .replace("model=None", f"model={str(model)!r}")
    )
    scope: dict[str, Any] = {}
    await asyncio.to_thread(exec, compile(code, "README example", "exec"), scope)  # blocking, as in a script
    assert scope["summary"].files_changed == 4 and scope["summary"].chunks_written > 0
    hit = scope["hit"]
    assert hit.repo == str(repo.resolve()) and hit.path in FILES and 0 <= hit.start_line <= hit.end_line
    assert hit.kind and hit.language == "python" and hit.score and hit.reasons and hit.text
    with semcode.open(repo, index_dir=tmp_path / "index", model=str(model)) as index:
        assert index.read("src/app.py", 10, 60) == "\n".join(APP_LINES[10:61])  # 0-based, inclusive
        assert any(h.symbol == "parse_config_file" for h in index.search("parse_config_file", mode="lexical"))
        assert all(h.path != "src/app.py" or h.symbol != "parse_config_file" for h in index.related("src/app.py", 41))
        assert index.status().repositories[0].files == 4
