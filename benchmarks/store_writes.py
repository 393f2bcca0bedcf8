"""What a write batch's commit costs in the store, and what part of it is the vector cache's check.

    python benchmarks/store_writes.py                      # 320 files x 10 chunks, 384 dims, 5 rounds
    python benchmarks/store_writes.py --files 1000 --dim 768

A single-process indexing run caches each slice's vectors as it encodes them (``indexer.index._encode_in_slices``),
then commits the batch's chunk rows (``Store.replace_chunks``). Before that commit the store checks which vectors
the cache lacks. This script builds a store on disk with the batch's vectors already cached (as they are by then),
then times, alternating in one process (these machines are noisy, so the ratios are what to read):

- ``check``: ``Store.cache_vectors`` on vectors all known (the check alone: no commit follows)
- ``commit``: ``Store.replace_chunks(rows)``, the check included
- ``commit, cached``: ``Store.replace_chunks(rows, vectors_cached=True)``, which skips the check

Each commit rewrites the same files with new chunk texts (new row keys), as an edit of every file would.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.store import Store, StoredChunk
from indexer.types import Chunk

REPO = "/bench/repo"
SKIPS_CHECK = "vectors_cached" in inspect.signature(Store.replace_chunks).parameters  # (before the change: no)


def rows(files: int, per_file: int, dim: int, round_: int, rng: np.random.Generator) -> dict:
    """(repo, path) -> [(chunk, vector)]: `files` files of `per_file` chunks whose text names the round."""
    out: dict[tuple[str, str], list[tuple[StoredChunk, np.ndarray]]] = {}
    for f in range(files):
        path = f"pkg/mod_{f}.py"
        pairs = []
        for c in range(per_file):
            text = f"def fn_{f}_{c}_r{round_}(x):\n    return x + {c}\n"
            chunk = Chunk(path=path, language="python", kind="function", symbol=f"fn_{f}_{c}", parent=None,
                          start_line=3 * c, start_col=0, end_line=3 * c + 1, end_col=0, start_byte=0, end_byte=0,
                          text=text, tokens=12)  # fmt: skip
            vector = rng.standard_normal(dim).astype(np.float32)
            pairs.append((StoredChunk.from_chunk(REPO, chunk), vector / np.linalg.norm(vector)))
        out[(REPO, path)] = pairs
    return out


def vectors_of(batch: dict) -> dict[str, np.ndarray]:
    return {c.content_hash: v for pairs in batch.values() for c, v in pairs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=320, help="files per write batch (default 320, as indexing)")
    ap.add_argument("--chunks", type=int, default=10, help="chunks per file (default 10)")
    ap.add_argument("--dim", type=int, default=384, help="vector size (default 384)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds, each timing every variant once (default 5)")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"check": [], "commit": [], "commit, cached": []}
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "index", model_id="bench", dim=args.dim) as store:
        store.replace_chunks(rows(args.files, args.chunks, args.dim, -1, rng))  # the files exist already
        for r in range(args.rounds):
            for variant in ("commit", "commit, cached"):
                batch = rows(args.files, args.chunks, args.dim, 2 * r + (variant == "commit, cached"), rng)
                store.cache_vectors(vectors_of(batch))  # as the encoding slices left them
                t0 = time.perf_counter()
                store.cache_vectors(vectors_of(batch))
                times["check"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                if variant == "commit" or not SKIPS_CHECK:
                    store.replace_chunks(batch)
                else:
                    store.replace_chunks(batch, vectors_cached=True)
                times[variant].append(time.perf_counter() - t0)
            store.compact()
        rows_now = store.count_chunks()
    n = args.files * args.chunks
    print(f"store_writes: {args.files} files x {args.chunks} chunks ({n} rows, dim {args.dim}) per batch; "
          f"{rows_now} rows at the end; {args.rounds} rounds; median seconds")  # fmt: skip
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, value in med.items():
        print(f"  {name:<16} {value:.3f}")
    print(f"  the check is {med['check'] / med['commit']:.0%} of a commit; "
          f"commit, cached / commit = {med['commit, cached'] / med['commit']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
