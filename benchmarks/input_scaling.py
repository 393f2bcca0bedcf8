"""Time and peak memory of chunking (and optionally encoding) one file against its size: is the cost linear?

    python benchmarks/input_scaling.py [--sizes 0.25,0.5,1,2] [--cases wide,giant] [--encode] [--model CHECKPOINT]

Cases (each a file generated at the given size in MB):
- ``wide``: JavaScript of long lines (9,980 characters each, just under the minified-file check), the shape of a
  bundled or generated file that passes discovery;
- ``giant``: one Python function of that size (short lines, one definition: the whole file is one node to split);
- ``many``: not a size case: 20,000 one-line files through discover + read + chunk, printed as files/s.

Each size runs in a fresh child process so its peak RSS (``ru_maxrss``) is its own. The last columns are the ratios
to the smallest size: linear cost means time and memory ratios close to the size ratio (memory: above the
interpreter's baseline, printed as "base").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WIDE_LINE = 9_980


def make_text(case: str, mb: float) -> tuple[str, str]:
    """(file name, text) of about ``mb`` megabytes."""
    size = int(mb * 1024 * 1024)
    if case == "wide":
        words = "var a{i} = f(b{i}, 'x{i}') + g(c{i});"
        line = ""
        lines = []
        i = 0
        while sum(len(x) + 1 for x in lines) < size:
            while len(line) < WIDE_LINE - 60:
                line += words.format(i=i) + " "
                i += 1
            lines.append(line.rstrip())
            line = ""
        return "wide.js", "\n".join(lines) + "\n"
    if case == "giant":
        body = []
        n = 0
        total = 0
        while total < size:
            s = f"    x{n} = compute(x{max(n - 1, 0)}, {n}) + other_value_{n % 97}\n"
            body.append(s)
            total += len(s)
            n += 1
        return "giant.py", "def giant(arg):\n" + "".join(body) + "    return x0\n"
    raise ValueError(case)


def counter(model: str | None):  # type: ignore[no-untyped-def]
    if model:
        from encoder import load_tokenizer

        return load_tokenizer(model).count
    from benchmarks.common import code_tokenizer

    tok = code_tokenizer()
    tok.no_truncation()
    return lambda texts: [len(e.ids) for e in tok.encode_batch(texts)]


def child(case: str, mb: float, model: str | None, encode: bool) -> dict[str, float]:
    """Runs in a fresh process: chunk (and encode) one generated file; time, chunks, peak RSS."""
    from indexer.chunk import chunk_source
    from indexer.languages import language_for
    from indexer.types import SourceFile

    name, text = make_text(case, mb)
    count = counter(model)
    count(["warm up the tokenizer"])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    src = SourceFile(name, language_for(name) or "text", text, len(text))
    result = chunk_source(src, count)
    t_chunk = time.perf_counter() - t0
    t_encode = 0.0
    if encode:
        from encoder import load_encoder

        enc = load_encoder(model) if model else load_encoder()
        t1 = time.perf_counter()
        enc.encode([c.text for c in result.chunks], kind="document")
        t_encode = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "bytes": len(text.encode()),
        "chunks": len(result.chunks),
        "max_tokens": max((c.tokens for c in result.chunks), default=0),
        "chunk_s": t_chunk,
        "encode_s": t_encode,
        "base_mb": base / 1024,
        "peak_mb": peak / 1024,
    }


def many_files(n: int, model: str | None) -> dict[str, float]:
    from indexer.chunk_paths import chunk_paths

    count = counter(model)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(n):
            d = root / f"d{i // 1000}"
            d.mkdir(exist_ok=True)
            (d / f"f{i}.py").write_text(f"X{i} = {i}\n")
        t0 = time.perf_counter()
        files = sum(1 for _ in chunk_paths([root], count, root=root))
        dt = time.perf_counter() - t0
    return {"files": files, "seconds": dt, "files_per_s": files / dt}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="0.25,0.5,1,2", help="MB, comma-separated")
    p.add_argument("--cases", default="wide,giant,many", help="wide, giant, many")
    p.add_argument("--encode", action="store_true", help="also encode the chunks (slow: minutes per MB on a CPU)")
    p.add_argument("--model", default=None, help="count (and encode) with this checkpoint")
    p.add_argument("--files", type=int, default=20_000, help="files of the 'many' case")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        case, mb = args.child.split(":")
        print(json.dumps(child(case, float(mb), args.model, args.encode)))
        return
    sizes = [float(s) for s in args.sizes.split(",")]
    for case in args.cases.split(","):
        if case == "many":
            r = many_files(args.files, args.model)
            print(f"many: {r['files']:,} one-line files discovered, read and chunked in {r['seconds']:.1f} s: "
                  f"{r['files_per_s']:,.0f} files/s")  # fmt: skip
            continue
        print(f"{case}: size MB | chunks | max tokens | chunk s | encode s | peak MB (base) | time ratio | mem ratio")
        first: dict[str, float] | None = None
        for mb in sizes:
            cmd = [sys.executable, __file__, "--child", f"{case}:{mb}"]
            cmd += ["--model", args.model] if args.model else []
            cmd += ["--encode"] if args.encode else []
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
            if out.returncode != 0:
                print(f"  {mb:5.2f}: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            first = first or r
            t = r["chunk_s"] + r["encode_s"]
            t0 = first["chunk_s"] + first["encode_s"]
            mem, mem0 = r["peak_mb"] - r["base_mb"], max(first["peak_mb"] - first["base_mb"], 1.0)
            print(
                f"  {r['bytes'] / 2**20:5.2f} | {r['chunks']:6d} | {r['max_tokens']:6d} | {r['chunk_s']:7.2f} | "
                f"{r['encode_s']:7.2f} | {r['peak_mb']:6.0f} ({r['base_mb']:.0f}) | "
                f"{t / max(t0, 1e-9):5.1f}x | {mem / mem0:5.1f}x"
            )


if __name__ == "__main__":
    main()
