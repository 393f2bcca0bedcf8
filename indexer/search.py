"""Queries: text -> hits (semantic, lexical or hybrid), and "related code" for a place in a file.

Front doors (CLI, LSP, MCP) call these plain functions and convert the ``Hit``s to their own protocol.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

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
    languages: list[str] | None = None,
    path_glob: str | None = None,
    vector: np.ndarray | None = None,
) -> list[Hit]:
    """Hits for a natural-language or code query. ``encoder`` may be None for lexical search, or when ``vector`` (the
    query's, from ``encoder.encode([query], kind="query")[0]``) is given: a caller running one query over several
    globs or stores encodes it once (a long query costs about a second to encode on a CPU)."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if not query.strip():
        return []
    if mode == "lexical":
        return store.search_text(query, limit, repo=repo, languages=languages, path_glob=path_glob)
    if vector is None:
        if encoder is None:
            raise ValueError(f"{mode} search needs an encoder")
        vector = encoder.encode([query], kind="query")[0]
    if mode == "semantic":
        return store.search_vector(vector, limit, repo=repo, languages=languages, path_glob=path_glob)
    if mode == "hybrid":
        return store.search_hybrid(vector, query, limit, repo=repo, languages=languages, path_glob=path_glob)
    raise ValueError(f"unknown search mode {mode!r}")


def related(
    store: Store,
    repo: str,
    path: str,
    line: int,
    limit: int = 20,
    *,
    languages: list[str] | None = None,
    path_glob: str | None = None,
) -> tuple[StoredChunk | None, list[Hit]]:
    """(the chunk at ``path:line`` (0-based), the chunks most like it). The chunk itself and any chunk of the same
    file that overlaps it are not results. (None, []) when nothing indexed covers that line."""
    chunk = store.chunk_at(repo, path, line)
    if chunk is None:
        return None, []
    vector = store.row_vector(chunk)
    if vector is None:
        return chunk, []
    hits = store.search_vector(vector, limit * 2 + 8, repo=None, languages=languages, path_glob=path_glob)
    out = [h for h in hits if not _overlaps(h.chunk, chunk)]
    return chunk, out[:limit]


def _overlaps(a: StoredChunk, b: StoredChunk) -> bool:
    if a.repo != b.repo or a.path != b.path:
        return False
    return a.start_line <= b.end_line and b.start_line <= a.end_line
