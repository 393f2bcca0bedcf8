"""``semcode index --ray``: many repositories into one index on a Ray cluster, with the answers one process gives.

What runs where:

- The driver (this process) walks each repository and diffs it against the index's file records, as
  ``index_repository`` does (``indexer.index.plan_changes``: unchanged size and mtime, not read), and removes
  vanished files. It is the only process that writes the index.
- Ray tasks (``tasks.chunk_files``, a batch of files of one repository each) read the files that look changed and
  chunk those whose text changed (``indexer.index.prepare_file``). A task whose worker dies is run again
  (``max_retries``).
- A Ray Data actor pool (``tasks.EncoderActor``: the encoder loaded once per actor, one GPU each where the cluster
  has GPUs, ``cpus_per_actor`` threads each otherwise) encodes the content hashes the index has no vector for. A
  dead actor is restarted and its block encoded again (Ray Data's defaults for actor pools).
- The driver commits as results stream back: new vectors into the vector cache every ``commit_chunks`` vectors,
  and the rows and records of files whose vectors are all known in batches of ``commit_chunks`` chunks, across
  repositories (``indexer.index.write_prepared``, records after rows; each an append and a delete found through
  scalar indexes, whatever the index's size), compacts every ``COMPACT_EVERY_CHUNKS`` chunks (the new rows join the
  full-text, scalar and vector indexes incrementally) and once at the end. A job leaves about
  3 x (chunks / commit_chunks) table versions plus one or two per repository with deleted files.

A driver killed with kill -9 leaves the last committed version readable; the next run finds the committed rows
unchanged and the committed vectors cached, and encodes only the rest. Repositories must be readable at the same
path by every node (a shared filesystem, or one machine), and the model must be a folder every node can read or a
hub id.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semcode.settings import Settings

from .tasks import EncoderActor, EncoderConfig, chunk_files

if TYPE_CHECKING:
    import numpy as np

    from indexer.index import IndexOptions, IndexReport, Prepared, Progress, RepoPlan
    from indexer.store import Store
    from indexer.types import Skip

COMPACT_EVERY_CHUNKS = 250_000  # rows outside the indexes are read flat by every later commit's lookup and search
LOCAL = "local"  # `--ray` without an address: $RAY_ADDRESS if set, else a Ray started here for the job


@dataclass(frozen=True)
class JobOptions:
    """How the job spreads its work. Every field has a default; tests and benchmarks shrink them."""

    actors: int | None = None  # encoder actors (default: the cluster's GPUs, else its CPUs / cpus_per_actor)
    cpus_per_actor: float = 1.0  # CPUs (and torch threads) per actor without GPUs
    files_per_task: int = 32  # files one chunking task reads and chunks
    wave_files: int = 20_000  # files chunked before their new content is encoded: bounds the driver's memory
    block_tokens: int = 16_384  # tokens per encoder call (one Ray Data block)
    commit_chunks: int = 4_096  # new vectors cached, and chunk rows written, per commit
    task_retries: int = 3  # a chunking task whose worker died runs again this many times
    num_cpus: int | None = None  # CPUs of a Ray started for the job (default: this machine's)
    fail_once: str | None = None  # tests: a folder; a chunking task and an encoder actor die once (tasks.die_once)


@dataclass
class RepoSummary:
    root: str
    status: str  # "indexed", "skipped" (a git URL: clone it first) or "failed"
    reason: str | None = None
    report: IndexReport | None = None
    files: int = 0  # indexed files of the repository after the job
    chunks: int = 0  # its chunk rows after the job


@dataclass
class JobSummary:
    index_dir: str
    model: str
    repos: list[RepoSummary] = field(default_factory=list)
    actors: int = 0  # encoder actors used (0: nothing to encode)
    gpus_per_actor: float = 0.0
    files_changed: int = 0
    chunks_written: int = 0
    chunks_encoded: int = 0
    tokens_encoded: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0  # from the first block sent to the actor pool to the last vector back
    commits: int = 0  # write batches the driver committed
    commit_seconds: float = 0.0  # the driver's serial index work in the waves: cache lookups, vectors, rows, records
    versions: dict[str, int] = field(default_factory=dict)  # table versions left after the job's compaction

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_encoded / self.encode_seconds if self.encode_seconds > 0 else 0.0


def run(
    roots: Sequence[Path | str],
    settings: Settings | None = None,
    *,
    address: str | None = None,
    repos_file: Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    options: JobOptions | None = None,
) -> JobSummary:
    """Index ``roots`` plus the repositories listed in ``repos_file`` into one index (``settings.index_dir``;
    with one repository and no index folder, that repository's default one). ``address``: None or ``"local"``
    ($RAY_ADDRESS if set, else a Ray started here and stopped at the end), ``"auto"`` (the cluster this machine is
    part of) or a cluster address. Raises ValueError for bad arguments; a repository that cannot be indexed is
    reported in the summary, and the others are indexed."""
    settings = settings or Settings()
    summaries, valid = _repositories(roots, repos_file)
    if not valid:
        raise ValueError("no repository to index (name folders, or list them in --repos FILE)")
    if settings.index_dir is None and len(valid) > 1:
        raise ValueError("indexing several repositories needs one index folder: pass --index-dir")
    index_dir = settings.index_dir_for(valid[0][1])
    options = options or JobOptions()
    # Ray first, before anything imports lance (not fork-safe; starting Ray forks and execs its processes)
    started = connect(address, options.num_cpus)
    try:
        job = _Job(settings, index_dir, options, progress)
        try:
            job.run(valid, summaries)
        finally:
            job.close()
    finally:
        if started:
            import ray

            ray.shutdown()
    return job.summary


def _repositories(
    roots: Sequence[Path | str], repos_file: Path | None
) -> tuple[list[RepoSummary], list[tuple[RepoSummary, Path]]]:
    """Every named repository's summary, and the (summary, resolved root) of those that can be indexed. A file's
    lines are paths (relative to the file's folder) or git URLs (reported as skipped: clone them first); blank
    lines and ``#`` comments are ignored."""
    names = [str(r) for r in roots]
    if repos_file is not None:
        try:
            lines = Path(repos_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{repos_file}: cannot read the list of repositories ({e})") from e
        base = Path(repos_file).resolve().parent
        for line in (raw.strip() for raw in lines):
            if line and not line.startswith("#"):
                names.append(line if _is_url(line) else str(base / Path(line).expanduser()))
    summaries: list[RepoSummary] = []
    valid: list[tuple[RepoSummary, Path]] = []
    seen: set[str] = set()
    for name in names:
        root = Path(name).expanduser()
        key = name if _is_url(name) else str(root.resolve())
        if key in seen:
            continue
        seen.add(key)
        summary = RepoSummary(key, "skipped")
        summaries.append(summary)
        if _is_url(name):
            summary.reason = "a git URL: clone it and list its folder instead"
        elif not root.is_dir():
            summary.status, summary.reason = "failed", "no such folder"
        else:
            valid.append((summary, root.resolve()))
    return summaries, valid


def _is_url(name: str) -> bool:
    return "://" in name or (name.startswith("git@") and ":" in name)


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Start or join Ray (see ``run``); False when this process had joined one already (it is left running)."""
    import ray

    if ray.is_initialized():
        _quiet_data()
        return False
    target = os.environ.get("RAY_ADDRESS") if address in (None, "", LOCAL) else address
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "configure_logging": True}
    if target:
        try:
            ray.init(address=target, **quiet)
        except ConnectionError as e:  # no cluster there: the user's to fix, in one line
            raise ValueError(f"cannot join the Ray cluster at {target!r} ({e})") from e
    else:
        quiet_token_auth()
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, **quiet)
    _quiet_data()
    return True


def quiet_token_auth() -> None:
    """Ray's secure default for a new local cluster, token authentication, goes unsaid (Ray warns that it is on);
    its warning that authentication is off is still printed."""
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_token_auth_on)


def _token_auth_on(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


def _quiet_data() -> None:
    """Ray Data prints no progress of its own: the job reports progress (``semcode index`` prints it)."""
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # ("progress bars disabled")


@dataclass
class _File:
    """One file of a wave: its plan (repository), its stat at the walk, what reading and chunking gave."""

    plan: RepoPlan
    path: str
    st: os.stat_result
    item: Prepared | Skip | None = None


class _Job:
    """The driver's state: the one store it commits to, the repositories' plans, counters."""

    def __init__(
        self, settings: Settings, index_dir: str, job: JobOptions, progress: Callable[[Progress], None] | None
    ) -> None:
        from encoder import load_tokenizer
        from encoder.load import model_id, read_tokenizer_files

        self.settings, self.job, self.on_progress = settings, job, progress
        self.model = settings.resolved_model()
        config, _, _ = read_tokenizer_files(self.model)  # the vector size, without loading the weights
        max_tokens = load_tokenizer(self.model, settings.max_tokens).max_tokens  # the encoder's limit
        self.opts: IndexOptions = settings.index_options(max_tokens)
        self.summary = JobSummary(index_dir, model_id(self.model))
        self.dim = config.hidden_size
        self.plans: list[RepoPlan] = []
        self.t0 = time.perf_counter()
        self.files_total = self.files_done = 0
        self.since_compact = 0  # chunks committed since the last compaction
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from indexer.store import Store

            where, options = self.summary.index_dir, self.settings.storage()  # a folder or an object-store URI
            self._store = Store.open(where, model_id=self.summary.model, dim=self.dim, storage_options=options)
        return self._store

    def run(self, repos: list[tuple[RepoSummary, Path]], all_repos: list[RepoSummary]) -> None:
        self.summary.repos = all_repos
        planned = self._plan(repos)
        todo = [_File(plan, path, st) for plan in self.plans for path, st in plan.todo]
        self.files_total = len(todo)
        if todo:
            for start in range(0, len(todo), self.job.wave_files):
                wave = todo[start : start + self.job.wave_files]
                self._chunk(wave)
                self._encode_and_commit(wave)
        for summary, plan in planned:
            if plan.recheck:
                from indexer.read import CONTENT_CHECKS

                self.store.set_checks_version(plan.repo, CONTENT_CHECKS)
            self.store.end_run(plan.repo)
            summary.status = "indexed"
        self._finish(planned)

    def _plan(self, repos: list[tuple[RepoSummary, Path]]) -> list[tuple[RepoSummary, RepoPlan]]:
        """Walk and diff every repository (reads), then remove vanished files (the first writes)."""
        from indexer.errors import StoreError
        from indexer.index import plan_changes, remove_vanished

        planned = []
        for summary, root in repos:
            try:
                plan = plan_changes(root, self.store, self.opts)
            except (OSError, StoreError) as e:
                summary.status, summary.reason = "failed", str(e)
                continue
            summary.report = plan.report
            self.store.begin_run(plan.repo)  # until end_run, status says the run was cut short
            remove_vanished(self.store, plan)
            self.plans.append(plan)
            planned.append((summary, plan))
        return planned

    def _chunk(self, wave: list[_File]) -> None:
        """Read and chunk the wave's files in Ray tasks (``files_per_task`` files of one repository each)."""
        import ray

        from indexer.index import recorded_hash

        # one CPU per task, so the tokenizer's own thread pool is off; a runtime env of their own also keeps these
        # workers (tree-sitter, tokenizers, lance loaded) apart from the ones Ray Data's tasks run in
        env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
        task: Any = ray.remote(chunk_files).options(num_cpus=1, max_retries=self.job.task_retries, runtime_env=env)
        options = ray.put(self.opts)
        by_repo: dict[int, list[_File]] = {}
        for f in wave:
            by_repo.setdefault(id(f.plan), []).append(f)
        pending: dict[Any, list[_File]] = {}
        for files in by_repo.values():
            plan = files[0].plan
            for start in range(0, len(files), self.job.files_per_task):
                group = files[start : start + self.job.files_per_task]
                items = [(f.path, None if plan.recheck else recorded_hash(plan.records, f.path)) for f in group]
                ref = task.remote(str(plan.root), items, options, self.model, self.job.fail_once)
                pending[ref] = group
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ready[0])
            for f, item in zip(group, ray.get(ready[0]), strict=True):
                f.item = item
                _note(f.plan.report, item)
            self._progress()

    def _encode_and_commit(self, wave: list[_File]) -> None:
        """Vectors for every chunk of the wave (the cache's, then the actor pool's), committed as files complete."""
        from indexer.index import Prepared

        chunked = {
            i: f.item.chunks
            for i, f in enumerate(wave)
            if isinstance(f.item, Prepared) and f.item.chunks and f.item.text_only is None  # (text only: no vectors)
        }
        t0 = time.perf_counter()
        vectors = self.store.cached_vectors(sorted({c.content_hash for cs in chunked.values() for c in cs}))
        self.summary.commit_seconds += time.perf_counter() - t0
        need = [0] * len(wave)  # missing content hashes per file
        waiting: dict[str, list[int]] = {}  # missing content hash -> the files that wait for it
        texts: dict[str, tuple[str, int]] = {}  # missing content hash -> (text, tokens), in file order
        for i, chunks in chunked.items():
            for h, c in {c.content_hash: c for c in chunks if c.content_hash not in vectors}.items():
                waiting.setdefault(h, []).append(i)
                texts.setdefault(h, (c.text, c.tokens))
                need[i] += 1
        commit = _Committer(self, wave, vectors)
        commit.add([i for i, n in enumerate(need) if n == 0])
        new: dict[str, np.ndarray] = {}
        for hashes, block in self._encode(texts):
            for h, v in zip(hashes, block, strict=True):
                vectors[h] = new[h] = v
                first = wave[waiting[h][0]].plan.report
                first.chunks_encoded += 1
                first.tokens_encoded += texts[h][1]
                self.summary.chunks_encoded += 1
                self.summary.tokens_encoded += texts[h][1]
                for i in waiting.pop(h):
                    need[i] -= 1
                    if need[i] == 0:
                        commit.add([i])
            t0 = time.perf_counter()
            if len(new) >= self.job.commit_chunks:
                self.store.cache_vectors(new)  # a kill from here on does not lose these
                new = {}
            commit.flush(self.job.commit_chunks)
            self.summary.commit_seconds += time.perf_counter() - t0
            self._progress()
        t0 = time.perf_counter()
        self.store.cache_vectors(new)
        commit.flush(0)
        self.summary.commit_seconds += time.perf_counter() - t0
        self._progress()

    def _encode(self, texts: dict[str, tuple[str, int]]) -> Iterator[tuple[list[str], np.ndarray]]:
        """(content hashes, their vectors) per block, as the actor pool finishes them."""
        if not texts:
            return
        import numpy as np
        import pyarrow as pa
        import ray

        blocks: list[dict[str, list[str]]] = []  # one item per block (an encoder call of about block_tokens)
        current: list[str] = []
        used = 0
        for h, (_text, tokens) in texts.items():
            if current and used + tokens > self.job.block_tokens:
                blocks.append(_block(current, texts))
                current, used = [], 0
            current.append(h)
            used += tokens
        blocks.append(_block(current, texts))
        gpus = float(ray.cluster_resources().get("GPU", 0))
        cpus = float(ray.cluster_resources().get("CPU", 1))
        actors = self.job.actors or max(1, int(gpus) if gpus >= 1 else int(cpus // self.job.cpus_per_actor))
        actors = max(1, min(actors, len(blocks)))
        per_actor: dict[str, Any] = {"num_gpus": 1} if gpus >= 1 else {"num_cpus": self.job.cpus_per_actor}
        threads = self.settings.threads or (None if gpus >= 1 else max(1, int(self.job.cpus_per_actor)))
        s = self.settings
        config = EncoderConfig(
            self.model, s.device, s.dtype, threads, self.opts.max_tokens, self.opts.embed_tokens, self.job.fail_once
        )
        self.summary.actors, self.summary.gpus_per_actor = actors, float(per_actor.get("num_gpus", 0))
        # (Ray Data restarts a dead actor and retries its block: max_restarts and max_task_retries default to -1)
        # from_items builds the blocks here (from_arrow runs a metadata task per block), one item per block
        dataset = ray.data.from_items(blocks, override_num_blocks=len(blocks)).map_batches(
            EncoderActor,
            fn_constructor_kwargs={"config": config},
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_format="pyarrow",
            batch_size=None,  # one block per call: blocks are cut by tokens above
            **per_actor,
        )
        t0 = time.perf_counter()
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            assert isinstance(batch, pa.Table)
            column = batch.column("vector").combine_chunks()
            flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
            yield batch.column("content_hash").to_pylist(), flat.reshape(len(column), self.dim)
            self.summary.encode_seconds = time.perf_counter() - t0

    def _progress(self) -> None:
        if self.on_progress is not None:
            from indexer.index import Progress

            s = self.summary
            seconds = time.perf_counter() - self.t0
            self.on_progress(Progress(self.files_done, self.files_total, s.chunks_written, s.tokens_encoded, seconds))

    def _finish(self, planned: list[tuple[RepoSummary, RepoPlan]]) -> None:
        from semcode.engine import VECTOR_INDEX_MIN_ROWS

        store = self.store
        store.compact()
        store.ensure_vector_index(VECTOR_INDEX_MIN_ROWS)  # past this many rows; flat search is exact below
        for summary, plan in planned:
            summary.files = sum(r.status == "indexed" for r in store.files(plan.repo).values())
            summary.chunks = store.count_chunks(plan.repo)
        self.summary.versions = store.stats()["versions"]
        self.summary.seconds = time.perf_counter() - self.t0
        for _summary, plan in planned:
            plan.report.seconds = self.summary.seconds

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


class _Committer:
    """Files whose vectors are all known, written in batches of about ``commit_chunks`` chunks."""

    def __init__(self, job: _Job, wave: list[_File], vectors: dict[str, np.ndarray]) -> None:
        self.job, self.wave, self.vectors = job, wave, vectors
        self.ready: list[int] = []
        self.chunks = 0

    def add(self, indices: list[int]) -> None:
        from indexer.index import Prepared

        for i in indices:
            self.ready.append(i)
            item = self.wave[i].item
            self.chunks += len(item.chunks or ()) if isinstance(item, Prepared) else 0

    def flush(self, at_least: int) -> None:
        """Write the ready files once they hold ``at_least`` chunks (0: whatever is ready)."""
        from indexer.index import Prepared, write_prepared

        if not self.ready or (at_least and self.chunks < at_least):
            return
        files = [self.wave[i] for i in self.ready]
        items = [(f.plan.repo, f.st, f.item) for f in files if f.item is not None]
        write_prepared(self.job.store, items, self.vectors)
        summary = self.job.summary
        for f in files:
            if isinstance(f.item, Prepared) and f.item.chunks is not None:
                f.plan.report.files_changed += 1
                f.plan.report.chunks_written += len(f.item.chunks)
                summary.files_changed += 1
                summary.chunks_written += len(f.item.chunks)
        summary.commits += 1
        self.job.files_done += len(files)
        self.job.since_compact += self.chunks
        if self.job.since_compact >= COMPACT_EVERY_CHUNKS:  # new rows join the indexes: lookups stay off scans
            self.job.store.compact(prune_vectors=False)
            self.job.since_compact = 0
        self.ready, self.chunks = [], 0


def _note(report: IndexReport, item: Prepared | Skip) -> None:
    """What reading and chunking a file tells its repository's report (skips and chunker problems)."""
    from indexer.types import Skip

    if isinstance(item, Skip):
        report.skipped.append(item)
    elif item.problems:
        report.problems[item.path] = item.problems


def _block(hashes: list[str], texts: dict[str, tuple[str, int]]) -> dict[str, list[str]]:
    return {"content_hash": hashes, "text": [texts[h][0] for h in hashes]}
