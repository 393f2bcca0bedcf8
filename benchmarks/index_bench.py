"""Indexing a real repository end to end: full index, no-op re-index, edit -> searchable, search at ~100k chunks.

    python benchmarks/index_bench.py                       # the shipped default model, part of the stdlib, 100k rows
    python benchmarks/index_bench.py --model PATH          # another checkpoint
    python benchmarks/index_bench.py --tiny                # a tiny random model: pipeline and store costs only
    python benchmarks/index_bench.py --repo PATH --rows 300000 --edits 50

Steps:

1. Model: ``--model PATH``, or the default model shipped with semcode, or with ``--tiny`` the tiny random
   ModernBERT of ``encoder.tiny`` (its vectors mean nothing, but the pipeline's costs are real).
2. Repository: a temp copy of a few standard-library packages (with a ``.git`` folder), or of the files semcode
   would index in ``--repo PATH`` (a copy, because the edit step writes to it).
3. Full index with ``index_repository`` (files/s, chunks/s, encoded tokens/s, peak RSS, size on disk, table
   versions), then a no-op re-index.
4. ``--edits`` single-file edits: append a uniquely named function, ``update_files`` for that path, then poll
   ``search_text(name)`` until the chunk is found: edit -> searchable time (what the watcher or the LSP server does,
   minus the debounce).
5. Rows synthesised up to ``--rows`` by repeating the stored chunks under other paths (their vectors plus a little
   noise, re-normalised), compacted; then search latency per mode (query encoding excluded, reported apart).
6. Unless ``--skip-vector-index``: ``ensure_vector_index`` (IVF_PQ) built in a child process under a time limit,
   search latency with the index, and recall@10 of indexed against flat search on the same queries.

With ``--many-files N`` or ``--kill-every S`` only that case runs (``benchmarks/index_cases.py``): N one-line files
through the whole pipeline (files/s), or the CLI killed every S seconds until it finishes (rows kept per kill).

No figure is asserted; every figure is printed with its unit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ms_pcts, say
from benchmarks.index_cases import kill_every, many_small_files
from indexer.discover import DiscoverOptions, discover
from indexer.index import IndexOptions, Progress, index_repository, repo_id, update_files
from indexer.search_lists import NPROBES, refine_factor
from indexer.store import Hit, Store, StoredChunk
from indexer.types import Skip

DEFAULT_PACKAGES = "json,email,http,logging,asyncio,unittest"
CHUNK_FIELDS = list(StoredChunk.__dataclass_fields__)
HAND_QUERIES = [
    "parse an email address",
    "decode json from a string",
    "send an http request with headers",
    "rotate log files when they grow too big",
    "run a coroutine until it completes",
    "assert that an exception is raised",
    "format a date for an http header",
    "read a chunked transfer encoding body",
    "close the transport of the event loop",
    "load test cases from a module",
    "escape a string for json output",
    "set the logging level of a handler",
    "parse a multipart mime message",
    "cookie expiry time",
    "wait for the first task to finish",
    "read the output of a subprocess pipe",
    "mock a function call",
    "acquire and release a lock",
    "base64 encode the message payload",
    "http status code reason phrase",
    "create a listening server socket",
    "skip a test conditionally",
    "format an exception traceback for the log",
    "get from a queue with a timeout",
    "fold long header lines",
]


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def own_peak_rss() -> int:
    """This process image's own high-water mark (VmHWM). A child's ru_maxrss also counts the parent's pages it
    held between fork and exec, so the child reports this instead."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss()


# ------------------------------------------------------------------------------------------------------ set-up


def prepare_model(args: argparse.Namespace, tmp: Path) -> str:
    if not args.tiny:
        from encoder.load import default_model

        model = str(args.model or default_model())
        say(f"model: {model}")
        return model
    from encoder.tiny import write_tiny_checkpoint

    folder = write_tiny_checkpoint(tmp / "tiny-modernbert")
    say(
        f"model: the tiny RANDOM ModernBERT of encoder.tiny ({folder}).\n"
        "  Its vectors are meaningless (not real embeddings): costs and latencies of the pipeline are real, the\n"
        "  encoder's speed at full size is measured by benchmarks/encoder_throughput.py."
    )
    return str(folder)


