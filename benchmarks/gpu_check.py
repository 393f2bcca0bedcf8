"""GPU check for an NVIDIA Hopper machine (H100/H200): parity of semcode's CUDA paths with transformers, and speed.

Run through ``benchmarks/gpu_check.sh`` (which installs carried wheels, if any). Prints:

1. parity, bf16: semcode's flash-attn path against transformers' ``flash_attention_2`` (both need flash-attn),
   and semcode's torch-only CUDA path (``blocked``) against transformers' ``sdpa``, on ModernBERT-base shaped random
   weights and variable-length batches: max abs error of hidden states and min cosine of pooled vectors;
2. parity, fp32: semcode ``blocked`` against transformers ``sdpa`` (tolerance 1e-4);
3. tokens/s (real tokens only) for ModernBERT-base at up to 512 and up to 8192 tokens (variable lengths), ours
   against the reference with the best attention each has.

``--smoke`` runs a 2-layer model on small inputs (on the CPU when no GPU is present) to test the script itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from encoder import load_encoder
from encoder.attention import Packing
from encoder.tiny import build_tokenizer, default_corpus

PAD, CLS, SEP = 3, 1, 2


def hf_model(layers: int, dtype: torch.dtype, device: torch.device, attn: str, folder: Path | None = None):
    import transformers

    if folder is not None:
        return transformers.ModernBertModel.from_pretrained(folder, attn_implementation=attn, dtype=dtype).to(device)
    torch.manual_seed(0)
    config = transformers.ModernBertConfig(
        num_hidden_layers=layers,
        pad_token_id=PAD,
        cls_token_id=CLS,
        sep_token_id=SEP,
        bos_token_id=CLS,
        eos_token_id=SEP,
    )
    return transformers.ModernBertModel(config).eval()


def random_batch(lengths: list[int], seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[CLS] + [rng.randrange(10, 50000) for _ in range(n - 2)] + [SEP] for n in lengths]


def ref_forward(model, ids: list[list[int]], device: torch.device) -> list[torch.Tensor]:
    n = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), n), PAD, dtype=torch.long)
    mask = torch.zeros((len(ids), n), dtype=torch.long)
    for i, seq in enumerate(ids):
        input_ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    with torch.inference_mode():
        out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).last_hidden_state
    return [out[i, : len(seq)].float() for i, seq in enumerate(ids)]


def ours_forward(enc, ids: list[list[int]], backend: str) -> list[torch.Tensor]:
    packing = Packing.from_seqlens([len(x) for x in ids], enc.device)
    flat = torch.tensor([t for s in ids for t in s], device=enc.device)
    with torch.inference_mode():
        hidden = enc.model(flat, packing, backend)
    return [h.float() for h in hidden.split(packing.seqlens)]


def compare(name: str, ref: list[torch.Tensor], ours: list[torch.Tensor], atol: float) -> bool:
    err = max((r - o).abs().max().item() for r, o in zip(ref, ours, strict=True))
    cos = min(
        torch.nn.functional.cosine_similarity(r.mean(0), o.mean(0), dim=0).item()
        for r, o in zip(ref, ours, strict=True)
    )
    ok = err <= atol
    print(
        f"  parity {name}: max abs error {err:.2e} (tolerance {atol:g}), min pooled cosine {cos:.6f} "
        f"-> {'OK' if ok else 'FAIL'}",
        flush=True,
    )
    return ok


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(fn, tokens: int, device: torch.device, repeats: int) -> float:
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return tokens / best


def ref_batched(model, ids: list[list[int]], device: torch.device, batch: int) -> None:
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for s in range(0, len(order), batch):
        ref_forward(model, [ids[i] for i in order[s : s + batch]], device)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes; runs on the CPU too")
    p.add_argument("--layers", type=int, default=22)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: run with --smoke to test the script on the CPU")
        return 2
    layers = 2 if args.smoke else args.layers
    has_flash = importlib.util.find_spec("flash_attn") is not None
    import transformers

    print(
        f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; torch {torch.__version__}; "
        f"transformers {transformers.__version__}; flash_attn "
        f"{__import__('flash_attn').__version__ if has_flash else 'NOT INSTALLED'}",
        flush=True,
    )

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "modernbert-base-random"
        hf_model(layers, torch.float32, device, "sdpa").save_pretrained(folder)
        build_tokenizer(default_corpus()).save(str(folder / "tokenizer.json"))
        short = [5, 17, 64, 65, 129, 200, 511, 512] if not args.smoke else [5, 17, 64, 65, 129, 200]
        long_lens = [8192, 3001, 130] if not args.smoke else [700, 300]
        ids = random_batch(short + long_lens, seed=1)

        # fp32: torch-only CUDA path against transformers' sdpa
        ref32 = hf_model(layers, torch.float32, device, "sdpa", folder).eval()
        ours32 = load_encoder(folder, device=device, dtype=torch.float32, backend="blocked")
        ok &= compare(
            "fp32 blocked vs transformers sdpa",
            ref_forward(ref32, ids, device),
            ours_forward(ours32, ids, "blocked"),
            1e-4,
        )
        del ref32, ours32

        bf16 = torch.bfloat16 if device.type == "cuda" else torch.float32
        ref_attn = "flash_attention_2" if has_flash and device.type == "cuda" else "sdpa"
        ours_backend = "flash" if has_flash and device.type == "cuda" else "blocked"
        ref = hf_model(layers, bf16, device, ref_attn, folder).eval()
        ours = load_encoder(folder, device=device, dtype=bf16, backend=ours_backend)  # type: ignore[arg-type]
        ref_h = ref_forward(ref, ids, device)
        ok &= compare(
            f"{bf16} {ours_backend} vs transformers {ref_attn}", ref_h, ours_forward(ours, ids, ours_backend), 6e-2
        )
        if ours_backend == "flash":
            ok &= compare(f"{bf16} blocked vs transformers {ref_attn}", ref_h, ours_forward(ours, ids, "blocked"), 6e-2)
        else:
            print("  flash-attn is not installed here: the flash path was NOT checked (carry its wheel in .whl/)")

        rng = random.Random(0)
        repeats = 1 if args.smoke else 3
        for label, n_texts, lo, hi in (("<= 512", 1024, 32, 512), ("<= 8192", 32, 1024, 8192)):
            if args.smoke:
                n_texts, lo, hi = 8, min(lo, 32), min(hi, 256)
            lengths = [rng.randint(lo, hi) for _ in range(n_texts)]
            batch_ids = random_batch(lengths, seed=2)
            tokens = sum(lengths)
            ours.batch_tokens = 65536 if device.type == "cuda" else 4096
            o = throughput(lambda b=batch_ids: ours.encode_ids(b), tokens, device, repeats)
            bs = 32 if hi <= 512 else 4
            r = throughput(lambda b=batch_ids, bs=bs: ref_batched(ref, b, device, bs), tokens, device, repeats)
            print(
                f"  {label:>7} tokens ({n_texts} texts, {tokens} tokens, {bf16}): ours ({ours_backend}) "
                f"{o:,.0f} tok/s, transformers ({ref_attn}, length-sorted batches of {bs}) {r:,.0f} tok/s, "
                f"ratio {o / r:.2f}",
                flush=True,
            )
    print("RESULT:", "parity OK" if ok else "parity FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
