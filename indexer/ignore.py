"""Ignore files (.gitignore syntax) compiled once, decided fast.

Each ignore file is compiled once into an `IgnoreFile`, which does not try every pattern on every path: literal
names and paths, "*.ext" and "tmp*" lines are dict lookups; the other lines are grouped by the literal end of the
names they match or their first folder, and each group becomes combined regexes when a path first needs it. A
200,000-line .gitignore took 80 s to walk 53 files when every line was tried on every path
(`benchmarks/gitignore_scaling.py` prints both). `PlainIgnoreFile`, that plain way, is the reference the fast one is
tested against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

import pathspec


class _Pattern(NamedTuple):
    exclude: bool  # False for a "!" line
    dir_only: bool  # the line ended in "/"
    regex: re.Pattern[str]


def _lines(raw_lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Gitignore lines -> (pattern, dir_only) in file order: blank lines and comments dropped, trailing blanks
    stripped unless escaped, a trailing "/" taken off and noted."""
    for raw in raw_lines:
        line = raw if raw.endswith("\\ ") else raw.rstrip(" \t\r")
        if not line or line.startswith("#"):
            continue
        dir_only = len(line) > 1 and line.endswith("/") and not line.endswith("\\/")
        # a trailing "/" does not anchor the pattern in git: match the folder's own path
        yield (line[:-1] if dir_only else line), dir_only


def _compile(lines: Iterable[str]) -> tuple[_Pattern, ...]:
    """Gitignore lines -> patterns, in file order. A line pathspec rejects is dropped (broken input is data)."""
    out: list[_Pattern] = []
    for line, dir_only in _lines(lines):
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


class IgnoreMatcher(Protocol):
    """The patterns of one ignore file, compiled: ``decide`` says what the last pattern matching `path` (relative
    to the file's folder) says, True for ignored, False for re-included by a "!" line, None when none matches."""

    def decide(self, path: str, is_dir: bool) -> bool | None: ...


class PlainIgnoreFile:
    """The reference matcher: every pattern, last first, against the path (pathspec's regex per line). The fast
    `IgnoreFile` must decide as it does (tests/test_discover.py; benchmarks/gitignore_scaling.py times both)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.patterns = _compile(lines)

    def decide(self, path: str, is_dir: bool) -> bool | None:
        for p in reversed(self.patterns):
            if _own_match(p, path, is_dir):
                return p.exclude
        return None


# a gitignore segment with no glob, escape, blank or "!"/"#" in it: the line means exactly these characters
_SEG = r"[^\s*?\[\]\\/!#]+"
_LITERAL = re.compile(rf"(/)?({_SEG}(?:/{_SEG})*)")  # a name ("foo") or, with a "/", a path from the folder
_AFFIX = re.compile(rf"(\*)?({_SEG})(\*)?")  # "*.ext" (a name's suffix) or "tmp*" (its prefix), no "/"
_HEAD = re.compile(rf"/?({_SEG})/")  # a first segment with no glob in it
_UP_TO_SPECIAL = re.compile(r".*[*?\[\]\\/]", re.DOTALL)  # up to the last wildcard, class, escape or "/"
_ANY_DEPTH = "^(?:.+/)?"  # how pathspec begins the regex of a pattern that matches at any depth
_OWN_END = "(?:(?P<ps_d>/)|$)"  # how it ends one that matches a path or (ps_d) every path below it
_BELOW_END = "(?P<ps_d>/)"  # ... one that matches only paths below a folder: never a path itself
_CHUNK = 2_000  # alternatives per combined regex
_PATHSPEC_PATTERN = type(pathspec.GitIgnoreSpec.from_lines(["x"]).patterns[0])  # what GitIgnoreSpec compiles with


def _group_key(line: str, regex: str) -> tuple[str, str]:
    """Which group a pattern that needs its regex joins: ("tail", t) when every path it matches itself has a base
    name ending in t, ("head", h) when every one begins with the folder h, ("all", "") else. A key is read from
    the line and used only when pathspec's regex says the same (ends in t, escaped; begins with h, then "/")."""
    tail = line[m.end() :] if (m := _UP_TO_SPECIAL.match(line)) else line
    if tail and regex.endswith(end := re.escape(tail) + _OWN_END):
        before = regex[: -len(end)]
        if (len(before) - len(before.rstrip("\\"))) % 2 == 0:  # not the second half of an escape pair
            return "tail", tail
    if (m := _HEAD.match(line)) is not None:
        head = f"^{re.escape(m[1])}/"
        if regex.startswith(head) and regex[len(head) : len(head) + 1] not in ("*", "+", "?", "{"):
            return "head", m[1]
    return "all", ""


