"""Every limit on the size of a request, in one place, and the small helpers that enforce them.

The core enforces them (``semcode.query.SearchQuery``, ``Engine.search``, ``Engine.related``, ``Engine.read``), so
every front door (CLI, LSP, MCP, the Python API) gets the same limits; the MCP tool schemas take their numbers from
here. Past a limit a request is refused with a ``ValueError`` naming the field, except the query, which is cut:

- ``MAX_QUERY_CHARS``: a longer query is cut to this many characters, for the model and for the lexical search alike,
  and the search says so (``SearchQuery.warnings``; the Python API issues a ``LimitWarning``). A pasted stack trace
  or file still finds something; a 10 MB query costs what a 4,000-character one does. (LanceDB's full-text search
  grew superlinearly with the query's words: 1.7 million words asked for a 28 GB allocation.)
- ``MAX_QUERY_TOKENS``: the model reads at most this many tokens of a query (the rest still counts for the lexical
  search), as it reads at most ``max_tokens`` of a chunk: no warning. The torch-free query encoder's cost grows
  faster than linearly with the tokens (shipped model, two busy cores: 0.4 s at 64 tokens, 2.7 s at 512, 9.4 s at
  1,024), so a query's tokens must be bounded, not only its characters (one character can be one token).
- ``MAX_PATH_GLOBS`` globs of at most ``MAX_GLOB_CHARS`` characters each: every glob is one more search per folder
  (two in hybrid mode), and each becomes a regular expression run over every row's path.
- ``MAX_LANGUAGES`` language names, each one semcode knows (``indexer.languages``; the error lists them).
- ``MAX_LIMIT`` results (``MCP_MAX_LIMIT`` for MCP, where each hit carries a snippet into an agent's context).
- ``MAX_LINES``: 0-based line numbers run from 0 to ``MAX_LINES - 1`` (1-based: 1 to ``MAX_LINES``); no indexed file
  comes near (``Settings.max_file_mb`` bounds them), and the store's SQL stays within 64-bit integers.
- ``SEARCH_DEADLINE_S``: a search checks the clock before each of its sub-searches (one per folder x glob) and
  raises ``SearchTimeout`` past it. A LanceDB call already running is not interrupted; the limits above bound each
  one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache

MAX_QUERY_CHARS = 4_000
MAX_QUERY_TOKENS = 512
MAX_PATH_GLOBS = 20
MAX_GLOB_CHARS = 500
MAX_LANGUAGES = 20
MAX_LIMIT = 1_000
MCP_MAX_LIMIT = 100
MAX_LINES = 10_000_000
SEARCH_DEADLINE_S = 20.0


class SearchTimeout(ValueError):
    """A search ran past its deadline and was stopped between two sub-searches. A ``ValueError``, so every front
    door answers it as an error of the request (CLI: exit 2; LSP: an error response; MCP: a tool error)."""


class LimitWarning(UserWarning):
    """Part of a request was cut to a limit (the Python API's channel for ``SearchQuery.warnings``)."""


def short(value: object, chars: int = 60) -> str:
    """``repr(value)`` cut to about `chars` characters, for error messages that must not echo a huge input."""
    text = repr(value)
    return text if len(text) <= chars else f"{text[:chars]}... ({len(text):,} characters)"


def cut_query(query: str) -> tuple[str, str | None]:
    """(the query cut to ``MAX_QUERY_CHARS``, the warning to pass on, or None when nothing was cut)."""
    if len(query) <= MAX_QUERY_CHARS:
        return query, None
    note = f"the query was cut from {len(query):,} to {MAX_QUERY_CHARS:,} characters (the limit)"
    return query[:MAX_QUERY_CHARS], note


def model_text(text: str, count: Callable[[list[str]], list[int]], max_tokens: int = MAX_QUERY_TOKENS) -> str:
    """The longest prefix of `text` of at most `max_tokens` tokens by `count` (a tokenizer's untruncated counts, special
    tokens included): what the model reads of a query. Bisection: about 12 counts of a 4,000-character query."""
    if count([text])[0] <= max_tokens:
        return text
    lo, hi = 0, len(text)  # text[:lo] fits, text[:hi + 1] does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if count([text[:mid]])[0] <= max_tokens else (lo, mid - 1)
    return text[:lo]


def check_limit(limit: object, maximum: int = MAX_LIMIT) -> int:
    """`limit` if it is an integer from 1 to `maximum`, else ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise ValueError(f"limit must be an integer from 1 to {maximum}, got {short(limit)}")
    return limit


def check_line(line: object, name: str = "line") -> int:
    """`line` if it is a 0-based line number from 0 to ``MAX_LINES - 1``, else ValueError naming `name`."""
    if isinstance(line, bool) or not isinstance(line, int) or not 0 <= line < MAX_LINES:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_LINES - 1:,} (0-based), got {short(line)}")
    return line


def _strings(values: str | Sequence[str], name: str, most: int, what: str) -> tuple[str, ...]:
    items = (values,) if isinstance(values, str) else values
    if not isinstance(items, Sequence):
        raise ValueError(f"{name} must be a list of strings, got {short(values)}")
    if len(items) > most:
        raise ValueError(f"{name}: at most {most} {what} are allowed, got {len(items):,}")
    if not all(isinstance(v, str) for v in items):
        raise ValueError(f"{name} must be a list of strings, got {short(values)}")
    return tuple(dict.fromkeys(items))  # duplicates dropped: each one would be one more search


def check_globs(paths: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Path globs, duplicates dropped; ValueError past ``MAX_PATH_GLOBS`` globs or ``MAX_GLOB_CHARS`` characters."""
    if paths is None:
        return None
    globs = _strings(paths, "paths", MAX_PATH_GLOBS, "globs")
    for glob in globs:
        check_glob(glob)
    return globs or None


def check_glob(glob: str | None) -> str | None:
    """One path glob (None: no filter); ValueError past ``MAX_GLOB_CHARS`` characters."""
    if glob is not None and not isinstance(glob, str):
        raise ValueError(f"a path glob must be a string, got {short(glob)}")
    if glob is not None and len(glob) > MAX_GLOB_CHARS:
        raise ValueError(f"path glob {short(glob, 40)} is longer than {MAX_GLOB_CHARS} characters")
    return glob


@cache
def known_languages() -> frozenset[str]:
    """Every language name semcode gives a file (``indexer.languages``)."""
    from indexer.languages import FILENAMES, PARSED, TEXT

    return frozenset([*PARSED.values(), *TEXT.values(), *FILENAMES.values(), "dockerfile"])


def check_languages(languages: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Language names, lower-cased, duplicates dropped; ValueError past ``MAX_LANGUAGES`` names or for a name semcode
    does not know (the message lists the known ones)."""
    if languages is None:
        return None
    names = _strings(languages, "languages", MAX_LANGUAGES, "names")
    known = known_languages()
    wanted = tuple(dict.fromkeys(n.strip().lower() for n in names))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown language {short(unknown[0], 40)}; semcode knows: {', '.join(sorted(known))}")
    return wanted or None


class Deadline:
    """A point in time a search must not start another sub-search after (``time.monotonic``)."""

    def __init__(self, seconds: float = SEARCH_DEADLINE_S, start: float | None = None) -> None:
        self.seconds = seconds
        self.start = time.monotonic() if start is None else start

    def passed(self) -> bool:
        return time.monotonic() - self.start > self.seconds

    def check(self, done: int, total: int) -> None:
        """Raise ``SearchTimeout`` once the deadline has passed (`done` of `total` sub-searches ran)."""
        if time.monotonic() - self.start > self.seconds:
            raise SearchTimeout(
                f"the search ran past its deadline of {self.seconds:g} s and was stopped after {done} of {total} "
                "searches; narrow it (fewer path globs, a shorter query, a smaller limit)"
            )
