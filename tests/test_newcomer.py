"""A newcomer's first hour, replayed (issue 25): an unpacked sdist with no ``.git``, indexed into the user's cache
and used from a subfolder; a package whose code all sits in ``dist/``; a run cut short, then a search. Real `semcode`
subprocesses, a real LanceDB, the tiny random model (the messages do not depend on the model's quality).

Every assertion is about what the user reads: the right root without ``--repo``, which of path or line was wrong,
the folder the built-in excludes left out and the way back, and a search that says its index is partial.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.index import IndexOptions
from indexer.secrets import INCLUDE_SECRETS_HINT
from semcode.engine import Engine
from semcode.settings import Settings
from semcode.workspace import find_root

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "lsp_server.cli"]
IDNA = Path(__import__("idna").__file__).parent  # real third-party code, as an unpacked sdist would hold it
IDNA_FILES = ("__init__.py", "core.py", "codec.py", "compat.py", "intranges.py", "package_data.py")


@pytest.fixture
def home(tmp_path: Path, model: Path) -> dict[str, str]:
    """A user of their own: cache (the index registry), config and runtime folders under tmp_path; no daemon (its
    life cycle is tests/test_daemon.py's)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEMCODE_MODEL": str(model), "SEMCODE_NO_DAEMON": "1"}
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR"):
        (tmp_path / name).mkdir(mode=0o700)
        env[name] = str(tmp_path / name)
    return env


def semcode(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def unpacked_sdist(where: Path) -> Path:
    """idna's sources laid out as ``pip download --no-binary`` unpacks them: no .git anywhere above."""
    root = where / "idna-3.10"
    (root / "idna").mkdir(parents=True)
    for name in IDNA_FILES:
        shutil.copy(IDNA / name, root / "idna" / name)
    (root / "pyproject.toml").write_text('[project]\nname = "idna"\nversion = "3.10"\n')
    (root / "README.rst").write_text("Internationalized Domain Names in Applications (IDNA)\n")
    return root


def test_a_subfolder_of_an_indexed_sdist_finds_its_root(tmp_path: Path, home: dict[str, str]) -> None:
    root = unpacked_sdist(tmp_path)
    out = semcode(home, "index", str(root), "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    sub = root / "idna"

    found = semcode(home, "search", "encode a domain name", "--json", cwd=sub)  # no --repo: the registry knows
    assert found.returncode == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert "not indexed" not in found.stderr and hits and {h["repo"] for h in hits} == {str(root)}, found.stdout

    line = next(i for i, text in enumerate((sub / "core.py").read_text().splitlines(), 1) if text.startswith("def "))
    related = semcode(home, "related", f"core.py:{line}", cwd=sub)  # a path relative to the subfolder
    assert related.returncode == 0, related.stderr
    assert related.stdout.startswith("related to idna/core.py:"), related.stdout
    assert not list((tmp_path / "XDG_CACHE_HOME" / "semcode" / "indexes").glob("idna-[!3]*")), "a second index"

    named = semcode(home, "related", f"{sub / 'core.py'}:{line}", "--repo", str(root), cwd=tmp_path)  # from outside
    assert named.returncode == 0 and named.stdout.startswith("related to idna/core.py:"), named.stderr
    elsewhere = semcode(home, "related", f"{tmp_path}/x.py:1", "--repo", str(root), cwd=tmp_path)
    assert elsewhere.returncode == 2 and f"not inside the repository {root}" in elsewhere.stderr, elsewhere.stderr

    lines = len((sub / "core.py").read_text().splitlines())
    past = semcode(home, "related", f"core.py:{lines + 40}", cwd=sub)
    assert past.returncode == 2 and f"is past the end of idna/core.py, which has {lines} lines" in past.stderr
    missing = semcode(home, "related", "nosuch.py:3", cwd=sub)
    assert missing.returncode == 2 and "idna/nosuch.py: no such file in" in missing.stderr, missing.stderr


def test_find_root_prefers_the_indexed_root_but_never_crosses_a_git_boundary(tmp_path: Path, model: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        sdist = unpacked_sdist(tmp_path)
        assert find_root(sdist / "idna") == sdist / "idna"  # nothing indexed yet: the folder itself
        engine = Engine(Settings(model=str(model)), [sdist])
        try:
            engine.index_folder(engine.folders[0])
        finally:
            engine.close_now()
        assert find_root(sdist / "idna" / "core.py") == sdist
        repo = sdist / "vendored"
        (repo / ".git").mkdir(parents=True)
        assert find_root(repo) == repo  # a repository inside an indexed folder stays itself
        named = str(tmp_path / "shared-index")
        assert find_root(sdist / "idna", named) == sdist / "idna"  # that index does not hold it


def test_a_package_whose_code_is_all_in_dist_says_so(tmp_path: Path, home: dict[str, str]) -> None:
    root = tmp_path / "package"
    (root / "dist").mkdir(parents=True)
    (root / "package.json").write_text('{"name": "router", "main": "dist/index.js"}\n')
    (root / "README.md").write_text("# router\n\nA small router.\n")
    (root / "dist" / "index.js").write_text("export function route(path) {\n  return path.split('/');\n}\n")

    chunks = semcode(home, "chunks", str(root), cwd=tmp_path)
    assert chunks.returncode == 0, chunks.stderr
    assert "dist: skipped: folder left out by the built-in excludes" in chunks.stdout, chunks.stdout
    assert "add the line '!dist/' to .semcodeignore" in chunks.stdout

    index = semcode(home, "index", str(root), "--quiet", cwd=tmp_path)
    assert index.returncode == 0, index.stderr
    assert "no code found outside the folders the built-in excludes leave out (dist/)" in index.stderr, index.stderr

    (root / ".semcodeignore").write_text("!dist/\n")
    again = semcode(home, "index", str(root), "--quiet", cwd=tmp_path)
    assert again.returncode == 0 and "no code found" not in again.stderr, again.stderr
    assert "dist/index.js" in semcode(home, "search", "route", "--mode", "lexical", cwd=root).stdout


class SmallBatches(Engine):
    """Rows written every two files (a big repository's batches, at the size of this small one)."""

    def index_options(self, *, vector_index: bool = True, embed: bool = True) -> IndexOptions:
        return dataclasses.replace(super().index_options(vector_index=vector_index, embed=embed), batch_files=2)


def test_a_search_on_an_index_cut_short_says_it_is_partial(tmp_path: Path, home: dict[str, str], model: Path) -> None:
    root = unpacked_sdist(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", home["XDG_CACHE_HOME"])
        engine = SmallBatches(Settings(model=str(model)), [root])
        looked = iter(range(10**6))
        try:  # the real run, stopped after its fourth file (as Ctrl-C stops it: between files)
            report = engine.index_folder(engine.folders[0], cancelled=lambda: next(looked) >= 4)
        finally:
            engine.close_now()
    assert report.cancelled and 0 < report.files_changed < len(IDNA_FILES) + 2, report

    out = semcode(home, "search", "punycode", cwd=root / "idna")
    assert out.returncode == 0, out.stderr
    assert f"the index of {root} is partial: its last run was cut short" in out.stderr, out.stderr
    assert f"run `semcode index {root}` to finish it" in out.stderr

    resumed = semcode(home, "index", str(root), "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)[str(root)]
    seen, changed, unchanged = summary["files_seen"], summary["files_changed"], summary["files_unchanged"]
    assert changed + unchanged == seen and unchanged >= report.files_changed, summary  # the files done before count
    after = semcode(home, "search", "punycode", cwd=root)
    assert "partial" not in after.stderr, after.stderr


def test_the_secret_skip_names_the_flag_a_user_types(tmp_path: Path, home: dict[str, str]) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "main.py").write_text("def main():\n    return 0\n")
    (root / ".env").write_text("DATABASE_URL=postgres://u:p@h/db\n")
    out = semcode(home, "chunks", str(root), cwd=tmp_path)
    assert out.returncode == 0 and ".env: skipped:" in out.stdout and "--include-secrets" in out.stdout, out.stdout
    assert "--include-secrets" in INCLUDE_SECRETS_HINT
    assert ".env: skipped" not in semcode(home, "chunks", str(root), "--include-secrets", cwd=tmp_path).stdout


@pytest.mark.asyncio
async def test_mcp_started_on_the_indexed_sdist_tells_its_state_at_once(tmp_path: Path, home: dict[str, str]) -> None:
    from mcp import Client, StdioServerParameters

    from tests.test_mcp import call, text_of

    root = unpacked_sdist(tmp_path)
    assert semcode(home, "index", str(root), "--quiet", cwd=tmp_path).returncode == 0
    env = {k: v for k, v in home.items() if k != "SEMCODE_NO_DAEMON"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "lsp_server.cli", "mcp", str(root)], env=env)
    async with Client(params) as client:  # the index in the user's cache, as `semcode index` left it
        first = await call(client, "index_status")
    text, index = text_of(first), (first.structured_content or {})["index"]
    assert "index: new" not in text and "0% of files" not in text and " 0 chunks" not in text, text
    assert index["state"] in ("ready", "indexing") and index["files"] == len(IDNA_FILES) + 2, index


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "semcode").exists(), reason="needs the checkout's .venv (setup.sh)")
def test_install_puts_semcode_on_the_path(tmp_path: Path, home: dict[str, str]) -> None:
    bin_dir = tmp_path / "bin"
    env = {**home, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install.sh"), str(bin_dir)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert f"{bin_dir} is not on your PATH" in out.stdout and f'export PATH="{bin_dir}:$PATH"' in out.stdout
    assert (bin_dir / "semcode").resolve() == (ROOT / ".venv" / "bin" / "semcode").resolve()
    typed = subprocess.run(
        ["semcode", "--help"], capture_output=True, text=True, env={**env, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    )
    assert typed.returncode == 0 and "usage: semcode" in typed.stdout, typed.stderr
