"""``semcode/search`` latency through the real language server over stdio, idle and while a full index runs.

    python benchmarks/lsp_latency.py                        # the shipped default model, a few stdlib packages
    python benchmarks/lsp_latency.py --model PATH           # another checkpoint; --tiny: a tiny random model
    python benchmarks/lsp_latency.py --repo PATH --queries 200

Steps:

1. Model: ``--model PATH``, or the default model shipped with semcode, or with ``--tiny`` the tiny random
   ModernBERT of ``encoder.tiny`` written to a temp folder (its vectors mean nothing; the pipeline's costs are real).
2. Repository: ``--repo PATH`` as is, or a temp copy of a few standard-library packages with a ``.git`` folder.
   The index goes to a temp folder (``initializationOptions.indexDir``).
3. ``python -m lsp_server.cli lsp`` is started as a subprocess and driven over stdio by pytest-lsp's client.
4. While indexing: from the first ``$/progress`` begin until ``semcode/status`` says the state is no longer
   "indexing", one search every ~100 ms, alternating lexical and hybrid. A search counts as "during indexing" when
   its own answer says ``index.state == "indexing"``.
5. Idle: once ready, ``--queries`` searches per mode, one after another.

Latency is client-side wall time of the request (JSON-RPC over pipes included). A search the server answers with an
error is counted and reported, not timed; the server's stderr (its tracebacks) is forwarded to this stderr. No figure
is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import ms_pcts, say  # noqa: E402

DEFAULT_PACKAGES = "asyncio,email,json,logging,unittest,http,xml,concurrent"
TARGET_P95_MS = 300.0
MODES = ("lexical", "hybrid")
QUERIES = [
    "parse an email address",
    "decode json from a string",
    "send an http request with headers",
    "rotate log files when they grow too big",
    "run a coroutine until it completes",
    "assert that an exception is raised",
    "read a chunked transfer encoding body",
    "load test cases from a module",
    "set the logging level of a handler",
    "parse a multipart mime message",
    "wait for the first task to finish",
    "parse an xml document into a tree",
    "submit a callable to a thread pool",
    "RotatingFileHandler",
    "JSONDecoder",
    "run_until_complete",
    "assertRaises",
    "HTTPConnection",
    "ThreadPoolExecutor",
    "ElementTree",
]


def p95_ms(seconds: list[float]) -> float | None:
    return float(np.percentile(np.asarray(seconds) * 1000.0, 95)) if seconds else None


# ------------------------------------------------------------------------------------------------------ set-up


def prepare_model(args: argparse.Namespace, tmp: Path) -> str:
    if not args.tiny:
        from encoder.load import default_model

        model = args.model or str(default_model())
        say(f"model: {model}")
        return str(Path(model).resolve()) if Path(model).exists() else str(model)
    from encoder.tiny import write_tiny_checkpoint

    folder = write_tiny_checkpoint(tmp / "tiny-modernbert")
    say(
        f"model: the tiny RANDOM ModernBERT of encoder.tiny ({folder}).\n"
        "  Its vectors are meaningless: hybrid latency includes a real (tiny) query encoding, not a full-size one."
    )
    return str(folder)


def prepare_repo(args: argparse.Namespace, tmp: Path) -> Path:
    if args.repo:
        root = Path(args.repo).resolve()
        say(f"repository: {root} (indexed in place; the index goes to a temp folder)")
        return root
    dest = tmp / "repo"
    dest.mkdir()
    (dest / ".git").mkdir()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    for name in packages:
        shutil.copytree(stdlib / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    files = [p for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts]
    size = sum(p.stat().st_size for p in files) / 2**20
    say(f"repository: a copy of stdlib packages {', '.join(packages)} in {dest} ({len(files)} files, {size:.1f} MiB)")
    return dest


# ------------------------------------------------------------------------------------------------------ client


async def start(root: Path, init_options: dict[str, Any]) -> LanguageClient:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    config = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server.cli", "lsp"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    caps = types.ClientCapabilities(window=types.WindowClientCapabilities(work_done_progress=True))
    uri = from_fs_path(str(root)) or ""
    await client.initialize_session(
        types.InitializeParams(
            capabilities=caps,
            root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name=root.name)],
            initialization_options=init_options,
        )
    )
    return client


async def request(client: LanguageClient, method: str, params: Any, timeout: float = 60) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async(method, params), timeout)


async def timed_search(client: LanguageClient, query: str, mode: str) -> tuple[float, Any]:
    """(seconds, answer); the answer is the JsonRpcException itself when the server answered with an error."""
    t = time.perf_counter()
    try:
        answer = await request(client, "semcode/search", {"query": query, "mode": mode, "limit": 20})
    except JsonRpcException as e:
        answer = e
    return time.perf_counter() - t, answer


def index_began(client: LanguageClient) -> bool:
    return any(
        reports and isinstance(reports[0], types.WorkDoneProgressBegin) for reports in client.progress_reports.values()
    )


def progress_message(client: LanguageClient) -> str:
    """The latest $/progress message ("n/m files, k chunks")."""
    for reports in client.progress_reports.values():
        for r in reversed(reports):
            if isinstance(r, types.WorkDoneProgressReport) and r.message:
                return r.message
    return "no progress report yet"


# ------------------------------------------------------------------------------------------------------- steps


async def during_indexing(
    client: LanguageClient, interval_s: float, deadline_s: float
) -> tuple[dict[str, list[float]], int]:
    """One search per tick, alternating modes, while the server reports "indexing": (latencies by mode, failures)."""
    say("\n== while indexing ==")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not index_began(client):  # model load first: searches then only hit an absent store
        status = await request(client, "semcode/status", {})
        if status.state != "indexing":
            say(f"  the index run never began: state {status.state!r} ({getattr(status, 'lastError', None)})")
            return {m: [] for m in MODES}, 0
        if loop.time() - t0 > deadline_s:
            say(f"  no $/progress begin within {deadline_s:.0f} s")
            return {m: [] for m in MODES}, 0
        await asyncio.sleep(0.05)
    say(f"  model loaded and index run begun {loop.time() - t0:.1f} s after initialize")

    during: dict[str, list[float]] = {m: [] for m in MODES}
    after: dict[str, list[float]] = {m: [] for m in MODES}
    errors: dict[str, list[str]] = {m: [] for m in MODES}
    began = loop.time()
    last_print = began
    i = 0
    while True:
        tick = loop.time()
        status = await request(client, "semcode/status", {})
        if status.state != "indexing":
            break
        if tick - began > deadline_s:
            say(f"  stopped measuring after {deadline_s:.0f} s (the index run goes on)")
            break
        mode = MODES[i % len(MODES)]
        secs, answer = await timed_search(client, QUERIES[(i // len(MODES)) % len(QUERIES)], mode)
        if isinstance(answer, JsonRpcException):
            errors[mode].append(str(answer))  # a failed search is not a latency sample
        else:
            (during if answer.index.state == "indexing" else after)[mode].append(secs)
        i += 1
        if tick - last_print >= 10:
            last_print = tick
            n = sum(map(len, during.values()))
            say(f"  {tick - began:.0f} s: {progress_message(client)}; {n} searches measured")
        await asyncio.sleep(max(0.0, interval_s - (loop.time() - tick)))
    status = await request(client, "semcode/status", {})
    say(
        f"  index run: {loop.time() - began:.1f} s, state {status.state!r}, {status.files} files, {status.chunks} "
        f"chunks, {status.skipped} skipped"
    )
    n_during = sum(map(len, during.values()))
    say(f"  searches measured during indexing: {n_during} ({', '.join(f'{m} {len(during[m])}' for m in MODES)})")
    if any(after.values()):
        say(f"  ({sum(map(len, after.values()))} answered after the run ended: left out)")
    for mode in MODES:
        say(f"  {mode:8s} {ms_pcts(during[mode], with_max=True)}")
    n_errors = sum(map(len, errors.values()))
    if n_errors:
        say(f"  FAILED searches while indexing: {n_errors} ({', '.join(f'{m} {len(errors[m])}' for m in MODES)})")
        for message in sorted({e for v in errors.values() for e in v})[:3]:
            say(f"    e.g. {message[:300]}")
    return during, n_errors


async def wait_ready(client: LanguageClient, deadline_s: float) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        status = await request(client, "semcode/status", {})
        if status.state != "indexing" or loop.time() > end:
            return status
        await asyncio.sleep(0.2)


async def idle(client: LanguageClient, n: int) -> dict[str, list[float]]:
    say("\n== idle (index ready) ==")
    for mode in MODES:  # warm-up: first query of each mode
        await timed_search(client, "warm up", mode)
    out: dict[str, list[float]] = {m: [] for m in MODES}
    hits: dict[str, int] = {m: 0 for m in MODES}
    failed: dict[str, int] = {m: 0 for m in MODES}
    for i in range(n):
        for mode in MODES:
            secs, answer = await timed_search(client, QUERIES[i % len(QUERIES)], mode)
            if isinstance(answer, JsonRpcException):
                failed[mode] += 1
                continue
            out[mode].append(secs)
            hits[mode] += len(answer.results)
    for mode in MODES:
        fails = f", {failed[mode]} FAILED" if failed[mode] else ""
        per_query = hits[mode] / max(1, len(out[mode]))
        say(f"  {mode:8s} {ms_pcts(out[mode], with_max=True)}, {per_query:.1f} results/query{fails}")
    return out


def verdict(during: dict[str, list[float]], n_errors: int) -> str:
    target = f"the target 'search p95 within {TARGET_P95_MS:.0f} ms while indexing'"
    measured = {m: p95 for m, v in during.items() if (p95 := p95_ms(v)) is not None}
    if not measured:
        return f"no verdict on {target}: no search succeeded while indexing ({n_errors} failed)"
    parts = ", ".join(f"{m} p95 {v:.1f} ms" for m, v in measured.items())
    fast = max(measured.values()) <= TARGET_P95_MS
    if n_errors:
        latency = "latency within it" if fast else "latency over it too"
        return f"MISSES {target}: {n_errors} search(es) FAILED while indexing; {latency} ({parts})"
    return f"{'MEETS' if fast else 'MISSES'} {target} ({parts})"


async def run(args: argparse.Namespace, tmp: Path) -> None:
    model = prepare_model(args, tmp)
    root = prepare_repo(args, tmp)
    index_dir = tmp / "index"
    say(f"index: {index_dir}; server: {sys.executable} -m lsp_server.cli lsp (stdio); {os.cpu_count()} CPUs")
    options = {"model": model, "indexDir": str(index_dir)}
    t0 = time.perf_counter()
    client = await start(root, options)
    init_s = time.perf_counter() - t0
    _first_s, first = await timed_search(client, "read a configuration file", "hybrid")
    say(
        f"time to the initialize reply: {init_s * 1000:.0f} ms after the server process started; to the first "
        f"semcode/search answer: {(time.perf_counter() - t0) * 1000:.0f} ms "
        f"({'an error' if isinstance(first, JsonRpcException) else f'state {first.index.state!r}'})"
    )
    try:
        during, n_errors = await during_indexing(client, args.interval_ms / 1000, args.index_deadline)
        status = await wait_ready(client, args.index_deadline)
        if status.state != "ready":
            say(f"\nserver state {status.state!r} ({getattr(status, 'lastError', None)}): no idle figures")
            idle_lat: dict[str, list[float]] = {m: [] for m in MODES}
        else:
            idle_lat = await idle(client, args.queries)
    finally:
        await client.shutdown_session()
        await client.stop()

    say("\n== summary (semcode/search, client-side wall time) ==")
    for mode in MODES:
        say(f"  idle             {mode:8s} {ms_pcts(idle_lat[mode], with_max=True)}")
    for mode in MODES:
        say(f"  while indexing   {mode:8s} {ms_pcts(during[mode], with_max=True)}")
    say(f"verdict: {verdict(during, n_errors)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder or hub id (default: the shipped model)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model instead (pipeline costs only)")
    parser.add_argument("--repo", default=None, help="repository to index (default: a copy of stdlib packages)")
    parser.add_argument("--packages", default=DEFAULT_PACKAGES, help="stdlib packages copied when --repo is absent")
    parser.add_argument("--queries", type=int, default=100, help="idle searches per mode")
    parser.add_argument("--interval-ms", type=float, default=100.0, help="search interval while indexing")
    parser.add_argument("--index-deadline", type=float, default=600.0, help="seconds to wait for the index run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pytest-lsp warns about client capabilities it was not asked about
    with tempfile.TemporaryDirectory(prefix="semcode-lsp-latency-") as d:
        asyncio.run(run(args, Path(d)))


if __name__ == "__main__":
    main()
