"""Tests for indexer/discover.py: real temporary folders, no mocks. Most go through `check(tree, expected)`."""

from __future__ import annotations

import os
import random
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.discover import (
    DiscoverOptions,
    IgnoreFile,
    PlainIgnoreFile,
    discover,
    discover_paths,
    excluded_reason,
    read_source,
)
from indexer.secrets import INCLUDE_SECRETS_HINT
from indexer.types import Skip, SourceFile

Tree = dict[str, str | bytes]


def make_tree(root: Path, tree: Tree) -> Path:
    for rel, content in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def check(root: Path, tree: Tree, expected: list[str | Skip], **options: object) -> None:
    make_tree(root, tree)
    got = list(discover(root, DiscoverOptions(**options)))  # type: ignore[arg-type]
    assert got == expected
    assert got == sorted(got, key=lambda x: x.path if isinstance(x, Skip) else x)


# ---------------------------------------------------------------------------------------------------------------
# ignore rules


def test_plain_tree_sorted_and_unknown_types_dropped(tmp_path: Path) -> None:
    check(
        tmp_path,
        {
            "b.py": "x",
            "a/z.go": "x",
            "a.py": "x",
            "a/b/c.rs": "x",
            "README.md": "x",
            "Makefile": "x",
            "logo.png": b"\x89PNG",
            "data.bin": b"\x00",
            "notes.unknownext": "x",
        },
        ["Makefile", "README.md", "a.py", "a/b/c.rs", "a/z.go", "b.py"],
    )


def test_nested_gitignore_negation_and_dir_only(tmp_path: Path) -> None:
    check(
        tmp_path,
        {
            ".gitignore": "*.log.py\ngen/\n# comment\n\n/root_only.py\n",
            "root_only.py": "x",
            "keep.py": "x",
            "debug.log.py": "x",
            "gen/x.py": "x",  # dir-only pattern excludes the folder
            "src/gen.py": "x",  # ...but not a file of that name
            "src/root_only.py": "x",  # anchored pattern: only at the root
            "src/.gitignore": "*.ts\n!keep.ts\nlocal/\n",
            "src/a.ts": "x",
            "src/keep.ts": "x",
            "src/local/x.py": "x",
            "local/x.py": "x",  # src/.gitignore's patterns are relative to src/
            "src/sub/b.ts": "x",  # nested file under src: '*.ts' (no slash) matches at any depth below
            "src/sub/.gitignore": "!b.ts\n",  # deeper negation re-includes
            "other/debug.log.py": "x",
        },
        ["keep.py", "local/x.py", "src/gen.py", "src/keep.ts", "src/root_only.py", "src/sub/b.ts"],
    )


def test_whitelist_style_gitignore(tmp_path: Path) -> None:
    # git semantics: '!*/' re-includes folders, so only *.py files anywhere survive
    check(
        tmp_path,
        {".gitignore": "*\n!*/\n!*.py\n", "a.py": "x", "a.md": "", "src/b.py": "x", "src/b.txt": "", "src/c/d.py": "x"},
        ["a.py", "src/b.py", "src/c/d.py"],
    )


def test_negation_cannot_reinclude_inside_ignored_folder(tmp_path: Path) -> None:
    check(tmp_path, {".gitignore": "gen/\n!gen/keep.py\n", "gen/keep.py": "x", "x.py": "x"}, ["x.py"])


def test_git_info_exclude_and_semcodeignore(tmp_path: Path) -> None:
    check(
        tmp_path,
        {
            ".git/info/exclude": "private.py\n",
            ".git/config.py": "x",  # never inside .git
            ".semcodeignore": "fixtures/\n",
            ".gitignore": "*.gen.py\n",
            "pkg/.semcodeignore": "!keep.gen.py\nhuge.py\n",
            "private.py": "x",
            "fixtures/a.py": "x",
            "pkg/keep.gen.py": "x",
            "pkg/other.gen.py": "x",
            "pkg/huge.py": "x",
            "pkg/ok.py": "x",
            "pkg/private.py": "x",
        },
        ["pkg/keep.gen.py", "pkg/ok.py"],
    )


