"""What a hybrid search's three candidate lists cost: one trip to LanceDB's event loop against three sync queries.

    python benchmarks/search_lists.py --index-dir /tmp/syn100k [--queries 200] [--rounds 3]

``--index-dir``: an existing index of the shipped model (``benchmarks/mcp_latency.py --index-dir D --keep`` builds a
100k-chunk one). Per query, in one process, alternating query by query (the machine's drift hits both alike):

- ``threads``: the semantic, lexical and names lists as three LanceDB sync queries, two on a thread pool and one
  on the calling thread: what ``indexer.search.candidates`` ran before ``indexer/search_lists.py``;
- ``one trip``: ``Store.search_lists``, the three awaited together on LanceDB's async table.

The queries: random unit vectors, and 3-5 words drawn from the index's own chunk text (so BM25 matches). Prints the
process CPU (user + system) and the wall time per search, p50/p95, the ratios, and whether every list of every
query has the same rows and scores both ways (ties at a list's cut may fall either way). Runs nothing else.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.search_lists import NPROBES, refine_factor
from indexer.store import Store, StoredChunk
from semcode import Settings
from semcode.engine import CANDIDATE_DEPTH, Engine

POOL = ThreadPoolExecutor(max_workers=4)
CHUNK_FIELDS = list(StoredChunk.__dataclass_fields__)


def threads(store: Store, vector: np.ndarray, text: str, names: str, depth: int) -> list[list[tuple[str, float]]]:
    table = store._chunks

    def semantic() -> list[tuple[str, float]]:
        query = table.search(vector, vector_column_name="vector").distance_type("cosine")
        query = query.nprobes(NPROBES).refine_factor(refine_factor(depth))
        rows = query.select([*CHUNK_FIELDS, "_distance"]).limit(depth).to_arrow().to_pylist()
        return [(r["path"], 1.0 - r["_distance"]) for r in rows]

    def lexical(q: str, column: str, limit: int) -> list[tuple[str, float]]:
        query = table.search(q, query_type="fts", fts_columns=[column])
        rows = query.select([*CHUNK_FIELDS, "_score"]).limit(limit).to_arrow().to_pylist()
        return [(r["path"], r["_score"]) for r in rows]

    sem = POOL.submit(semantic)
    nam = POOL.submit(lexical, names, "names", min(depth, 50))
    lex = lexical(text, "text", depth)
    return [sem.result(), lex, nam.result()]


def one_trip(store: Store, vector: np.ndarray, text: str, names: str, depth: int) -> list[list[tuple[str, float]]]:
    lists = store.search_lists(vector, text, names, depth, min(depth, 50), None)
    return [[(h.chunk.path, h.score) for h in side] for side in lists]


def same(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> bool:
    for x, y in zip(a, b, strict=True):
        sx, sy = [round(s, 4) for _, s in x], [round(s, 4) for _, s in y]
        cut = min(sx, default=0.0)
        if sx != sy or {p for p, s in x if round(s, 4) > cut} != {p for p, s in y if round(s, 4) > cut}:
            return False
    return True


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", required=True)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    engine = Engine(Settings(index_dir=args.index_dir), [], read_only=True)
    store = Store.open(args.index_dir, engine.model_id(), engine.query_encoder().dim, read_only=True)
    rng = np.random.default_rng(args.seed)
    sample = [c.text for c in store.chunks()[:: max(1, store.count_chunks() // 500)]]
    vocab = sorted({w for t in sample for w in t.split() if w.isalpha() and len(w) > 3})
    queries = []
    for _ in range(args.queries):
        v = rng.standard_normal(store.dim).astype(np.float32)
        words = list(rng.choice(vocab, int(rng.integers(3, 6))))
        queries.append((v / np.linalg.norm(v), " ".join(words), str(words[0])))
    ways = {"threads": threads, "one trip": one_trip}
    cpu: dict[str, list[float]] = {w: [] for w in ways}
    wall: dict[str, list[float]] = {w: [] for w in ways}
    mismatches = 0
    for way in ways.values():  # warm-up: indexes loaded, both ways
        for vector, text, names in queries[:10]:
            way(store, vector, text, names, CANDIDATE_DEPTH)
    for _ in range(args.rounds):
        for vector, text, names in queries:
            answers = []
            for name, way in ways.items():
                c, w = cpu_s(), time.perf_counter()
                answers.append(way(store, vector, text, names, CANDIDATE_DEPTH))
                wall[name].append((time.perf_counter() - w) * 1e3)
                cpu[name].append((cpu_s() - c) * 1e3)
            mismatches += not same(*answers)
    n = len(queries) * args.rounds
    print(f"{store.count_chunks()} chunk rows, {n} searches each way, lists {CANDIDATE_DEPTH} deep (names 50)")
    for name in ways:
        p95 = statistics.quantiles(wall[name], n=20)[-1]
        print(
            f"  {name:9} cpu {statistics.fmean(cpu[name]):6.2f} ms/search   "
            f"wall p50 {statistics.median(wall[name]):6.2f} ms  p95 {p95:6.2f} ms"
        )
    ratio_cpu = statistics.fmean(cpu["one trip"]) / statistics.fmean(cpu["threads"])
    ratio_wall = statistics.median(wall["one trip"]) / statistics.median(wall["threads"])
    print(f"search_lists: cpu_ratio={ratio_cpu:.3f} wall_p50_ratio={ratio_wall:.3f} mismatches={mismatches}/{n}")


if __name__ == "__main__":
    main()
