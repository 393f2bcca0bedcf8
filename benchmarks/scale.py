"""Organisation scale (issue 26): what a commit and a search cost as the index grows to millions of chunks.

    python benchmarks/scale.py                                   # 100k and 1M chunks, 384 dims, local disk
    python benchmarks/scale.py --sizes 100k,1M,5M --keep /big/scale   # the issue's sizes; reuse the built indexes

Synthetic indexes on local disk, built through ``Store`` (the code path every indexing run writes through):

- **texts**: the chunks of this repository's own source (real code, chunked by semcode), repeated under other
  paths (``copyNNNNN/...``, 20 chunks a file), each copy with a few words of a 50,000-word made-up vocabulary
  appended, so the full-text index sees a realistic, growing vocabulary;
- **vectors**: 384-d, unit length, drawn around 2,048 random centres (a clustered cloud, as real embeddings are;
  the model is not run: 5M encodings would take days on two cores);
- then what semcode builds past 100k rows: compaction, the full-text indexes, the scalar (BTREE) indexes of the
  write path, and the IVF_PQ vector index.

Measured, alternating between the sizes round by round in one process (these machines are noisy; read the ratios):

- **commit**: a 4,096-chunk run, as the engine's writer or a distributed job's driver commits it: 205 files of 20
  chunks change (new texts, hence new row keys, with vectors), ``Store.replace_chunks`` (vector cache lookup and
  append, rows appended, old rows deleted) and ``Store.upsert_files``. Chunks per second, median of the rounds;
  ``commit_ratio`` = largest size / smallest. Then each index is compacted once, as a run does at its end (the
  runs' rows go into the full-text, scalar and vector indexes; until then they are searched flat), and timed.
- **search**: p50/p95 of the hybrid search as ``Engine.search`` runs it (``indexer.search.candidates``: semantic,
  lexical and names lists at once, then ``semcode.ranking.rank``), and of the semantic and lexical lists alone,
  over the question benchmark's queries (query vectors: stored vectors with noise, so that they fall where data
  is). The query's encoding is not included (about 10 ms on two cores, the same at any size).

Object storage and the many-agents server are measured by ``benchmarks/distributed_index.py`` (moto, 100k) and
``benchmarks/mcp_latency.py``; their fields print ``n/a`` here until this script runs them. The last line:
``scale: commit_ratio=... hybrid_p95_ms=... s3_warm_ratio=... mcp_cpu_ms=... mcp_p95_ms=... failed=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.search import Where, candidates  # noqa: E402
from indexer.store import FileRecord, Store, StoredChunk  # noqa: E402
from semcode.engine import CANDIDATE_DEPTH  # noqa: E402
from semcode.query_terms import analyze, lexical_query  # noqa: E402
from semcode.ranking import Candidates, names_query, rank  # noqa: E402

MODEL_ID = "scale-benchmark@synthetic"
DIM = 384
PER_FILE = 20
RUN_FILES = 205  # x 20 chunks: a 4,096-chunk run (4,100)
CENTRES = 2048
VOCABULARY = 50_000
REPO = "/scale/org"
QUESTIONS = ROOT / "benchmarks" / "questions"


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def real_chunks() -> list[StoredChunk]:
    """This repository's own code, chunked as semcode chunks it (repo id and paths are replaced per copy)."""
    from encoder import load_tokenizer
    from encoder.shipped import default_model
    from indexer.chunk_paths import chunk_paths
    from indexer.types import FileChunks

    count = load_tokenizer(default_model()).count
    out: list[StoredChunk] = []
    folders = [ROOT / d for d in ("semcode", "indexer", "encoder", "lsp_server", "mcp_server", "ray_index", "tests")]
    for _root, result in chunk_paths(folders, count, root=ROOT):
        if isinstance(result, FileChunks):
            out.extend(StoredChunk.from_chunk(REPO, c) for c in result.chunks)
    return out


