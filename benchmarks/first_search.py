"""How soon a new repository is searchable: `semcode index` until every file is searchable by text (phase 1),
against `semcode chunks` on the same tree, and `semcode mcp` started on an unindexed repository until its first
non-empty `search_code` answer, against the same yardstick.

    python benchmarks/first_search.py --src /work/qbench/src                     # 8 pinned projects
    python benchmarks/first_search.py --src DIR --projects click,koa --mcp       # also the MCP server

``--src``: one checkout per project in a folder named as the project, at the commit ``questions/projects.json`` pins
(checked with git when the checkout has a ``.git``). Each measurement is a fresh process, so the model's tokenizer and
weights load every time, as a new user's first command does; the project's files are in the page cache for all of
them (one warm-up `semcode chunks` runs first).

- ``chunks``: wall time of ``semcode chunks --json ROOT`` (discover, read, chunk, count tokens; output to a pipe).
- ``phase 1``: ``semcode index ROOT --index-dir NEW`` from its start until it reports every file looked at (its
  progress line ``N/N files`` on stderr, printed at once when phase 1 commits its last batch); then the index is
  opened and checked (every indexed file has its chunk rows) and the run is killed with SIGKILL (phase 2, the
  embedding, is what issue 23 puts behind; a kill there loses nothing).
- ``mcp``: ``semcode mcp ROOT --index-dir NEW`` over stdio (the MCP SDK's client) from the spawn until
  ``search_code`` (the project's first question) returns a hit, asked as soon as the session is up and again every
  0.2 s after an answer without hits (the server runs a new index's phase 1 in a child process and a search waits
  for it: ``semcode/phase_one.py``).

Ratios are per project, the time over ``chunks``; issue 23 asks for at most 3x. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PROJECTS = ["click", "requests", "koa", "echo", "jsoup", "cjson", "sinatra", "warp", "slim", "mediatr"]
SEMCODE = [sys.executable, "-m", "lsp_server.cli"]
ENV = {**os.environ, "SEMCODE_NO_DAEMON": "1", "PYTHONPATH": str(ROOT)}


def pinned(src: Path, name: str) -> Path:
    projects = {p["project"]: p for p in json.loads((ROOT / "benchmarks/questions/projects.json").read_text())}
    root = src / name
    if not root.is_dir():
        raise SystemExit(f"{root}: no checkout (git clone {projects[name]['repository']} {root})")
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        if head.strip() != projects[name]["commit"]:
            raise SystemExit(f"{root} is at {head.strip()}, pinned: {projects[name]['commit']}")
    return root


def chunks_time(root: Path) -> tuple[float, int, int]:
    """(seconds, chunks, tokens) of `semcode chunks --json ROOT`."""
    t0 = time.perf_counter()
    out = subprocess.run([*SEMCODE, "chunks", "--json", str(root)], capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"semcode chunks {root} failed: {out.stderr[-2000:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    chunks = [r for r in rows if "tokens" in r]
    return seconds, len(chunks), sum(r["tokens"] for r in chunks)


ALL_FILES = re.compile(r": (\d+)/(\d+) files")


def phase1_time(root: Path, index: Path) -> float:
    """Seconds from spawning `semcode index` until its progress says every file was looked at (phase 1 committed);
    the run is then killed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*SEMCODE, "index", str(root), "--index-dir", str(index)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stderr is not None
    seconds = None
    for line in proc.stderr:
        found = ALL_FILES.search(line)
        if (found and found.group(1) == found.group(2)) or "searchable by text" in line:
            seconds = time.perf_counter() - t0
            break
    if seconds is None:
        proc.wait()
        seconds = time.perf_counter() - t0  # nothing to embed: the run ended with phase 1
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return seconds


def check_searchable(root: Path, index: Path) -> tuple[int, float]:
    """(indexed files, embedded share) of the index phase 1 left; raises when an indexed file has no chunk row."""
    from encoder.load import model_id, read_tokenizer_files
    from encoder.shipped import default_model
    from indexer.identity import repo_id
    from indexer.store import Store

    model = default_model()
    config, _, _ = read_tokenizer_files(model)
    store = Store.open(index, model_id(model), config.hidden_size, read_only=True)
    records = {p for p, r in store.files(repo_id(root)).items() if r.status == "indexed"}
    rows = {c.path for c in store.chunks()}
    if records - rows:
        raise SystemExit(f"{root}: {len(records - rows)} indexed files without rows, e.g. {sorted(records - rows)[:3]}")
    return len(records), store.coverage().share


async def mcp_first_answer(root: Path, index: Path, query: str, timeout: float = 600.0) -> float:
    """Seconds from spawning `semcode mcp` until search_code answers `query` with at least one hit."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "lsp_server.cli", "mcp", str(root), "--index-dir", str(index)], env=ENV
    )
    t0 = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        while time.perf_counter() - t0 < timeout:
            result = await session.call_tool("search_code", {"query": query, "limit": 5})
            if (result.structured_content or {}).get("hits"):
                return time.perf_counter() - t0
            await asyncio.sleep(0.2)
    raise SystemExit(f"{root}: no hit for {query!r} within {timeout} s")


def first_question(name: str) -> str:
    line = (ROOT / f"benchmarks/questions/{name}.jsonl").read_text().splitlines()[0]
    return str(json.loads(line)["query"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="one checkout per project, named as the project")
    ap.add_argument("--projects", default=",".join(DEFAULT_PROJECTS), help="comma-separated project names")
    ap.add_argument("--mcp", action="store_true", help="also time the MCP server's first non-empty answer")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    names = [n for n in args.projects.split(",") if n]
    rows = []
    work = Path(tempfile.mkdtemp(prefix="semcode-first-"))
    try:
        header = f"{'project':14} {'chunks':>7} {'tokens':>8} {'chunks s':>9} {'phase 1 s':>10} {'ratio':>6}"
        print(header + (f" {'mcp s':>7} {'ratio':>6}" if args.mcp else ""), flush=True)
        for name in names:
            root = pinned(args.src, name)
            chunks_time(root)  # warm the page cache
            t_chunks, n_chunks, tokens = chunks_time(root)
            index = work / f"{name}.idx"
            t_phase1 = phase1_time(root, index)
            files, share = check_searchable(root, index)
            row = {"project": name, "chunks": n_chunks, "tokens": tokens, "files": files, "embedded_after": share,
                   "chunks_s": t_chunks, "phase1_s": t_phase1, "phase1_ratio": t_phase1 / t_chunks}  # fmt: skip
            line = f"{name:14} {n_chunks:>7} {tokens:>8} {t_chunks:>9.2f} {t_phase1:>10.2f} {t_phase1 / t_chunks:>6.2f}"
            if args.mcp:
                t_mcp = asyncio.run(mcp_first_answer(root, work / f"{name}.mcp", first_question(name)))
                row |= {"mcp_s": t_mcp, "mcp_ratio": t_mcp / t_chunks}
                line += f" {t_mcp:>7.2f} {t_mcp / t_chunks:>6.2f}"
            print(line, flush=True)
            rows.append(row)
            shutil.rmtree(index, ignore_errors=True)
            shutil.rmtree(work / f"{name}.mcp", ignore_errors=True)
        ratios = sorted(r["phase1_ratio"] for r in rows)
        print(f"phase 1 / chunks: worst {ratios[-1]:.2f}x, median {ratios[len(ratios) // 2]:.2f}x")
        if args.mcp:
            print(f"mcp first answer / chunks: worst {max(r['mcp_ratio'] for r in rows):.2f}x")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
