"""The ``semcode`` console entry point.

Commands today: ``demo`` (the README's main job for now) and ``encode``. Later issues add ``index``, ``search``,
``related``, ``status``, ``watch``, ``chunks`` and ``lsp``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEMO_TEXTS = [
    "def add(a, b):\n    return a + b",
    "def sum_two(x, y):\n    return x + y",
    "class LRUCache:\n    def get(self, key):\n        return self.data.get(key)",
    "SELECT name FROM users WHERE id = 1",
]


def _encoder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if available)")
    p.add_argument(
        "--dtype",
        default=None,
        choices=["fp32", "bf16", "fp16"],
        help="default: bf16 on CUDA or CPUs with native bf16, else fp32",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--max-tokens", type=int, default=None, help="truncate longer texts (counted and reported)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcode", description="Local semantic code search.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="encode a few code snippets with a tiny ModernBERT and print their cosine similarities",
        description=(
            "Writes a tiny ModernBERT checkpoint with RANDOM weights (the shipped trained model comes with a later "
            "release), loads it through the same code as any checkpoint, encodes a few snippets and prints the "
            "similarity matrix. Pass --model to use a real checkpoint instead."
        ),
    )
    demo.add_argument("--model", default=None, help="checkpoint folder or hub id (default: a tiny random model)")
    _encoder_options(demo)

    enc = sub.add_parser("encode", help="print the embedding of each TEXT (one JSON line per text with --json)")
    enc.add_argument("texts", nargs="+", metavar="TEXT")
    enc.add_argument("--model", required=True, help="checkpoint folder or hub id")
    enc.add_argument("--kind", choices=["document", "query"], default="document")
    enc.add_argument("--json", action="store_true", help="one JSON object per line: {text, vector}")
    _encoder_options(enc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="semcode: %(message)s")
    from encoder import CheckpointError

    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "encode":
            return _encode(args)
    except (CheckpointError, ValueError) as e:
        print(f"semcode: error: {e}", file=sys.stderr)
        return 2
    return 1


def _load(args: argparse.Namespace, model: str):  # -> encoder.Encoder
    from encoder import load_encoder

    return load_encoder(model, device=args.device, dtype=args.dtype, threads=args.threads, max_tokens=args.max_tokens)


def _demo(args: argparse.Namespace) -> int:
    from encoder.tiny import write_tiny_checkpoint

    with tempfile.TemporaryDirectory(prefix="semcode-demo-") as tmp:
        model = args.model
        if model is None:
            model = str(write_tiny_checkpoint(Path(tmp) / "tiny-modernbert"))
            print("model: tiny ModernBERT with random weights (4 layers, 64 wide): similarities carry no meaning")
        enc = _load(args, model)
        vectors = enc.encode(DEMO_TEXTS)
    print(
        f"encoder: dim={enc.dim} max_tokens={enc.max_tokens} device={enc.device} dtype={enc.dtype} "
        f"attention={enc.backend} pooling={enc.pooling}"
    )
    for i, text in enumerate(DEMO_TEXTS):
        print(f"  [{i}] {text.splitlines()[0]}")
    sims = vectors @ vectors.T
    print("cosine similarity:")
    print("       " + "  ".join(f"[{j}]  " for j in range(len(DEMO_TEXTS))))
    for i, row in enumerate(sims):
        print(f"  [{i}] " + "  ".join(f"{v:+.3f}" for v in row))
    return 0


def _encode(args: argparse.Namespace) -> int:
    enc = _load(args, args.model)
    vectors = enc.encode(args.texts, kind=args.kind)
    for text, vec in zip(args.texts, vectors, strict=True):
        if args.json:
            print(json.dumps({"text": text, "vector": [round(float(x), 6) for x in vec]}))
        else:
            head = " ".join(f"{x:+.4f}" for x in vec[:8])
            print(f"{text[:40]!r}: dim={len(vec)} [{head} ...]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
