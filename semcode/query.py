"""One search request, as every front door parses it: ``SearchQuery`` holds it to ``semcode.limits`` once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .limits import check_globs, check_languages, check_limit, cut_query, short

if TYPE_CHECKING:
    from indexer.search import Mode

MODES: tuple[Mode, ...] = ("hybrid", "semantic", "lexical")


class EmptyFilter(ValueError):
    """The search's path filters match no indexed file: an empty answer would look like 'nothing relevant'."""


@dataclass(frozen=True)
class SearchQuery:
    """One search: every front door parses its request into this. The limits of ``semcode.limits`` are enforced
    here: a bad or oversized field raises ValueError naming it; a query over ``MAX_QUERY_CHARS`` is cut, and
    ``warnings`` says so (front doors pass it on). ``paths`` and ``languages`` become tuples without duplicates,
    language names lower-cased."""

    query: str
    limit: int = 10
    mode: Mode = "hybrid"
    paths: Sequence[str] | None = None  # globs; a hit matches any of them and none of those written "!glob"
    languages: Sequence[str] | None = None
    group_by_file: bool = False  # one hit per file: its best chunk
    warnings: tuple[str, ...] = field(default=(), init=False, compare=False)  # what was cut, for the caller

    def __post_init__(self) -> None:
        if not isinstance(self.query, str):
            raise ValueError("the query must be a string")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {short(self.mode)}")
        check_limit(self.limit)
        if not isinstance(self.group_by_file, bool):
            raise ValueError(f"group_by_file must be true or false, got {short(self.group_by_file)}")
        query, note = cut_query(self.query)
        object.__setattr__(self, "query", query)  # (frozen: normalised once, here)
        object.__setattr__(self, "paths", check_globs(self.paths))
        object.__setattr__(self, "languages", check_languages(self.languages))
        object.__setattr__(self, "warnings", () if note is None else (note,))

    @property
    def include(self) -> tuple[str, ...]:
        """The globs a hit must match one of (none: every path)."""
        return tuple(p for p in self.paths or () if not p.startswith("!"))

    @property
    def exclude(self) -> tuple[str, ...]:
        """The globs written ``!glob``: a hit matches none of them."""
        return tuple(p[1:] for p in self.paths or () if p.startswith("!") and p[1:])

    def describe_filter(self, most: int = 3) -> str:
        """The path and language filters, for a message (``path 'src/**', path '!tests/**', language python``):
        at most `most` of each, each glob cut to 60 characters."""
        paths, langs = list(self.paths or ()), list(self.languages or ())
        parts = [f"path {short(p, 60)}" for p in paths[:most]] + [f"language {lang}" for lang in langs[:most]]
        extra = max(len(paths) - most, 0) + max(len(langs) - most, 0)
        return ", ".join(parts) + (f" and {extra} more" if extra else "")
