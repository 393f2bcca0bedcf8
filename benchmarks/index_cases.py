"""Two hostile cases of ``benchmarks/index_bench.py``: many tiny files, and a run killed every few seconds.

    python benchmarks/index_bench.py --many-files 20000 [--tiny]
    python benchmarks/index_bench.py --kill-every 10 [--tiny] [--repo PATH]

``many_small_files``: N one-line Python files in folders of 1,000, indexed in process: files/s through the whole
pipeline (discover, read, chunk, encode, write), the number of write batches and the table versions left.

``kill_every``: the real CLI (``semcode index ROOT --index-dir D``) in a child process, killed with SIGKILL every S
seconds and restarted, until a run finishes; after each kill the rows in the index (``semcode status --json``) and
the cached vectors are read from disk. Prints the rows kept per kill, and the total time against one run that is
never killed: with commits every few seconds, each kill should lose only its last few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import say
from indexer.index import IndexOptions, index_repository
from indexer.store import Store


def make_tiny_files(root: Path, n: int) -> None:
    (root / ".git").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        folder = root / f"d{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i:06d}.py").write_text(f"VALUE_{i} = {i}\n")


def many_small_files(tmp: Path, enc: Any, n: int) -> None:
    say(f"\n== many small files: {n:,} one-line files ==")
    root = tmp / "many"
    t = time.perf_counter()
    make_tiny_files(root, n)
    say(f"  written in {time.perf_counter() - t:.1f} s")
    store = Store.open(tmp / "many-index", model_id=enc.name, dim=enc.dim)
    batches = {"n": 0}

    def progress(_p: Any) -> None:
        batches["n"] += 1

    t = time.perf_counter()
    report = index_repository(root, store, enc, enc.tokenizer.count, IndexOptions(), progress=progress)
    secs = time.perf_counter() - t
    stats = store.stats()
    versions = ", ".join(f"{k.split('_', 1)[0]} {v}" for k, v in stats["versions"].items())
    say(
        f"  indexed {report.files_changed:,} files ({report.chunks_written:,} chunks) in {secs:.1f} s: "
        f"{report.files_changed / secs:,.0f} files/s; {batches['n']} progress reports; versions left: {versions}"
    )
    t = time.perf_counter()
    again = index_repository(root, store, enc, enc.tokenizer.count, IndexOptions())
    say(f"  no-op re-index: {time.perf_counter() - t:.1f} s ({again.files_unchanged:,} unchanged)")


def _rows(index_dir: Path, root: Path, model: str) -> tuple[int, int, bool]:
    """(rows, cached vectors, whether the last run completed), read from disk by ``semcode status --json``."""
    cli = [sys.executable, "-m", "lsp_server.cli"]
    where = ["--repo", str(root), "--index-dir", str(index_dir), "--model", model]
    out = subprocess.run([*cli, "status", *where, "--json", "--no-daemon"], capture_output=True, text=True)
    if out.returncode != 0:
        return 0, 0, False  # (no index yet: killed before its first write)
    status = json.loads(out.stdout)
    return int(status.get("rows", 0)), int(status.get("vectors", 0)), not status.get("incomplete", False)


def _index_cmd(root: Path, index_dir: Path, model: str) -> list[str]:
    where = ["--index-dir", str(index_dir), "--model", model]
    return [sys.executable, "-m", "lsp_server.cli", "index", str(root), *where, "-q"]


def kill_every(tmp: Path, root: Path, model: str, seconds: float, max_kills: int = 60) -> None:
    say(f"\n== killed every {seconds:g} s: semcode index in a child process, SIGKILL, restart ==")
    env = {**os.environ, "SEMCODE_NO_DAEMON": "1"}
    t = time.perf_counter()
    subprocess.run(_index_cmd(root, tmp / "never-killed", model), env=env, check=True, capture_output=True)
    whole = time.perf_counter() - t
    total_rows, total_vectors, _ = _rows(tmp / "never-killed", root, model)
    say(f"  one run, never killed: {whole:.1f} s, {total_rows} rows")
    index_dir = tmp / "killed"
    kept: list[int] = []
    t = time.perf_counter()
    for _ in range(max_kills):
        proc = subprocess.Popen(
            _index_cmd(root, index_dir, model), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            code = proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            rows, vectors, _ = _rows(index_dir, root, model)
            kept.append(rows)
            say(
                f"  kill {len(kept)}: {rows} rows ({100 * rows / max(total_rows, 1):.0f}%), {vectors} cached vectors "
                f"({100 * vectors / max(total_vectors, 1):.0f}%) kept"
            )
            continue
        if code != 0:
            say(f"  a run exited {code}; stopping")
            return
        break
    else:
        say(f"  not finished after {max_kills} kills")
        return
    total = time.perf_counter() - t
    rows, _vectors, complete = _rows(index_dir, root, model)
    gains = [b - a for a, b in zip([0, *kept], kept, strict=False)]
    say(
        f"  finished after {len(kept)} kills in {total:.1f} s of wall time ({total / whole:.2f}x the unkilled run, "
        f"which includes each restart's start-up); rows {rows}/{total_rows}, complete: {complete}"
    )
    if gains:
        say(f"  rows gained per {seconds:g} s life: min {min(gains)}, median {sorted(gains)[len(gains) // 2]}")
