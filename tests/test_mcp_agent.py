"""The MCP server as a coding agent meets it (issue 25): answers within a budget of tokens that page on, stable hit
ids that ``read_code`` expands, one-line argument errors, honest index states from the first answer, Ctrl-C over
HTTP, and ``semcode mcp --print-config`` for each client. The SDK's client against the real server in-process, over
stdio and over HTTP (subprocesses), on a real index with a tiny random ModernBERT; lexical search for exact
assertions. Lines are 1-based.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

from mcp_server.budget import estimate_tokens
from mcp_server.client_config import CLIENTS, launcher
from mcp_server.tools import build_server
from semcode.engine import Engine
from semcode.settings import Settings
from tests.ports import free_port
from tests.processes import stop
from tests.test_mcp import ENV, REPO_ROOT, call, line_of, mcp_args, ok, text_of, wait_ready

pytestmark = pytest.mark.timeout(300)

BODY = "".join(f"        total_{i} = self.weight * {i} + offset_{i % 7}\n" for i in range(200))
BIG = (
    "import os\n\n\n"
    "class Frobnicator:\n"
    "    '''Frobnicates.'''\n\n"
    "    def small(self):\n"
    "        return 1\n\n"
    f"    def huge_frobnicate(self, offset_0):\n{BODY}        return total_1\n\n"
    "    def quux_finish(self):\n"
    "        return 2\n\n\n"
    "def top_level():\n"
    "    return 3\n"
)
MANY = "".join(
    f"def frobnicate_{i}(x):\n    '''frobnicate number {i}'''\n"
    + "".join(f"    x = x * {j} + frobnicate_helper({i})\n" for j in range(10))
    + "    return x\n\n\n"
    for i in range(60)
)
LONG = "".join(f"value_{i} = {i}  # a line of the long file\n" for i in range(1500))
SKIPPED = {f"assets/blank_{i:03}.py": "   \n" for i in range(150)}
FILES = {"src/big.py": BIG, "src/many.py": MANY, "src/long.py": LONG, **SKIPPED}
SMALL = 1_000  # the smallest budget a call may ask for


def make_repo(base: Path) -> Path:
    root = base / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("mcp_agent"))


@pytest.fixture(scope="module")
def engine(repo: Path, model: Path) -> Iterator[Engine]:
    engine = Engine(Settings(model=str(model), index_dir=str(repo.parent / "index")), [repo])
    engine.update()
    yield engine
    engine.close_now()


def within(result: CallToolResult, budget: int) -> None:
    """Both renderings of an answer, its text and its structured content, fit `budget` estimated tokens."""
    assert not result.is_error, text_of(result)
    data = json.dumps(result.structured_content, ensure_ascii=False)
    assert estimate_tokens(text_of(result)) <= budget and estimate_tokens(data) <= budget, (len(data), budget)


# -- 1. results that fit an agent ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("search_code", {"query": "frobnicate", "mode": "lexical", "limit": 60}),
        ("related_code", {"path": "src/many.py", "line": 3, "limit": 40}),
    ],
)
@pytest.mark.asyncio
async def test_a_cut_answer_pages_through_every_result(engine: Engine, tool: str, args: dict[str, Any]) -> None:
    async with Client(build_server(engine)) as client:
        whole = await ok(client, tool, args | {"max_tokens": 100_000})
        assert whole["next_offset"] is None and whole["total"] == len(whole["hits"]) > 20
        seen: list[dict[str, Any]] = []
        offset, pages = 0, 0
        while True:
            result = await call(client, tool, args | {"max_tokens": SMALL, "offset": offset})
            within(result, SMALL)
            page, pages = result.structured_content or {}, pages + 1
            assert page["offset"] == offset and page["hits"] and page["total"] == whole["total"]
            seen += page["hits"]
            if page["next_offset"] is None:
                break
            assert page["next_offset"] == offset + len(page["hits"])
            assert f"call {tool} again with the same arguments and offset={page['next_offset']}" in text_of(result)
            offset = page["next_offset"]
    assert pages > 3 and [h["id"] for h in seen] == [h["id"] for h in whole["hits"]]


@pytest.mark.parametrize(
    ("args", "first", "last"),
    [
        ({"path": "src/long.py"}, 1, len(LONG.splitlines())),
        ({"id": "{huge}"}, line_of(BIG, "    def huge_frobnicate"), line_of(BIG, "        return total_1")),
    ],
)
@pytest.mark.asyncio
async def test_read_code_cut_to_the_budget_reads_on(
    engine: Engine, args: dict[str, Any], first: int, last: int
) -> None:
    async with Client(build_server(engine)) as client:
        args = {k: v.format(huge=await hit_id_of(client, "Frobnicator.huge_frobnicate", 3)) for k, v in args.items()}
        lines: list[str] = []
        start, pages = None, 0
        while True:
            result = await call(
                client, "read_code", args | {"max_tokens": SMALL, **({"start_line": start} if start else {})}
            )
            within(result, SMALL)
            read, pages = result.structured_content or {}, pages + 1
            assert read["start_line"] == (start or first)
            lines += read["text"].split("\n")
            if not read["truncated"]:
                break
            start = read["end_line"] + 1
            assert f"start_line={start})" in text_of(result)  # how to read on, with the same path or id
    assert pages > 2 and read["end_line"] == last
    assert lines == FILES["src/" + read["path"].rsplit("/", 1)[-1]].splitlines()[first - 1 : last]


@pytest.mark.asyncio
async def test_index_status_lists_every_skipped_file_page_by_page(engine: Engine) -> None:
    async with Client(build_server(engine)) as client:
        listed: list[str] = []
        offset = 0
        while True:
            result = await call(client, "index_status", {"offset": offset, "max_tokens": SMALL})
            within(result, SMALL)
            status = result.structured_content or {}
            (repository,) = status["repositories"]
            assert repository["skipped_total"] == len(SKIPPED)
            listed += [s["path"] for s in repository["skipped"]]
            if status["next_offset"] is None:
                break
            assert f"offset={status['next_offset']}" in text_of(result)
            offset = status["next_offset"]
    assert offset > 0 and sorted(listed) == sorted(SKIPPED)


@pytest.mark.asyncio
async def test_the_server_option_sets_the_budget_over_stdio(repo: Path, model: Path, tmp_path: Path) -> None:
    args = mcp_args(repo, tmp_path / "index", model, "--max-tokens", str(SMALL))
    params = StdioServerParameters(command=sys.executable, args=args, env=ENV, cwd=str(tmp_path))
    async with Client(params) as client:
        for tool in (await client.list_tools()).tools:  # each description states the budget
            assert f"max_tokens (default {SMALL:,}," in (tool.description or ""), tool.name
            assert "max_tokens" in tool.input_schema["properties"], tool.name
        await wait_ready(client)
        for tool, call_args in [
            ("search_code", {"query": "frobnicate", "mode": "lexical", "limit": 60}),
            ("related_code", {"path": "src/many.py", "line": 3, "limit": 60}),
            ("read_code", {"path": "src/long.py"}),
            ("index_status", {}),
        ]:
            result = await call(client, tool, call_args)
            within(result, SMALL)
            assert "offset=" in text_of(result) or "start_line=" in text_of(result), tool  # cut, and says so
        reindexed = await call(client, "reindex", {})
        within(reindexed, SMALL)
    refused = subprocess.run(
        [sys.executable, *mcp_args(repo, tmp_path / "index", model, "--max-tokens", "10")],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and "--max-tokens must be from 1,000 to 100,000, got 10" in refused.stderr


# -- 2. stable hit ids -----------------------------------------------------------------------------------------------


async def hit_id_of(client: Client, symbol: str, nth: int = 0) -> str:
    """The id of the `nth` lexical hit (in line order) whose symbol is `symbol`."""
    found = await ok(client, "search_code", {"query": symbol.rsplit(".")[-1], "mode": "lexical", "limit": 100})
    hits = sorted((h for h in found["hits"] if h["symbol"] == symbol), key=lambda h: h["start_line"])
    return str(hits[nth]["id"])


@pytest.mark.asyncio
async def test_hit_ids_are_stable_and_expand_to_the_definition_or_its_parent(engine: Engine) -> None:
    async with Client(build_server(engine)) as client:
        lexical = await ok(client, "search_code", {"query": "huge_frobnicate", "mode": "lexical", "limit": 50})
        hybrid = await ok(client, "search_code", {"query": "huge_frobnicate", "limit": 50})
        ids = {(h["path"], h["start_line"], h["end_line"]): h["id"] for h in lexical["hits"]}
        assert all(ids.get((h["path"], h["start_line"], h["end_line"]), h["id"]) == h["id"] for h in hybrid["hits"])
        assert all(h["id"].startswith(f"{h['path']}:{h['start_line']}-{h['end_line']}@") for h in lexical["hits"])
        piece = await hit_id_of(client, "Frobnicator.huge_frobnicate", 2)  # a piece in the middle of the method
        assert piece in text_of(
            await call(client, "search_code", {"query": "huge_frobnicate", "mode": "lexical", "limit": 50})
        )

        definition = await ok(client, "read_code", {"id": piece})  # expand="definition" by default
        first, last = line_of(BIG, "    def huge_frobnicate"), line_of(BIG, "        return total_1")
        assert (definition["start_line"], definition["end_line"]) == (first, last)
        assert definition["text"].split("\n") == BIG.splitlines()[first - 1 : last]
        assert definition["symbol"] == "Frobnicator.huge_frobnicate" and definition["id"] == piece

        own = await ok(client, "read_code", {"id": piece, "expand": "hit"})
        assert piece.startswith(f"src/big.py:{own['start_line']}-{own['end_line']}@") and first < own["start_line"]

        parent = await ok(client, "read_code", {"id": piece, "expand": "parent"})
        assert (parent["start_line"], parent["end_line"]) == (
            line_of(BIG, "class Frobnicator"),
            line_of(BIG, "        return 2"),
        )
        assert parent["symbol"] == "Frobnicator" and parent["kind"] == "class"
        again = await ok(client, "read_code", {"id": parent["id"]})  # the parent's own id: its definition
        assert (again["start_line"], again["end_line"]) == (parent["start_line"], parent["end_line"])

        origin = (await ok(client, "related_code", {"path": "src/big.py", "line": first + 100}))["origin"]
        assert origin["id"].startswith(f"src/big.py:{origin['start_line']}-{origin['end_line']}@")
        expanded = await ok(client, "read_code", {"id": origin["id"]})
        assert (expanded["start_line"], expanded["end_line"]) == (first, last)

        for args, message in [
            ({"id": await hit_id_of(client, "top_level"), "expand": "parent"}, "is top-level: it has no parent"),
            ({"id": "src/big.py:no-id"}, "is not a hit id (expected PATH:FIRST-LAST@HASH"),
            ({"id": "src/big.py:1-3@0123abcd"}, "search again"),
            ({"id": "../outside.py:1-3@0123abcd"}, "no '..'"),
            ({"id": piece, "path": "src/big.py"}, "give path"),
            ({}, "give path"),
        ]:
            result = await call(client, "read_code", args)
            assert result.is_error and message in text_of(result), (args, text_of(result))


@pytest.mark.asyncio
async def test_a_hit_id_goes_stale_when_its_file_changes(tmp_path: Path, model: Path) -> None:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src/big.py").write_text(BIG)
    engine = Engine(Settings(model=str(model), index_dir=str(tmp_path / "index")), [root])
    try:
        engine.update()
        async with Client(build_server(engine)) as client:
            old = await hit_id_of(client, "Frobnicator.quux_finish")
            assert not (await call(client, "read_code", {"id": old})).is_error
            (root / "src/big.py").write_text("# a new first line\n" + BIG)
            await ok(client, "reindex", {})
            stale = await call(client, "read_code", {"id": old})
            assert stale.is_error and "search again for a current id" in text_of(stale)
            new = await hit_id_of(client, "Frobnicator.quux_finish")
            assert new != old and (await ok(client, "read_code", {"id": new}))["text"].startswith(
                "    def quux_finish("
            )
    finally:
        engine.close_now()


# -- 4. messages -----------------------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ("search_code", {"query": "x", "limit": 500}, "search_code: limit must be at most 100, got 500"),
    ("search_code", {"query": "x", "limit": "many"}, "search_code: limit should be a valid integer"),
    ("search_code", {"limit": 5}, "search_code: query is required"),
    ("search_code", {"query": "x", "max_tokens": 10}, "search_code: max_tokens must be at least 1000, got 10"),
    ("related_code", {"path": "src/many.py", "line": 0}, "related_code: line must be at least 1, got 0"),
    ("read_code", {"id": "x", "expand": "class"}, "read_code: expand must be 'definition', 'parent' or 'hit'"),
    ("index_status", {"offset": -1}, "index_status: offset must be at least 0, got -1"),
]


@pytest.mark.asyncio
async def test_bad_arguments_are_one_clear_line_over_stdio(engine: Engine, repo: Path, model: Path) -> None:
    args = mcp_args(repo, Path(engine.folders[0].index_dir), model, "--read-only")
    params = StdioServerParameters(command=sys.executable, args=args, env=ENV, cwd=str(repo.parent))
    async with Client(params) as client:
        for tool, bad, message in BAD_ARGUMENTS:
            result = await call(client, tool, bad)
            text = text_of(result)
            assert result.is_error and text.startswith(message) and "\n" not in text, text
            assert "pydantic" not in text and "validation error" not in text and "type=" not in text, text


@pytest.mark.asyncio
async def test_first_answers_after_start_tell_the_truth(repo: Path, model: Path, tmp_path: Path) -> None:
    """An index complete on disk: the server's very first answers (no waiting) give its counts, never "new", "0
    chunks" or "0% of files looked at", and index_status's overall state is its repositories'."""
    builder = Engine(Settings(model=str(model), index_dir=str(tmp_path / "index")), [repo])
    try:
        builder.update()
        files, chunks = builder.folders[0].files, builder.folders[0].chunks
    finally:
        builder.close_now()
    params = StdioServerParameters(
        command=sys.executable, args=mcp_args(repo, tmp_path / "index", model), env=ENV, cwd=str(tmp_path)
    )
    async with Client(params) as client:
        first = await call(client, "index_status")
        found = await call(client, "search_code", {"query": "frobnicate", "mode": "lexical", "limit": 3})
    for result in (first, found):
        index, text = (result.structured_content or {})["index"], text_of(result)
        assert index["state"] in ("ready", "indexing") and (index["files"], index["chunks"]) == (files, chunks), index
        assert "0% of files" not in text and " 0 chunks" not in text and "not indexed" not in text, text
    status = first.structured_content or {}
    (repository,) = status["repositories"]
    assert status["index"]["state"] == repository["state"] and "index: new" not in text_of(first)
    assert f"index: {repository['state']}" in text_of(first) and f"{repository['state']}, {files} files" in text_of(
        first
    )


