"""Find the files semcode indexes: the first stage of the indexer (reading them is indexer/read.py's
`read_source`, re-exported here).

`discover` walks a repository and yields repository-relative POSIX paths (sorted: the walk visits entries so that the
output is in plain string order) plus a `Skip` for each file that is deliberately left out and worth telling the user
about: secret-bearing names, oversized or empty files, fifos, sockets and devices, symlinks (see below),
and names that are not valid UTF-8. Files that ignore rules or an unknown file type leave out are dropped without a
word: there are too many to report.

Names that are not UTF-8 (``os.fsdecode`` turns their bytes into lone surrogates) can be neither stored nor printed
as JSON text: such a file, or folder (never entered), is reported with its path escaped by `escape_path` (each
undecodable byte written ``\\xNN``) and the reason "file name is not valid UTF-8" or "folder name ...".

Ignore rules follow git: `.gitignore` at every level (patterns relative to their own folder, `!` negation, `dir/`
patterns), `.git/info/exclude`, plus `.semcodeignore` files (same syntax, any level, above `.gitignore` of the same
folder), and the user's `extra_excludes` above everything. A path is checked against its own patterns only, and an
ignored folder is never entered, so, as in git, a file inside an ignored folder cannot be re-included. The default
excluded folders (`node_modules`, `.venv`, ...) are the lowest-priority rules, so a `!vendor/` line re-includes one;
`.git`, `.hg` and `.svn` are never entered.

Each ignore file is compiled once by `indexer/ignore.py` (`IgnoreFile`), which does not try every pattern on every
path.

Symlinks never make a file indexed twice. A symlinked file pointing to a file the walk finds at its real path is
reported ("symlink to <target> (indexed at its real path)", or "skipped" there); one pointing to an ignored file is
reported too (ignore rules decide what is indexed, whatever path reaches it); one pointing outside the repository,
nowhere or in a loop is reported. Only a link to a file of no supported type (`tool.py` -> `bin/tool`) is indexed,
at the link's path, since no other path reaches that text. Symlinked folders are never followed: a target inside
the repository is walked at its real path anyway (so no duplicates and no loops), one outside is reported.
"""

from __future__ import annotations

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

from indexer.ignore import IgnoreFile as IgnoreFile  # re-exported: the matcher the walk uses
from indexer.ignore import IgnoreMatcher
from indexer.ignore import MatcherFactory as MatcherFactory
from indexer.ignore import PlainIgnoreFile as PlainIgnoreFile
from indexer.languages import language_for
from indexer.read import SURROGATES, not_regular, too_big
from indexer.read import read_source as read_source  # re-exported: the walk's callers read what it finds
from indexer.secrets import INCLUDE_SECRETS_HINT
from indexer.types import Skip

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

