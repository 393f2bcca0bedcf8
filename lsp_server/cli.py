"""The ``semcode`` console entry point.

Commands today: ``demo`` (the README's main job for now), ``encode`` and ``chunks``. Later issues add ``index``,
``search``, ``related``, ``status``, ``watch`` and ``lsp``.
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

    ch = sub.add_parser(
        "chunks",
        help="print the chunks of files or folders, and every skipped file with its reason",
        description=(
            "Shows what semcode would index: each chunk (path:lines, language, kind, symbol, tokens) and each "
            "skipped file with the reason. Lines are 1-based in the text output and 0-based in --json. "
            "Folders are walked honouring .gitignore, .git/info/exclude and .semcodeignore."
        ),
    )
    ch.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    ch.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per line: {"path", "language", "start_line", "end_line", "symbol", "kind", '
        '"tokens"} per chunk (0-based lines), {"path", "skipped"} per skipped file',
    )
    ch.add_argument("--model", default=None, help="checkpoint whose tokenizer counts tokens (default: built-in)")
    ch.add_argument("--max-tokens", type=int, default=8192, help="token budget of one chunk (default 8192)")
    ch.add_argument("--max-file-size", type=float, default=2.0, help="skip files over this many MB (default 2)")
    ch.add_argument("--include-secrets", action="store_true", help="also chunk .env, *.pem, *.key, id_rsa, ...")
    ch.add_argument("--no-header", action="store_true", help="embed code without the path/symbol header line")
    ch.add_argument("--show-text", action="store_true", help="also print each chunk's text (text output only)")
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
        if args.command == "chunks":
            return _chunks(args)
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


def _token_counter(model: str | None):  # -> Callable[[list[str]], list[int]]
    from encoder import load_tokenizer

    if model is not None:
        return load_tokenizer(model).count
    # FIXME(issue 3): count with the shipped default model's tokenizer once it exists; until then a byte-level BPE
    # trained on a few standard-library modules (counts are within the same order as a code BPE's).
    from encoder.tiny import build_tokenizer, default_corpus

    tok = build_tokenizer(default_corpus())
    return lambda texts: [len(e.ids) for e in tok.encode_batch(texts)]


def _chunks(args: argparse.Namespace) -> int:
    from indexer.chunk_paths import chunk_paths
    from indexer.discover import DiscoverOptions
    from indexer.types import Skip

    options = DiscoverOptions(
        max_file_bytes=int(args.max_file_size * 1024 * 1024), include_secrets=args.include_secrets
    )
    count = _token_counter(args.model)
    files = chunks = skipped = 0
    for _root, result in chunk_paths(
        args.paths, count, options=options, max_tokens=args.max_tokens, with_header=not args.no_header
    ):
        if isinstance(result, Skip):
            skipped += 1
            if args.json:
                print(json.dumps({"path": result.path, "skipped": result.reason}))
            else:
                print(f"{result.path}: skipped: {result.reason}")
            continue
        files += 1
        for problem in result.problems:
            if not args.json:
                print(f"{result.path}: note: {problem}")
        for c in result.chunks:
            chunks += 1
            if args.json:
                row = {
                    "path": c.path,
                    "language": c.language,
                    "start_line": c.start_line,
                    "end_line": c.end_line,
                    "symbol": c.qualified_name,
                    "kind": c.kind,
                    "tokens": c.tokens,
                }
                print(json.dumps(row))
            else:
                print(
                    f"{c.path}:{c.start_line + 1}-{c.end_line + 1}  {c.language}  {c.kind}  "
                    f"{c.qualified_name or '-'}  {c.tokens} tokens"
                )
                if args.show_text:
                    print("    " + c.text.replace("\n", "\n    "))
    if not args.json:
        print(f"{files} files, {chunks} chunks, {skipped} skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
