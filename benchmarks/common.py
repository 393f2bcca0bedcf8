"""Shared pieces of the benchmarks: real code chunks, a code tokenizer, FLOP counts, matmul ceiling, memory sampling."""

from __future__ import annotations

import ast
import random
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch


def stdlib_files(limit: int | None = None) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts and "tkinter" not in p.parts)
    return files[:limit] if limit else files


def stdlib_functions(seed: int = 0) -> list[str]:
    """Source of every function and method of the Python standard library (tkinter excluded), shuffled."""
    out: list[str] = []
    for path in stdlib_files():
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = source.splitlines(keepends=True)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                # whole lines (ast.get_source_segment re-splits the file on every call: minutes for the stdlib)
                out.append("".join(lines[node.lineno - 1 : node.end_lineno]))
    random.Random(seed).shuffle(out)
    return out


def code_tokenizer(vocab_size: int = 32768):  # -> tokenizers.Tokenizer
    """A byte-level BPE (the kind ModernBERT uses) trained on part of the standard library, with [CLS] .. [SEP]."""
    from encoder.tiny import build_tokenizer

    corpus = [p.read_text(encoding="utf-8", errors="replace") for p in stdlib_files()[::4]]
    return build_tokenizer(corpus, vocab_size=vocab_size)


def flops_per_sequence(n: int, hidden: int, intermediate: int, layer_global: list[bool], window_half: int) -> float:
    """Forward FLOPs of ModernBERT for one sequence of n tokens (matmuls only; local layers windowed)."""
    linear = 2 * hidden * (3 * hidden + hidden + 2 * intermediate + intermediate)
    total = 0.0
    for is_global in layer_global:
        keys = n if is_global else min(n, 2 * window_half + 1)
        total += n * (linear + 4 * keys * hidden)
    return total


def matmul_ceiling(dtype: torch.dtype, seconds: float = 3.0) -> float:
    """FLOP/s of large matmuls shaped like the model's (tokens x 768 @ 768 x 2304), best of a few runs."""
    a = torch.randn(4096, 768, dtype=dtype)
    b = torch.randn(768, 2304, dtype=dtype)
    a @ b
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(3):
            a @ b
        best = max(best, 3 * 2 * 4096 * 768 * 2304 / (time.perf_counter() - t))
    return best


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_rss_during(fn: Callable[[], object], interval: float = 0.002) -> tuple[int, object]:
    """(peak RSS above the RSS at the start of the call, fn's result), sampled by a thread."""
    base = rss_bytes()
    peak = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes())
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        stop.set()
        thread.join()
    return max(peak, rss_bytes()) - base, result


def say(msg: str = "") -> None:
    """Print at once (benchmarks report as they go)."""
    print(msg, flush=True)


def ms_pcts(seconds: list[float], with_max: bool = False) -> str:
    """'p50 x ms, p95 y ms[, max z ms] (n=N)' for durations in seconds."""
    if not seconds:
        return "n/a (no samples)"
    import numpy as np

    a = np.asarray(seconds) * 1000.0
    top = f", max {a.max():.1f} ms" if with_max else ""
    return f"p50 {np.percentile(a, 50):.1f} ms, p95 {np.percentile(a, 95):.1f} ms{top} (n={len(a)})"