class _Group:
    """Patterns that need their regex, sharing a key (`_group_key`): compiled when a path first needs them, each
    into an alternative of a combined regex (pathspec's regex, its own-match end made a full match), highest
    pattern first and ending in an empty group named after it, so the first alternative that matches is the last
    matching pattern; a regex of a form not known is tried alone, as `PlainIgnoreFile` does."""

    def __init__(self) -> None:
        self.members: list[tuple[int, str, _Pattern]] = []  # (index, regex, pattern without its regex)
        self.top = -1  # the highest index in the group
        self.compiled = False
        self.anchored: list[re.Pattern[str]] = []  # match the whole path
        self.floating: list[re.Pattern[str]] = []  # match the path from 0 or after any "/"
        self.alone: list[tuple[int, _Pattern]] = []

    def add(self, i: int, regex: str, pattern: _Pattern) -> None:
        self.members.append((i, regex, pattern))
        self.top = i

    def compile(self) -> None:
        anchored, floating = [], []
        for i, regex, pattern in self.members:
            if regex.endswith(_BELOW_END) and "(?P" not in regex[: -len(_BELOW_END)]:
                continue  # matches no path itself (an "x//" line): what it names was decided at its folder
            body = regex[: -len(_OWN_END)] if regex.endswith(_OWN_END) else regex + ".*"  # "x/**": all below x/
            if "(?P" in body or not body.startswith("^"):
                self.alone.append((i, pattern._replace(regex=re.compile(regex))))
            elif body.startswith(_ANY_DEPTH):
                floating.append((i, body[len(_ANY_DEPTH) :]))
            else:
                anchored.append((i, body[1:]))
        self.anchored, self.floating, self.compiled = _combine(anchored), _combine(floating), True
        self.members = []

    def last(self, path: str, starts: list[int], is_dir: bool, best: int) -> int:
        """The index of the last pattern of the group matching `path` if above `best`, else `best`; `starts`: 0
        and each index after a "/", where a pattern matching at any depth may begin."""
        if not self.compiled:
            self.compile()
        for regex in self.anchored:  # highest patterns first: the first match is the last matching pattern
            if (m := regex.fullmatch(path)) is not None:
                best = max(best, int(str(m.lastgroup)[1:]))
                break
        for regex in self.floating:
            found = [int(str(m.lastgroup)[1:]) for k in starts if (m := regex.fullmatch(path, k)) is not None]
            if found:
                best = max(best, *found)
                break
        for i, p in reversed(self.alone):
            if i <= best:
                break
            if _own_match(p, path, is_dir):
                return i
        return best


def _combine(alternatives: list[tuple[int, str]]) -> list[re.Pattern[str]]:
    """One regex per `_CHUNK` alternatives, highest index first; each alternative ends in an empty group p<index>
    (at the end, so that re's quick check of an alternative's first character still applies)."""
    ordered = sorted(alternatives, reverse=True)
    chunks = (ordered[at : at + _CHUNK] for at in range(0, len(ordered), _CHUNK))
    return [re.compile("|".join(f"(?:{body})(?P<p{i}>)" for i, body in chunk)) for chunk in chunks]


