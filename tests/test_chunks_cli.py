"""`semcode chunks` end to end: a real fixture repository on disk, the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILES: dict[str, bytes] = {
    ".gitignore": b"generated/\n*.log\n",
    "app/models.py": (
        b"import os\n\nLIMIT = 10\n\n\n"
        b"class Cache:\n"
        b'    """A tiny cache."""\n\n'
        b"    def get(self, key):\n        return self.data.get(key)\n\n"
        b"    def put(self, key, value):\n        self.data[key] = value\n\n\n"
        b"def load(path):\n    with open(path) as f:\n        return f.read()\n"
    ),
    "app/broken.py": b"def ok():\n    return 1\n\ndef broken(:\n    pass\n",
    "web/util.js": b"export function add(a, b) {\n  return a + b;\n}\n",
    "web/app.min.js": b"var a=1;" * 3000 + b"\n",
    "docs/guide.md": b"# Guide\n\nHow to use it.\n\n## Install\n\nRun the installer.\n",
    "generated/out.py": b"def generated():\n    pass\n",
    "debug.log": b"not indexed\n",
    ".env": b"SECRET=1\n",
    "logo.py": b"\x89PNG\r\n\x1a\n\x00\x00\x00",
    "latin1.py": b"name = '\xe9t\xe9'\n",
}


def make_repo(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    for rel, data in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "chunks", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_chunks_json_lists_chunks_and_skips(tmp_path):
    repo = make_repo(tmp_path / "repo")
    out = run(str(repo), "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    skipped = {r["path"]: r["skipped"] for r in rows if "skipped" in r}
    chunks = [r for r in rows if "skipped" not in r]
    for r in chunks:
        assert set(r) == {"path", "language", "start_line", "end_line", "symbol", "kind", "tokens", "lines"}
        assert r["lines"] == "0-based"
    assert skipped[".env"].startswith("secret-bearing file")
    assert skipped["logo.py"] == "binary file (NUL bytes)"
    assert skipped["web/app.min.js"].startswith("minified or generated")
    paths = {r["path"] for r in chunks}
    assert paths == {"app/models.py", "app/broken.py", "web/util.js", "docs/guide.md", "latin1.py"}
    symbols = {(r["path"], r["symbol"], r["kind"]) for r in chunks}
    assert ("app/models.py", "Cache.get", "method") in symbols
    assert ("app/models.py", "load", "function") in symbols
    assert ("web/util.js", "add", "function") in symbols
    assert ("app/broken.py", "ok", "function") in symbols  # a syntax error later in the file does not lose it
    assert all(r["tokens"] > 0 for r in chunks)


def test_chunks_text_output_and_explicit_files(tmp_path):
    repo = make_repo(tmp_path / "repo")
    out = run(str(repo / "app" / "models.py"), str(repo / "debug.log"), str(repo / "missing.py"))
    assert out.returncode == 0, out.stderr
    assert "app/models.py:9-10  python  method  Cache.get" in out.stdout  # 1-based lines in text output
    assert "debug.log: skipped: unsupported file type" in out.stdout
    assert "skipped: no such file" in out.stdout
    assert "chunks" in out.stderr and "skipped" in out.stderr


def test_chunks_help():
    out = run("--help")
    assert out.returncode == 0
    assert "--json" in out.stdout and "--include-secrets" in out.stdout
