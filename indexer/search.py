"""Queries: text -> hits (semantic, lexical or hybrid), and "related code" for a place in a file.

``search`` gives one retriever's list (semantic, lexical, or their plain reciprocal rank fusion); ``candidates``
gives the lists that ``semcode.ranking`` ranks for a hybrid search: semantic, lexical and symbol names, each deeper
than the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

import numpy as np

from .sql import search_filter
from .store import Hit, Store, StoredChunk

Mode = Literal["hybrid", "semantic", "lexical"]


class QueryEncoder(Protocol):
    def encode(self, texts: list[str], kind: Literal["document", "query"] = "query") -> np.ndarray: ...


def search(
    store: Store,
    encoder: QueryEncoder | None,
    query: str,
    mode: Mode = "hybrid",
    limit: int = 20,
    *,
    repo: str | None = None,
    languages: Sequence[str] | None = None,
    path_glob: str | None = None,
    exclude: Sequence[str] = (),
    vector: np.ndarray | None = None,
) -> list[Hit]:
    """Hits for a natural-language or code query. ``encoder`` may be None for lexical search, or when ``vector`` (the
    query's, from ``encoder.encode([query], kind="query")[0]``) is given: a caller running one query over several
    globs or stores encodes it once (a long query costs about a second to encode on a CPU)."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if not query.strip():
        return []
    where = Where(repo, languages, path_glob, tuple(exclude))
    if mode == "lexical":
        return store.search_text(query, limit, **where.kwargs())
    if vector is None:
        if encoder is None:
            raise ValueError(f"{mode} search needs an encoder")
        vector = encoder.encode([query], kind="query")[0]
    if mode == "semantic":
        return store.search_vector(vector, limit, **where.kwargs())
    if mode == "hybrid":
        return store.search_hybrid(vector, query, limit, **where.kwargs())
    raise ValueError(f"unknown search mode {mode!r}")


@dataclass(frozen=True)
class Where:
    """Which rows a search reads: a repository, languages, a path glob to keep and globs to drop."""

    repo: str | None = None
    languages: Sequence[str] | None = None
    path_glob: str | None = None
    exclude: tuple[str, ...] = ()
    only: str | None = None  # the repository every hit must be of, checked on the hits (no filter in the search)

    def keep(self, hits: list[Hit]) -> list[Hit]:
        """`hits` of the ``only`` repository."""
        return hits if self.only is None else [h for h in hits if h.chunk.repo == self.only]

    def kwargs(self) -> WhereArgs:
        """The store's keyword arguments for these rows."""
        return {"repo": self.repo, "languages": self.languages, "path_glob": self.path_glob, "exclude": self.exclude}


class WhereArgs(TypedDict):
    repo: str | None
    languages: Sequence[str] | None
    path_glob: str | None
    exclude: Sequence[str]


@dataclass(frozen=True)
class CandidateLists:
    """One store's candidates for a ranked search, each list best first."""

    semantic: list[Hit]
    lexical: list[Hit]
    names: list[Hit]


def candidates(
    store: Store, query: str, vector: np.ndarray | None, name_terms: str, depth: int, where: Where
) -> CandidateLists:
    """The semantic (when ``vector`` is given), lexical and symbol-name lists of a hybrid search, ``depth`` deep
    (names: at most 50). ``name_terms``: what to search the symbol names for ("" for nothing). The three searches
    run at once in one trip to LanceDB (``Store.search_lists``). The lexical list reads the chunk text only, not
    text and names as a lexical search alone does: the names list is there beside it, and LanceDB's search of two
    full-text columns at once costs far more than the two apart (at 5M chunks, p50/p95 173/494 ms against 78/137 for
    the text and 31/56 for the names). Measured on 250 developer questions over 10 projects
    (``benchmarks/questions.py``): hybrid NDCG@10 0.864 with both columns, 0.863 with the text alone."""
    semantic, lexical, names = store.search_lists(
        vector, query, name_terms, depth, min(depth, 50), search_filter(**where.kwargs())
    )
    return CandidateLists(where.keep(semantic), where.keep(lexical), where.keep(names))


def related(
    store: Store,
    repo: str,
    path: str,
    line: int,
    limit: int = 20,
    *,
    languages: list[str] | None = None,
    path_glob: str | None = None,
    exclude: Sequence[str] = (),
    encode: Callable[[str], np.ndarray] | None = None,
) -> tuple[StoredChunk | None, list[Hit]]:
    """(the chunk at ``path:line`` (0-based), the chunks most like it). The chunk itself and any chunk of the same
    file that overlaps it are not results. (None, []) when nothing indexed covers that line. The query is the row's
    own vector; a row without one yet (phase 2 has not reached it) is encoded by `encode` (none: no results)."""
    chunk = store.chunk_at(repo, path, line)
    if chunk is None:
        return None, []
    vector = store.row_vector(chunk)
    if vector is None and encode is not None:
        vector = encode(chunk.text)
    if vector is None:
        return chunk, []
    hits = store.search_vector(
        vector, limit * 2 + 8, repo=None, languages=languages, path_glob=path_glob, exclude=exclude
    )
    out = [h for h in hits if not _overlaps(h.chunk, chunk)]
    return chunk, out[:limit]


def _overlaps(a: StoredChunk, b: StoredChunk) -> bool:
    if a.repo != b.repo or a.path != b.path:
        return False
    return a.start_line <= b.end_line and b.start_line <= a.end_line