def prepare_repo(args: argparse.Namespace, tmp: Path) -> Path:
    """A scratch copy (the edit step writes to it) holding a `.git` folder so it is a repository root."""
    dest = tmp / "repo"
    dest.mkdir()
    (dest / ".git").mkdir()
    if args.repo:
        src = Path(args.repo).resolve()
        n = 0
        for item in discover(src, DiscoverOptions()):  # only what semcode would index; skipped files stay behind
            if isinstance(item, Skip):
                continue
            target = dest / item
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / item, target)
            n += 1
        say(f"repository: a copy of the {n} indexable files of {src} in {dest}")
        return dest
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    for name in packages:
        shutil.copytree(stdlib / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    files = [p for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts]
    say(
        f"repository: a copy of stdlib packages {', '.join(packages)} from {stdlib} in {dest} "
        f"({len(files)} files, {mib(sum(p.stat().st_size for p in files))})"
    )
    return dest


# ------------------------------------------------------------------------------------------------------- steps


def full_index(root: Path, store: Store, enc: Any, options: IndexOptions) -> None:
    say("\n== full index ==")
    last = {"t": 0.0, "seconds": 0.0}

    def progress(p: Progress) -> None:
        last["seconds"] = p.seconds
        if p.seconds - last["t"] >= 5.0 or p.files_done == p.files_total:
            last["t"] = p.seconds
            say(
                f"  {p.files_done}/{p.files_total} files, {p.chunks_written} chunks, {p.tokens_encoded} tokens "
                f"encoded, {p.seconds:.1f} s"
            )

    enc_before = enc.stats.seconds
    t = time.perf_counter()
    report = index_repository(root, store, enc, enc.tokenizer.count, options, progress=progress)
    secs = time.perf_counter() - t
    enc_secs = enc.stats.seconds - enc_before
    stats = store.stats()
    say(
        f"  files: {report.files_changed} indexed, {len(report.skipped)} skipped; chunks written: "
        f"{report.chunks_written}; chunks encoded: {report.chunks_encoded}; tokens encoded: {report.tokens_encoded}"
    )
    say(
        f"  time: {secs:.2f} s (of which model forward {enc_secs:.2f} s, "
        f"final compaction ~{secs - last['seconds']:.2f} s)"
    )
    say(
        f"  throughput: {report.files_changed / secs:.1f} files/s, {report.chunks_written / secs:.1f} chunks/s, "
        f"{report.tokens_encoded / secs:.0f} encoded tokens/s"
    )
    say(f"  peak RSS so far (process, incl. model): {mib(peak_rss())}")
    say(f"  index on disk: {mib(stats['bytes'])} ({stats['rows']} rows, {stats['vectors']} cached vectors)")
    say(f"  table versions after the run: {fmt_versions(stats['versions'])}")
    if report.problems:
        say(f"  chunker problems in {len(report.problems)} files")


def fmt_versions(versions: dict[str, int]) -> str:
    return ", ".join(f"{name.split('_', 1)[0]} {n}" for name, n in versions.items()) + " (versions)"


def noop_reindex(root: Path, store: Store, enc: Any, options: IndexOptions) -> None:
    say("\n== no-op re-index ==")
    t = time.perf_counter()
    report = index_repository(root, store, enc, enc.tokenizer.count, options)
    secs = time.perf_counter() - t
    say(
        f"  {secs * 1000:.0f} ms for {report.files_seen} files ({report.files_unchanged} unchanged, "
        f"{report.files_changed} changed, {report.chunks_encoded} chunks encoded); includes the final compaction"
    )


def edit_text(path: str, name: str, i: int) -> str:
    if path.endswith(".py"):
        return f'\n\ndef {name}(value):\n    """Benchmark edit number {i}."""\n    return value * {i + 1}\n'
    prefix = "#" if Path(path).suffix in {".rb", ".sh", ".pl", ".r", ".yaml", ".yml", ".toml", ".ex"} else "//"
    return f"\n{prefix} {name}\n"


def edits(root: Path, store: Store, enc: Any, options: IndexOptions, n: int, poll_limit: float) -> None:
    say(f"\n== {n} single-file edits: save -> update_files -> searchable by search_text ==")
    repo = repo_id(root)
    indexed = sorted(p for p, r in store.files(repo).items() if r.status == "indexed")
    py = [p for p in indexed if p.endswith(".py")]
    pool = py or indexed
    if not pool or n <= 0:
        say("  no indexed files (or --edits 0): skipped")
        return
    step = max(1, len(pool) // n)
    targets = [pool[(i * step) % len(pool)] for i in range(n)]
    totals: list[float] = []
    updates: list[float] = []
    waits: list[float] = []
    missed = 0
    for i, path in enumerate(targets):
        name = f"semcode_bench_edit_{i}_{uuid.uuid4().hex[:10]}"
        t0 = time.perf_counter()
        with open(root / path, "a", encoding="utf-8") as f:
            f.write(edit_text(path, name, i))
        report = update_files(root, store, enc, enc.tokenizer.count, [path], options)
        t1 = time.perf_counter()
        polls = 0
        found = False
        while True:
            polls += 1
            hits = store.search_text(name, 10)
            if any(h.chunk.path == path and name in h.chunk.text for h in hits):
                found = True
                break
            if time.perf_counter() - t1 > poll_limit:
                break
            time.sleep(0.001)
        t2 = time.perf_counter()
        if not found:
            missed += 1
            say(f"  edit {i + 1}/{n} {path}: NOT searchable within {poll_limit:.0f} s")
            continue
        totals.append(t2 - t0)
        updates.append(t1 - t0)
        waits.append(t2 - t1)
        say(
            f"  edit {i + 1}/{n} {path}: update_files {(t1 - t0) * 1000:.0f} ms ({report.chunks_written} chunks "
            f"in the file written, {report.chunks_encoded} encoded), searchable after {(t2 - t0) * 1000:.0f} ms "
            f"({polls} search{'es' if polls > 1 else ''})"
        )
    say(f"  edit -> searchable (whole): {ms_pcts(totals)}")
    say(f"    of which update_files: {ms_pcts(updates)}; search until found: {ms_pcts(waits)}")
    if missed:
        say(f"  {missed} edits were not searchable within {poll_limit:.0f} s")
    stats = store.stats()
    say(
        f"  table versions after the edits (no compaction yet): {fmt_versions(stats['versions'])}; "
        f"unindexed full-text rows: {stats['unindexed_text_rows']} rows"
    )
    t = time.perf_counter()
    store.compact()
    say(f"  compaction after the edits: {time.perf_counter() - t:.2f} s")


def synthesize(root: Path, store: Store, target: int, batch_rows: int, noise: float, seed: int) -> None:
    say(f"\n== synthesising rows up to {target} by repeating the stored chunks under other paths ==")
    repo = repo_id(root)
    # Store has no "all rows" read: the benchmark reads the table directly
    table = store._chunks.search().select([*CHUNK_FIELDS, "vector"]).limit(None).to_arrow()
    real = table.num_rows
    if real == 0:
        say("  no stored chunks: skipped")
        return
    vectors = np.asarray(table["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
    vectors = vectors.reshape(real, store.dim)
    rows = table.select(CHUNK_FIELDS).to_pylist()
    rng = np.random.default_rng(seed)
    need = max(0, target - real)
    say(f"  {real} real rows; writing {need} synthetic rows ({need / real:.1f} copies), noise {noise} (L2 norm)")
    written = 0
    copy = 0
    t = time.perf_counter()
    pending: dict[str, list[tuple[StoredChunk, np.ndarray]]] = {}
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending:
            store.replace_file_chunks(repo, pending)
            say(f"  {written}/{need} synthetic rows written, {time.perf_counter() - t:.1f} s")
        pending, pending_rows = {}, 0

    while written < need:
        copy += 1
        take = min(real, need - written)
        noisy = vectors[:take] + rng.normal(0.0, noise / np.sqrt(store.dim), (take, store.dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        for row, vec in zip(rows[:take], noisy, strict=True):
            path = f"synthetic/{copy:04d}/{row['path']}"
            chunk = StoredChunk(**{**row, "repo": repo, "path": path})
            pending.setdefault(path, []).append((chunk, vec))
        written += take
        pending_rows += take
        if pending_rows >= batch_rows:
            flush()
    flush()
    secs = time.perf_counter() - t
    if need:
        say(f"  write: {secs:.1f} s ({need / max(secs, 1e-9):.0f} rows/s)")
    t = time.perf_counter()
    store.compact()
    say(f"  compaction: {time.perf_counter() - t:.1f} s")
    stats = store.stats()
    say(
        f"  now {stats['rows']} rows, index on disk {mib(stats['bytes'])}, table versions "
        f"{fmt_versions(stats['versions'])}"
    )


def build_queries(store: Store, n: int, seed: int) -> list[str]:
    names = store._chunks.search().where("symbol IS NOT NULL").select(["symbol"]).limit(None).to_arrow()
    symbols = sorted(set(names["symbol"].to_pylist()))
    rng = np.random.default_rng(seed)
    n_sym = max(0, n - min(len(HAND_QUERIES), n // 2))
    picked = [symbols[i] for i in rng.choice(len(symbols), min(n_sym, len(symbols)), replace=False)] if symbols else []
    queries = HAND_QUERIES[: n - len(picked)] + picked
    while len(queries) < n:  # a tiny repository: repeat
        queries.append(queries[len(queries) % max(1, len(queries))])
    return queries[:n]


def time_queries(label: str, queries: list[str], fn: Callable[[int, str], list[Hit]]) -> list[list[Hit]]:
    for i, q in enumerate(queries[:3]):  # warm-up: first-call costs (index loading, plan caches) left out
        fn(i, q)
    out: list[list[Hit]] = []
    secs: list[float] = []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        out.append(fn(i, q))
        secs.append(time.perf_counter() - t)
    empty = sum(1 for hits in out if not hits)
    say(f"  {label}: {ms_pcts(secs)}{f'; {empty} queries returned nothing' if empty else ''}")
    return out


def hit_key(h: Hit) -> tuple[str, int, int, str]:
    return (h.chunk.path, h.chunk.start_byte, h.chunk.end_byte, h.chunk.content_hash)


def search_latency(
    store: Store, enc: Any, queries: list[str], limit: int
) -> tuple[np.ndarray, list[list[tuple[str, int, int, str]]]]:
    import torch

    rows = store._chunks.count_rows()
    say(f"\n== search latency at {rows} rows, {len(queries)} queries per mode, top {limit} (flat vector search) ==")
    enc_secs: list[float] = []
    qvecs = []
    enc.encode(queries[:3], kind="query")  # warm-up
    for q in queries:
        t = time.perf_counter()
        qvecs.append(enc.encode([q], kind="query")[0])
        enc_secs.append(time.perf_counter() - t)
    say(f"  query encoding (one query, excluded below), {torch.get_num_threads()} torch threads: {ms_pcts(enc_secs)}")
    if torch.get_num_threads() > 1:  # on shared cores the intra-op pool waits for a busy core: compare 1 thread
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        one: list[float] = []
        enc.encode(queries[:3], kind="query")
        for q in queries:
            t = time.perf_counter()
            enc.encode([q], kind="query")
            one.append(time.perf_counter() - t)
        torch.set_num_threads(threads)
        say(f"  query encoding, 1 torch thread: {ms_pcts(one)}")
    qv = np.stack(qvecs)
    sem = time_queries("semantic (flat)", queries, lambda i, q: store.search_vector(qv[i], limit))
    time_queries("lexical", queries, lambda i, q: store.search_text(q, limit))
    time_queries("hybrid (flat vectors)", queries, lambda i, q: store.search_hybrid(qv[i], q, limit))
    return qv, [[hit_key(h) for h in hits] for hits in sem]


def vector_index(
    args: argparse.Namespace, store: Store, enc: Any, queries: list[str], qv: np.ndarray, flat: list[list[Any]]
) -> None:
    rows = store._chunks.count_rows()
    min_rows = min(args.rows, rows)
    say(f"\n== vector index: ensure_vector_index(min_rows={min_rows}) at {rows} rows (IVF_PQ, cosine) ==")
    if args.tiny:
        say("  (tiny random model: these are not real embeddings; recall on them says little.)")
    say(f"  building in a child process, time limit {args.index_timeout:.0f} s ...")
    cmd = [
        sys.executable,
        __file__,
        "--child-index",
        str(store.root),
        "--child-model-id",
        store.model_id,
        "--child-dim",
        str(store.dim),
        "--child-min-rows",
        str(min_rows),
    ]
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.index_timeout)
    except subprocess.TimeoutExpired:
        say(f"  NOT BUILT: still running after {args.index_timeout:.0f} s (killed); no indexed figures")
        return
    secs = time.perf_counter() - t
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-5:]
        say(f"  FAILED after {secs:.1f} s (exit {out.returncode}):")
        for line in tail:
            say(f"    {line}")
        return
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["built"]:
        say(f"  not built (ensure_vector_index returned False: below min_rows or already present), {secs:.1f} s")
    else:
        say(
            f"  build: {result['seconds']:.1f} s inside ensure_vector_index ({secs:.1f} s with the child's start-up); "
            f"peak RSS of the child: {mib(result['peak_rss'])}"
        )
    indexed_cols = [ix.columns for ix in store._chunks.list_indices()]
    if ["vector"] not in indexed_cols:
        say("  no vector index present afterwards: skipping the indexed figures")
        return
    say(f"  index on disk now: {mib(store.stats()['bytes'])}")
    limit = args.limit
    sem = time_queries("semantic (IVF_PQ)", queries, lambda i, q: store.search_vector(qv[i], limit))
    time_queries("hybrid (IVF_PQ vectors)", queries, lambda i, q: store.search_hybrid(qv[i], q, limit))
    rows_recall = []
    content_recall = []
    for got, want in zip(sem, flat, strict=True):
        rows_recall.append(len({hit_key(h) for h in got} & set(want)) / max(1, len(want)))
        want_content = {k[3] for k in want}
        content_recall.append(len({h.chunk.content_hash for h in got} & want_content) / max(1, len(want_content)))
    say(
        f"  recall@{limit} of IVF_PQ against flat search, same queries "
        f"(nprobes {NPROBES}, refine_factor {refine_factor(limit)}):\n"
        f"    exact rows: mean {np.mean(rows_recall):.3f}, min {np.min(rows_recall):.3f} (fraction)\n"
        f"    distinct chunk contents (a noisy copy counts as its original): mean {np.mean(content_recall):.3f}, "
        f"min {np.min(content_recall):.3f} (fraction)"
    )
    say("  (the synthetic rows are noisy copies: the exact-row figure also asks PQ to rank copies by their noise)")


def child_index(args: argparse.Namespace) -> None:
    store = Store.open(args.child_index, model_id=args.child_model_id, dim=args.child_dim)
    t = time.perf_counter()
    built = store.ensure_vector_index(min_rows=args.child_min_rows)
    print(json.dumps({"built": built, "seconds": time.perf_counter() - t, "peak_rss": own_peak_rss()}), flush=True)


# -------------------------------------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a ModernBERT checkpoint folder or hub id (default: the shipped default model)")
    p.add_argument("--tiny", action="store_true", help="a tiny random model instead (pipeline costs only)")
    p.add_argument("--repo", help="repository to index (a copy is made; default: part of the Python stdlib)")
    p.add_argument("--packages", default=DEFAULT_PACKAGES, help="stdlib packages copied when --repo is not given")
    p.add_argument("--rows", type=int, default=100_000, help="rows to synthesise up to for the search figures")
    p.add_argument("--edits", type=int, default=20, help="single-file edits timed for edit -> searchable")
    p.add_argument("--queries", type=int, default=50, help="queries per search mode")
    p.add_argument("--limit", type=int, default=10, help="results per query (k of recall@k)")
    p.add_argument("--skip-vector-index", action="store_true")
    p.add_argument("--index-timeout", type=float, default=480.0, help="seconds allowed for the vector index build")
    p.add_argument("--batch-rows", type=int, default=25_000, help="synthetic rows per replace_file_chunks call")
    p.add_argument("--noise", type=float, default=0.1, help="L2 norm of the noise added to repeated vectors")
    p.add_argument("--poll-limit", type=float, default=30.0, help="seconds to wait for an edit to be searchable")
    p.add_argument("--device", default=None, help="encoder device (default: CUDA if available, else CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--many-files", type=int, default=0, help="only the many-small-files case, with this many files")
    p.add_argument("--kill-every", type=float, default=0, help="only the kill case: SIGKILL the CLI every S seconds")
    p.add_argument("--child-index", help=argparse.SUPPRESS)
    p.add_argument("--child-model-id", help=argparse.SUPPRESS)
    p.add_argument("--child-dim", type=int, help=argparse.SUPPRESS)
    p.add_argument("--child-min-rows", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_index:
        child_index(args)
        return

    import lancedb
    import torch

    from encoder import load_encoder

    start = time.perf_counter()
    say(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), lancedb {lancedb.__version__}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="semcode-index-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model = prepare_model(args, tmp)
        root = prepare_repo(args, tmp)
        t = time.perf_counter()
        enc = load_encoder(model, device=args.device, threads=args.threads)
        say(
            f"encoder: {enc.dim}-d, {enc.config.num_hidden_layers} layers, {enc.device} {enc.dtype}, "
            f"max {enc.max_tokens} tokens, loaded in {time.perf_counter() - t:.2f} s; RSS peak {mib(peak_rss())}"
        )
        if args.many_files:
            many_small_files(tmp, enc, args.many_files)
            return
        if args.kill_every:
            kill_every(tmp, root, model, args.kill_every)
            return
        options = IndexOptions(max_tokens=enc.max_tokens)
        store = Store.open(tmp / "index", model_id=enc.name, dim=enc.dim)

        full_index(root, store, enc, options)
        noop_reindex(root, store, enc, options)
        edits(root, store, enc, options, args.edits, args.poll_limit)
        say(f"  peak RSS of the process up to here (model, index, edits): {mib(peak_rss())}")
        synthesize(root, store, args.rows, args.batch_rows, args.noise, args.seed)
        queries = build_queries(store, args.queries, args.seed)
        qv, flat = search_latency(store, enc, queries, args.limit)
        if args.skip_vector_index:
            say("\n== vector index: skipped (--skip-vector-index) ==")
        else:
            vector_index(args, store, enc, queries, qv, flat)
        say(
            f"\npeak RSS of this process: {mib(peak_rss())} (includes the benchmark's own synthesis of rows); "
            f"total run time {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