def test_extra_excludes_from_options(tmp_path: Path) -> None:
    check(
        tmp_path,
        {".gitignore": "*.md\n", "a.py": "x", "docs/x.py": "x", "README.md": "x", "CHANGES.md": "x"},
        ["CHANGES.md", "a.py"],
        extra_excludes=("docs/", "!CHANGES.md"),
    )


@pytest.mark.parametrize("folder", ["node_modules", ".venv", "venv", "dist", "build", "target", "vendor"])
def test_default_excluded_dirs_pruned_and_reported(tmp_path: Path, folder: str) -> None:
    # they may hold the code itself (an npm package's dist/): never dropped in silence, and the way back is named
    reported = [Skip(folder, excluded_reason(folder)), Skip(f"src/{folder}", excluded_reason(f"src/{folder}"))]
    walk_order = sorted([*reported, "src/z.py"], key=lambda x: x.path if isinstance(x, Skip) else x)
    check(tmp_path, {f"{folder}/x.py": "x", f"src/{folder}/y.py": "x", "src/z.py": "x"}, walk_order)
    assert f"add the line '!src/{folder}/' to .semcodeignore" in excluded_reason(f"src/{folder}")


@pytest.mark.parametrize("folder", ["__pycache__", "pkg.egg-info", ".tox", ".mypy_cache", ".cache"])
def test_default_excluded_caches_pruned_quietly(tmp_path: Path, folder: str) -> None:
    check(tmp_path, {f"{folder}/x.py": "x", f"src/{folder}/y.py": "x", "src/z.py": "x"}, ["src/z.py"])


def test_a_folder_the_user_ignores_is_not_reported(tmp_path: Path) -> None:
    tree = {".gitignore": "dist/\n", "dist/x.js": "x", ".semcodeignore": "build\n", "build/y.py": "x", "a.py": "x"}
    check(tmp_path, tree, ["a.py"])


def test_default_excluded_dir_reincluded_by_ignore_file(tmp_path: Path) -> None:
    tree = {".semcodeignore": "!vendor/\n", "vendor/lib.go": "x", "node_modules/x.js": "x"}
    check(tmp_path, tree, [Skip("node_modules", excluded_reason("node_modules")), "vendor/lib.go"])


def test_exclude_dirs_option_replaces_defaults(tmp_path: Path) -> None:
    expected = ["build/a.py", Skip("mine", excluded_reason("mine"))]
    check(tmp_path, {"build/a.py": "x", "mine/b.py": "x"}, expected, exclude_dirs=frozenset({"mine"}))


def test_node_modules_not_descended(tmp_path: Path) -> None:
    # a symlink out of the repository is reported wherever the walk meets one: inside node_modules it must not
    make_tree(tmp_path / "repo", {"node_modules/pkg/index.js": "x", "a.js": "x"})
    make_tree(tmp_path / "outside", {"x.js": "x"})
    (tmp_path / "repo" / "node_modules" / "pkg" / "ext.js").symlink_to(tmp_path / "outside" / "x.js")
    (tmp_path / "repo" / "ext.js").symlink_to(tmp_path / "outside" / "x.js")
    outside = Skip("ext.js", "symlink pointing outside the repository")
    assert list(discover(tmp_path / "repo")) == ["a.js", outside, Skip("node_modules", excluded_reason("node_modules"))]


# ---------------------------------------------------------------------------------------------------------------
# secrets, size


SECRET_TREE: Tree = {
    ".env": "TOKEN=1",
    ".env.production": "TOKEN=1",
    ".env.example": "TOKEN=",
    "certs/server.pem": "x",
    "config/credentials.json": "{}",
    "config/secrets.yaml": "a: 1",
    "deploy/id_rsa": "x",
    "app.py": "x",
}


def test_secrets_skipped_with_reason(tmp_path: Path) -> None:
    reason = "secret-bearing file (matches {!r}); " + INCLUDE_SECRETS_HINT
    check(
        tmp_path,
        SECRET_TREE,
        [
            Skip(".env", reason.format(".env")),
            Skip(".env.production", reason.format(".env.*")),
            "app.py",
            Skip("certs/server.pem", reason.format("*.pem")),
            Skip("config/credentials.json", reason.format("credentials.json")),
            Skip("config/secrets.yaml", reason.format("secrets.y*ml")),
            Skip("deploy/id_rsa", reason.format("id_rsa*")),
        ],
    )


