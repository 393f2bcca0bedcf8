"""One relevance scale, 0-1, for every kind of search: what a front door shows a person instead of the raw score.

The raw scores have three scales: a hybrid search's is ``semcode.ranking``'s (the two retrievers' normalised scores,
about 0-1.1, plus definition, path and file evidence: up to about 3), a semantic search's and ``related``'s the
cosine similarity (-1 to 1; about 0.3-0.8 for real matches), a lexical search's BM25 (0 and up, unbounded; about 5-20
for a good match of a few words). ``relevance`` maps each onto 0-1, monotone in the score (a better raw score never
gets a lower relevance) and higher is better:

- cosine (``semantic``, ``related``): the similarity itself, below 0 as 0;
- ``hybrid`` and ``lexical``: ``score / (score + half)``, which is 0.5 at ``half`` (``HYBRID_HALF``,
  ``LEXICAL_HALF``) and nears 1 as the score grows; a score at or below 0 is 0.

Relevance ranks hits within one answer and tells a strong hit from a weak one; it is no probability, and two modes'
figures are not comparable. The raw score stays in machine-readable output (``--json``). No imports: the CLI's warm
path uses it.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["hybrid", "semantic", "lexical", "related"]

# hybrid: the best hit of both retrievers scores 1.0-1.1 (``semcode.ranking``: normalised cosine and BM25, weighted
# to sum to 1, plus NAME_WEIGHT), one found by one side only about 0.3-0.7; definition and path evidence add up to
# about 2 more. 0.5 -> relevance 0.5; 1.1 -> 0.69; 2.1 -> 0.81.
HYBRID_HALF = 0.5
# lexical: BM25 (LanceDB's full-text search) of a good match of a few query words is about 5-20: 6 -> 0.5; 11 -> 0.65
LEXICAL_HALF = 6.0
MODES: tuple[Mode, ...] = ("hybrid", "semantic", "lexical", "related")


def relevance(mode: Mode, score: float) -> float:
    """`score`, as a search in `mode` gives it, on the 0-1 scale (see the module docstring). Raises ValueError for
    an unknown mode."""
    if mode in ("semantic", "related"):
        return min(max(score, 0.0), 1.0)
    if mode == "hybrid":
        return _saturating(score, HYBRID_HALF)
    if mode == "lexical":
        return _saturating(score, LEXICAL_HALF)
    raise ValueError(f"unknown search mode {mode!r}; expected one of {', '.join(MODES)}")


def _saturating(score: float, half: float) -> float:
    """0 at or below 0, 0.5 at `half`, towards 1 as `score` grows."""
    return score / (score + half) if score > 0 else 0.0
