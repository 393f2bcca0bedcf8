"""Late chunking against members encoded apart, on the question benchmark.

    python benchmarks/late_chunking.py --src DIR --indexes DIR [--projects P,...]

semcode chunks a class (struct, impl, object, ...) into a summary chunk plus one chunk per member, and encodes each
member on its own (the ``separate`` vectors in the index). Late chunking instead reads the whole definition in one
forward pass (up to the model's window) and pools each member's vector from the token states inside the member's
span, so a member's vector carries its class's context. This script computes the late vectors of every member of
every container in each project's index (``--src``/``--indexes`` as for ``benchmarks/questions.py``), keeps every
other chunk's vector, and prints file-level NDCG@10 and span MRR of semantic and of ranked hybrid search with each
set of vectors (the lexical and symbol-name lists are the same for both).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from questions import load_questions, ndcg, span_rr  # benchmarks/questions.py, beside this script

import semcode
from encoder.attention import Packing
from encoder.model import normalize
from indexer.search import Where, candidates
from indexer.store import Hit, StoredChunk
from semcode.query_terms import analyze
from semcode.ranking import Candidates, rank

K = 10


def late_vectors(encoder, root: Path, chunks: list[StoredChunk]) -> dict[int, np.ndarray]:
    """Index in ``chunks`` -> the member's late-chunked vector, for members whose container fits the window."""
    containers = {(c.path, c.qualified_name): c for c in chunks if c.kind not in ("method", "function", "block")}
    members: dict[tuple[str, str | None], list[int]] = {}
    for i, c in enumerate(chunks):
        if c.parent and (c.path, c.parent) in containers:
            members.setdefault((c.path, c.parent), []).append(i)
    out: dict[int, np.ndarray] = {}
    for key, idx in members.items():
        box = containers[key]
        data = (root / box.path).read_bytes()[box.start_byte : box.end_byte]
        text = data.decode("utf-8", errors="replace")
        ids, offsets, truncated = encoder.tokenizer.with_offsets(text)
        if truncated:
            continue  # longer than the window: the members keep their own vectors
        states = _states(encoder, ids)
        starts = np.array([o[0] for o in offsets])
        ends = np.array([o[1] for o in offsets])
        for i in idx:
            m = chunks[i]
            lo = len(data[: m.start_byte - box.start_byte].decode("utf-8", errors="replace"))
            hi = len(data[: m.end_byte - box.start_byte].decode("utf-8", errors="replace"))
            inside = (starts >= lo) & (ends <= hi) & (ends > starts)
            if inside.any():
                out[i] = _unit(states[inside].mean(axis=0))
    return out


@torch.inference_mode()
def _states(encoder, ids: list[int]) -> np.ndarray:
    packing = Packing.from_seqlens([len(ids)], encoder.device)
    flat = torch.tensor(ids, dtype=torch.long, device=encoder.device)
    hidden = encoder.model(flat, packing, encoder.backend)  # (tokens, hidden)
    return hidden.float().cpu().numpy()


def _unit(v: np.ndarray) -> np.ndarray:
    return (normalize(torch.from_numpy(v[None, :])).numpy()[0]).astype(np.float32)


def evaluate(project: str, src: Path, indexes: Path) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = {}
    with semcode.open([src / project], index_dir=str(indexes / project), read_only=True) as index:
        engine = index.engine
        encoder = engine.load_encoder()
        store = engine.store(engine.folders[0], create=False)
        assert store is not None
        chunks, separate = store.chunks_with_vectors()
        t = time.perf_counter()
        late = separate.copy()
        changed = late_vectors(encoder, src / project, chunks)
        for i, v in changed.items():
            late[i] = v
        print(f"{project}: {len(changed)} of {len(chunks)} chunks late-chunked in {time.perf_counter() - t:.0f} s")
        for q in load_questions(project):
            qv = engine.query_vector(q["query"])
            terms = analyze(q["query"])
            found = candidates(store, q["query"], None, terms.name_terms, 50, Where())
            for name, matrix in (("separate", separate), ("late", late)):
                sims = matrix @ qv
                order = np.argsort(-sims)[:50]
                semantic = [Hit(chunks[i], float(sims[i]), ("semantic",)) for i in order]
                for mode, hits in (
                    ("semantic", semantic[:K]),
                    ("hybrid", rank(terms, Candidates(semantic, found.lexical, found.names), K)),
                ):
                    paths = [h.chunk.path for h in hits]
                    scores.setdefault(f"{mode} {name}", []).append(ndcg(paths, q["relevant"]))
                    if q["kind"] == "symbol":
                        spans = [(h.chunk.path, h.chunk.start_line, h.chunk.end_line) for h in hits]
                        scores.setdefault(f"{mode} {name} span", []).append(span_rr(spans, q["span"]))
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--indexes", type=Path, required=True)
    p.add_argument("--projects", required=True, help="comma list")
    args = p.parse_args()
    total: dict[str, list[float]] = {}
    for project in args.projects.split(","):
        for key, values in evaluate(project, args.src, args.indexes).items():
            total.setdefault(key, []).extend(values)
    print(f"\n{'vectors':24s} NDCG@10  (span MRR)")
    for mode in ("semantic", "hybrid"):
        for name in ("separate", "late"):
            span = total.get(f"{mode} {name} span", [])
            spans = f"({statistics.fmean(span):.3f})" if span else ""
            print(f"{mode + ' ' + name:24s} {statistics.fmean(total[f'{mode} {name}']):.3f}    {spans}")


if __name__ == "__main__":
    main()