def test_secrets_included_when_asked(tmp_path: Path) -> None:
    # with include_secrets the files pass on to the language check: .env, .pem, id_rsa have no language
    check(tmp_path, SECRET_TREE, ["app.py", "config/credentials.json", "config/secrets.yaml"], include_secrets=True)


def test_env_templates_are_not_secrets(tmp_path: Path) -> None:
    make_tree(tmp_path, {".env.example": "A=", ".env.sample": "A=", "x.env.example.py": "x"})
    got = list(discover_paths([tmp_path / ".env.example", tmp_path / ".env.sample"], tmp_path))
    assert got == [Skip(".env.example", "unsupported file type"), Skip(".env.sample", "unsupported file type")]


def test_lock_files_are_found_to_be_searched_by_text(tmp_path: Path) -> None:
    # (their chunks are never embedded: indexer/embed_policy.py, tests/test_two_phase.py)
    tree: Tree = {"package-lock.json": "{}", "web/yarn.lock": "x", "Cargo.lock": "x", "package.json": "{}", "a.py": "x"}
    check(tmp_path, tree, ["Cargo.lock", "a.py", "package-lock.json", "package.json", "web/yarn.lock"])


def test_gitignored_secret_is_silent(tmp_path: Path) -> None:
    check(tmp_path, {".gitignore": ".env\n", ".env": "X=1", "a.py": "x"}, ["a.py"])


def test_size_limit(tmp_path: Path) -> None:
    check(
        tmp_path,
        {"big.py": "x" * 3000, "ok.py": "x" * 1024, "big.bin": b"x" * 5000},
        [Skip("big.py", "over the size limit: 2.9 KB > 1.0 KB"), "ok.py"],
        max_file_bytes=1024,
    )


def test_size_limit_default_wording(tmp_path: Path) -> None:
    check(
        tmp_path,
        {"huge.json": "1" * (3 * 1024 * 1024 + 200_000)},
        [Skip("huge.json", "over the size limit: 3.2 MB > 2.0 MB")],
    )


# ---------------------------------------------------------------------------------------------------------------
# symlinks


def test_symlinks_pointing_outside(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"secret.py": "x", "lib/m.py": "x"})
    repo = make_tree(tmp_path / "repo", {"a.py": "x"})
    (repo / "ext.py").symlink_to(outside / "secret.py")
    (repo / "extdir").symlink_to(outside / "lib")
    (repo / "ext.unknown").symlink_to(outside / "secret.py")  # unknown type: silent
    assert list(discover(repo)) == [
        "a.py",
        Skip("ext.py", "symlink pointing outside the repository"),
        Skip("extdir", "symlink pointing outside the repository"),
    ]


def test_symlink_loops_terminate(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a/b/c.py": "x", "d.py": "x"})
    (tmp_path / "a" / "b" / "up").symlink_to("..")  # to its parent's parent
    (tmp_path / "a" / "self").symlink_to(".")  # to the folder holding it
    (tmp_path / "a" / "sibling").symlink_to("../a/b")  # a folder inside the repo, walked at its real path
    (tmp_path / "loop.py").symlink_to("loop.py")  # a file symlink to itself
    (tmp_path / "broken.py").symlink_to("missing.py")
    inside = "symlink to a folder inside the repository (not followed; its files are found at their real path)"
    loop = "symlink loop (points to a folder that contains it)"
    assert list(discover(tmp_path)) == [
        "a/b/c.py",
        Skip("a/b/up", loop),
        Skip("a/self", loop),
        Skip("a/sibling", inside),
        Skip("broken.py", "broken symlink"),
        "d.py",
        Skip("loop.py", "symlink loop"),
    ]


def test_root_given_through_a_symlink(tmp_path: Path) -> None:
    make_tree(tmp_path / "real", {"a.py": "x", "sub/b.py": "x"})
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert list(discover(tmp_path / "link")) == ["a.py", "sub/b.py"]


def test_fifo_and_socket_are_reported_never_read(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "x"})
    os.mkfifo(tmp_path / "pipe.py")
    os.mkfifo(tmp_path / "pipe.bin")  # an unsupported type: silent, as any such file
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock.py"))
        assert list(discover(tmp_path)) == [
            "a.py",
            Skip("pipe.py", "not a regular file (fifo)"),
            Skip("sock.py", "not a regular file (socket)"),
        ]
        assert read_source(tmp_path, "pipe.py") == Skip("pipe.py", "not a regular file (fifo)")
        assert read_source(tmp_path, "sock.py") == Skip("sock.py", "not a regular file (socket)")


