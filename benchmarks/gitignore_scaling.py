"""Time discovery (`indexer.discover.discover`, what `semcode chunks` walks with) against the length of the
.gitignore: the plain matcher (every pattern tried on every path) and the indexed one, side by side in one process.

    python benchmarks/gitignore_scaling.py [--sizes 1000,10000,100000,200000] [--files 53] [--seed 0]

The tree: `--files` source files in a few folders, two of which hold a short .gitignore of their own. The root
.gitignore has the given number of lines, generated in the proportions a long machine-written one has: literal
paths of build products (half), literal names, "*.ext" and "tmp*" names, globs ("**/x/", "logs/**/*.log",
"[0-9]*", "?"), "!" lines, comments and blank lines; a few lines, scattered, match files of the tree. Both
matchers must find the same files (checked). Columns: files found, wall seconds of each walk (the indexed one's CPU
seconds too: the machine may be shared), plain / indexed wall time.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.discover import IgnoreFile, MatcherFactory, PlainIgnoreFile, discover

FOLDERS = ["src", "src/core", "src/util", "tests", "docs", "tools", "gen", "gen/proto"]
EXTS = ["py", "ts", "go", "rs", "md"]


def make_tree(root: Path, files: int) -> None:
    for n in range(files):
        folder = root / FOLDERS[n % len(FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod_{n}.{EXTS[n % len(EXTS)]}").write_text(f"def f{n}():\n    return {n}\n")
    (root / "src" / ".gitignore").write_text("*.tmp.py\n!keep.tmp.py\n/core/mod_9.go\n")
    (root / "gen" / ".gitignore").write_text("proto/\n")


def ignore_line(rng: random.Random, i: int) -> str:
    """One line of a long, machine-written .gitignore."""
    r = rng.random()
    if r < 0.02:
        return f"# generated section {i}"
    if r < 0.04:
        return ""
    if r < 0.52:
        return f"/build/out_{i % 97}/obj/file_{i}.o"
    if r < 0.60:
        return f"src/generated/proto_{i}.pb.go"
    if r < 0.70:
        return rng.choice([f"tmp_{i}.log", f"cache_{i}/", f".scratch_{i}"])
    if r < 0.78:
        return rng.choice([f"*.bak{i}", f"*.out{i}", f"tmp{i}_*", f"core.{i}*"])
    if r < 0.95:
        return rng.choice(
            [f"**/node_{i}/", f"logs/**/*.log{i}", f"data/[0-9]*_{i}.csv", f"?tmp{i}", f"/out_{i}/*/", f"*.p[yc]{i}"]
        )
    return rng.choice([f"!keep_{i}.py", f"!/build/out_{i % 97}/obj/keep_{i}.o"])


def make_gitignore(root: Path, lines: int, seed: int) -> None:
    rng = random.Random(seed)
    out = [ignore_line(rng, i) for i in range(lines)]
    matching = ["mod_3.go", "tests/*.rs", "docs/", "!mod_13.go", "src/**/mod_2*.ts", "*.md"]
    for line in matching:  # scattered: the last match decides, wherever it is
        out.insert(rng.randrange(len(out) + 1), line)
    (root / ".gitignore").write_text("\n".join(out) + "\n")


def timed(root: Path, matcher: MatcherFactory) -> tuple[float, float, list[str]]:
    """(wall seconds, CPU seconds of this process, what the walk found)."""
    start, cpu = time.perf_counter(), time.process_time()
    found = [str(x) for x in discover(root, matcher=matcher)]
    return time.perf_counter() - start, time.process_time() - cpu, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,200000", help="root .gitignore lengths, in lines")
    parser.add_argument("--files", type=int, default=53)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'lines':>8} {'found':>6} {'plain s':>9} {'indexed s':>10} {'(cpu s)':>8} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, args.files)
        for lines in (int(x) for x in args.sizes.split(",")):
            make_gitignore(root, lines, args.seed)
            fast_s, fast_cpu, fast = timed(root, IgnoreFile)
            plain_s, _, plain = timed(root, PlainIgnoreFile)
            if fast != plain:
                raise SystemExit(f"the matchers disagree at {lines} lines: {sorted(set(fast) ^ set(plain))}")
            figures = f"{plain_s:>9.2f} {fast_s:>10.3f} {fast_cpu:>8.3f} {plain_s / fast_s:>6.0f}x"
            print(f"{lines:>8} {len(fast):>6} {figures}", flush=True)


if __name__ == "__main__":
    main()
