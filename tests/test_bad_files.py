"""Hostile input, end to end: a corpus of bad files generated at test time (names that are not UTF-8, UTF-16/32
files, fifos and sockets, links and link loops, secrets by content, empty files) next to good ones, run through the
walk, `semcode chunks --json`, `semcode index`, `semcode status` and `semcode search` (real subprocesses, a real
LanceDB, the tiny random model), plus the watcher's and the editor's entry points (`update_files`,
`update_buffer`).

Expected: every good file is indexed, every bad one is skipped with its reason (or, for an unsupported type, dropped
silently like any such file), every output is valid UTF-8 and valid JSON, and no secret value appears anywhere.
"""

from __future__ import annotations

import json
import os
import random
import socket
import string
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from indexer.chunk_paths import chunk_paths
from indexer.discover import discover, escape_path, read_source
from indexer.index import IndexOptions, update_buffer, update_files
from indexer.secrets import INCLUDE_SECRETS_HINT
from indexer.store import Store
from indexer.types import FileChunks, Skip, SourceFile

ROOT = Path(__file__).resolve().parent.parent
SECRET_REASON = "contains a secret ({}); " + INCLUDE_SECRETS_HINT
SILENT = "(dropped silently)"


def tok(alphabet: str, n: int) -> str:
    rng = random.Random(f"{alphabet}/{n}")
    return "".join(rng.choice(alphabet) for _ in range(n))


AWS_ID = "AKIA" + tok(string.ascii_uppercase + "234567", 16)
AWS_SECRET = tok(string.ascii_letters + string.digits + "+/", 40)
GITHUB = "ghp_" + tok(string.ascii_letters + string.digits, 36)
PEM_BODY = tok(string.ascii_letters + string.digits + "+/", 64)
SECRET_VALUES = (AWS_ID, AWS_SECRET, GITHUB, PEM_BODY)


