"""A full `semcode index` of one tree by this checkout against an older one (default: main before issue 23),
side by side on the same machine, rounds interleaved.

    python benchmarks/full_index_vs_main.py --repo /work/qbench/src/slim                 # old ref aaec6af
    python benchmarks/full_index_vs_main.py --repo PATH --old-ref REF --rounds 3 [--env SEMCODE_X=1]

The old checkout is extracted with ``git archive REF`` into a temporary folder and run with the same Python and
packages (``python -m lsp_server.cli index ROOT --index-dir FRESH``, ``PYTHONPATH`` and the working folder set to the
checkout, no daemon), so both load their own shipped model (the same weights) and their own code. Each round indexes
into a fresh folder, old then new, then new then old in the next round (the order alternates, so a machine that
speeds up or slows down over the run favours neither). Reported: each run's wall time, the best of each side and
their ratio (new / old: issue 23 asks for at most 0.7), and what each run printed as its summary. Nothing else should
run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_REF = "aaec6af"  # main before issue 23 (two-phase indexing, text-only files, int8)


def extract(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def index_once(checkout: Path, repo: Path, index: Path, extra_env: dict[str, str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "SEMCODE_NO_DAEMON": "1", **extra_env}
    cmd = [sys.executable, "-m", "lsp_server.cli", "index", str(repo), "--index-dir", str(index), "--quiet"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{checkout}: semcode index failed:\n{out.stderr[-3000:]}")
    return seconds, out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True, help="the tree to index (not modified)")
    ap.add_argument("--old-ref", default=OLD_REF, help=f"the git ref to compare with (default {OLD_REF})")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the new checkout's runs")
    args = ap.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    work = Path(tempfile.mkdtemp(prefix="semcode-vs-main-"))
    try:
        old = extract(args.old_ref, work / "old")
        sides = {"old": (old, {}), "new": (ROOT, extra)}
        times: dict[str, list[float]] = {"old": [], "new": []}
        for n in range(args.rounds):
            order = ["old", "new"] if n % 2 == 0 else ["new", "old"]
            for side in order:
                checkout, env = sides[side]
                index = work / f"{side}-{n}.idx"
                seconds, summary = index_once(checkout, args.repo.resolve(), index, env)
                times[side].append(seconds)
                print(f"round {n + 1} {side}: {seconds:7.1f} s  {summary}", flush=True)
                shutil.rmtree(index, ignore_errors=True)
        best_old, best_new = min(times["old"]), min(times["new"])
        ratio = best_new / best_old
        print(f"best old ({args.old_ref}): {best_old:.1f} s, best new: {best_new:.1f} s, new/old {ratio:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