# built-in excludes that hold only caches and tool state: left out without a word (the others, which may hold the
# code itself, such as an npm package's dist/, are reported: `excluded_reason`)
QUIET_EXCLUDE_DIRS: frozenset[str] = frozenset(
    {
        "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".tox", ".nox",
        ".ipynb_checkpoints", ".parcel-cache", ".turbo", ".next", ".nuxt", ".svelte-kit", ".angular", ".gradle",
        ".idea", ".vscode", ".vs", ".terraform", ".serverless", "coverage", "htmlcov", ".nyc_output", ".cache",
        ".semcode", ".eggs",
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

IGNORE_FILES: tuple[str, ...] = (".gitignore", ".semcodeignore")  # in rising priority within one folder


@dataclass(frozen=True)
class DiscoverOptions:
    """What `discover` and `read_source` leave out. Every field has a default."""

    max_file_bytes: int = 2 * 1024 * 1024
    exclude_dirs: frozenset[str] = DEFAULT_EXCLUDE_DIRS  # folder names or globs ("*.egg-info"), any depth
    include_secrets: bool = False  # index files that match SECRET_PATTERNS or hold a secret (indexer/secrets.py)
    extra_excludes: tuple[str, ...] = ()  # gitignore-syntax lines from user config, relative to the root
    max_line_chars: int = 10_000  # a longer line marks a file as minified or generated


# ---------------------------------------------------------------------------------------------------------------
# ignore rules


class _Layer(NamedTuple):
    """The patterns of one ignore file, and the folder (relative, "" or "src/") they are relative to."""

    base: str
    matcher: IgnoreMatcher


def _ignored(layers: Iterable[_Layer], rel: str, is_dir: bool) -> bool:
    """Git's rule: the last matching pattern decides; layers are given highest priority first."""
    return _decision(layers, rel, is_dir) is True


def _decision(layers: Iterable[_Layer], rel: str, is_dir: bool) -> bool | None:
    """Ignored (True), kept by a negation (False), or no pattern of `layers` matches (None)."""
    for layer in layers:
        if rel.startswith(layer.base) and (decided := layer.matcher.decide(rel[len(layer.base) :], is_dir)) is not None:
            return decided
    return None


@dataclass(frozen=True)
class _Rules:
    extra: _Layer  # user config: above every file
    layers: tuple[_Layer, ...]  # lowest priority first: default folders, .git/info/exclude, then root downwards
    matcher: MatcherFactory  # compiles an ignore file's lines

    def ignored(self, rel: str, is_dir: bool) -> bool:
        return _ignored((self.extra, *reversed(self.layers)), rel, is_dir)

    def by_defaults_only(self, rel: str) -> bool:
        """Whether folder `rel` is left out by the built-in excludes alone: no rule of the user's (config,
        .git/info/exclude, .gitignore, .semcodeignore) decides it. Such a folder is reported, never dropped in
        silence (an npm package's whole code may sit in ``dist/``); one the user ignores is not."""
        if _decision((self.extra, *reversed(self.layers[1:])), rel, True) is not None:
            return False
        return _decision(self.layers[:1], rel, True) is True

    def with_folder(self, root: str, rel_dir: str, names: Iterable[str]) -> _Rules:
        """The rules inside folder `rel_dir` ("" or "src/"), whose entry names are `names`."""
        present = set(names)
        added = []
        for fname in IGNORE_FILES:
            if fname in present:
                lines = _read_lines(os.path.join(root, rel_dir, fname))
                if lines:
                    added.append(_Layer(rel_dir, self.matcher(lines)))
        return _Rules(self.extra, self.layers + tuple(added), self.matcher) if added else self


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []  # an unreadable ignore file ignores nothing; the walk goes on


def _base_rules(root: str, options: DiscoverOptions, matcher: MatcherFactory = IgnoreFile) -> _Rules:
    defaults = _Layer("", matcher(f"{name}/" for name in sorted(options.exclude_dirs)))
    layers = [defaults]
    exclude = _read_lines(os.path.join(root, ".git", "info", "exclude"))
    if exclude:
        layers.append(_Layer("", matcher(exclude)))
    return _Rules(_Layer("", matcher(options.extra_excludes)), tuple(layers), matcher)


# ---------------------------------------------------------------------------------------------------------------
# per-file checks


def secret_pattern(name: str) -> str | None:
    """The ``SECRET_PATTERNS`` entry a file name matches (a secret-bearing file: never indexed by default)."""
    low = name.lower()
    if low in NOT_SECRET:
        return None
    return next((pat for pat in SECRET_PATTERNS if fnmatch.fnmatchcase(low, pat)), None)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\u{c:04x}"


def escape_path(path: str) -> str:
    """`path` as valid UTF-8 text, for reports and records: each byte of a name that is not UTF-8 (which
    ``os.fsdecode`` turns into a lone surrogate U+DC80..U+DCFF) becomes ``\\xNN``, as
    ``os.fsencode(path).decode("utf-8", "backslashreplace")`` writes it; any other lone surrogate ``\\udNNN``."""
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATES.sub(_escape_char, path)
    return path


def invalid_name(rel: str, is_dir: bool = False) -> Skip | None:
    """A Skip (its path escaped) when a name in `rel` is not valid UTF-8: such a path can be neither stored nor
    printed as JSON text, so the file (or the folder, never entered) is left out with this reason."""
    safe = escape_path(rel)
    if safe == rel:
        return None
    what = "file" if not is_dir and escape_path(rel.rsplit("/", 1)[-1]) != rel.rsplit("/", 1)[-1] else "folder"
    return Skip(safe, f"{what} name is not valid UTF-8")


def _check_link(root: str, rel: str, options: DiscoverOptions) -> Skip | None:
    """A symlinked file: a Skip when it points outside, nowhere, in a loop, or to a file the walk reports at its
    real path (indexed or skipped there, or ignored); None to index it at the link's path (its target has no
    supported type: a `tool.py` link to `bin/tool`)."""
    try:
        target = os.path.realpath(os.path.join(root, rel), strict=True)
    except FileNotFoundError:
        return Skip(rel, "broken symlink")
    except OSError as e:
        return Skip(rel, "symlink loop" if e.errno == errno.ELOOP else f"unreadable: {e.strerror}")
    if not _within(target, root):
        return Skip(rel, "symlink pointing outside the repository")
    to = os.path.relpath(target, root).replace(os.sep, "/")
    shown = escape_path(to)
    if is_ignored(Path(root), to, options):
        return Skip(rel, f"symlink to {shown}, which is ignored")
    there = _check_file(root, to, False, options, explicit=False)
    if there is None:
        return None
    return Skip(rel, f"symlink to {shown} ({'indexed' if isinstance(there, str) else 'skipped'} at its real path)")


def _check_file(root: str, rel: str, is_link: bool, options: DiscoverOptions, explicit: bool) -> str | Skip | None:
    """rel when the file is indexed, a Skip to report, or None to drop it silently (an unsupported type, one
    that vanished during the walk). Explicit files (named by the user) report what a walk drops silently."""
    name = rel.rsplit("/", 1)[-1]
    if (bad := invalid_name(rel)) is not None:
        return bad if explicit or language_for(rel) is not None else None
    if not options.include_secrets and (pat := secret_pattern(name)):
        return Skip(rel, f"secret-bearing file (matches {pat!r}); {INCLUDE_SECRETS_HINT}")
    if language_for(rel) is None:
        return Skip(rel, "unsupported file type") if explicit else None
    if is_link and (link := _check_link(root, rel, options)) is not None:
        return link
    try:
        st = os.stat(os.path.join(root, rel))
    except FileNotFoundError:
        return Skip(rel, "no such file") if explicit else None  # vanished during the walk
    except OSError as e:
        return Skip(rel, f"unreadable: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Skip(rel, not_regular(st.st_mode))  # fifo, socket, device: never read
    if st.st_size > options.max_file_bytes:
        return Skip(rel, too_big(st.st_size, options))
    if st.st_size == 0:
        return Skip(rel, "empty file")
    return rel


EXCLUDED_PREFIX = "folder left out by the built-in excludes"


def _quiet(name: str) -> bool:
    return name in QUIET_EXCLUDE_DIRS or name.endswith(".egg-info")


def excluded_reason(rel: str) -> str:
    """Why a folder the built-in excludes (``DEFAULT_EXCLUDE_DIRS``) leave out is not indexed, and how to bring
    it back: a negation in ``.semcodeignore``, which outranks them (`_Rules`)."""
    return (
        f"{EXCLUDED_PREFIX} (dependencies, build output or caches, by its name); to index it, add the line "
        f"'!{rel}/' to .semcodeignore"
    )


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
            key = escape_path(e.name)  # the order of the reported (escaped) paths
            entries.append(_Entry(key + "/" if is_dir else key, e.name, is_dir, is_link, inode))
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
            if entry.name in VCS_DIRS:
                continue
            if dir_rules.ignored(rel, is_dir=True):
                if not _quiet(entry.name) and not entry.is_link and dir_rules.by_defaults_only(rel):
                    yield Skip(rel, excluded_reason(rel))
                continue
            if (bad := invalid_name(rel, is_dir=True)) is not None:
                yield bad  # never entered: no path below it could be stored
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


def discover(
    root: Path, options: DiscoverOptions = DiscoverOptions(), *, matcher: MatcherFactory = IgnoreFile
) -> Iterator[str | Skip]:
    """The files under `root` that semcode indexes, as repository-relative POSIX paths in sorted order, and a Skip
    for each file left out for a reason worth reporting. Never follows a symlinked folder; never raises for a
    file's problems (an unreadable folder is a Skip). `matcher` compiles each ignore file (`PlainIgnoreFile`, the
    reference, for tests and benchmarks)."""
    real = os.path.realpath(root)
    yield from _walk(real, "", _base_rules(real, options, matcher), options)


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
            results = [Skip(escape_path(str(path)), "outside the repository")]
        elif is_dir and (bad := invalid_name(rel, is_dir=True)) is not None:
            results = [bad]
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
            results = [Skip(escape_path(rel), "no such file")]
        else:
            real = os.path.realpath(repo)
            checked = _check_file(real, rel, path.is_symlink(), options, explicit=True)
            results = [checked] if checked is not None else []
        for item in results:
            key = item.path if isinstance(item, Skip) else item
            if key not in seen:
                seen.add(key)
                yield item