def write(data: str | bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return make


def raw_name(name: bytes, data: bytes = b"def hidden():\n    return 1\n") -> Callable[[Path], None]:
    """A file whose name is raw bytes (not UTF-8), below the case's folder."""

    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = os.fsencode(path.parent) + b"/" + name
        if b"/" in name:
            os.makedirs(target.rsplit(b"/", 1)[0], exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, data)
        os.close(fd)

    return make


def link(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def unix_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # the socket file stays after the socket is closed


@dataclass(frozen=True)
class Case:
    path: str  # as reported: names that are not UTF-8 escaped as \xNN
    make: Callable[[Path], None]  # given root / path (for raw names: a path in the right folder)
    reason: str | None  # the skip reason; None: indexed; SILENT: not reported at all


CORPUS: list[Case] = [
    Case("pkg/ok.py", write(b"def parse_config(path):\n    return open(path).read()\n"), None),
    Case("pkg/caf\u00e9.py", write(b"def brew_coffee():\n    return 'hot'\n"), None),  # non-ASCII, valid UTF-8
    Case("docs/keys.md", write("# Keys\n\nUse the example id `AKIAIOSFODNN7EXAMPLE` in docs.\n"), None),
    Case("bad\\xffname.py", raw_name(b"bad\xffname.py"), "file name is not valid UTF-8"),
    Case("caf\\xe9.py", raw_name(b"caf\xe9.py"), "file name is not valid UTF-8"),  # Latin-1
    Case("bad\\xfe.png", raw_name(b"bad\xfe.png"), SILENT),  # an unsupported type, as any other
    Case("dir\\xfe", raw_name(b"dir\xfe/inner.py"), "folder name is not valid UTF-8"),
    Case("enc/utf16.py", write("\ufeffdef wide_function():\n    return 'ü'\n".encode("utf-16-le")), None),
    Case("enc/utf16be.py", write("\ufeffdef big_endian():\n    return 2\n".encode("utf-16-be")), None),
    Case("enc/utf32.py", write("\ufeffdef very_wide():\n    return 4\n".encode("utf-32")), None),
    Case("enc/nobom16.py", write("def no_bom():\n    pass\n".encode("utf-16-le")), "binary file (NUL bytes)"),
    Case("empty.py", write(b""), "empty file"),
    Case("blank.md", write(b"\n\n   \n"), "empty file (whitespace only)"),
    Case("special/pipe.py", fifo, "not a regular file (fifo)"),
    Case("special/sock.py", unix_socket, "not a regular file (socket)"),
    Case("links/alias.py", link("../pkg/ok.py"), "symlink to pkg/ok.py (indexed at its real path)"),
    Case("links/self.py", link("self.py"), "symlink loop"),
    Case("links/ping.py", link("pong.py"), "symlink loop"),
    Case("links/pong.py", link("ping.py"), "symlink loop"),
    Case("links/dangling.py", link("missing.py"), "broken symlink"),
    Case("links/up", link(".."), "symlink loop (points to a folder that contains it)"),
    Case("config.py", write(f'import os\n\nID = "{AWS_ID}"\nKEY = "{AWS_SECRET}"\n'), "AWS access key, line 3"),
    Case("key.py", write(f'K = """\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n"""\n'), "private key, line 2"),
    Case("notes.md", write(f"# Setup\n\nexport GH_TOKEN={GITHUB}\n"), "GitHub token, line 3"),
    Case("settings.py", write(f'aws_secret_access_key = "{AWS_SECRET}"\n'), "AWS secret access key, line 1"),
]  # fmt: skip


def reason_of(case: Case) -> str | None:
    if case.reason is not None and "line" in case.reason:
        return SECRET_REASON.format(case.reason)
    return case.reason


def make_corpus(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    for case in CORPUS:
        target = root / (case.path if "\\x" not in case.path else "x")  # raw names: their folder is the root
        target.parent.mkdir(parents=True, exist_ok=True)
        case.make(target)
    return root


EXPECTED_SKIPS = {c.path: reason_of(c) for c in CORPUS if c.reason not in (None, SILENT)}
EXPECTED_INDEXED = {c.path for c in CORPUS if c.reason is None}


def count(texts: list[str]) -> list[int]:
    return [len(t.split()) + 2 for t in texts]


def test_the_walk_and_the_reader_on_the_corpus(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "repo")
    results = {r.path: r for _, r in chunk_paths([root], count, root=root)}
    assert {p: r.reason for p, r in results.items() if isinstance(r, Skip)} == EXPECTED_SKIPS
    assert {p for p, r in results.items() if isinstance(r, FileChunks)} == EXPECTED_INDEXED
    assert all(r.chunks for r in results.values() if isinstance(r, FileChunks))
    found = list(discover(root))
    assert found == sorted(found, key=lambda x: x.path if isinstance(x, Skip) else x)


def test_utf16_text_is_decoded(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "repo")
    src = read_source(root, "enc/utf16.py")
    assert isinstance(src, SourceFile) and src.text == "def wide_function():\n    return 'ü'\n"


def test_include_secrets_indexes_them(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "repo")
    from indexer.discover import DiscoverOptions

    options = DiscoverOptions(include_secrets=True)
    results = {r.path: r for _, r in chunk_paths([root], count, root=root, options=options)}
    assert all(isinstance(results[c.path], FileChunks) for c in CORPUS if c.reason and "line" in c.reason)


def test_escape_path() -> None:
    name = os.fsdecode(b"dir\xfe/bad\xffname.py")
    assert escape_path(name) == "dir\\xfe/bad\\xffname.py" == os.fsencode(name).decode("utf-8", "backslashreplace")
    assert escape_path("lone\ud800.py") == "lone\\ud800.py"  # not from a file name: JSON text from a client
    assert escape_path("caf\u00e9.py") == "caf\u00e9.py"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("real/a.py", Skip("alias.py", "symlink to real/a.py (indexed at its real path)")),
        ("chain.py", Skip("alias.py", "symlink to real/a.py (indexed at its real path)")),  # a link to a link
        ("real/empty.py", Skip("alias.py", "symlink to real/empty.py (skipped at its real path)")),
        ("gen/made.py", Skip("alias.py", "symlink to gen/made.py, which is ignored")),  # ignore rules hold
        ("node_modules/m/i.py", Skip("alias.py", "symlink to node_modules/m/i.py, which is ignored")),
        (".git/hooks/h.py", Skip("alias.py", "symlink to .git/hooks/h.py, which is ignored")),
        ("bin/tool", "alias.py"),  # no other path reaches this text: indexed at the link's path
    ],
)
def test_a_symlinked_file_is_indexed_once(tmp_path: Path, target: str, expected: str | Skip) -> None:
    tree = {"real/a.py": "x = 1\n", "real/empty.py": "", "bin/tool": "x = 2\n", ".gitignore": "gen/\n"}
    for rel, text in {"gen/made.py": "x", "node_modules/m/i.py": "x", ".git/hooks/h.py": "x", **tree}.items():
        write(text)(tmp_path / rel)
    (tmp_path / "chain.py").symlink_to("real/a.py")
    (tmp_path / "alias.py").symlink_to(target)
    got = list(discover(tmp_path))
    assert [x for x in got if (x.path if isinstance(x, Skip) else x) == "alias.py"] == [expected]
    assert "real/a.py" in got and Skip("real/empty.py", "empty file") in got
    src = read_source(tmp_path, "alias.py")  # reading follows the link (a named file is read as it is)
    assert isinstance(src, SourceFile) or src == Skip("alias.py", "empty file")


# ---------------------------------------------------------------------------------------------------------------
# the CLI, end to end


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lsp_server.cli", *args]
    return subprocess.run(cmd, capture_output=True, cwd=cwd, env=env, timeout=300)


def text_of(out: subprocess.CompletedProcess[bytes]) -> tuple[str, str]:
    """stdout and stderr, which must be valid UTF-8 and hold no secret value."""
    stdout, stderr = out.stdout.decode("utf-8"), out.stderr.decode("utf-8")
    for value in SECRET_VALUES:
        assert value not in stdout and value not in stderr
    return stdout, stderr


def json_lines(stdout: str) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    json.dumps(rows, ensure_ascii=False).encode("utf-8")  # no lone surrogate escaped into the JSON text
    return rows


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, model: Path) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp("bad")
    root = make_corpus(base / "repo")
    flags = ["--model", str(model), "--index-dir", str(base / "index")]
    out = cli("index", str(root), *flags)
    _, stderr = text_of(out)
    assert out.returncode == 0, stderr
    return root, flags