class Synthetic:
    """Deterministic rows: file number -> 20 chunks (texts from the real chunks, words, vectors)."""

    def __init__(self, chunks: list[StoredChunk], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.chunks = chunks
        self.centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
        self.words = [f"w{n:05d}{chr(97 + n % 26)}" for n in range(VOCABULARY)]

    def file(self, number: int, edit: int = 0) -> list[tuple[StoredChunk, np.ndarray]]:
        rng = np.random.default_rng(number * 1_000 + edit)
        path = f"copy{number // 50:05d}/mod_{number}.py"
        picks = rng.integers(0, len(self.chunks), PER_FILE)
        centres = self.centres[rng.integers(0, CENTRES, PER_FILE)]
        vectors = centres + rng.standard_normal((PER_FILE, DIM)).astype(np.float32) * 0.6
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pairs = []
        for i, (pick, vector) in enumerate(zip(picks, vectors, strict=True)):
            base = self.chunks[int(pick)]
            words = " ".join(self.words[int(w)] for w in rng.integers(0, VOCABULARY, 4))
            text = f"{base.text}\n# {words} edit {edit}" if edit else f"{base.text}\n# {words}"
            chunk = StoredChunk(
                **{
                    **base.__dict__,
                    "path": path,
                    "start_line": i * 10,
                    "end_line": i * 10 + 9,
                    "text": text,
                    "content_hash": f"{number:09d}-{i:02d}-{edit}",
                }
            )
            pairs.append((chunk, vector))
        return pairs

    def batch(self, numbers: range | list[int], edit: int = 0) -> dict[tuple[str, str], list]:
        out = {}
        for n in numbers:
            pairs = self.file(n, edit)
            out[(REPO, pairs[0][0].path)] = pairs
        return out


def records(files: dict[tuple[str, str], list], edit: int) -> list[FileRecord]:
    return [FileRecord(repo, path, 1000 + edit, edit, f"{path}@{edit}", "indexed", None) for repo, path in files]


def build(folder: Path, rows: int, synth: Synthetic, say) -> Store:
    """The index of `rows` chunks in `folder` (reused when it holds them already)."""
    store = Store.open(folder, MODEL_ID, DIM)
    have = store.count_chunks()
    files = rows // PER_FILE
    if have >= files * PER_FILE:
        say(f"  {folder}: {have:,} rows already")
        return store
    t0 = time.perf_counter()
    since_compact = 0
    for start in range(have // PER_FILE, files, 1000):
        batch = synth.batch(range(start, min(files, start + 1000)))
        store.replace_chunks(batch)
        store.upsert_files(records(batch, 0))
        since_compact += len(batch) * PER_FILE
        if since_compact >= 500_000:  # as a run does on its schedule: keeps new rows inside the indexes
            store.compact(prune_vectors=False)
            since_compact = 0
            say(f"  {start * PER_FILE + len(batch) * PER_FILE:,} rows, {time.perf_counter() - t0:.0f} s")
    store.compact(prune_vectors=False)
    t1 = time.perf_counter()
    store.ensure_vector_index(0)
    built = time.perf_counter() - t1
    say(f"  {folder}: {store.count_chunks():,} rows in {t1 - t0:.0f} s, IVF_PQ index in {built:.0f} s")
    return store


def commit_once(store: Store, synth: Synthetic, rows: int, edit: int) -> float:
    """Seconds for one 4,096-chunk run into `store`: 205 existing files change."""
    rng = np.random.default_rng(edit)
    numbers = sorted({int(n) for n in rng.integers(0, rows // PER_FILE, RUN_FILES * 2)})[:RUN_FILES]
    batch = synth.batch(numbers, edit)
    t0 = time.perf_counter()
    store.replace_chunks(batch)
    store.upsert_files(records(batch, edit))
    return time.perf_counter() - t0


def pcts(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]


def queries(n: int) -> list[str]:
    out = [json.loads(line)["query"] for f in sorted(QUESTIONS.glob("*.jsonl")) for line in f.read_text().splitlines()]
    return out[:n]


def search_times(store: Store, texts: list[str], synth: Synthetic, warm_up: int = 3) -> dict[str, list[float]]:
    rng = np.random.default_rng(7)
    times: dict[str, list[float]] = {"hybrid": [], "semantic": [], "lexical": []}
    for i, text in enumerate(texts):
        vector = synth.centres[rng.integers(0, CENTRES)] + rng.standard_normal(DIM).astype(np.float32) * 0.6
        vector /= np.linalg.norm(vector)
        terms = analyze(text)
        t0 = time.perf_counter()
        lexical = lexical_query(terms, store.count_chunks())  # as Engine._ranked does
        found = candidates(store, lexical, vector, names_query(terms, True), CANDIDATE_DEPTH, Where())
        rank(terms, Candidates(found.semantic, found.lexical, found.names), 10)
        t1 = time.perf_counter()
        store.search_vector(vector, 10)
        t2 = time.perf_counter()
        store.search_text(text, 10)
        t3 = time.perf_counter()
        if i >= warm_up:  # warm-up: index files opened, plans cached
            times["hybrid"].append(t1 - t0)
            times["semantic"].append(t2 - t1)
            times["lexical"].append(t3 - t2)
    return times


# -------------------------------------------------------------------------------------------- object storage


def s3_server(kind: str, port: int, folder: Path) -> tuple[subprocess.Popen, str]:
    """(process, endpoint) of an S3 server on loopback: ministack (its own venv: it pins a botocore of its own,
    made in `folder` on first use) or moto (semcode's dev extra)."""
    if kind == "ministack":
        venv = folder / "ministack-venv"
        if not (venv / "bin" / "ministack").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "ministack"], check=True)
        env = os.environ | {"GATEWAY_PORT": str(port), "BIND_HOST": "127.0.0.1"}
        cmd = [str(venv / "bin" / "ministack")]
    else:
        env, cmd = (
            dict(os.environ),
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    end = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"{kind} did not start on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)


def s3_figures(kind: str, local: Path, texts: list[str], synth: Synthetic, say) -> dict[str, float]:
    """The index in `local` uploaded to an S3 server on loopback; first query and warm p95 from it directly and
    through the read cache, against the local index's p95 in the same run."""
    import pyarrow.fs as pafs

    from indexer.read_cache import Mirror
    from indexer.storage import location

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="semcode-scale-s3-"))
    proc, endpoint = s3_server(kind, port, Path(tempfile.gettempdir()))
    try:
        options = {"aws_endpoint": endpoint, "aws_region": "us-east-1", "aws_access_key_id": "scale",
                   "aws_secret_access_key": "scale", "allow_http": "true"}  # fmt: skip
        fs = pafs.S3FileSystem(access_key="scale", secret_key="scale", region="us-east-1",
                               endpoint_override=endpoint, scheme="http", allow_bucket_creation=True)  # fmt: skip
        fs.create_dir("scale")
        t0 = time.perf_counter()
        pafs.copy_files(str(local), "scale/index", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        size = location(str(local)).size()
        say(f"  {kind}: {size / 2**30:.2f} GiB uploaded in {time.perf_counter() - t0:.0f} s")
        say(f"  {kind}, Lance's conditional writes: {conditional_writes('s3://scale/cw-check', options)}")
        uri = "s3://scale/index"
        out: dict[str, float] = {}
        t0 = time.perf_counter()
        direct = Store.open(uri, MODEL_ID, DIM, storage_options=options, read_only=True)
        search_times(direct, texts[:1], synth, warm_up=0)
        out["first_direct_ms"] = (time.perf_counter() - t0) * 1000
        out["direct_p95_ms"] = pcts(search_times(direct, texts[:23], synth)["hybrid"])[1]
        direct.close()
        copy = Mirror(location(uri, options), work / "cache", max_bytes=4 * size)
        t0 = time.perf_counter()
        cached = Store.open(uri, MODEL_ID, DIM, storage_options=options, read_only=True, read_cache=copy)
        search_times(cached, texts[:1], synth, warm_up=0)
        out["first_cached_ms"] = (time.perf_counter() - t0) * 1000
        while not cached.serving_copy:
            time.sleep(0.1)
        out["copy_s"] = time.perf_counter() - t0
        localstore = Store.open(local, MODEL_ID, DIM, read_only=True)
        cached_t, local_t = [], []
        for _ in range(2):  # alternating, so both see the same machine
            cached_t += search_times(cached, texts, synth)["hybrid"]
            local_t += search_times(localstore, texts, synth)["hybrid"]
        out["cached_p95_ms"], out["local_p95_ms"] = pcts(cached_t)[1], pcts(local_t)[1]
        cached.close()
        localstore.close()
        return out
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def conditional_writes(uri: str, options: dict[str, str], writers: int = 4) -> str:
    """Lance on this S3 server: `writers` connections append to one table at once. Lance commits a version with a
    conditional PUT (put-if-absent) and retries on conflict; on a server that ignored the condition, two commits
    would take the same version and rows would be lost."""
    import threading

    import pyarrow as pa

    from indexer.lancedb_import import lancedb

    lancedb.connect(uri, storage_options=options).create_table("cw", pa.table({"n": [0]}))
    errors: list[str] = []

    def add(i: int) -> None:
        try:
            lancedb.connect(uri, storage_options=options).open_table("cw").add(pa.table({"n": [i + 1]}))
        except Exception as e:  # a failed commit is what this checks for
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = lancedb.connect(uri, storage_options=options).open_table("cw").count_rows()
    verdict = "ok" if rows == writers + 1 and not errors else "FAILED"
    return f"{verdict}: {writers} concurrent commits, {rows - 1} kept, {len(errors)} failed {errors[:1]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mcp_figures(rate: float, seconds: float, say) -> dict[str, float]:
    """benchmarks/mcp_latency.py at 100k chunks, 16 sessions, an open loop at `rate` calls/s (its own process)."""
    out = Path(tempfile.mkdtemp(prefix="semcode-scale-mcp-")) / "mcp.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "mcp_latency.py"), "--chunks", "100000", "--clients", "16"]
    cmd += ["--queries", "5", "--rate", str(rate), "--seconds", str(seconds), "--no-indexing", "--json", str(out)]
    say(f"\n$ {' '.join(cmd[1:])}")
    subprocess.run(cmd, check=True)
    figures = json.loads(out.read_text())
    loop = figures["open loop"]
    return {
        "cpu_ms": float(loop["server_cpu_ms_per_hybrid_call"]),
        "p95_ms": float(loop["hybrid_p95_ms"] or float("nan")),
        "failed": float(loop["failed"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100k,1M", help="index sizes in chunks, comma-separated (e.g. 100k,1M,5M)")
    p.add_argument("--rounds", type=int, default=5, help="4,096-chunk runs per size (alternating)")
    p.add_argument("--queries", type=int, default=100, help="search queries per size")
    p.add_argument("--keep", type=Path, help="build the indexes here and keep them (reused by the next run)")
    p.add_argument("--build-only", action="store_true", help="only build the indexes of --keep")
    p.add_argument("--s3", choices=["ministack", "moto", "none"], default="ministack",
                   help="S3 server on loopback for the object-storage figures (default: %(default)s)")  # fmt: skip
    p.add_argument("--s3-size", default="1M", help="index size served from S3 (one of --sizes; default: %(default)s)")
    p.add_argument("--mcp-rate", type=float, default=20.0, help="open-loop calls/s of the MCP part (0: skip it)")
    p.add_argument("--mcp-seconds", type=float, default=30.0, help="length of the MCP open loop")
    args = p.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]

    def say(msg: str) -> None:
        print(msg, flush=True)

    base = args.keep or Path(tempfile.mkdtemp(prefix="semcode-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    synth = Synthetic(real_chunks())
    say(f"{len(synth.chunks):,} real chunks of this repository as texts; building {args.sizes} under {base}")
    stores = {rows: build(base / f"index-{rows}", rows, synth, say) for rows in sizes}
    if args.build_only:
        for store in stores.values():
            store.close()
        return
    try:
        commits: dict[int, list[float]] = {rows: [] for rows in sizes}
        for r in range(args.rounds):
            for rows in sizes:
                commits[rows].append(commit_once(stores[rows], synth, rows, edit=1 + r + 100 * r))
        compacted: dict[int, float] = {}
        for rows in sizes:  # what a run does at its end: the new rows go into the indexes (flat until then)
            t0 = time.perf_counter()
            stores[rows].compact(prune_vectors=False)
            compacted[rows] = time.perf_counter() - t0
        texts = queries(args.queries)
        head = f"{'hybrid p50/p95':>16} {'semantic':>16} {'lexical':>16}"
        say(f"\n{'chunks':>10} {'commit s':>9} {'chunks/s':>9} {'compact s':>9}  {head}")
        rate: dict[int, float] = {}
        p95: dict[int, float] = {}
        for rows in sizes:
            seconds = statistics.median(commits[rows])
            rate[rows] = RUN_FILES * PER_FILE / seconds
            t = search_times(stores[rows], texts, synth)
            cells = {k: "{:6.1f} /{:6.1f}".format(*pcts(v)) for k, v in t.items()}
            p95[rows] = pcts(t["hybrid"])[1]
            say(f"{rows:>10,} {seconds:>9.3f} {rate[rows]:>9,.0f} {compacted[rows]:>9.1f}  {cells['hybrid']:>16} "
                f"{cells['semantic']:>16} "
                f"{cells['lexical']:>16}")  # fmt: skip
        small, large = min(sizes), max(sizes)
        say(f"\ncommit throughput {large:,} vs {small:,}: {rate[large] / rate[small]:.2f}x")
        s3_ratio = "n/a"
        s3_rows = parse_size(args.s3_size)
        if args.s3 != "none" and s3_rows in stores:
            stores[s3_rows].close()
            s3 = s3_figures(args.s3, base / f"index-{s3_rows}", texts, synth, say)
            say(f"  from {args.s3} at {s3_rows:,} chunks: first query {s3['first_direct_ms']:.0f} ms (direct), "
                f"{s3['first_cached_ms']:.0f} ms (cache being filled; whole after {s3['copy_s']:.0f} s); warm "
                f"hybrid p95: direct {s3['direct_p95_ms']:.1f} ms, cached {s3['cached_p95_ms']:.1f} ms, local disk "
                f"{s3['local_p95_ms']:.1f} ms")  # fmt: skip
            s3_ratio = f"{s3['cached_p95_ms'] / s3['local_p95_ms']:.2f}"
        mcp = {"cpu_ms": float("nan"), "p95_ms": float("nan"), "failed": float("nan")}
        if args.mcp_rate > 0:
            mcp = mcp_figures(args.mcp_rate, args.mcp_seconds, say)
        say(
            f"scale: commit_ratio={rate[large] / rate[small]:.2f} hybrid_p95_ms={p95[large]:.1f} "
            f"s3_warm_ratio={s3_ratio} mcp_cpu_ms={mcp['cpu_ms']:.1f} mcp_p95_ms={mcp['p95_ms']:.1f} "
            f"failed={mcp['failed']:.0f}"
        )
    finally:
        for store in stores.values():
            store.close()
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
