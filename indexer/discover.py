"""Find the files semcode indexes, and read them: the first stage of the indexer.

`discover` walks a repository and yields repository-relative POSIX paths (sorted: the walk visits entries so that the
output is in plain string order) plus a `Skip` for each file that is deliberately left out and worth telling the user
about (secrets, oversized files, symlinks out of the repository). Files that ignore rules or an unknown file type
leave out are dropped without a word: there are too many to report.

Ignore rules follow git: `.gitignore` at every level (patterns relative to their own folder, `!` negation, `dir/`
patterns), `.git/info/exclude`, plus `.semcodeignore` files (same syntax, any level, above `.gitignore` of the same
folder), and the user's `extra_excludes` above everything. A path is checked against its own patterns only, and an
ignored folder is never entered, so, as in git, a file inside an ignored folder cannot be re-included. The default
excluded folders (`node_modules`, `.venv`, ...) are the lowest-priority rules, so a `!vendor/` line re-includes one;
`.git`, `.hg` and `.svn` are never entered.

Symlinked files are followed when they point inside the repository. Symlinked folders are never followed: a target
inside the repository is walked at its real path anyway (so no duplicates and no loops), one outside is reported.

`read_source` never raises for a file's problems: it returns a `SourceFile` or a `Skip` with the reason.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pathspec

from indexer.languages import language_for
from indexer.types import Skip, SourceFile

DEFAULT_EXCLUDE_DIRS: frozenset[str] = frozenset(
    {
        "node_modules", "bower_components", "jspm_packages",
        ".venv", "venv", "env", ".env", "__pypackages__", "site-packages", "*.egg-info", ".eggs",
        "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
        ".tox", ".nox", ".ipynb_checkpoints",
        "dist", "build", "target", "out", "_build",
        ".next", ".nuxt", ".svelte-kit", ".parcel-cache", ".turbo", ".angular",
        ".gradle", ".idea", ".vscode", ".vs",
        "vendor", "Pods", "Carthage", ".terraform", ".serverless",
        "coverage", "htmlcov", ".nyc_output", ".cache", ".semcode",
    }
)  # fmt: skip

# never entered, whatever the rules say
VCS_DIRS: frozenset[str] = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj"})

# file-name patterns (matched case-insensitively against the base name) of files that usually hold secrets
SECRET_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.ppk", "*.asc", "*.gpg",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".npmrc", ".pypirc", ".netrc", "_netrc", ".git-credentials", ".htpasswd", ".pgpass", ".dockercfg",
    "credentials", "credentials.json", "credentials.y*ml", "client_secret*.json", "service-account*.json",
    "secrets.y*ml", "secrets.json", "secrets.toml", "*.tfvars", "*.tfstate", "*.tfstate.*",
)  # fmt: skip

# names that match a secret pattern but are templates, committed on purpose
NOT_SECRET: frozenset[str] = frozenset(
    {".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults", ".env.schema"}
)

# generated files that hold no code worth searching (dependency lock files), matched case-insensitively
GENERATED_FILES: frozenset[str] = frozenset(
    {
        "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock",
        "poetry.lock", "pipfile.lock", "uv.lock", "pdm.lock", "cargo.lock", "gemfile.lock", "composer.lock",
        "go.sum", "flake.lock", "podfile.lock", "packages.lock.json", "mix.lock", "pubspec.lock",
    }
)  # fmt: skip

IGNORE_FILES: tuple[str, ...] = (".gitignore", ".semcodeignore")  # in rising priority within one folder
BINARY_SNIFF_BYTES = 8192
MAX_INVALID_FRACTION = 0.30


@dataclass(frozen=True)
class DiscoverOptions:
    """What `discover` and `read_source` leave out. Every field has a default."""

    max_file_bytes: int = 2 * 1024 * 1024
    exclude_dirs: frozenset[str] = DEFAULT_EXCLUDE_DIRS  # folder names or globs ("*.egg-info"), any depth
    include_secrets: bool = False  # index files that match SECRET_PATTERNS
    extra_excludes: tuple[str, ...] = ()  # gitignore-syntax lines from user config, relative to the root
    max_line_chars: int = 10_000  # a longer line marks a file as minified or generated


# ---------------------------------------------------------------------------------------------------------------
# ignore rules


class _Pattern(NamedTuple):
    exclude: bool  # False for a "!" line
    dir_only: bool  # the line ended in "/"
    regex: re.Pattern[str]


class _Layer(NamedTuple):
    """The patterns of one ignore file, and the folder (relative, "" or "src/") they are relative to."""

    base: str
    patterns: tuple[_Pattern, ...]


def _compile(lines: Iterable[str]) -> tuple[_Pattern, ...]:
    """Gitignore lines -> patterns, in file order. A line pathspec rejects is dropped (broken input is data)."""
    out: list[_Pattern] = []
    for raw in lines:
        line = raw if raw.endswith("\\ ") else raw.rstrip(" \t\r")
        if not line or line.startswith("#"):
            continue
        dir_only = len(line) > 1 and line.endswith("/") and not line.endswith("\\/")
        if dir_only:
            line = line[:-1]  # match the folder's own path; a trailing "/" does not anchor the pattern in git
        try:
            spec = pathspec.GitIgnoreSpec.from_lines([line])
        except ValueError:
            continue
        for p in spec.patterns:
            if p.include is not None and p.regex is not None:
                out.append(_Pattern(bool(p.include), dir_only, p.regex))
    return tuple(out)


def _own_match(p: _Pattern, path: str, is_dir: bool) -> bool:
    """True when the pattern matches `path` itself (pathspec's regexes also match every path below a matching
    folder, marked by the `ps_d` group; those folders were decided, and pruned, when the walk reached them)."""
    if p.dir_only and not is_dir:
        return False
    m = p.regex.search(path)
    return m is not None and m.groupdict().get("ps_d") is None


def _ignored(layers: Iterable[_Layer], rel: str, is_dir: bool) -> bool:
    """Git's rule: the last matching pattern decides; layers are given highest priority first."""
    for layer in layers:
        if not rel.startswith(layer.base):
            continue
        sub = rel[len(layer.base) :]
        for p in reversed(layer.patterns):
            if _own_match(p, sub, is_dir):
                return p.exclude
    return False


