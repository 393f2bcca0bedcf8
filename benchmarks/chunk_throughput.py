"""Chunk the whole Python standard library and print files/s, MB/s (token counting included), chunks, skips, memory.

    python benchmarks/chunk_throughput.py [--root DIR] [--max-tokens 8192] [--model CHECKPOINT]

Tokens are counted with a byte-level BPE trained on part of the standard library (ModernBERT's tokenizer is of
that kind), or with --model's tokenizer. Bar (issue 4): >= 1 MB/s of source on a 2-core machine.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import code_tokenizer
from indexer.chunk_paths import chunk_paths
from indexer.types import Skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    p.add_argument("--max-tokens", type=int, default=8192)
    p.add_argument("--model", default=None, help="count with this checkpoint's tokenizer")
    args = p.parse_args()
    if args.model:
        from encoder import load_tokenizer

        count = load_tokenizer(args.model).count
    else:
        tok = code_tokenizer()
        tok.no_truncation()

        def count(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in tok.encode_batch(texts)]

    files = chunks = tokens = 0
    source_bytes = 0
    skips: collections.Counter[str] = collections.Counter()
    problems = 0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    for root, result in chunk_paths([args.root], count, root=args.root, max_tokens=args.max_tokens):
        if isinstance(result, Skip):
            skips[result.reason.split(" (")[0].split(":")[0]] += 1
            continue
        files += 1
        problems += bool(result.problems)
        chunks += len(result.chunks)
        tokens += sum(c.tokens for c in result.chunks)
        source_bytes += (root / result.path).stat().st_size
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = files + sum(skips.values())
    print(f"root: {args.root}")
    print(
        f"{files} files chunked, {sum(skips.values())} skipped ({100 * sum(skips.values()) / max(total, 1):.1f}%), "
        f"{problems} with recovered syntax errors"
    )
    for reason, n in skips.most_common():
        print(f"  skipped: {n:5d}  {reason}")
    print(f"{chunks} chunks, {tokens} tokens, {source_bytes / 2**20:.1f} MB of source in {dt:.1f} s")
    print(f"throughput: {files / dt:.0f} files/s, {source_bytes / 2**20 / dt:.2f} MB/s (token counting included)")
    print(f"peak RSS: {rss / 1024:.0f} MB (at start {rss0 / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
