"""What the ranked hybrid search costs over the plain reciprocal rank fusion it replaced, at 100k chunks.

    python benchmarks/ranking_cost.py --source INDEX_DIR [--rows 100000] [--queries 200]

``--source``: an existing semcode index (e.g. one of ``benchmarks/questions.py``'s); its rows are repeated under
other paths, with noise on the vectors, up to ``--rows``, in a temporary index with the IVF_PQ index semcode builds
past 100k rows. The queries are the question benchmark's, each encoded once beforehand (the same cost either way).
Per query, in turn, in one process:

- ``rrf``: ``Store.search_hybrid`` (semantic + lexical lists of 2 x limit, reciprocal rank fusion: the hybrid
  search before ``semcode.ranking``);
- ``ranked``: ``indexer.search.candidates`` (semantic, lexical and symbol-name lists, ``CANDIDATE_DEPTH`` deep,
  searched at once) + ``rank``: what ``Engine.search`` runs for a hybrid query;
- ``rank only``: ``semcode.ranking.rank`` over those candidates (pure Python).

Prints p50/p95 in ms and the p50 the ranking adds (ranked - rrf).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.search import Where, candidates
from indexer.store import Store, StoredChunk
from semcode import Settings
from semcode.engine import CANDIDATE_DEPTH, Engine
from semcode.query_terms import analyze
from semcode.ranking import Candidates, rank

QUESTIONS = Path(__file__).resolve().parent / "questions"


def build(source: str, target: str, rows: int) -> Store:
    engine = Engine(Settings(index_dir=source), [], read_only=True)
    src = Store.open(source, model_id=engine.model_id(), dim=engine.query_encoder().dim, read_only=True)
    real, vectors = src.chunks_with_vectors()
    store = Store.open(target, model_id=engine.model_id(), dim=src.dim)
    rng = np.random.default_rng(0)
    copy = written = 0
    while written < rows:
        copy += 1
        take = min(len(real), rows - written)
        noisy = vectors[:take] + rng.normal(0.0, 0.3 / np.sqrt(src.dim), (take, src.dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        files: dict[tuple[str, str], list[tuple[StoredChunk, np.ndarray]]] = {}
        for chunk, vec in zip(real[:take], noisy, strict=True):
            moved = StoredChunk(**{**chunk.__dict__, "path": f"copy{copy:04d}/{chunk.path}"})
            files.setdefault((moved.repo, moved.path), []).append((moved, vec))
        store.replace_chunks(files)
        written += take
    store.compact()
    store.ensure_vector_index(0)
    return store


def pcts(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="an existing semcode index folder (its rows are repeated)")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args()
    queries = [
        json.loads(line)["query"] for f in sorted(QUESTIONS.glob("*.jsonl")) for line in f.read_text().splitlines()
    ][: args.queries]
    engine = Engine(Settings(index_dir=args.source), [], read_only=True)
    vectors = [engine.query_vector(q) for q in queries]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = build(args.source, tmp, args.rows)
        print(f"{store.count_chunks():,} rows, IVF_PQ index, built in {time.perf_counter() - t:.0f} s")
        times: dict[str, list[float]] = {"rrf": [], "ranked": [], "rank only": []}
        for i, (query, vector) in enumerate(zip(queries, vectors, strict=True)):
            terms = analyze(query)
            t0 = time.perf_counter()
            store.search_hybrid(vector, query, 10)
            t1 = time.perf_counter()
            found = candidates(store, query, vector, terms.name_terms, CANDIDATE_DEPTH, Where())
            t2 = time.perf_counter()
            rank(terms, Candidates(found.semantic, found.lexical, found.names), 10)
            t3 = time.perf_counter()
            if i >= 3:  # warm-up: index loading, plan caches
                times["rrf"].append(t1 - t0)
                times["ranked"].append(t3 - t1)
                times["rank only"].append(t3 - t2)
        for label, secs in times.items():
            p50, p95 = pcts(secs)
            print(f"  {label:10s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        added = pcts(times["ranked"])[0] - pcts(times["rrf"])[0]
        print(f"ranking adds {added:+.1f} ms p50 over rrf ({pcts(times['ranked'])[0] / pcts(times['rrf'])[0]:.2f}x)")
        store.close()


if __name__ == "__main__":
    main()
