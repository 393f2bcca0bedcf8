"""Wall time of one `semcode search` from the shell: cold (a fresh process imports, loads the model, opens the
index), warm (answered by the CLI's daemon), and `python -c "import torch"` for scale, in one run.

    python benchmarks/cli_latency.py [--repo PATH] [--runs 7] [--model CKPT]

Builds an index of ``--repo`` (default: this repository's ``indexer/`` folder) with the model (default: the shipped
one) in a temp folder, then times, interleaved round by round so that the machine's noise hits every case alike:

- ``import torch``: ``python -c "import torch"``;
- cold hybrid / cold lexical: ``semcode search Q --no-daemon [--mode lexical]`` (nothing warm is used);
- warm hybrid: ``semcode search Q`` with the daemon up (started once before the rounds, and checked to answer).

Prints the median and min of each, and the bars of the issue: warm p50 <= 1/20 of cold, cold <= 1.5x ``import
torch``. Never asserts: this is a benchmark. What else ran on the machine is for whoever runs it to say.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUERIES = ["parse gitignore patterns", "open the index folder", "split a long function into chunks"]


def semcode(*args: str) -> list[str]:
    return [sys.executable, "-m", "lsp_server.cli", *args]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return elapsed


def start_daemon(base: list[str], env: dict[str, str], sock: Path, deadline_s: float = 300) -> None:
    """One search that starts the daemon, then wait until it answers a ping."""
    from lsp_server import daemon

    subprocess.run(base, env=env, cwd=REPO, capture_output=True, check=True)
    end = time.monotonic() + deadline_s
    while (answer := daemon.ask(sock, "ping", {})) is None:
        if time.monotonic() > end:
            raise SystemExit(f"the daemon did not come up within {deadline_s} s (log: {sock}.log)")
        time.sleep(0.2)
    print(f"daemon pid {answer['pid']} serving {sock}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=REPO / "indexer", help="tree to index (default: indexer/)")
    p.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    args = p.parse_args()

    from lsp_server import daemon

    tmp = Path(tempfile.mkdtemp(prefix="semcode-cli-latency-"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp / "run")}
    env.pop(daemon.NO_DAEMON_ENV, None)
    (tmp / "run").mkdir()
    root = tmp / "repo"
    shutil.copytree(args.repo, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".git").mkdir()
    index = str(tmp / "index")
    model = ["--model", args.model] if args.model else []
    try:
        print(f"indexing {args.repo} into {index} ...", flush=True)
        subprocess.run(semcode("index", str(root), "--index-dir", index, "-q", *model), env=env, check=True)
        base = semcode("search", QUERIES[0], "--index-dir", index, "--repo", str(root), *model)
        os.environ["XDG_RUNTIME_DIR"] = env["XDG_RUNTIME_DIR"]  # for socket_path in this process
        sock = daemon.socket_path()
        start_daemon(base, env, sock)
        cases = {
            "python -c 'import torch'": lambda q: [sys.executable, "-c", "import torch"],
            "cold hybrid (--no-daemon)": lambda q: [*base[:4], q, *base[5:], "--no-daemon"],
            "cold lexical (--no-daemon)": lambda q: [*base[:4], q, *base[5:], "--no-daemon", "--mode", "lexical"],
            "warm hybrid (daemon)": lambda q: [*base[:4], q, *base[5:]],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for r in range(args.runs):
            for name, make in cases.items():
                times[name].append(timed(make(QUERIES[r % len(QUERIES)]), env))
            line = ", ".join(f"{n.split(' (')[0]} {t[-1]:.2f}s" for n, t in times.items())
            print(f"round {r + 1}/{args.runs}: {line}", flush=True)
        daemon.stop(sock)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n{os.cpu_count()} CPUs; {args.runs} rounds, interleaved; wall time of the whole command")
    print("| case | median s | min s |\n|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {med[name]:.3f} | {min(t):.3f} |")
    torch_s, cold, warm = med["python -c 'import torch'"], med["cold hybrid (--no-daemon)"], med["warm hybrid (daemon)"]
    print(f"\nwarm / cold: 1/{cold / warm:.1f}  ({'PASS' if warm <= cold / 20 else 'FAIL'}: bar 1/20)")
    print(f"cold / import torch: {cold / torch_s:.2f}x  ({'PASS' if cold <= 1.5 * torch_s else 'FAIL'}: bar 1.5x)")


if __name__ == "__main__":
    main()