@pytest.mark.asyncio
async def test_an_incomplete_index_says_so_in_every_answer(tmp_path: Path, repo: Path, model: Path) -> None:
    builder = Engine(Settings(model=str(model), index_dir=str(tmp_path / "index")), [repo])
    try:
        builder.update()
        folder = builder.folders[0]
        store = builder.store(folder)
        assert store is not None
        store.begin_run(folder.repo)  # as a run cut short by Ctrl-C or a kill leaves it
    finally:
        builder.close_now()
    args = mcp_args(repo, tmp_path / "index", model, "--read-only")
    params = StdioServerParameters(command=sys.executable, args=args, env=ENV, cwd=str(tmp_path))
    async with Client(params) as client:
        answers = [
            await call(client, "search_code", {"query": "frobnicate", "mode": "lexical", "limit": 3}),
            await call(client, "related_code", {"path": "src/many.py", "line": 3, "limit": 3}),
            await call(client, "read_code", {"path": "src/big.py", "start_line": 1, "end_line": 3}),
            await call(client, "index_status"),
        ]
    for result in answers:
        notes = (result.structured_content or {})["index"]["notes"]
        assert notes and all(note in text_of(result) for note in notes), text_of(result)
        assert "cut short" in " ".join(notes) and str(repo.resolve()) in " ".join(notes)


