"""Hybrid ranking: the semantic, lexical and symbol-name candidate lists of one query -> one ranked list of hits,
each with the signals that placed it (``Hit.reasons``). Every front door's hybrid search ends here.

The score of a chunk, from the candidates of every searched index and path glob together:

1. **Fusion.** Each side's scores are normalised to 0-1 within its list (cosine: min-max over the list; BM25:
   divided by the list's best), then weighted by the kind of query: an identifier lookup leans on the lexical side
   (``LEXICAL_WEIGHT``), a sentence on both alike. A chunk both sides found keeps both parts, so it never falls
   below a chunk only one side found with the same scores.
2. **Definition evidence.** A chunk whose symbol (with its parent, when the query qualifies it) is a queried
   identifier gets ``DEFINITION``; a member of a queried class a little.
3. **Path evidence.** Query words found in the file's name (``PATH_NAME`` each) or its folders (``PATH_DIR``); a
   path the query spells out (``src/router/``, ``client.py``) in the chunk's path (``PATH_HINT``).
   Quoted text found verbatim in the chunk adds ``QUOTED``.
4. **Kinds of text.** Tests, docs, examples, benchmarks, vendored and generated files are multiplied by
   ``KIND_WEIGHT`` unless the query asks for that kind or a path filter selects the files.
5. **File evidence and diversity.** Each file's best chunk gains ``FILE_SUPPORT`` x the scores of the file's other
   candidates (capped); a file's later chunks decay by ``REPEAT_DECAY`` per place, so a first page shows distinct
   places. ``group_by_file`` keeps one hit per file.

Pure Python over at most a few hundred candidates: well under a millisecond per query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from indexer.text_kinds import text_kind

from .query_terms import QueryTerms, split_words, stem

if TYPE_CHECKING:
    from indexer.store import Hit, StoredChunk

LEXICAL_WEIGHT = {"identifier": 0.7, "sentence": 0.5}
DEFINITION = 1.0  # the chunk defines the queried symbol
DEFINITION_LOOSE = 0.5  # same name, other case or other parent
MEMBER = 0.15  # a member of the queried class
NAME_WEIGHT = 0.1  # BM25 of the query's words over symbol names (their camelCase and snake_case parts)
PATH_NAME = 0.2
PATH_DIR = 0.06
PATH_HINT = 0.4  # a path written in the query ("in src/router/", "client.py") is part of the chunk's path
QUOTED = 0.3
KIND_WEIGHT = {"code": 1.0, "config": 0.8, "docs": 0.55, "test": 0.5, "example": 0.6, "benchmark": 0.5,
               "vendored": 0.4, "generated": 0.35}  # fmt: skip
ASKED_KIND_WEIGHT = 1.15  # a kind the query asks for ("tests for ...")
FILE_SUPPORT = 0.3
FILE_SUPPORT_CAP = 0.5  # at most this share of the best chunk's own score
REPEAT_DECAY = 0.5


@dataclass(frozen=True)
class Candidates:
    """What the stores returned for one query: each list best first, scores as the store gives them."""

    semantic: Sequence[Hit] = ()  # score: cosine similarity
    lexical: Sequence[Hit] = ()  # score: BM25 over text and names
    names: Sequence[Hit] = ()  # score: BM25 over symbol names only (the identifiers, else the content words)


@dataclass
class _Scored:
    chunk: StoredChunk
    semantic: float = 0.0
    lexical: float = 0.0
    names: float = 0.0
    bonus: float = 0.0
    weight: float = 1.0
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0


def names_query(terms: QueryTerms, semantic: bool) -> str:
    """What a hybrid search's symbol-name list searches for ("": no names list). A query that names identifiers
    always has one. A sentence without identifiers has one only when there is no semantic list (a first run's phase
    1): with vectors its names list adds nothing, and it costs a third full-text search (at 5M chunks p50/p95 25/56
    ms). Measured on the 250 developer questions over 10 projects (``benchmarks/questions.py``, hybrid NDCG@10):
    embedded, 0.864 with the names list for sentences and 0.865 without; with no vectors, 0.864 and 0.859."""
    return terms.name_terms if terms.identifiers or not semantic else ""


def rank(
    terms: QueryTerms,
    found: Candidates,
    limit: int,
    *,
    filtered: bool = False,
    group_by_file: bool = False,
) -> list[Hit]:
    """The ``limit`` best hits. ``filtered``: a path filter chose the files, so no kind of text is ranked lower."""
    from indexer.store import Hit

    lex_weight = LEXICAL_WEIGHT["identifier" if terms.identifier_query else "sentence"]
    scored: dict[StoredChunk, _Scored] = {}

    def entry(chunk: StoredChunk) -> _Scored:
        s = scored.get(chunk)
        if s is None:
            s = scored[chunk] = _Scored(chunk)
        return s

    for hit, value in zip(found.semantic, _minmax([h.score for h in found.semantic]), strict=True):
        s = entry(hit.chunk)
        s.semantic = max(s.semantic, value)
    for hit, value in zip(found.lexical, _by_best([h.score for h in found.lexical]), strict=True):
        s = entry(hit.chunk)
        s.lexical = max(s.lexical, value)
    definitions = terms.definitions
    for hit, value in zip(found.names, _by_best([h.score for h in found.names]), strict=True):
        s = entry(hit.chunk)
        s.names = max(s.names, value)
    words = {stem(w) for w in terms.words}
    for s in scored.values():
        s.reasons = [r for r, v in (("semantic", s.semantic), ("lexical", s.lexical), ("name", s.names)) if v > 0]
        base = (1 - lex_weight) * s.semantic + lex_weight * s.lexical + NAME_WEIGHT * s.names
        _evidence(s, terms, definitions, words)
        s.weight = _kind_weight(s.chunk, terms, filtered, s.reasons)
        s.score = base + s.bonus
    ordered = _files_and_diversity(sorted(scored.values(), key=_order), group_by_file)
    for s in ordered:  # after the file evidence: a test file with many matching chunks stays below code
        s.score *= s.weight
    ordered.sort(key=_order)
    return [Hit(s.chunk, round(s.score, 6), tuple(s.reasons)) for s in ordered[:limit]]


def _order(s: _Scored) -> tuple[float, str, int]:
    """Best first; ties by path and line, so the order never depends on storage order."""
    return (-s.score, s.chunk.path, s.chunk.start_line)


def _minmax(values: list[float]) -> list[float]:
    if not values:
        return []
    low, high = min(values), max(values)
    if high - low < 1e-9:
        return [1.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def _by_best(values: list[float]) -> list[float]:
    best = max(values, default=0.0)
    return [v / best if best > 0 else 0.0 for v in values]


def _evidence(s: _Scored, terms: QueryTerms, definitions: tuple[tuple[str | None, str], ...], words: set[str]) -> None:
    """Definition, path and quoted-text evidence: adds to ``s.bonus`` and names each signal in ``s.reasons``."""
    kind, strength = _definition(s.chunk, definitions)
    if kind:
        scale = 1.0 if terms.identifier_query else 0.6
        s.bonus += strength * scale
        s.reasons.append(kind)
    name_hits, dir_hits = _path_matches(s.chunk.path, frozenset(words))
    hinted = any(hint.lstrip("./") in s.chunk.path for hint in terms.path_hints if hint.strip("./"))
    if name_hits or dir_hits or hinted:
        s.bonus += PATH_NAME * min(name_hits, 2) + PATH_DIR * min(dir_hits, 2) + (PATH_HINT if hinted else 0.0)
        s.reasons.append("path")
    if terms.quoted and any(q in s.chunk.text for q in terms.quoted):
        s.bonus += QUOTED
        s.reasons.append("quoted")


def _definition(chunk: StoredChunk, definitions: Iterable[tuple[str | None, str]]) -> tuple[str | None, float]:
    """("definition", DEFINITION) when the chunk defines a queried symbol (and its parent matches a qualified
    query), a looser match or a member of a queried class with less; (None, 0.0) otherwise."""
    symbol, parent = chunk.symbol, chunk.parent
    if not symbol:
        return None, 0.0
    best: tuple[str | None, float] = (None, 0.0)
    for want_parent, name in definitions:
        if symbol == name and (want_parent is None or _parent_matches(parent, want_parent)):
            return "definition", DEFINITION
        if symbol.lower() == name.lower() or (symbol == name and want_parent is not None):
            best = max(best, ("definition", DEFINITION_LOOSE), key=lambda b: b[1])
        elif want_parent is None and parent and parent.rsplit(".", 1)[-1] == name:
            best = max(best, ("member", MEMBER), key=lambda b: b[1])
    return best


def _parent_matches(parent: str | None, want: str) -> bool:
    if not parent:
        return False
    have = parent.split(".")
    need = want.split(".")
    return have[-len(need) :] == need


@lru_cache(maxsize=65536)
def _path_words(path: str) -> tuple[frozenset[str], frozenset[str]]:
    """(stemmed words of the file name without its extension, of its folders)."""
    parts = path.split("/")
    name = parts[-1].rsplit(".", 1)[0] if "." in parts[-1][1:] else parts[-1]
    name_words = frozenset(stem(w) for w in split_words(name) if len(w) > 1)
    dir_words = frozenset(stem(w) for d in parts[:-1] for w in split_words(d) if len(w) > 1)
    return name_words, dir_words - name_words


@lru_cache(maxsize=65536)
def _path_matches(path: str, words: frozenset[str]) -> tuple[int, int]:
    name_words, dir_words = _path_words(path)
    return len(words & name_words), len(words & dir_words)


def _kind_weight(chunk: StoredChunk, terms: QueryTerms, filtered: bool, reasons: list[str]) -> float:
    kind = text_kind(chunk.path, chunk.language)
    if kind == "code" or filtered:
        return 1.0
    asked = {"test": "test", "docs": "docs", "example": "example", "benchmark": "benchmark"}.get(kind)
    if asked is not None and asked in terms.intents:
        reasons.append(f"asked:{kind}")
        return ASKED_KIND_WEIGHT
    reasons.append(f"lower:{kind}")
    return KIND_WEIGHT.get(kind, 1.0)


def _files_and_diversity(ordered: list[_Scored], group_by_file: bool) -> list[_Scored]:
    """File evidence for each file's best chunk, then decay for a file's later chunks (or one hit per file)."""
    by_file: dict[tuple[str, str], list[_Scored]] = {}
    for s in ordered:
        by_file.setdefault((s.chunk.repo, s.chunk.path), []).append(s)
    for chunks in by_file.values():
        if len(chunks) > 1:
            best = chunks[0]
            support = FILE_SUPPORT * sum(max(c.score, 0.0) for c in chunks[1:])
            best.score += min(support, FILE_SUPPORT_CAP * max(best.score, 0.0))
            best.reasons.append(f"file:{len(chunks)}")
        for n, later in enumerate(chunks[1:], start=1):
            later.score *= REPEAT_DECAY**n
    if group_by_file:
        ordered = [chunks[0] for chunks in by_file.values()]
    return sorted(ordered, key=_order)
