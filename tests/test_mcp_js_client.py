"""``semcode mcp`` against an MCP client from outside the Python SDK: the official TypeScript SDK
(``@modelcontextprotocol/sdk``, pinned in tests/mcp_client_js/package.json), used as a new user would, over stdio
and over streamable HTTP. The client is tests/mcp_client_js/check.mjs: it lists the tools, waits for the index, runs
a lexical search for a known function, reads the hit (by its lines and by its id), checks that an argument out of range
is a one-line error, and prints one JSON line.

Needs Node.js 20+ and npm on PATH (as scripts/test_extension.sh does); the npm packages are installed here with
``npm ci`` (from package-lock.json, through npm's own cache, ~/.npm) when tests/mcp_client_js/node_modules lacks the
pinned version. No network is needed once they are installed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port
from tests.processes import stop

pytestmark = pytest.mark.timeout(420)

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIR = REPO_ROOT / "tests/mcp_client_js"
FILES = {
    "pkg/geometry.py": (
        "import math\n\n\n"
        "def zorblax_triangle_area(a, b, c):\n"
        "    s = (a + b + c) / 2\n"
        "    return math.sqrt(s * (s - a) * (s - b) * (s - c))\n"
    ),
    "pkg/text.py": "def flurbish_words(text):\n    return [w for w in text.split() if w]\n",
    "main.py": "from pkg.text import flurbish_words\n\nprint(flurbish_words('a b c'))\n",
}
QUERY, EXPECT = "zorblax_triangle_area", "pkg/geometry.py:4"  # the function, its file and 1-based first line
TOOLS = ["index_status", "read_code", "reindex", "related_code", "search_code"]
ENV = {k: v for k, v in os.environ.items() if k != "SEMCODE_MCP_TOKEN"}


@pytest.fixture(scope="module")
def check_mjs() -> Path:
    """check.mjs, with its npm dependencies installed (``npm ci`` when node_modules lacks the pinned SDK)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH: this test needs Node.js 20+ and npm (https://nodejs.org)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 20:
        pytest.fail(f"this test needs Node.js 20 or newer (found: {version or 'no version'})")
    pinned = json.loads((CLIENT_DIR / "package.json").read_text())["dependencies"]["@modelcontextprotocol/sdk"]
    installed = CLIENT_DIR / "node_modules/@modelcontextprotocol/sdk/package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != pinned:
        npm = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        done = subprocess.run(npm, cwd=CLIENT_DIR, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci in {CLIENT_DIR} failed:\n{done.stdout}{done.stderr}"
    return CLIENT_DIR / "check.mjs"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp_js") / "repo"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def semcode_mcp(root: Path, index_dir: Path, model: Path, *extra: str) -> list[str]:
    """The server's command line (the venv's Python, as ``semcode mcp`` runs it)."""
    args = [str(root), "--index-dir", str(index_dir), "--model", str(model), *extra]
    return [sys.executable, "-m", "lsp_server.cli", "mcp", *args]


def run_check(check_mjs: Path, *args: str) -> dict[str, Any]:
    """Run check.mjs (from the repository root: a stdio server it starts runs there too); its JSON summary."""
    cmd = ["node", str(check_mjs), "--query", QUERY, "--expect", EXPECT, "--timeout", "150", *args]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"check.mjs failed (exit {done.returncode}):\n{done.stderr}{done.stdout}"
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def assert_summary(summary: dict[str, Any], transport: str) -> None:
    assert summary["ok"] is True and summary["transport"] == transport
    assert summary["server"].startswith("semcode ")
    assert summary["tools"] == TOOLS
    assert summary["files"] == len(FILES)
    assert summary["hit"] == "pkg/geometry.py:4-6" and summary["symbol"] == QUERY
    assert summary["read_lines"] == 3
    assert summary["id"].startswith("pkg/geometry.py:4-6@") and summary["id_read"] == "pkg/geometry.py:4-6"
    assert summary["bad_limit"] == "search_code: limit must be at most 100, got 500"


def test_stdio(check_mjs: Path, repo: Path, model: Path, tmp_path: Path) -> None:
    summary = run_check(check_mjs, "--stdio", *semcode_mcp(repo, tmp_path / "index", model))
    assert_summary(summary, "stdio")


@contextmanager
def http_server(cmd: list[str], port: int, log_path: Path) -> Iterator[None]:
    """The server as a subprocess, until it accepts connections on 127.0.0.1:`port`; always ended afterwards."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT)
        try:
            end = time.monotonic() + 120
            while True:
                assert proc.poll() is None, f"the server exited: {log_path.read_text()}"
                assert time.monotonic() < end, f"the server never listened: {log_path.read_text()}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            yield
        finally:
            stop(proc)


def test_http_with_a_token(check_mjs: Path, repo: Path, model: Path, tmp_path: Path) -> None:
    port, token = free_port(), "js-client-token"
    cmd = semcode_mcp(repo, tmp_path / "index", model, "--http", f"127.0.0.1:{port}", "--token", token)
    with http_server(cmd, port, tmp_path / "server.log"):
        summary = run_check(check_mjs, "--token", token, "--http", f"http://127.0.0.1:{port}/mcp")
    assert_summary(summary, "http")
