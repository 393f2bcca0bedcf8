"""The segments of a table's vector index, merged before they pile up.

LanceDB's ``Table.optimize`` adds the rows written since the last compaction to the IVF_PQ index as a new delta
index (a segment), and merges segments only when an IVF partition splits; its Python API has no setting for it. A
vector search reads every segment, so an index that is compacted after every run (an organisation's, a daemon's
after a day of saves) slows down as they accumulate: at 5M chunks with 7 segments, the semantic list's p50/p95 was
57/75 ms against 51/62 ms merged (``benchmarks/scale.py``'s index, one process). Lance itself (the ``pylance``
package, which the ``ray`` extra installs: 13.x, the Lance inside LanceDB 0.40, so that both write one format; after
a Lance 14 merge, LanceDB's next compactions printed hundreds of "partition N is empty" warnings) merges them
without retraining: 1.8 s for those 5M rows.

``merge`` does that when the index has more than ``MAX_SEGMENTS``; without ``pylance`` it says once how to get it
and leaves the segments as they are (searches stay correct, only slower).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

MAX_SEGMENTS = 4  # more than this many segments are merged into one at the next compaction
_told = False  # the "install pylance" hint is logged once per process


def merge(table_uri: str, index_name: str, segments: int, storage_options: Mapping[str, str] | None) -> bool:
    """Merge the `segments` segments of `index_name` in the Lance table at `table_uri` into one (no retraining: the
    centroids and codebooks stay). True when merged; False when ``pylance`` is not installed (logged once)."""
    global _told
    try:
        import lance
    except ImportError:
        if not _told:
            _told = True
            log.info(
                "the vector index has %d segments, and vector searches read each one; install pylance "
                "(pip install 'semcode[ray]') so that compaction merges them",
                segments,
            )
        return False
    dataset = lance.dataset(table_uri, storage_options=dict(storage_options) if storage_options else None)
    dataset.optimize.optimize_indices(num_indices_to_merge=segments, index_names=[index_name])
    log.info("merged the %d segments of the vector index of %s", segments, table_uri)
    return True