# ---------------------------------------------------------------------------------------------------------------
# discover_paths


def test_discover_paths_explicit_files(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/HEAD": "x",
            ".gitignore": "ignored.py\nsrc/gen/\n",
            "ignored.py": "x",
            "notes.xyz": "x",
            "big.py": "x" * 50,
        },
    )
    paths = [tmp_path / "ignored.py", tmp_path / "notes.xyz", tmp_path / "missing.py", tmp_path / "big.py"]
    assert list(discover_paths(paths, None, DiscoverOptions(max_file_bytes=10))) == [
        "ignored.py",
        Skip("notes.xyz", "unsupported file type"),
        Skip("missing.py", "no such file"),
        Skip("big.py", "over the size limit: 50 bytes > 10 bytes"),
    ]


def test_discover_paths_folder_uses_rules_above_it(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/HEAD": "x",
            ".gitignore": "*.gen.py\n",
            "src/.gitignore": "tmp/\n",
            "src/pkg/a.py": "x",
            "src/pkg/a.gen.py": "x",
            "src/pkg/tmp/b.py": "x",
            "src/pkg/node_modules/c.js": "x",
            "other.py": "x",
        },
    )
    excluded = Skip("src/pkg/node_modules", excluded_reason("src/pkg/node_modules"))
    assert list(discover_paths([tmp_path / "src" / "pkg"])) == ["src/pkg/a.py", excluded]
    # root found from a file argument too, and overlapping arguments report each path once
    args = [tmp_path / "src" / "pkg" / "a.py", tmp_path / "src", tmp_path / "other.py"]
    assert list(discover_paths(args)) == ["src/pkg/a.py", excluded, "other.py"]


def test_discover_paths_without_git_uses_the_folder(tmp_path: Path) -> None:
    make_tree(tmp_path, {"proj/a.py": "x", "proj/sub/b.py": "x"})
    assert list(discover_paths([tmp_path / "proj"])) == ["a.py", "sub/b.py"]
    assert list(discover_paths([tmp_path / "proj" / "sub" / "b.py"])) == ["b.py"]


def test_discover_paths_outside_root(tmp_path: Path) -> None:
    make_tree(tmp_path, {"repo/a.py": "x", "elsewhere/b.py": "x"})
    got = list(discover_paths([tmp_path / "elsewhere" / "b.py"], tmp_path / "repo"))
    assert got == [Skip(str(tmp_path / "elsewhere" / "b.py"), "outside the repository")]


def test_discover_equals_discover_paths_on_root(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "x/\n", "x/a.py": "x", "y/b.py": "x", ".env": "x", "c.ts": "x"})
    assert list(discover_paths([tmp_path], tmp_path)) == list(discover(tmp_path))


# ---------------------------------------------------------------------------------------------------------------
# read_source


def read(root: Path, content: bytes, name: str = "f.py", **options: object) -> SourceFile | Skip:
    (root / name).write_bytes(content)
    return read_source(root, name, DiscoverOptions(**options))  # type: ignore[arg-type]