@dataclass(frozen=True)
class _Rules:
    extra: _Layer  # user config: above every file
    layers: tuple[_Layer, ...]  # lowest priority first: default folders, .git/info/exclude, then root downwards

    def ignored(self, rel: str, is_dir: bool) -> bool:
        return _ignored((self.extra, *reversed(self.layers)), rel, is_dir)

    def with_folder(self, root: str, rel_dir: str, names: Iterable[str]) -> _Rules:
        """The rules inside folder `rel_dir` ("" or "src/"), whose entry names are `names`."""
        present = set(names)
        added = []
        for fname in IGNORE_FILES:
            if fname in present:
                lines = _read_lines(os.path.join(root, rel_dir, fname))
                if lines:
                    added.append(_Layer(rel_dir, _compile(lines)))
        return _Rules(self.extra, self.layers + tuple(added)) if added else self


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []  # an unreadable ignore file ignores nothing; the walk goes on


def _base_rules(root: str, options: DiscoverOptions) -> _Rules:
    defaults = _Layer("", _compile(f"{name}/" for name in sorted(options.exclude_dirs)))
    layers = [defaults]
    exclude = _read_lines(os.path.join(root, ".git", "info", "exclude"))
    if exclude:
        layers.append(_Layer("", _compile(exclude)))
    return _Rules(_Layer("", _compile(options.extra_excludes)), tuple(layers))


# ---------------------------------------------------------------------------------------------------------------
# per-file checks