def test_http_server_says_interrupted_and_exits_130_on_ctrl_c(repo: Path, model: Path, tmp_path: Path) -> None:
    port = free_port()
    args = mcp_args(repo, tmp_path / "index", model, "--http", f"127.0.0.1:{port}")
    proc = subprocess.Popen([sys.executable, *args], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < end, "the server never listened"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)

        async def ask() -> dict[str, Any]:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                return await ok(client, "index_status")

        assert asyncio.run(asyncio.wait_for(ask(), 120))["repositories"]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 130, err.decode()
    assert err.decode().rstrip().endswith("semcode: interrupted") and "Traceback" not in err.decode(), err.decode()


# -- 3. semcode mcp --print-config CLIENT -----------------------------------------------------------------------------


def server_of(client: str, text: str) -> dict[str, Any]:
    """The semcode server entry of `client`'s snippet, parsed as that client reads its file, with the keys its
    documentation names."""
    if client == "codex":  # ~/.codex/config.toml: [mcp_servers.NAME] with command, args
        entry: dict[str, Any] = tomllib.loads(text)["mcp_servers"]["semcode"]
        assert isinstance(entry["startup_timeout_sec"], int)
        return entry
    if client == "continue":  # .continue/mcpServers/*.yaml: a block with name, version, schema, mcpServers: [...]
        block = yaml.safe_load(text)
        assert block["schema"] == "v1" and block["name"] and block["version"]
        (entry,) = block["mcpServers"]
        assert entry["name"] == "semcode"
        return dict(entry)
    data = json.loads(text)
    if client == "vscode":  # .vscode/mcp.json: "servers", each with "type": "stdio"
        entry = data["servers"]["semcode"]
        assert entry["type"] == "stdio"
        return dict(entry)
    entry = data["mcpServers"]["semcode"]  # .mcp.json (Claude Code, with "type"), .cursor/mcp.json
    assert client == "cursor" or entry["type"] == "stdio"
    return dict(entry)