def test_read_plain(tmp_path: Path) -> None:
    assert read(tmp_path, b"def f():\r\n    return '\xc3\xa9'\r\n") == SourceFile(
        "f.py", "python", "def f():\r\n    return 'é'\r\n", size=27, replaced=0
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", Skip("f.py", "empty file")),
        (b" \n\t\r\n", Skip("f.py", "empty file (whitespace only)")),
        (b"\xef\xbb\xbf", Skip("f.py", "empty file")),  # a BOM alone
        (b"\xef\xbb\xbfx = 1\n", SourceFile("f.py", "python", "x = 1\n", size=9)),  # UTF-8 BOM dropped
        ("\ufeffx = 'é'\n".encode("utf-16-le"), SourceFile("f.py", "python", "x = 'é'\n", size=18)),
        ("\ufeffx = 'é'\n".encode("utf-16-be"), SourceFile("f.py", "python", "x = 'é'\n", size=18)),
        ("\ufeffx = '😀'\n".encode("utf-32-le"), SourceFile("f.py", "python", "x = '😀'\n", size=36)),
        ("\ufeffx = '😀'\n".encode("utf-32-be"), SourceFile("f.py", "python", "x = '😀'\n", size=36)),
        ("\ufeffx = 1\n".encode("utf-16-le") + b"\x00", SourceFile("f.py", "python", "x = 1\n\ufffd", 15, 1)),
        ("x = 1\n".encode("utf-16-le"), Skip("f.py", "binary file (NUL bytes)")),  # no BOM: NUL bytes
        ("\ufeffx = '\x00'\n".encode("utf-16-le"), Skip("f.py", "binary file (NUL bytes)")),  # a NUL character
        (b"\xff\xfe" + b"\x00\xd8" * 8, Skip("f.py", "not UTF-16 text (100% invalid bytes)")),  # lone surrogates
    ],
)
def test_read_decodes_boms_and_skips_empty(tmp_path: Path, content: bytes, expected: SourceFile | Skip) -> None:
    assert read(tmp_path, content) == expected


def test_read_binary(tmp_path: Path) -> None:
    assert read(tmp_path, b"x = 1\n\x00\x01\x02") == Skip("f.py", "binary file (NUL bytes)")
    # a NUL after the first 8 KiB does not count as binary
    late = read(tmp_path, b"#" * 9000 + b"\n\x00\n")
    assert isinstance(late, SourceFile) and late.text.endswith("\n\x00\n")


@pytest.mark.parametrize(
    ("content", "text", "replaced"),
    [
        (b"x = '\xff\xfe'\n", "x = '\ufffd\ufffd'\n", 2),  # two invalid bytes: two replacements
        (b"x = '\xe2\x82'\n", "x = '\ufffd'\n", 1),  # a truncated 3-byte sequence: one replacement
        (b"x = '\xef\xbf\xbd' + '\xff'\n", "x = '\ufffd' + '\ufffd'\n", 1),  # a genuine U+FFFD is not counted
    ],
)
def test_read_invalid_utf8_counted(tmp_path: Path, content: bytes, text: str, replaced: int) -> None:
    got = read(tmp_path, content)
    assert got == SourceFile("f.py", "python", text, size=len(content), replaced=replaced)


def test_read_mostly_invalid_skipped(tmp_path: Path) -> None:
    assert read(tmp_path, b"ab" + b"\xff" * 8) == Skip("f.py", "not UTF-8 text (80% invalid bytes)")
    assert isinstance(read(tmp_path, b"abcdefgh" + b"\xff" * 2), SourceFile)  # 20%: kept


def test_read_over_size_limit(tmp_path: Path) -> None:
    assert read(tmp_path, b"x" * 2048, max_file_bytes=1024) == Skip("f.py", "over the size limit: 2.0 KB > 1.0 KB")
    assert isinstance(read(tmp_path, b"x" * 1024, max_file_bytes=1024), SourceFile)


def test_read_minified(tmp_path: Path) -> None:
    got = read(tmp_path, b"var a=1;" * 2500 + b"\n", name="app.min.js")
    assert got == Skip("app.min.js", "minified or generated (a line of 20,000 characters)")
    assert isinstance(read(tmp_path, b"a" * 100 + b"\n", name="ok.js", max_line_chars=100), SourceFile)


def test_read_vanished(tmp_path: Path) -> None:
    (tmp_path / "gone.py").write_text("x = 1\n")
    assert list(discover(tmp_path)) == ["gone.py"]
    (tmp_path / "gone.py").unlink()
    assert read_source(tmp_path, "gone.py") == Skip("gone.py", "vanished while being read")


