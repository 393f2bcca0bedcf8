"""Can a person scan the chunks? Kinds and names of every chunk of a tree, and optionally whole-repository retrieval.

    python benchmarks/chunk_names.py PATH [--max-tokens 8192] [--examples 5]
    python benchmarks/chunk_names.py PATH --queries DEV_SET_DIR --index-dir DIR   # + MRR@10 (several CPU minutes)

Chunks every file under PATH with the default model's tokenizer and prints: chunks, unnamed block chunks (shown as
``block -``), one-line chunks (and one-line blocks), type/interface chunks vs function/method/class chunks, the
chunks per kind, and a few examples of unnamed and one-line chunks.

``--queries``: a folder of ``benchmarks/make_dev_sets.py`` (``queries.jsonl`` with ``target_id`` = "path:start_line",
1-based, relative to PATH). PATH is indexed into ``--index-dir`` with the default model (``semcode.open(...).update()``)
and every query searched (hybrid, limit 10); a hit counts when its line range holds the target's start line.
Prints MRR@10, R@1, R@10 and the share of first hits that are functions/methods, blocks, or types.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.chunk_paths import chunk_paths
from indexer.types import Chunk, Skip

DEFINITIONS = {"function", "method", "class"}
TYPES = {"type", "interface"}


def chunk_tree(path: Path, max_tokens: int) -> list[Chunk]:
    from encoder import load_tokenizer

    count = load_tokenizer().count
    chunks: list[Chunk] = []
    for _root, result in chunk_paths([path], count, root=path, max_tokens=max_tokens):
        if not isinstance(result, Skip):
            chunks.extend(result.chunks)
    return chunks


def print_stats(chunks: list[Chunk], examples: int) -> None:
    kinds = collections.Counter(c.kind for c in chunks)
    unnamed = [c for c in chunks if c.symbol is None]
    blocks = [c for c in chunks if c.kind == "block"]
    one_line = [c for c in chunks if c.start_line == c.end_line]
    rows = [
        ("chunks", len(chunks)),
        ("unnamed chunks (printed `kind -`)", len(unnamed)),
        ("unnamed block chunks", sum(c.kind == "block" for c in unnamed)),
        ("block chunks (named or not)", len(blocks)),
        ("one-line chunks", len(one_line)),
        ("one-line block chunks", sum(c.kind == "block" for c in one_line)),
        ("type/interface chunks", sum(kinds[k] for k in TYPES)),
        ("function/method/class chunks", sum(kinds[k] for k in DEFINITIONS)),
    ]
    for label, n in rows:
        print(f"{label:<36} {n:>7}")
    print("kinds: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    for title, group in (("unnamed", unnamed), ("one-line", one_line)):
        for c in group[:examples]:
            first = c.text.split("\n")[-1 if c.start_line == c.end_line else 0][:80]
            where = f"{c.path}:{c.start_line + 1}-{c.end_line + 1}"
            print(f"  {title}: {where} {c.kind} {c.qualified_name or '-'}: {first}")


def retrieval(path: Path, queries_dir: Path, index_dir: Path) -> None:
    import semcode

    queries = [json.loads(line) for line in (queries_dir / "queries.jsonl").open()]
    t0 = time.perf_counter()
    with semcode.open(path, index_dir=index_dir) as index:
        index.update()
        t1 = time.perf_counter()
        mrr = r1 = r10 = 0.0
        first_kinds: collections.Counter[str] = collections.Counter()
        for q in queries:
            rel, _, line = q["target_id"].rpartition(":")
            target = int(line) - 1  # 0-based, as hits are
            hits = index.search(q["query"], limit=10)
            if hits:
                first_kinds[hits[0].kind] += 1
            rank = next(
                (i for i, h in enumerate(hits, 1) if h.path == rel and h.start_line <= target <= h.end_line), None
            )
            if rank is not None:
                mrr += 1 / rank
                r1 += rank == 1
                r10 += 1
    n = max(1, len(queries))
    print(f"queries {len(queries)}  MRR@10 {mrr / n:.3f}  R@1 {r1 / n:.3f}  R@10 {r10 / n:.3f}")
    print(f"(index {t1 - t0:.0f}s, search {time.perf_counter() - t1:.0f}s)")
    print("first hit kinds: " + ", ".join(f"{k} {v}" for k, v in first_kinds.most_common()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", type=Path)
    p.add_argument("--max-tokens", type=int, default=8192)
    p.add_argument("--examples", type=int, default=5)
    p.add_argument("--queries", type=Path, default=None, help="a dev set folder (queries.jsonl)")
    p.add_argument("--index-dir", type=Path, default=None, help="where --queries builds its index (a temp folder)")
    args = p.parse_args()
    path = args.path.resolve()
    print_stats(chunk_tree(path, args.max_tokens), args.examples)
    if args.queries is not None:
        if args.index_dir is None:
            p.error("--queries needs --index-dir")
        retrieval(path, args.queries, args.index_dir)


if __name__ == "__main__":
    main()