WHERE = {
    "claude-code": ".mcp.json",
    "codex": "~/.codex/config.toml",
    "cursor": ".cursor/mcp.json",
    "vscode": ".vscode/mcp.json",
    "continue": ".continue/mcpServers/semcode.yaml",
}


@pytest.mark.parametrize("client", list(WHERE))
def test_print_config_gives_each_clients_documented_snippet(client: str, repo: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "lsp_server.cli", "mcp", str(repo), "--print-config", client, "--read-only"]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entry = server_of(client, done.stdout)
    command = Path(entry["command"])
    assert command.is_absolute() and command.is_file() and command.name == "semcode", entry
    assert command.parent == Path(sys.executable).parent  # this installation's, beside its Python
    assert entry["args"] == ["mcp", str(repo), "--read-only"]
    assert WHERE[client] in done.stderr


@pytest.mark.asyncio
async def test_a_printed_config_starts_a_working_server(engine: Engine, repo: Path, model: Path) -> None:
    index_dir = engine.folders[0].index_dir
    cmd = [sys.executable, "-m", "lsp_server.cli", "mcp", str(repo), "--print-config", "claude-code",
           "--index-dir", index_dir, "--model", str(model), "--read-only", "--max-tokens", "2000"]  # fmt: skip
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0 and "claude mcp add-json semcode " in done.stderr, done.stderr
    entry = server_of("claude-code", done.stdout)
    assert entry["args"][-7:] == [
        "--index-dir",
        index_dir,
        "--model",
        str(model),
        "--read-only",
        "--max-tokens",
        "2000",
    ]
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=ENV, cwd="/")
    async with Client(params) as client:  # started as the client would start it: from elsewhere
        hit = (await ok(client, "search_code", {"query": "top_level", "mode": "lexical", "limit": 1}))["hits"][0]
        assert hit["symbol"] == "top_level" and hit["path"] == "src/big.py"
        assert "max_tokens (default 2,000," in str((await client.list_tools()).tools[0].description)


README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
AGENTS = README.split("### Agents: answers within a budget", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("client", list(WHERE))
def test_the_readme_shows_each_clients_snippet(client: str) -> None:
    shown = AGENTS.split(f"`--print-config {client}`", 1)[1].split("```", 2)[1].split("\n", 1)[1]
    expected = CLIENTS[client].snippet("/home/you/semcode/.venv/bin/semcode", ["mcp", "/path/to/repo"])
    assert shown == expected.rstrip("\n") + "\n" and WHERE[client] in AGENTS.split(f"`--print-config {client}`")[1]
    assert server_of(client, shown)["args"] == ["mcp", "/path/to/repo"]


def test_without_a_semcode_script_the_config_runs_this_python(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/python").symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin/python"))
    assert launcher() == [str(tmp_path / "bin/python"), "-m", "lsp_server.cli"]  # not resolved: a venv's own python
    refused = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "mcp", str(tmp_path), "--print-config", "cursor", "--max-tokens", "5"],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and "--max-tokens must be from 1,000" in refused.stderr and not refused.stdout
