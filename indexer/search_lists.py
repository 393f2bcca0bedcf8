"""A search's candidate lists from LanceDB in one trip to its event loop (``Store.search_lists``).

LanceDB 0.40's sync API (``LanceTable``) runs every call as a coroutine on LanceDB's background event loop
(``lancedb.background_loop.LOOP``) and waits for it from the calling thread, and its query builders ask for the
table's schema two or three times per query, each one more such round trip (0.3-0.4 ms of CPU apiece on two cores).
A hybrid search's three lists (vector, chunk text, symbol names) ran as three sync queries on three threads of a
pool: about ten round trips and three threads contending for the interpreter. Here the lists are built on the async
table under the sync one and awaited together: one round trip, the three queries running at once inside LanceDB's
runtime, no thread of ours in between. The queries are the sync builders' own (the same vector column, distance,
``nprobes``, ``refine_factor``, prefilter, columns and limit), so the rows and scores are theirs
(tests/test_store.py compares the two). Measured in one process on a 100k-chunk index, alternating
(``benchmarks/search_lists.py``): 0.81-0.83x the CPU and 0.80-0.82x the wall time of the three sync queries.

This and ``store.py`` are the project's only LanceDB query code; ``store.py`` owns the tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

# With an IVF_PQ index: partitions probed, and candidates re-ranked by exact distance (refine_factor x limit, at
# least REFINE_ROWS of them). LanceDB's defaults (no refine) gave recall@10 0.30 against flat search on real
# embeddings at 100k rows; 100 re-ranked rows (10 x 10) gave what flat search gives. A ranked search reads 40 deep:
# 3 x 40 rows keep that, at 16 -> 10 ms of CPU a query (benchmarks/scale.py's index: recall@40 0.998 either way).
NPROBES = 32
REFINE_FACTOR = 10  # at limit 10
REFINE_ROWS = 100


def refine_factor(limit: int) -> int:
    """How many times `limit` candidates an IVF_PQ search re-ranks by exact distance: at least REFINE_ROWS rows."""
    return max(2, min(REFINE_FACTOR, -(-REFINE_ROWS // max(1, limit))))


@dataclass(frozen=True)
class VectorList:
    """The rows nearest to `vector` by cosine distance (column ``_distance``)."""

    vector: np.ndarray
    limit: int


@dataclass(frozen=True)
class TextList:
    """The rows BM25 ranks best for `query` in `columns` (column ``_score``)."""

    query: str
    limit: int
    columns: tuple[str, ...]


def fetch(table: Any, lists: Sequence[VectorList | TextList], where: str | None, fields: Sequence[str]) -> list[Any]:
    """Each list's rows (`fields` and its score column) as a ``pyarrow.Table``, in the order of `lists`, from the
    sync LanceDB `table`; `where`: a SQL filter applied before the search (prefilter), or None. The first error of
    any list is raised."""
    if not lists:
        return []
    from lancedb.background_loop import LOOP

    inner = table._table  # the AsyncTable under LanceDB 0.40's LanceTable (lancedb is pinned to 0.40)

    async def one(spec: VectorList | TextList) -> pa.Table:
        query: Any
        if isinstance(spec, VectorList):
            query = inner.query().nearest_to(spec.vector).column("vector").distance_type("cosine")
            query = query.nprobes(NPROBES).refine_factor(refine_factor(spec.limit))  # (used once an index exists)
            score = "_distance"
        else:
            query = inner.query().nearest_to_text(spec.query, columns=list(spec.columns))
            score = "_score"
        if where:
            query = query.where(where)  # (a prefilter: LanceDB's async queries filter before they search)
        return await query.select([*fields, score]).limit(spec.limit).to_arrow()

    async def every() -> list[pa.Table]:
        return list(await asyncio.gather(*(one(spec) for spec in lists)))

    return LOOP.run(every())
