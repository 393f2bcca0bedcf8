"""``search_code`` latency through the real MCP server over streamable HTTP, many concurrent clients, idle and while a
full index runs.

    python benchmarks/mcp_latency.py                                   # 100k chunks, 16 clients, the shipped model
    python benchmarks/mcp_latency.py --chunks 5000 --clients 4 --queries 5   # a quick run
    python benchmarks/mcp_latency.py --index-dir /tmp/syn100k --keep   # build once, then reuse the synthetic index
    python benchmarks/mcp_latency.py --repo PATH                       # index another tree in phase 2

Steps:

1. Synthetic index: ``--chunks`` rows written straight into the store with ``Store.replace_file_chunks`` (as
   ``index_bench.py`` does), for the model of ``--model`` (default: the shipped model, 384-d). The text, symbol and
   path columns are varied code-like text built from a vocabulary of verbs and nouns, so BM25 has something to match;
   the vectors are random unit vectors (semantic hits are meaningless, their cost is real). Then compaction,
   the IVF_PQ vector index (``Store.ensure_vector_index``) and compaction again. The rows' repo id is the resolved
   path of an empty folder, ``<index-dir>-root``: the served root, so ``Engine.search``, which keeps the rows of the
   served folder's repo id only, finds them. With ``--index-dir`` naming an index that already holds rows of that
   root, the index is reused as it is.
2. Server: ``python -m lsp_server.cli mcp ROOT --index-dir D --model M --http 127.0.0.1:PORT --read-only`` as a
   subprocess (its log goes to a file; its tail is printed when it fails).
3. Idle: ``--clients`` clients, each with its own MCP session (``mcp.Client`` over streamable HTTP), call
   ``search_code`` concurrently: one warm-up call per mode, then per mode (hybrid, then semantic, then lexical) every
   client makes ``--queries`` calls, one after another, all clients at once (a closed loop: C calls in flight).
4. During indexing: ``python -m lsp_server.cli index REPO --index-dir D --model M`` runs in another process into the
   same index folder, on a copy of the files semcode would index in ``--repo`` (default: this repository), while the
   clients repeat the blocks of step 3 (hybrid, semantic, lexical, hybrid, ...) until it exits. A call counts as
   "during indexing" when it ended before the indexer exited (its start-up, full run and final compaction); calls
   that ended later are left out. Afterwards the indexed copy's rows are deleted again when the index is kept.

Why a separate indexer process rather than the server indexing a second root of its own: the server under test is
then exactly ``semcode mcp ROOT --read-only`` in both phases, serving one root, so the only difference between the
phases is the full index running next to it. That run writes into the very table the server reads (new fragments,
rows not yet in the full-text and vector indexes and so searched flat, a compaction with version clean-up under
live readers: see ``Store.compact``) and competes for the same cores. A non-read-only server serving two roots would
also search every served root per call (two scoped searches of the same table), so its idle figures would not be
those of one repository at ``--chunks`` rows. What this does not measure: a server indexing in its own process
shares its interpreter lock with the requests (``lsp_latency.py`` measures that case for the LSP server).

Latency is client-side wall time of ``call_tool`` (HTTP on loopback, JSON and the client's own parsing included; the
clients run in this process, on the same cores as the server). A call that raises or answers ``isError`` is counted
as failed, not timed. To tell server from client, the table also gives calls/s and the CPU milliseconds per call
spent by the server process (``/proc/PID/stat``) and by this process (the clients) over the blocks of each mode:
with C clients in a closed loop, latency is about C / (calls/s), and calls/s at most cores / (CPU per call).

The bars of the issue are printed as PASS/FAIL, never asserted: hybrid p95 <= 150 ms idle, <= 400 ms during
indexing, zero failed calls. What else ran on the machine is for whoever runs this to say.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import say  # noqa: E402

MODES = ("hybrid", "semantic", "lexical")
BAR_IDLE_MS = 150.0
BAR_DURING_MS = 400.0
CHUNKS_PER_FILE = 20
BATCH_ROWS = 20_000  # rows per replace_file_chunks call (1000 files: one merge_insert)

QUERIES = [
    "retry a failed http request with exponential backoff",
    "parse the yaml config file and apply defaults",
    "validate the user's password against the stored hash",
    "resize an uploaded image into a thumbnail",
    "cancel pending jobs in the task queue",
    "refresh an expired session token",
    "serialize a record to json",
    "open a database transaction and roll back on error",
    "read a csv file into rows",
    "send an email notification to the user",
    "compress the log file when it gets too big",
    "cache the response of a remote request",
    "close idle connections in the pool",
    "schedule a recurring job every hour",
    "decode a base64 encoded payload",
    "check the signature of a webhook event",
    "merge two sorted lists of events",
    "split a path into its directory and file name",
    "format a timestamp as an iso date",
    "register a handler for incoming messages",
    "load environment variables into settings",
    "hash a file in chunks",
    "paginate the results of a database query",
    "authenticate a request with a bearer token",
    "write metrics to the monitoring backend",
    "lock a resource before updating it",
    "stream a large file over a socket",
    "resolve a relative url against the base url",
    "where do we rate limit api calls",
    "render an html template with the user profile",
    "convert a date string to a timestamp",
    "flush the buffered writer to disk",
    "SessionManager refresh token",
    "parse_config",
    "ConnectionPool",
    "retry_with_backoff",
    "how are failed jobs retried",
    "delete expired cache entries",
    "encrypt the secret with a key",
    "subscribe to events on a channel",
]


def words(text: str) -> list[str]:
    return text.split()


VERBS = words(
    "parse load save read write send retry connect validate render encode decode compress hash sort merge cache "
    "fetch schedule cancel register resolve format split open close lock refresh authenticate serialize paginate "
    "flush stream encrypt subscribe publish convert delete update create build check normalize upload download"
)
NOUNS = words(
    "config file request response token user session header payload image thumbnail cache queue task job socket "
    "connection database query transaction record event message email password url path timestamp date logger "
    "metric template profile webhook signature buffer chunk channel secret key pool row csv yaml json html "
    "setting handler backoff limit page result entry report account order invoice"
)
QUALS = words(
    "http async remote local pending expired default nested binary compressed cached signed encrypted raw "
    "parsed batch daily idle stale active primary partial"
)
PREPS = ("from", "into", "for", "with", "against", "over", "before", "after")
PARENTS = ("Manager", "Client", "Service", "Handler", "Store", "Parser", "Pool", "Worker", "Controller", "Registry")
LANGS = (("python", "py"), ("typescript", "ts"), ("go", "go"), ("rust", "rs"), ("java", "java"))


# ------------------------------------------------------------------------------------------------------ set-up


def camel(*words: str) -> str:
    return words[0] + "".join(w.title() for w in words[1:])


def pascal(*words: str) -> str:
    return "".join(w.title() for w in words)


def synthetic_text(lang: str, symbol: str, parent: str | None, v: str, q: str, n: str, n2: str, v2: str, p: str) -> str:
    """A code-like chunk: signature, a sentence of documentation and a few body lines."""
    doc = f"{v.title()} the {q} {n} {p} the {n2}, then {v2} it."
    if lang == "python":
        head = f"    def {symbol}(self, {n}, {n2}=None):" if parent else f"def {symbol}({n}, {n2}=None):"
        pad = "        " if parent else "    "
        body = [
            f'{pad}"""{doc}"""',
            f"{pad}{q}_{n2} = {v2}_{n2}({n2} or DEFAULT_{n2.upper()})",
            f"{pad}if not {n}:",
            f"{pad}    raise ValueError('missing {n}')",
            f"{pad}result = {v}_{n}({n}, {q}_{n2})",
            f"{pad}log.debug('{v} {n} %s', result)",
            f"{pad}return result",
        ]
        return "\n".join([f"class {parent}:", head, *body] if parent else [head, *body])
    if lang in ("typescript", "java"):
        ret = "Promise<Result>" if lang == "typescript" else "Result"
        sig = (
            f"  async {symbol}({n}: {pascal(n)}, {n2}?: {pascal(n2)}): {ret} {{"
            if lang == "typescript"
            else f"  public {ret} {symbol}({pascal(n)} {n}, {pascal(n2)} {n2}) {{"
        )
        body = [
            f"    // {doc}",
            f"    const {camel(q, n2)} = {camel(v2, n2)}({n2} ?? DEFAULT_{n2.upper()});",
            f"    if (!{n}) throw new Error('missing {n}');",
            f"    const result = await this.{camel(v, n)}({n}, {camel(q, n2)});",
            f"    this.log.debug(`{v} {n}`, result);",
            "    return result;",
            "  }",
        ]
        return "\n".join([f"class {parent} {{", sig, *body] if parent else [sig, *body])
    if lang == "go":
        recv = f"(s *{parent}) " if parent else ""
        return "\n".join(
            [
                f"// {symbol} will {doc[0].lower()}{doc[1:]}",
                f"func {recv}{symbol}({n} {pascal(n)}, {n2} {pascal(n2)}) (Result, error) {{",
                f"\t{camel(q, n2)}, err := {pascal(v2, n2)}({n2})",
                "\tif err != nil {",
                f'\t\treturn Result{{}}, fmt.Errorf("{v} {n}: %w", err)',
                "\t}",
                f"\treturn {pascal(v, n)}({n}, {camel(q, n2)})",
                "}",
            ]
        )
    head = f"impl {parent} {{\n" if parent else ""
    return head + "\n".join(
        [
            f"    /// {doc}",
            f"    pub fn {symbol}(&self, {n}: &{pascal(n)}, {n2}: Option<{pascal(n2)}>) -> Result<Output> {{",
            f"        let {q}_{n2} = {v2}_{n2}({n2}.unwrap_or_default())?;",
            f'        let result = {v}_{n}({n}, &{q}_{n2}).context("{v} {n}")?;',
            "        Ok(result)",
            "    }",
        ]
    )


def synthetic_rows(repo: str, start: int, count: int, rng: np.random.Generator) -> list[Any]:
    """StoredChunks number start..start+count-1 (CHUNKS_PER_FILE consecutive ones share a file)."""
    from indexer.store import StoredChunk

    pick = {
        name: rng.integers(0, len(pool), count)
        for name, pool in (("v", VERBS), ("v2", VERBS), ("n", NOUNS), ("q", QUALS), ("p", PREPS))
    }
    pick["n2"] = (pick["n"] + rng.integers(1, len(NOUNS), count)) % len(NOUNS)  # another noun than n
    parent_of = rng.integers(0, len(PARENTS), count)
    has_parent = rng.random(count) < 0.4
    rows = []
    for j in range(count):
        i = start + j
        lang, ext = LANGS[(i // CHUNKS_PER_FILE) % len(LANGS)]
        v, v2, n, n2 = VERBS[pick["v"][j]], VERBS[pick["v2"][j]], NOUNS[pick["n"][j]], NOUNS[pick["n2"][j]]
        q, p = QUALS[pick["q"][j]], PREPS[pick["p"][j]]
        parent = pascal(q, n, PARENTS[parent_of[j]]) if has_parent[j] else None
        if lang in ("python", "rust"):
            symbol = f"{v}_{q}_{n}"
        elif lang == "go":
            symbol = pascal(v, q, n)
        else:
            symbol = camel(v, q, n)
        text = synthetic_text(lang, symbol, parent, v, q, n, n2, v2, p)
        file_no, k = divmod(i, CHUNKS_PER_FILE)
        path = f"src/{NOUNS[file_no % len(NOUNS)]}/{QUALS[file_no % len(QUALS)]}_{file_no:06d}.{ext}"
        lines = text.count("\n")
        first = k * 12
        digest = hashlib.blake2b(f"{path}:{k}:{text}".encode(), digest_size=16).hexdigest()
        rows.append(
            StoredChunk(
                repo=repo, path=path, language=lang, kind="method" if parent else "function", symbol=symbol,
                parent=parent, start_line=first, start_col=0, end_line=first + lines, end_col=1,
                start_byte=k * 600, end_byte=k * 600 + len(text), tokens=len(text) // 4, text=text,
                content_hash=digest,
            )
        )  # fmt: skip
    return rows


def build_index(store: Any, repo: str, chunks: int, seed: int) -> None:
    say(f"\n== synthetic index: {chunks} chunks into {store.root} ==")
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    written = 0
    while written < chunks:
        count = min(BATCH_ROWS, chunks - written)
        rows = synthetic_rows(repo, written, count, rng)
        vectors = rng.standard_normal((count, store.dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        by_path: dict[str, list[tuple[Any, np.ndarray]]] = {}
        for row, vec in zip(rows, vectors, strict=True):
            by_path.setdefault(row.path, []).append((row, vec))
        store.replace_file_chunks(repo, by_path)
        written += count
        say(f"  {written}/{chunks} rows written, {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    store.compact()
    say(f"  compaction: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    built = store.ensure_vector_index(min_rows=1)
    say(
        f"  vector index (IVF_PQ, cosine): {'built' if built else 'already present'} in {time.perf_counter() - t:.1f} s"
    )
    t = time.perf_counter()
    store.compact()
    stats = store.stats()
    say(f"  compaction: {time.perf_counter() - t:.1f} s; {stats['rows']} rows, {stats['bytes'] / 2**20:.0f} MiB")


def open_store(model: str, index_dir: Path, root: Path) -> tuple[Any, Any, str]:
    """(engine, store, repo id) as the server will open them (same model id, vector size and table names)."""
    from semcode.engine import Engine
    from semcode.settings import Settings

    engine = Engine(Settings(model=model, index_dir=str(index_dir)), [root])
    folder = engine.folders[0]
    store = engine.store(folder)
    return engine, store, folder.repo


def prepare_index(args: argparse.Namespace, model: str, index_dir: Path) -> Path:
    root = Path(f"{index_dir}-root")
    root.mkdir(parents=True, exist_ok=True)
    engine, store, repo = open_store(model, index_dir, root)
    try:
        have = store.count_chunks(repo)
        vector_index = any(ix.columns == ["vector"] for ix in store._chunks.list_indices())
        if have:
            say(
                f"\n== synthetic index: reusing {index_dir} ({have} chunks of {root}, vector index "
                f"{'present' if vector_index else 'ABSENT'}); --chunks is ignored =="
            )
        else:
            build_index(store, repo, args.chunks, args.seed)
    finally:
        engine.close_now()
    return root


def prepare_repo(src: Path, dest: Path) -> tuple[int, int]:
    """Copy the files semcode would index in `src` (a `.git` folder makes the copy a repository root)."""
    from indexer.discover import DiscoverOptions, discover
    from indexer.types import Skip

    dest.mkdir(parents=True)
    (dest / ".git").mkdir()
    n = size = 0
    for item in discover(src, DiscoverOptions()):
        if isinstance(item, Skip):
            continue
        target = dest / item
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / item, target)
        n += 1
        size += target.stat().st_size
    return n, size


def forget_repo(model: str, index_dir: Path, repo_dir: Path) -> None:
    """Delete the rows phase 2 wrote (a kept index stays the synthetic one)."""
    engine, store, _ = open_store(model, index_dir, Path(f"{index_dir}-root"))
    try:
        from indexer.identity import repo_id

        repo = repo_id(repo_dir)
        paths = list(store.files(repo))
        store.delete_files(repo, paths)
        store.compact()
        say(f"  deleted the {len(paths)} files phase 2 indexed from {index_dir}")
    finally:
        engine.close_now()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else "")}


def log_tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-n:]) or "    (empty log)"


def start_server(args: argparse.Namespace, model: str, index_dir: Path, root: Path, port: int, log: TextIO) -> Any:
    cmd = [sys.executable, "-m", "lsp_server.cli", "mcp", str(root), "--index-dir", str(index_dir), "--model", model]
    cmd += ["--http", f"127.0.0.1:{port}", "--read-only"]
    say(f"\n== server: {' '.join(cmd[1:])} ==")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=REPO_ROOT)
    end = time.monotonic() + args.start_timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen within {args.start_timeout:.0f} s")


def stop(proc: Any, grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------------------------ client


@dataclass
class Call:
    mode: str
    start: float
    end: float
    ok: bool
    hits: int
    state: str
    error: str | None = None


@dataclass
class Block:
    """One block: its mode, calls, wall time and the CPU seconds the server and this process spent meanwhile."""

    mode: str
    calls: int
    wall: float
    server_cpu: float
    client_cpu: float


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class Bench:
    """The clients (one MCP session each) and the server they call."""

    def __init__(self, clients: list[Any], server_pid: int, timeout: float) -> None:
        self.clients, self.server_pid, self.timeout = clients, server_pid, timeout

    async def call(self, client: Any, query: str, mode: str) -> Call:
        t = time.perf_counter()
        try:
            result = await client.call_tool(
                "search_code", {"query": query, "mode": mode, "limit": 10}, read_timeout_seconds=self.timeout
            )
        except Exception as e:  # a transport error, a timeout, a protocol error: all failures
            return Call(mode, t, time.perf_counter(), False, 0, "?", f"{type(e).__name__}: {e}")
        end = time.perf_counter()
        if result.is_error:
            text = " ".join(getattr(c, "text", "") for c in result.content)
            return Call(mode, t, end, False, 0, "?", f"isError: {text[:300]}")
        data = result.structured_content or {}
        return Call(mode, t, end, True, len(data.get("hits", [])), data.get("index", {}).get("state", "?"))

    async def warm_up(self) -> None:
        await asyncio.gather(*(self.call(c, "warm up the server", m) for c in self.clients for m in MODES))

    async def block(self, mode: str, queries: int, offset: int, go_on: Callable[[], bool]) -> tuple[list[Call], Block]:
        """Every client makes `queries` calls in `mode`, one after another, all clients at once."""

        async def run(i: int, client: Any) -> list[Call]:
            out = []
            for j in range(queries):
                if not go_on():
                    break
                out.append(await self.call(client, QUERIES[(offset + i * 7 + j) % len(QUERIES)], mode))
            return out

        server0, client0, t = proc_cpu(self.server_pid), time.process_time(), time.perf_counter()
        per_client = await asyncio.gather(*(run(i, c) for i, c in enumerate(self.clients)))
        calls = [c for mine in per_client for c in mine]
        wall, server = time.perf_counter() - t, proc_cpu(self.server_pid) - server0
        return calls, Block(mode, len(calls), wall, server, time.process_time() - client0)


@dataclass
class Phase:
    calls: list[Call]
    blocks: list[Block]


async def idle_phase(bench: Bench, queries: int) -> Phase:
    say(f"\n== idle: {len(bench.clients)} clients x {queries} calls per mode, one mode after the other ==")
    await bench.warm_up()
    phase = Phase([], [])
    for k, mode in enumerate(MODES):
        calls, stats = await bench.block(mode, queries, k, lambda: True)
        phase.calls += calls
        phase.blocks.append(stats)
        say(f"  {mode:8s} {summary_line(calls)}; {stats.calls / stats.wall:.1f} calls/s")
    return phase


async def open_loop_phase(bench: Bench, rate: float, seconds: float, seed: int) -> tuple[Phase, float]:
    """Hybrid calls arriving at `rate` a second in all (a Poisson process: exponential gaps), each from the next
    session in turn, whether or not earlier ones have answered (an open loop: what many agents do to a shared
    server). (calls, server CPU ms per call)."""
    say(f"\n== open loop: hybrid calls at {rate:g}/s over {len(bench.clients)} sessions for {seconds:g} s ==")
    rng = np.random.default_rng(seed)
    tasks = []
    server0, t0 = proc_cpu(bench.server_pid), time.perf_counter()
    at, k = 0.0, 0
    while at < seconds:
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client = bench.clients[k % len(bench.clients)]
        tasks.append(asyncio.ensure_future(bench.call(client, QUERIES[(k * 7) % len(QUERIES)], "hybrid")))
        k += 1
        at += float(rng.exponential(1.0 / rate))
    calls = list(await asyncio.gather(*tasks))
    wall, cpu = time.perf_counter() - t0, proc_cpu(bench.server_pid) - server0
    per_call = 1000 * cpu / max(1, len(calls))
    say(f"  {summary_line(calls)}; {len(calls) / wall:.1f} calls/s; server CPU {per_call:.1f} ms per call")
    return Phase(calls, [Block("hybrid", len(calls), wall, cpu, 0.0)]), per_call


async def during_phase(
    bench: Bench, args: argparse.Namespace, model: str, index_dir: Path, repo_dir: Path, log_path: Path
) -> tuple[Phase, int, float]:
    """(calls that ended before the indexer exited, how many ended later, seconds the indexer ran)."""
    cmd = [sys.executable, "-m", "lsp_server.cli", "index", str(repo_dir), "--index-dir", str(index_dir)]
    cmd += ["--model", model]
    say(f"\n== during indexing: {' '.join(cmd[1:])} ==")
    say(f"  the clients repeat blocks of {args.queries} calls each per mode ({', '.join(MODES)}, ...) until it exits")
    phase = Phase([], [])
    with open(log_path, "w", encoding="utf-8") as log:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=REPO_ROOT)
        ended: list[float] = []

        async def watch() -> None:
            deadline = began + args.index_timeout
            while proc.poll() is None:
                if time.perf_counter() > deadline:
                    say(f"  the indexer is still running after {args.index_timeout:.0f} s: stopped")
                    proc.kill()
                    proc.wait()
                    break
                await asyncio.sleep(0.05)
            ended.append(time.perf_counter())

        watcher = asyncio.ensure_future(watch())
        k = 0
        printed = began
        while not ended:
            mode = MODES[k % len(MODES)]
            calls, stats = await bench.block(mode, args.queries, k, lambda: not ended)
            phase.calls += calls
            phase.blocks.append(stats)
            k += 1
            if time.perf_counter() - printed >= 15 or ended:
                printed = time.perf_counter()
                say(f"  {printed - began:5.0f} s: {len(phase.calls)} calls; last block {mode} {summary_line(calls)}")
        await watcher
    secs = ended[0] - began
    kept = [c for c in phase.calls if c.end <= ended[0]]
    left_out = len(phase.calls) - len(kept)
    phase.calls = kept
    say(f"  indexer: exit status {proc.returncode} after {secs:.1f} s; its last lines:")
    say(log_tail(log_path, 4))
    return phase, left_out, secs


async def connect(url: str, n: int, timeout: float) -> tuple[Any, list[Any]]:
    from contextlib import AsyncExitStack

    from mcp import Client

    stack = AsyncExitStack()
    clients = [await stack.enter_async_context(Client(url, read_timeout_seconds=timeout)) for _ in range(n)]
    return stack, clients


async def index_status(client: Any) -> str:
    result = await client.call_tool("index_status", {})
    return " ".join(getattr(c, "text", "") for c in result.content).replace("\n", "; ")


# ------------------------------------------------------------------------------------------------------ report


def pcts(calls: list[Call]) -> tuple[float, float, float] | None:
    ok = [c.end - c.start for c in calls if c.ok]
    if not ok:
        return None
    a = np.asarray(ok) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.max())


def summary_line(calls: list[Call]) -> str:
    p = pcts(calls)
    failed = sum(not c.ok for c in calls)
    if p is None:
        return f"no successful call ({failed} failed)"
    return f"p50 {p[0]:.1f} ms, p95 {p[1]:.1f} ms, max {p[2]:.1f} ms (n={len(calls)}, {failed} failed)"


def table(phases: dict[str, Phase]) -> None:
    head = ("phase", "mode", "calls", "failed", "p50 ms", "p95 ms", "max ms", "hits", "calls/s", "srv cpu", "cli cpu")
    say("  {:16s} {:9s} {:>6s} {:>6s} {:>8s} {:>8s} {:>8s} {:>5s} {:>8s} {:>8s} {:>8s}".format(*head))
    for name, phase in phases.items():
        for mode in MODES:
            mine = [c for c in phase.calls if c.mode == mode]
            blocks = [b for b in phase.blocks if b.mode == mode]
            p = pcts(mine)
            ok = [c for c in mine if c.ok]
            hits = sum(c.hits for c in ok) / max(1, len(ok))
            n = max(1, sum(b.calls for b in blocks))
            rate = sum(b.calls for b in blocks) / max(1e-9, sum(b.wall for b in blocks))
            srv = 1000 * sum(b.server_cpu for b in blocks) / n
            cli = 1000 * sum(b.client_cpu for b in blocks) / n
            cells = "".join(f" {v:8.1f}" for v in p) if p else f" {'n/a':>8s} {'n/a':>8s} {'n/a':>8s}"
            say(f"  {name:16s} {mode:9s} {len(mine):6d} {len(mine) - len(ok):6d}{cells} {hits:5.1f} {rate:8.1f} "
                f"{srv:8.1f} {cli:8.1f}")  # fmt: skip
    say("  (hits: results per successful call; srv cpu / cli cpu: CPU ms per call of the server / of this process")
    say("   with its clients, over the blocks of that mode; during indexing the indexer's CPU is in neither)")


def bar(label: str, value: float | None, limit: float) -> str:
    if value is None:
        return f"  FAIL  {label} <= {limit:.0f} ms: no successful hybrid call"
    return f"  {'PASS' if value <= limit else 'FAIL'}  {label} <= {limit:.0f} ms: {value:.1f} ms"


def report(phases: dict[str, Phase], chunks: int, clients: int, left_out: int, index_secs: float) -> None:
    say(f"\n== summary: search_code over streamable HTTP, {clients} concurrent clients, client-side wall time ==")
    table(phases)
    if left_out:
        say(f"  ({left_out} calls ended after the indexer exited: left out; the indexer ran {index_secs:.0f} s)")
    errors = sorted({c.error for phase in phases.values() for c in phase.calls if c.error})
    for message in errors[:5]:
        say(f"  failure, e.g.: {message[:300]}")
    hybrid = {name: pcts([c for c in phase.calls if c.mode == "hybrid"]) for name, phase in phases.items()}
    failed = sum(not c.ok for phase in phases.values() for c in phase.calls)
    total = sum(len(phase.calls) for phase in phases.values())
    idle, during = hybrid.get("idle"), hybrid.get("during indexing")
    say(f"\nbars (from the issue; {chunks} chunks in the served index, {clients} concurrent clients):")
    say(bar("hybrid p95 idle", idle[1] if idle else None, BAR_IDLE_MS))
    say(bar("hybrid p95 during indexing", during[1] if during else None, BAR_DURING_MS))
    say(f"  {'PASS' if failed == 0 else 'FAIL'}  zero failed calls: {failed} failed of {total}")
    say(f"machine: {os.cpu_count()} CPUs, shared by the server, the clients and the indexer (what else ran: unknown)")


# -------------------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, tmp: Path) -> None:
    from encoder.load import default_model

    model = str(args.model or default_model())
    model = str(Path(model).resolve()) if Path(model).exists() else model
    index_dir = Path(args.index_dir).resolve() if args.index_dir else tmp / "index"
    say(f"model: {model}")
    say(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the run")
    root = prepare_index(args, model, index_dir)
    engine, store, repo = open_store(model, index_dir, root)
    chunks = store.count_chunks(repo)
    engine.close_now()

    repo_src = Path(args.repo).resolve() if args.repo else REPO_ROOT
    repo_dir = tmp / "phase2-repo"
    n, size = prepare_repo(repo_src, repo_dir)
    say(f"phase 2 repository: a copy of the {n} indexable files of {repo_src} ({size / 2**20:.1f} MiB) in {repo_dir}")

    port = args.port or free_port()
    server_log = tmp / "server.log"
    url = f"http://127.0.0.1:{port}/mcp"
    phases: dict[str, Phase] = {}
    left_out, index_secs = 0, 0.0
    with open(server_log, "w", encoding="utf-8") as log:
        try:
            server = start_server(args, model, index_dir, root, port, log)
        except RuntimeError as e:
            say(f"  {e}; the end of its log ({server_log}):\n{log_tail(server_log)}")
            raise SystemExit(1) from None
        try:
            stack, clients = await connect(url, args.clients, args.call_timeout)
            async with stack:
                bench = Bench(clients, server.pid, args.call_timeout)
                say(f"  {url}: {len(clients)} sessions; {await index_status(clients[0])}")
                phases["idle"] = await idle_phase(bench, args.queries)
                if args.rate:
                    phases["open loop"], _cpu_ms = await open_loop_phase(bench, args.rate, args.seconds, args.seed)
                if not args.no_indexing:
                    phases["during indexing"], left_out, index_secs = await during_phase(
                        bench, args, model, index_dir, repo_dir, tmp / "index.log"
                    )
        finally:
            stop(server)
    if args.json:
        figures = {"chunks": chunks, "clients": args.clients, "rate": args.rate}
        for name, phase in phases.items():
            hybrid = pcts([c for c in phase.calls if c.mode == "hybrid"])
            blocks = [b for b in phase.blocks if b.mode == "hybrid"]
            figures[name] = {
                "hybrid_p50_ms": hybrid[0] if hybrid else None,
                "hybrid_p95_ms": hybrid[1] if hybrid else None,
                "calls": len(phase.calls),
                "failed": sum(not c.ok for c in phase.calls),
                "server_cpu_ms_per_hybrid_call": 1000
                * sum(b.server_cpu for b in blocks)
                / max(1, sum(b.calls for b in blocks)),
            }
        Path(args.json).write_text(json.dumps(figures, indent=1))
    failed = sum(not c.ok for phase in phases.values() for c in phase.calls)
    if failed or server.returncode not in (0, -signal.SIGINT):
        say(f"  server exit status {server.returncode}; the end of its log ({server_log}):\n{log_tail(server_log)}")
    if args.keep or args.index_dir:
        forget_repo(model, index_dir, repo_dir)
    report(phases, chunks, args.clients, left_out, index_secs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--chunks", type=int, default=100_000, help="synthetic chunks in the served index (default: %(default)s)"
    )
    p.add_argument("--clients", type=int, default=16, help="concurrent MCP sessions (default: %(default)s)")
    p.add_argument("--queries", type=int, default=20, help="calls per client per mode and block (default: %(default)s)")
    p.add_argument("--model", default=None, help="checkpoint folder or hub id (default: the shipped model)")
    p.add_argument(
        "--index-dir",
        default=None,
        help="index folder to build, or to reuse when it holds the synthetic rows (default: a temp folder)",
    )
    p.add_argument("--repo", default=None, help="tree indexed in phase 2, copied first (default: this repository)")
    p.add_argument("--port", type=int, default=0, help="server port on 127.0.0.1 (default: 0, a free one)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (index, logs) and print where it is")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic rows (default: %(default)s)")
    p.add_argument(
        "--call-timeout", type=float, default=60.0, help="seconds before a call counts as failed (default: %(default)s)"
    )
    p.add_argument(
        "--start-timeout", type=float, default=120.0, help="seconds for the server to listen (default: %(default)s)"
    )
    p.add_argument(
        "--index-timeout", type=float, default=1200.0, help="seconds the phase 2 indexer may run (default: %(default)s)"
    )
    p.add_argument("--rate", type=float, default=0.0, help="also an open loop of hybrid calls at this rate (calls/s)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the open loop (default: %(default)s)")
    p.add_argument("--no-indexing", action="store_true", help="skip the phase during a full index")
    p.add_argument("--json", default=None, help="write the figures (hybrid p50/p95, failed, CPU per call) here")
    args = p.parse_args()
    t = time.perf_counter()
    if args.keep:
        tmp = Path(tempfile.mkdtemp(prefix="semcode-mcp-latency-"))
        asyncio.run(run(args, tmp))
        say(f"kept: {tmp}")
    else:
        with tempfile.TemporaryDirectory(prefix="semcode-mcp-latency-") as d:
            asyncio.run(run(args, Path(d)))
    say(f"total run time {time.perf_counter() - t:.0f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