def secret_pattern(name: str) -> str | None:
    """The ``SECRET_PATTERNS`` entry a file name matches (a secret-bearing file: never indexed by default)."""
    low = name.lower()
    if low in NOT_SECRET:
        return None
    return next((pat for pat in SECRET_PATTERNS if fnmatch.fnmatchcase(low, pat)), None)


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _too_big(size: int, options: DiscoverOptions) -> str:
    return f"over the size limit: {_human(size)} > {_human(options.max_file_bytes)}"


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_file(root: str, rel: str, is_link: bool, options: DiscoverOptions, explicit: bool) -> str | Skip | None:
    """rel when the file is indexed, a Skip to report, or None to drop it silently. Explicit files (named by the
    user) report what a walk drops silently."""
    name = rel.rsplit("/", 1)[-1]
    if not options.include_secrets and (pat := secret_pattern(name)):
        return Skip(rel, f"secret-bearing file (matches {pat!r}); set include_secrets to index it")
    if name.lower() in GENERATED_FILES:
        return Skip(rel, "generated dependency lock file")
    if language_for(rel) is None:
        return Skip(rel, "unsupported file type") if explicit else None
    full = os.path.join(root, rel)
    if is_link:
        try:
            target = os.path.realpath(full, strict=True)
        except FileNotFoundError:
            return Skip(rel, "broken symlink")
        except OSError as e:
            return Skip(rel, "symlink loop" if e.errno == errno.ELOOP else f"unreadable: {e.strerror}")
        if not _within(target, root):
            return Skip(rel, "symlink pointing outside the repository")
    try:
        st = os.stat(full)
    except FileNotFoundError:
        return Skip(rel, "no such file") if explicit else None  # vanished during the walk
    except OSError as e:
        return Skip(rel, f"unreadable: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Skip(rel, "not a regular file") if explicit else None  # fifo, socket, device: never read
    if st.st_size > options.max_file_bytes:
        return Skip(rel, _too_big(st.st_size, options))
    return rel


def _check_dir_link(root: str, rel: str) -> Skip:
    """A symlinked folder is never followed; say why."""
    full = os.path.join(root, rel)
    target = os.path.realpath(full)
    if not _within(target, root):
        return Skip(rel, "symlink pointing outside the repository")
    if _within(os.path.realpath(os.path.dirname(full)), target):
        return Skip(rel, "symlink loop (points to a folder that contains it)")
    return Skip(rel, "symlink to a folder inside the repository (not followed; its files are found at their real path)")


# ---------------------------------------------------------------------------------------------------------------
# the walk


class _Entry(NamedTuple):
    key: str  # the name, plus "/" for a folder: sorting by it puts the walk's output in plain string order
    name: str
    is_dir: bool
    is_link: bool
    inode: tuple[int, int] | None  # (device, inode) of a real folder, to never enter one twice


def _list_dir(path: str) -> list[_Entry]:
    entries = []
    with os.scandir(path) as it:
        for e in it:
            try:
                is_dir = e.is_dir()  # follows symlinks
                is_link = e.is_symlink()
            except OSError:
                is_dir, is_link = False, True
            inode = None
            if is_dir and not is_link:
                try:
                    st = e.stat(follow_symlinks=False)
                    inode = (st.st_dev, st.st_ino)
                except OSError:
                    pass
            entries.append(_Entry(e.name + "/" if is_dir else e.name, e.name, is_dir, is_link, inode))
    entries.sort()
    return entries


def _walk(root: str, start_rel: str, rules: _Rules, options: DiscoverOptions) -> Iterator[str | Skip]:
    """Walk folder `start_rel` ("" for the root) of the real path `root`, with `rules` in force above it."""
    visited: set[tuple[int, int]] = set()
    stack: list[tuple[str, _Rules, Iterator[_Entry]]] = []

    def enter(rel_dir: str, parent_rules: _Rules) -> Skip | None:
        path = os.path.join(root, rel_dir)
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) in visited:
                return Skip(rel_dir.rstrip("/") or ".", "folder already visited (a loop through a mount?)")
            visited.add((st.st_dev, st.st_ino))
            entries = _list_dir(path)
        except OSError as e:
            return Skip(rel_dir.rstrip("/") or ".", f"unreadable: {e.strerror}")
        stack.append((rel_dir, parent_rules.with_folder(root, rel_dir, (e.name for e in entries)), iter(entries)))
        return None

    problem = enter(start_rel, rules)
    if problem:
        yield problem
    while stack:
        rel_dir, dir_rules, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        rel = rel_dir + entry.name
        if entry.is_dir:
            if entry.name in VCS_DIRS or dir_rules.ignored(rel, is_dir=True):
                continue
            if entry.is_link:
                yield _check_dir_link(root, rel)
                continue
            if entry.inode is not None and entry.inode in visited:
                yield Skip(rel, "folder already visited (a loop through a mount?)")
                continue
            problem = enter(rel + "/", dir_rules)
            if problem:
                yield problem
        elif not dir_rules.ignored(rel, is_dir=False):
            result = _check_file(root, rel, entry.is_link, options, explicit=False)
            if result is not None:
                yield result


def discover(root: Path, options: DiscoverOptions = DiscoverOptions()) -> Iterator[str | Skip]:
    """The files under `root` that semcode indexes, as repository-relative POSIX paths in sorted order, and a Skip
    for each file left out for a reason worth reporting. Never follows a symlinked folder; never raises for a
    file's problems (an unreadable folder is a Skip)."""
    real = os.path.realpath(root)
    yield from _walk(real, "", _base_rules(real, options), options)


def _find_root(start: Path) -> Path:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return start


def _relative(path: Path, root: Path) -> str | None:
    for p, r in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))), (path.resolve(), root.resolve())):
        try:
            rel = p.relative_to(r).as_posix()
        except ValueError:
            continue
        return "" if rel == "." else rel
    return None


