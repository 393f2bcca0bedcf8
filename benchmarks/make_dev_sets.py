"""Build semcode's own dev sets in every language: ../shared/eval/make_pairs.py extended past Python.

    python benchmarks/make_dev_sets.py [--out DIR] [--cache DIR] [--max-queries 300] [--only NAME,...]

For each dev source of ``encoder.training.sources.DEV_SOURCES`` (projects that are neither in the training data
nor in the held-out list) this downloads the pinned package and writes one set per (language, kind):

- ``<language>-functions``: the corpus is every function/method of that language in the tree (documented or not),
  its doc comment removed; the queries are first sentences of doc comments (>= 6 words, unique in the set).
- ``<language>-classes`` (Python, Java, TypeScript, C++): class doc -> the whole class, member docs removed.
- ``<language>-files`` (Python, Rust): module docstring (Rust ``//!``) -> the whole file, every doc removed.

Rust and Go "classes" (a struct, an enum, a Go type) are a few lines long, not long units, and are left out; so
are Go package comments (their file is often only ``package x``).

A corpus keeps every query's target and at most ``--max-corpus`` entries in all (other entries sampled with the
seed), so that a run of every set with every retriever stays within minutes on two cores.

The files are the eval's format (``corpus.jsonl`` {id, path, start_line, end_line, code, symbol, language, kind},
``queries.jsonl`` {qid, query, target_id}), so ``benchmarks/retrieval.py DIR/*`` and ../shared/eval/evaluate.py
read them. Extraction is ``encoder/training/extract.py``, the same code that makes the training pairs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoder.training import data, extract, sources

MIN_WORDS = 6  # as make_pairs.py
LONG_KINDS = {
    "python": ("class", "file"), "java": ("class",), "typescript": ("class",), "cpp": ("class",), "rust": ("file",),
}  # fmt: skip
PLURAL = {"function": "functions", "class": "classes", "file": "files"}


def build_sets(name: str, root: Path, languages: tuple[str, ...]) -> dict[str, tuple[list[dict], list[dict]]]:
    """(corpus, candidate queries) per set name for one dev source."""
    out: dict[str, tuple[list[dict], list[dict]]] = {}
    for rel, language in sources.source_files(root, languages):
        if data.SKIP_DIRS & set(rel.split("/")[:-1]):  # the folders the training data skips too
            continue
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for d in extract.definitions(language, rel, text, undocumented=True):
            if d.kind != "function" and d.kind not in LONG_KINDS.get(language, ()):
                continue
            corpus, cand = out.setdefault(f"{language}-{PLURAL[d.kind]}", ([], []))
            entry_id = f"{rel}:{d.start_line}"
            corpus.append(
                {"id": entry_id, "path": rel, "start_line": d.start_line, "end_line": d.end_line, "code": d.code}
                | {"symbol": None if d.kind == "file" else d.symbol, "language": language, "kind": d.kind}
            )
            query = extract.query_of(d, MIN_WORDS) if d.doc else None
            if query:
                cand.append({"query": query, "target_id": entry_id})
    return out


def cap_corpus(corpus: list[dict], queries: list[dict], max_corpus: int, seed: int) -> list[dict]:
    """Every query's target plus other entries drawn with ``seed``, at most ``max_corpus`` in all (file order)."""
    if len(corpus) <= max_corpus:
        return corpus
    targets = {q["target_id"] for q in queries}
    others = [n for n, c in enumerate(corpus) if c["id"] not in targets]
    keep = set(random.Random(seed).sample(others, max(0, max_corpus - len(targets))))
    return [c for n, c in enumerate(corpus) if c["id"] in targets or n in keep]


def choose_queries(cand: list[dict], max_queries: int, seed: int) -> list[dict]:
    counts = Counter(c["query"].lower() for c in cand)
    unique = [c for c in cand if counts[c["query"].lower()] == 1]
    random.Random(seed).shuffle(unique)
    chosen = sorted(unique[:max_queries], key=lambda c: c["target_id"])
    return [{"qid": n, **c} for n, c in enumerate(chosen)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path.home() / ".cache" / "semcode" / "dev-sets")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "semcode" / "sources")
    p.add_argument("--max-queries", type=int, default=300)
    p.add_argument("--max-corpus", type=int, default=1200, help="distractors sampled down to this many entries")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma list of dev source names to build (default: all)")
    args = p.parse_args()
    only = {n for n in args.only.split(",") if n}
    unknown = only - set(sources.DEV_SOURCES)
    if unknown:
        p.error(f"unknown dev sources {sorted(unknown)}; known: {', '.join(sources.DEV_SOURCES)}")
    built = {name: src for name, src in sources.DEV_SOURCES.items() if not only or name in only}
    # a run of some sources (--only) keeps the entries of the other sources, while they are pinned as they were
    pinned = {(src.name, src.version) for src in sources.DEV_SOURCES.values()}
    kept = pinned - {(src.name, src.version) for src in built.values()}
    manifest_path = args.out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest = {k: v for k, v in old.items() if (v.get("source"), v.get("version")) in kept}
    for name, src in built.items():
        root = sources.fetch(src, args.cache)
        for set_name, (corpus, cand) in sorted(build_sets(name, root, src.languages).items()):
            queries = choose_queries(cand, args.max_queries, args.seed)
            corpus = cap_corpus(corpus, queries, args.max_corpus, args.seed)
            if len(queries) < 25:
                print(f"{name}: {set_name}: only {len(queries)} queries, not written")
                continue
            folder = args.out / f"{set_name}-{src.package.replace('/', '_').lstrip('@')}"
            folder.mkdir(parents=True, exist_ok=True)
            for fname, rows in (("corpus", corpus), ("queries", queries)):
                with (folder / f"{fname}.jsonl").open("w") as f:
                    f.writelines(json.dumps(r) + "\n" for r in rows)
            manifest[folder.name] = {"source": src.name, "version": src.version, "corpus": len(corpus)}
            manifest[folder.name]["queries"] = len(queries)
            print(f"{folder}: {len(corpus)} entries, {len(queries)} queries ({src.name} {src.version})")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2))


if __name__ == "__main__":
    main()