def test_read_folder_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "pkg.py").mkdir()
    assert read_source(tmp_path, "pkg.py") == Skip("pkg.py", "not a regular file (folder)")
    assert read_source(tmp_path, "x.unknownext") == Skip("x.unknownext", "unsupported file type")


def read_as_nobody(root: Path, relpath: str) -> str:
    """repr(read_source(...)) computed in a forked child that dropped root's privileges (root reads through chmod 000;
    a fork, not an exec: the interpreter may live where 'nobody' cannot run it)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, repr(read_source(root, relpath)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def test_read_permission_denied(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        (tmp_path / "locked.py").write_text("x = 1\n")
        (tmp_path / "locked.py").chmod(0o000)
        assert read_source(tmp_path, "locked.py") == Skip("locked.py", "unreadable: permission denied")
        return
    with tempfile.TemporaryDirectory() as d:  # under /tmp, which 'nobody' can traverse (pytest's tmp_path: 0700)
        root = Path(d)
        root.chmod(0o755)
        (root / "locked.py").write_text("x = 1\n")
        (root / "locked.py").chmod(0o000)
        (root / "open.py").write_text("x = 1\n")
        (root / "open.py").chmod(0o644)
        assert read_as_nobody(root, "locked.py") == repr(Skip("locked.py", "unreadable: permission denied"))
        assert read_as_nobody(root, "open.py") == repr(SourceFile("open.py", "python", "x = 1\n", size=6))


def test_crlf_ignore_file_and_bad_patterns(tmp_path: Path) -> None:
    # CRLF line ends, trailing spaces and a line pathspec rejects ('!' alone) must not break the other lines
    check(tmp_path, {".gitignore": b"a.py  \r\n!\r\ngen/\r\n", "a.py": "x", "b.py": "x", "gen/c.py": "x"}, ["b.py"])


@pytest.mark.parametrize(
    ("rel", "ignored"),
    [
        ("src/app.py", False),
        ("build/out.py", True),  # default excluded folder
        ("node_modules/x/index.js", True),
        ("logs/a.py", True),  # root .gitignore folder rule
        ("src/gen/made.py", True),  # nested .gitignore
        ("src/gen/keep.py", False),  # negated in the nested .gitignore
        ("notes.tmp.py", True),  # .git/info/exclude
        ("private/x.py", True),  # .semcodeignore
        (".git/config.py", True),
    ],
)
def test_is_ignored_matches_the_walk(tmp_path, rel, ignored):
    from indexer.discover import discover, is_ignored

    root = tmp_path / "repo"
    files = {
        ".gitignore": "logs/\n",
        ".semcodeignore": "private/\n",
        "src/gen/.gitignore": "*.py\n!keep.py\n",
        ".git/info/exclude": "*.tmp.py\n",
        rel: "x = 1\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert is_ignored(root, rel) is ignored
    assert (rel in set(discover(root))) is (not ignored)


# ---------------------------------------------------------------------------------------------------------------
# the fast ignore matcher decides as the plain one (pathspec's regex per pattern, last first)

# names that patterns below name, glob, escape or miss: a small vocabulary so that patterns often match
NAMES = ["a", "b", "ab", "a.py", "b.py", "x.txt", ".env", "foo", "foo-1", "Foo", "é", "a b", "a*", "!a", "#a", "[a]"]
GLOBS = ["*", "?", "**", "[ab]", "[!a]", "[a-c]", "[]a]", "\\*", "\\!", "\\#", "\\ ", "\\", "[", ".", "a/", "*.py"]
LEADS = ["", "", "", "!", "/", "!/", "\\!", "#", "**/", "!**/"]
TAILS = ["", "", "", "/", "/**", "/**/", " ", "\\ ", "  ", "//"]


def pattern_line(rng: random.Random) -> str:
    if rng.random() < 0.3:  # the kinds the fast matcher looks up rather than matches: names, paths, *.ext, tmp*
        form = rng.choice(["{}", "*{}", "{}*", "/{}", "a/{}", "{}/", "*{}/", "{}*/"])
        return rng.choice(["", "!"]) + form.format(rng.choice(NAMES[:11]))
    segments = ["".join(rng.choice(NAMES + GLOBS) for _ in range(rng.randint(1, 2))) for _ in range(rng.randint(1, 3))]
    return rng.choice(LEADS) + "/".join(segments) + rng.choice(TAILS)


def walk_path(rng: random.Random) -> str:
    return "/".join(rng.choice([*NAMES, "a\nb", "dir", "x.py"]) for _ in range(rng.randint(1, 4)))


def check_matchers(lines: list[str], paths: list[str]) -> None:
    fast, plain = IgnoreFile(lines), PlainIgnoreFile(lines)
    for path in paths:
        for is_dir in (False, True):
            assert fast.decide(path, is_dir) == plain.decide(path, is_dir), (path, is_dir)


GENERATED = pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")  # re, on "[[" (both matchers)


@GENERATED
@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False))
def test_fast_matcher_decides_as_the_plain_one(rng: random.Random) -> None:
    check_matchers([pattern_line(rng) for _ in range(rng.randint(1, 12))], [walk_path(rng) for _ in range(12)])


@pytest.mark.parametrize(
    ("lines", "path", "is_dir", "decided"),
    [
        (["*.py", "!keep.py"], "src/keep.py", False, False),  # last match wins, across kinds
        (["!keep.py", "*.py"], "src/keep.py", False, True),
        (["gen/"], "gen", False, None),  # folder-only
        (["gen/"], "src/gen", True, True),
        (["/gen"], "src/gen", True, None),  # anchored
        (["src/gen"], "src/gen", True, True),
        (["a/**/b.py"], "a/x/y/b.py", False, True),
        (["x/**"], "x/y/z", False, True),
        (["x/**/"], "x/y", True, True),
        (["x/**/"], "x/y", False, None),
        (["gen//"], "gen", True, None),  # pathspec's regex matches only paths below gen/
        (["\\!a", "\\#b", "c\\ "], "!a", False, True),
        (["\\!a", "\\#b", "c\\ "], "#b", False, True),
        (["\\!a", "\\#b", "c\\ "], "c ", False, True),
        (["*.py[cod]"], "m.pyc", False, True),
        (["foo"], "a\nb/foo", False, None),  # as pathspec's regex reads a name holding a newline
    ],
)
def test_fast_matcher_cases(lines: list[str], path: str, is_dir: bool, decided: bool | None) -> None:
    assert IgnoreFile(lines).decide(path, is_dir) is decided
    assert PlainIgnoreFile(lines).decide(path, is_dir) is decided


@GENERATED
def test_fast_matcher_on_a_long_file() -> None:
    """Thousands of patterns (combined regexes in several chunks), negations among them."""
    rng = random.Random(7)
    lines = [pattern_line(rng) for _ in range(2500)] + [f"gen/file{i}.py" for i in range(2000)]
    lines += [f"{rng.choice(['', '!'])}{rng.choice(NAMES)}*{rng.choice(GLOBS)}" for _ in range(2000)]
    rng.shuffle(lines)
    check_matchers(lines, [walk_path(rng) for _ in range(60)] + ["gen/file12.py", "gen/file12.pyc"])


@GENERATED
def test_walk_with_fast_and_plain_matchers_agree(tmp_path: Path) -> None:
    """The whole walk (nested ignore files relative to their folder, pruned folders) on generated trees."""
    rng = random.Random(11)
    for n in range(6):
        root = tmp_path / str(n)
        tree: Tree = {}
        for _ in range(40):
            rel = walk_path(rng).replace("\n", "_") + ".py"
            if all(not other.startswith(rel + "/") and not rel.startswith(other + "/") for other in tree):
                tree[rel] = "x"
        for folder in ["", "a/", "ab/", "foo/", "a/b/"]:
            tree[folder + rng.choice([".gitignore", ".semcodeignore"])] = "\n".join(
                pattern_line(rng) for _ in range(rng.randint(1, 8))
            )
        make_tree(root, tree)
        assert list(discover(root, matcher=IgnoreFile)) == list(discover(root, matcher=PlainIgnoreFile))