def test_cli_chunks_json_is_valid_utf8(tmp_path: Path, model: Path) -> None:
    root = make_corpus(tmp_path / "repo")
    out = cli("chunks", str(root), "--json", "--model", str(model))
    stdout, stderr = text_of(out)
    assert out.returncode == 0, stderr
    rows = json_lines(stdout)
    assert {str(r["path"]): r["skipped"] for r in rows if "skipped" in r} == EXPECTED_SKIPS
    assert {str(r["path"]) for r in rows if "skipped" not in r} == EXPECTED_INDEXED


def test_cli_index_then_status_lists_every_skip(indexed: tuple[Path, list[str]]) -> None:
    root, flags = indexed
    out = cli("status", "--json", "--repo", str(root), *flags)
    stdout, stderr = text_of(out)
    assert out.returncode == 0, stderr
    (status,) = json_lines(stdout)
    assert {s["path"]: s["reason"] for s in status["skippedFiles"]} == EXPECTED_SKIPS  # type: ignore[attr-defined]
    assert status["files"] == len(EXPECTED_INDEXED)


@pytest.mark.parametrize("query", ["private key", "AWS access key secret", "GH_TOKEN export setup", AWS_ID, GITHUB])
@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_cli_search_never_shows_a_secret(indexed: tuple[Path, list[str]], query: str, mode: str) -> None:
    root, flags = indexed
    out = cli("search", query, "--mode", mode, "--json", *flags, cwd=root)
    stdout, stderr = text_of(out)
    assert out.returncode == 0, stderr
    paths = {str(r["path"]) for r in json_lines(stdout)}
    assert paths <= EXPECTED_INDEXED
    assert paths or mode == "lexical"  # the vector side always answers


# ---------------------------------------------------------------------------------------------------------------
# the watcher's and the editor's entry points


def test_update_files_skips_a_name_that_is_not_utf8(tmp_path: Path, enc) -> None:
    root = make_corpus(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    bad = os.fsdecode(b"bad\xffname.py")  # as a watcher delivers it
    report = update_files(root, store, enc, enc.tokenizer.count, [bad, os.fsdecode(b"dir\xfe"), "pkg/ok.py"])
    assert report.files_changed == 1
    assert sorted(report.skipped, key=lambda s: s.path) == [
        Skip("bad\\xffname.py", "file name is not valid UTF-8"),
        Skip("dir\\xfe", "folder name is not valid UTF-8"),
    ]
    assert set(store.files(str(root.resolve()))) == {"pkg/ok.py"}


def test_update_buffer_refuses_secrets_and_bad_names(tmp_path: Path, enc) -> None:
    root = make_corpus(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)

    def buffer(path: str, text: str) -> list[Skip]:
        return update_buffer(root, store, enc, enc.tokenizer.count, path, text, IndexOptions()).skipped

    assert buffer("pkg/ok.py", f'def parse_config(path):\n    token = "{GITHUB}"\n') == [
        Skip("pkg/ok.py", SECRET_REASON.format("GitHub token, line 2"))
    ]
    assert buffer(os.fsdecode(b"bad\xffname.py"), "x = 1\n") == [
        Skip("bad\\xffname.py", "file name is not valid UTF-8")
    ]
    assert buffer("pkg/new.py", "def lone():\n    return '\ud800'\n") == []  # stored with U+FFFD
    assert {p: r.status for p, r in store.files(str(root.resolve())).items()} == {"pkg/new.py": "indexed"}


def test_reading_an_indexed_file_decodes_it_and_rechecks_it(tmp_path: Path, model: Path) -> None:
    """`Index.read` (MCP `read_code`) reads as indexing does: a UTF-16 file comes back as text, lines are numbered
    at "\\n" only (a form feed does not start a line), and a file that took a secret after it was indexed is
    refused, so the secret never reaches a chatbot."""
    import semcode

    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "wide.py").write_bytes("\ufeffdef wide_function():\n    return 'ü'\n".encode("utf-16-le"))
    (root / "feed.py").write_text("def a():\n    pass\n\x0c\ndef b():\n    return 2\n")
    (root / "later.py").write_text("def later():\n    return 1\n")
    with semcode.open(root, index_dir=tmp_path / "index", model=str(model)) as index:
        index.update()
        assert index.read("wide.py") == "def wide_function():\n    return 'ü'"
        assert index.read("feed.py", 3, 3) == "def b():"
        (root / "later.py").write_text(f'K = """\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n"""\n')
        with pytest.raises(FileNotFoundError, match=r"contains a secret \(private key, line 2\)") as e:
            index.read("later.py")
        assert PEM_BODY[:20] not in str(e.value)