def is_ignored(root: Path, rel: str, options: DiscoverOptions = DiscoverOptions()) -> bool:
    """Whether the walk would leave out ``rel`` (a file path relative to ``root``) because of ignore files,
    default excluded folders or version-control folders: what a watcher or an editor save must respect."""
    real = os.path.realpath(root)
    parts = [p for p in rel.split("/") if p]
    if any(p in VCS_DIRS for p in parts[:-1]):
        return True
    rules = _base_rules(real, options)
    for i in range(len(parts) - 1):
        above = "".join(p + "/" for p in parts[:i])
        with contextlib.suppress(OSError):
            rules = rules.with_folder(real, above, os.listdir(os.path.join(real, above)))
        if rules.ignored("".join(p + "/" for p in parts[: i + 1]).rstrip("/"), True):
            return True
    above = "".join(p + "/" for p in parts[:-1])
    with contextlib.suppress(OSError):
        rules = rules.with_folder(real, above, os.listdir(os.path.join(real, above)))
    return rules.ignored("/".join(parts), False)


def discover_paths(
    paths: list[Path],
    root: Path | None = None,
    options: DiscoverOptions = DiscoverOptions(),
) -> Iterator[str | Skip]:
    """Like `discover`, for files and folders the user named. A folder is walked with the ignore rules in force at
    it (though the folder itself is entered even if ignored); a named file is considered even if ignored, and
    reported when it is not indexed. With `root` None, each path's repository is the nearest ancestor holding
    `.git`, else the folder itself (or a file's folder). Each path is reported once."""
    seen: set[str] = set()
    for path in paths:
        is_dir = path.is_dir()
        repo = root if root is not None else _find_root(Path(os.path.abspath(path if is_dir else path.parent)))
        rel = _relative(path, repo)
        results: Iterable[str | Skip]
        if rel is None:
            results = [Skip(str(path), "outside the repository")]
        elif is_dir:
            real = os.path.realpath(repo)
            rules = _base_rules(real, options)
            parts = [p for p in rel.split("/") if p]
            for i in range(len(parts)):  # the ignore files of the folders above the named one
                above = "".join(p + "/" for p in parts[:i])
                with contextlib.suppress(OSError):
                    rules = rules.with_folder(real, above, os.listdir(os.path.join(real, above)))
            results = _walk(real, "".join(p + "/" for p in parts), rules, options)
        elif not path.exists() and not path.is_symlink():
            results = [Skip(rel, "no such file")]
        else:
            real = os.path.realpath(repo)
            checked = _check_file(real, rel, path.is_symlink(), options, explicit=True)
            results = [checked] if checked is not None else []
        for item in results:
            key = item.path if isinstance(item, Skip) else item
            if key not in seen:
                seen.add(key)
                yield item


# ---------------------------------------------------------------------------------------------------------------
# reading


def read_source(root: Path, relpath: str, options: DiscoverOptions = DiscoverOptions()) -> SourceFile | Skip:
    """Read and decode one discovered file. Never raises for the file's problems: returns a Skip with the reason.
    The text is kept exactly as decoded (no newline conversion), less a leading UTF-8 BOM."""
    language = language_for(relpath)
    if language is None:
        return Skip(relpath, "unsupported file type")
    try:
        # O_NONBLOCK: opening a fifo that replaced the file must not hang; it changes nothing for regular files
        fd = os.open(os.path.join(root, relpath), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return Skip(relpath, "not a regular file")
        with os.fdopen(fd, "rb") as f:
            data = f.read(options.max_file_bytes + 1)  # the file may have grown since discovery
    except FileNotFoundError:
        return Skip(relpath, "vanished while being read")
    except PermissionError:
        return Skip(relpath, "unreadable: permission denied")
    except OSError as e:
        return Skip(relpath, f"unreadable: {e.strerror}")
    if len(data) > options.max_file_bytes:
        return Skip(relpath, _too_big(max(len(data), st.st_size), options))
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return Skip(relpath, "binary file (NUL bytes)")

    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    replaced = 0
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        # U+FFFD encoded validly in the file is text, not damage; an invalid sequence never swallows its lead byte
        replaced = text.count("\ufffd") - body.count("\ufffd".encode())
        if replaced > MAX_INVALID_FRACTION * len(text):
            return Skip(relpath, f"not UTF-8 text ({round(100 * replaced / len(text))}% invalid bytes)")

    longest = max((len(line) for line in text.split("\n")), default=0)
    if longest > options.max_line_chars:
        return Skip(relpath, f"minified or generated (a line of {longest:,} characters)")
    return SourceFile(path=relpath, language=language, text=text, size=len(data), replaced=replaced)
