"""Distributed indexing (``semcode index --ray``) against one process, and search latency as the index grows.

    python benchmarks/distributed_index.py                       # the shipped model; stdlib json, email, http
    python benchmarks/distributed_index.py --tiny                # a tiny random model: pipeline costs only
    python benchmarks/distributed_index.py --skip-index --rows 100000,1000000   # search latency only, up to 1M rows
    python benchmarks/distributed_index.py --index-dir s3://bucket/prefix      # every index under a URI

Steps:

1. Repositories: a temp copy of each of a few standard-library packages (``--packages``), each its own repository.
2. One process: ``Engine.update`` over them into one index (what ``semcode index --index-dir D REPO...`` does):
   seconds, tokens encoded, tokens/s, table versions.
3. The Ray job (``ray_index.job.run``) into a fresh index with 1 actor, then 2 (``--actors``), on a local Ray of
   ``--cpus`` CPUs started once; each actor gets ``cpus / actors`` torch threads, so every run uses the whole
   machine. Printed: seconds, tokens/s over the encoding phase and over the whole job, commits, table versions the
   job leaves, and whether the rows equal the single-process index's (row keys and file records).
4. Search latency: an index of N synthetic rows for each N in ``--rows`` (the real rows of step 2 repeated under
   other paths, their vectors plus a little noise, re-normalised), appended in large batches; semantic search
   p50/p95 flat (skipped past ``--flat-max`` rows), then with the IVF_PQ index ``Store.ensure_vector_index``
   builds (build time printed), lexical and hybrid search p50/p95; then the time of one write batch of 4,096 new
   chunks into that index (``Store.replace_chunks``, the job's one serial step).

No figure is asserted; every figure is printed with its unit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ms_pcts, say

if TYPE_CHECKING:
    from indexer.store import Store

# (LanceDB loads after Ray has started: lance is not fork-safe)
CHUNK_FIELDS = [
    "repo", "path", "language", "kind", "symbol", "parent", "start_line", "start_col", "end_line", "end_col",
    "start_byte", "end_byte", "tokens", "text", "content_hash",
]  # fmt: skip


def join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def prepare(args: argparse.Namespace, tmp: Path) -> tuple[str, list[Path]]:
    if args.tiny:
        from encoder.tiny import write_tiny_checkpoint

        model = str(write_tiny_checkpoint(tmp / "tiny"))
        say(f"model: the tiny RANDOM ModernBERT of encoder.tiny ({model}): pipeline costs only")
    else:
        from encoder.load import default_model

        model = str(args.model or default_model())
        say(f"model: {model}")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    repos = []
    for name in [p.strip() for p in args.packages.split(",") if p.strip()]:
        dest = tmp / "repos" / name
        shutil.copytree(stdlib / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
        (dest / ".git").mkdir()
        repos.append(dest)
    files = sum(1 for r in repos for p in r.rglob("*.py"))
    say(f"repositories: {', '.join(r.name for r in repos)} from {stdlib} ({files} Python files)")
    return model, repos


def single_process(settings: Any, repos: list[Path]) -> dict[str, Any]:
    from semcode import Engine

    say("\n== one process (Engine.update: what `semcode index --index-dir D REPO...` does) ==")
    engine = Engine(settings, repos)
    t = time.perf_counter()
    try:
        reports = engine.update()
        secs = time.perf_counter() - t
        stats = engine.stats(engine.folders[0])
    finally:
        engine.close_now()
    tokens = sum(r.tokens_encoded for r in reports.values())
    chunks = sum(r.chunks_encoded for r in reports.values())
    say(f"  {secs:.1f} s (model load included); {chunks} chunks, {tokens} tokens encoded: {tokens / secs:.0f} tok/s")
    say(f"  {stats['rows']} rows; table versions left: {versions(stats['versions'])}")
    return {"seconds": secs, "tokens": tokens}


def ray_job(settings: Any, repos: list[Path], actors: int, cpus: int, reference: str) -> None:
    from ray_index.job import JobOptions, run

    threads = max(1, cpus // actors)
    say(f"\n== Ray job: {actors} actor(s) x {threads} thread(s) on a local Ray of {cpus} CPUs ==")
    t = time.perf_counter()
    job = run(repos, settings, options=JobOptions(actors=actors, cpus_per_actor=threads))
    secs = time.perf_counter() - t
    say(
        f"  {secs:.1f} s; {job.chunks_encoded} chunks, {job.tokens_encoded} tokens encoded by {job.actors} actors: "
        f"{job.tokens_per_second:.0f} tok/s while encoding ({job.encode_seconds:.1f} s, actor start included), "
        f"{job.tokens_encoded / secs:.0f} tok/s over the whole job"
    )
    rate = job.chunks_written / job.commit_seconds if job.commit_seconds else 0.0
    say(
        f"  the driver's serial index work: {job.commit_seconds:.1f} s for {job.chunks_written} chunks in "
        f"{job.commits} write batches ({rate:.0f} chunks/s: the most a cluster can feed it); table versions left: "
        f"{versions(job.versions)}"
    )
    say(f"  same rows and file records as one process: {same_index(settings, reference)}")


def versions(by_table: dict[str, int]) -> str:
    return ", ".join(f"{name.split('_', 1)[0]} {n}" for name, n in by_table.items())


def same_index(settings: Any, reference: str) -> str:
    from semcode import Settings

    a, b = open_store(settings), open_store(Settings(model=settings.model, index_dir=reference))
    try:
        keys_a = set(a._chunks.search().select(["key"]).limit(None).to_arrow()["key"].to_pylist())
        keys_b = set(b._chunks.search().select(["key"]).limit(None).to_arrow()["key"].to_pylist())
        files_a = a._files.to_arrow().sort_by([("repo", "ascending"), ("path", "ascending")])
        files_b = b._files.to_arrow().sort_by([("repo", "ascending"), ("path", "ascending")])
    finally:
        a.close()
        b.close()
    same = keys_a == keys_b and files_a.equals(files_b)
    return "yes" if same else f"NO ({len(keys_a ^ keys_b)} rows differ)"


def open_store(settings: Any) -> Store:
    from encoder.load import model_id, read_tokenizer_files
    from indexer.store import Store

    model = settings.resolved_model()
    config, _, _ = read_tokenizer_files(model)
    return Store.open(
        settings.index_dir, model_id=model_id(model), dim=config.hidden_size, storage_options=settings.storage()
    )


# ------------------------------------------------------------------------------------------------------- search


def search_latency(settings: Any, source: str, rows: int, args: argparse.Namespace) -> None:
    from indexer.store import StoredChunk
    from semcode import Settings

    assert list(StoredChunk.__dataclass_fields__) == CHUNK_FIELDS
    say(f"\n== search at {rows:,} rows (real rows repeated under other paths, vectors plus noise) ==")
    src = open_store(Settings(model=settings.model, index_dir=source))
    # Store has no bulk read or append: the benchmark uses its tables directly
    table = src._chunks.search().select([*CHUNK_FIELDS, "vector"]).limit(None).to_arrow()
    dim = src.dim
    src.close()
    real = table.num_rows
    vectors = np.asarray(table["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
    vectors = vectors.reshape(real, dim)
    chunk_rows = table.select(CHUNK_FIELDS).to_pylist()
    store = open_store(Settings(model=settings.model, index_dir=join(args.index_dir, f"search-{rows}")))
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    written, copy = 0, 0
    batch: list[tuple[str, StoredChunk, np.ndarray]] = []
    while written < rows:
        copy += 1
        take = min(real, rows - written)
        noisy = vectors[:take] + rng.normal(0.0, 0.3 / np.sqrt(dim), (take, dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        for i, (row, vec) in enumerate(zip(chunk_rows[:take], noisy, strict=True)):
            chunk = StoredChunk(**{**row, "path": f"copy{copy:05d}/{row['path']}"})
            batch.append((f"{copy}-{i}", chunk, vec))
        written += take
        if len(batch) >= 100_000 or written >= rows:
            store._chunks.add(store._chunk_table(batch))
            batch = []
    say(f"  append: {time.perf_counter() - t:.1f} s; compaction: {timed(store.compact):.1f} s")
    queries = vectors[rng.choice(real, args.queries, replace=real < args.queries)]
    queries = queries + rng.normal(0.0, 0.5 / np.sqrt(dim), queries.shape).astype(np.float32)
    words = [r["symbol"] or "parse" for r in chunk_rows[: args.queries]]
    if rows <= args.flat_max:
        time_queries("semantic, flat", lambda i: store.search_vector(queries[i], 10), args.queries)
    say(f"  IVF_PQ build (ensure_vector_index): {timed(lambda: store.ensure_vector_index(0)):.1f} s")
    time_queries("semantic, IVF_PQ", lambda i: store.search_vector(queries[i], 10), args.queries)
    time_queries("lexical", lambda i: store.search_text(words[i % len(words)], 10), args.queries)
    time_queries("hybrid, IVF_PQ", lambda i: store.search_hybrid(queries[i], words[i % len(words)], 10), args.queries)
    # the job's one serial step at this size: a write batch of up to 4,096 new chunks (one merge per 1,000 files)
    fresh: dict[tuple[str, str], list[tuple[StoredChunk, np.ndarray]]] = {}
    for row, vec in zip(chunk_rows[:4096], vectors[:4096], strict=True):
        chunk = StoredChunk(**{**row, "path": f"commit/{row['path']}"})
        fresh.setdefault((chunk.repo, chunk.path), []).append((chunk, vec))
    secs = timed(lambda: store.replace_chunks(fresh))
    n = sum(len(v) for v in fresh.values())
    say(f"  one write batch of {n} new chunks in {len(fresh)} files (replace_chunks): {secs:.2f} s")
    store.close()


def timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def time_queries(label: str, fn: Any, n: int) -> None:
    for i in range(min(3, n)):  # warm-up: index loading, plan caches
        fn(i)
    secs = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        secs.append(time.perf_counter() - t)
    say(f"  {label}: {ms_pcts(secs)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--tiny", action="store_true", help="a tiny random model")
    p.add_argument("--packages", default="json,email,http", help="stdlib packages, one repository each")
    p.add_argument("--actors", default="1,2", help="actor counts to run the job with")
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray")
    p.add_argument("--index-dir", default=None, help="where the indexes go: a folder or a URI (default: a temp dir)")
    p.add_argument("--rows", default="100000", help="row counts to time searches at, e.g. 100000,1000000")
    p.add_argument("--flat-max", type=int, default=200_000, help="no flat search past this many rows")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--skip-index", action="store_true", help="no indexing runs (the search step indexes once)")
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local Ray for the benchmark only
    from ray_index.job import connect
    from semcode import Settings

    connect(None, args.cpus)  # once for every job (Ray first: lance is not fork-safe)
    with tempfile.TemporaryDirectory(prefix="semcode-dist-") as tmp:
        args.index_dir = args.index_dir or str(Path(tmp) / "indexes")
        model, repos = prepare(args, Path(tmp))
        reference = join(args.index_dir, "single")
        single_process(Settings(model=model, index_dir=reference), repos)
        for actors in [] if args.skip_index else [int(a) for a in args.actors.split(",") if a.strip()]:
            ray_job(Settings(model=model, index_dir=join(args.index_dir, f"ray-{actors}")), repos, actors, args.cpus,
                    reference)  # fmt: skip
        for rows in [int(r) for r in args.rows.split(",") if r.strip()]:
            search_latency(Settings(model=model, index_dir=reference), reference, rows, args)
    import ray

    ray.shutdown()


if __name__ == "__main__":
    main()
