"""The SQL of LanceDB's ``where`` clauses: string literals, IN-lists in batches, path globs as regexes (run by
DataFusion's ``regexp_like``, Rust's linear-time regex) and a search's filter. Values are always quoted here, never
pasted: no filter a client sends can change the SQL."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

BATCH = 1000  # paths / hashes per SQL IN-list
T = TypeVar("T")


def sql_str(value: str) -> str:
    """A SQL string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(sql_str(v) for v in values)})"


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    """`items` in slices of `size` (an IN-list each)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")


def _escape(ch: str) -> str:
    # Only the metacharacters: the pattern runs both in Python `re` and in Rust `regex` (DataFusion regexp_like),
    # and Rust rejects some escapes Python's re.escape writes.
    return "\\" + ch if ch in _REGEX_SPECIAL else ch


def glob_to_regex(glob: str) -> str:
    """Translate a path glob to an anchored regex that Python and Rust read alike.

    ``*`` and ``?`` stay within one path segment, ``**`` (or any longer run of ``*``) crosses segments (``a/**/b``
    also matches ``a/b``), ``[...]`` is a character class as in fnmatch and gitignore (see ``_glob_class``). A pattern
    without ``/`` matches the file name at any depth (``*.go``); a leading ``/`` anchors at the repository root; a
    trailing ``/`` matches everything below a directory. Raises ValueError for a class that matches nothing.
    """
    pat = glob.strip()
    anchored = "/" in pat.rstrip("/")
    pat = pat.lstrip("/")
    if pat.endswith("/"):
        pat += "**"
    out = [] if anchored else ["(?:.*/)?"]
    i = 0
    while i < len(pat):
        c = pat[i]
        run = len(pat) - i - len(pat[i:].lstrip("*")) if c == "*" else 0  # a run of 2+ stars is "**"
        if run >= 2 and pat.startswith("/", i + run):
            out.append("(?:.*/)?")
            i += run + 1
        elif run >= 2:
            out.append(".*")
            i += run
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (cls := _glob_class(glob, pat, i)) is not None:
            out.append(cls[0])
            i = cls[1]
        else:
            out.append(_escape(c))
            i += 1
    return "^" + "".join(out) + "$"


_CLASS_SPECIAL = set("\\[]^-&~")  # escaped inside a class: Rust also reads &&, -- and ~~ as set operations


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in _CLASS_SPECIAL else ch


def _glob_class(glob: str, pat: str, i: int) -> tuple[str, int] | None:
    """(the regex of the class that opens at ``pat[i] == "["``, the index after it), or None when no ``]`` closes it
    (the ``[`` is then a literal). As in fnmatch and gitignore: a leading ``!`` or ``^`` negates, a ``]`` first (after
    the negation) is a member (``[]]``, ``[!]]``), ``a-z`` is a range; a negated class never matches ``/``."""
    j = i + 1
    negated = pat[j : j + 1] in ("!", "^")
    j += 1 if negated else 0
    end = pat.find("]", j + 1)  # the first member is never the closing "]"
    if end == -1:
        return None
    body, members, k = pat[j:end], [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            if body[k] <= body[k + 2]:  # a reversed range matches nothing (fnmatch drops it)
                members.append(f"{_class_char(body[k])}-{_class_char(body[k + 2])}")
            k += 3
        else:
            members.append(_class_char(body[k]))
            k += 1
    if negated:
        return "[^/" + "".join(members) + "]", end + 1
    if not members:
        raise ValueError(f"path glob {glob!r}: the class {pat[i : end + 1]!r} matches nothing")
    return "[" + "".join(members) + "]", end + 1


def path_regex(glob: str) -> str:
    """``glob_to_regex``, checked: ValueError (naming the glob, never SQL) for a pattern no regex engine takes."""
    regex = glob_to_regex(glob)
    try:
        re.compile(regex)
    except re.error as e:
        raise ValueError(f"path glob {glob[:80]!r} is not a valid pattern ({e})") from None
    return regex


def search_filter(
    repo: str | None, languages: Sequence[str] | None, path_glob: str | None, exclude: Sequence[str] = ()
) -> str | None:
    """The SQL filter of a search: ``path_glob`` keeps matching paths, each glob of ``exclude`` drops them. Globs are
    applied here alone, by LanceDB's ``regexp_like`` (Rust's linear-time regex); a second check of the rows with
    Python's backtracking ``re`` took exponential time on ``*a*a*a...``."""
    parts = []
    if repo is not None:
        parts.append(f"repo = {sql_str(repo)}")
    if languages:
        parts.append(sql_in("language", languages))
    if path_glob:
        parts.append(f"regexp_like(path, {sql_str(path_regex(path_glob))})")
    for glob in exclude:
        parts.append(f"NOT regexp_like(path, {sql_str(path_regex(glob))})")
    return " AND ".join(parts) if parts else None