class _Table:
    """Patterns of one ignore file that apply to files and folders, or to folders only ("dir/" lines), indexed by
    kind so that a path is not tried against each: literal names and paths and "*.ext"/"tmp*" names are dict
    lookups; the others are `_Group`s by the literal end of their name or their first folder."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}  # base name -> the last pattern index naming it
        self.paths: dict[str, int] = {}
        self.suffixes: dict[str, int] = {}
        self.prefixes: dict[str, int] = {}
        self.groups: dict[tuple[str, str], _Group] = {}

    def add_literal(self, i: int, line: str) -> bool:
        """Pattern `i` (its line, "!" taken off) when it is a literal name or path, or "*.ext" or "tmp*": the
        kinds that need neither pathspec nor a regex."""
        if (m := _LITERAL.fullmatch(line)) is not None:
            (self.paths if m[1] or "/" in m[2] else self.names)[m[2]] = i
        elif (m := _AFFIX.fullmatch(line)) is not None and bool(m[1]) != bool(m[3]):
            (self.suffixes if m[1] else self.prefixes)[m[2]] = i
        else:
            return False
        return True

    def add_regex(self, i: int, line: str, regex: str, pattern: _Pattern) -> None:
        """Pattern `i` of any other kind (its line, "!" taken off); `regex` is pathspec's for it."""
        self.groups.setdefault(_group_key(line, regex), _Group()).add(i, regex, pattern)

    def finish(self) -> None:
        self.suffix_lengths = sorted({len(s) for s in self.suffixes})
        self.prefix_lengths = sorted({len(s) for s in self.prefixes})
        self.tail_lengths = sorted({len(t) for kind, t in self.groups if kind == "tail"})

    def last(self, path: str, name: str, starts: list[int], is_dir: bool) -> int:
        """The index of the last pattern matching `path` (whose base name is `name`), -1 when none does."""
        best = max(self.names.get(name, -1), self.paths.get(path, -1))
        best = max([best] + [self.suffixes.get(name[-n:], -1) for n in self.suffix_lengths if n <= len(name)])
        best = max([best] + [self.prefixes.get(name[:n], -1) for n in self.prefix_lengths if n <= len(name)])
        keys = [("all", ""), ("head", path[: starts[1] - 1] if len(starts) > 1 else "")]
        keys += [("tail", name[-n:]) for n in self.tail_lengths if n <= len(name)]
        for key in keys:
            if (group := self.groups.get(key)) is not None and group.top > best:
                best = group.last(path, starts, is_dir, best)
        return best


class IgnoreFile:
    """The patterns of one ignore file, indexed (`_Table`): deciding a path costs a few dict lookups and the
    combined regexes of the few groups it could match, not one regex per pattern. Decides exactly as
    `PlainIgnoreFile`, which it falls back to for a path pathspec's regexes read differently from a plain string
    (a name holding a newline, which their "." does not match)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = tuple(lines)
        self.exclude: list[bool] = []
        self.any = _Table()  # patterns that match files and folders
        self.dirs = _Table()  # "dir/" patterns
        self._plain: PlainIgnoreFile | None = None
        for line, dir_only in _lines(self.lines):
            table = self.dirs if dir_only else self.any
            i, include = len(self.exclude), not line.startswith("!")
            bare = line if include else line[1:]
            if not table.add_literal(i, bare):
                try:
                    regex, included = _PATHSPEC_PATTERN.pattern_to_regex(line)
                except ValueError:
                    continue
                if regex is None or included is None:
                    continue
                include = included
                table.add_regex(i, bare, regex, _Pattern(include, dir_only, _NEVER))
            self.exclude.append(include)
        self.any.finish()
        self.dirs.finish()

    def decide(self, path: str, is_dir: bool) -> bool | None:
        if "\n" in path or path.startswith("/"):
            if self._plain is None:
                self._plain = PlainIgnoreFile(self.lines)
            return self._plain.decide(path, is_dir)
        name = path[path.rfind("/") + 1 :]
        starts = [0] + [i + 1 for i, c in enumerate(path) if c == "/"]
        best = self.any.last(path, name, starts, is_dir)
        if is_dir:
            best = max(best, self.dirs.last(path, name, starts, is_dir))
        return None if best < 0 else self.exclude[best]


_NEVER = re.compile(r"(?!)")
MatcherFactory = Callable[[Iterable[str]], IgnoreMatcher]
