"""The engine: one place that opens the indexes of a set of repository roots with one model, and indexes, updates,
watches, searches, relates, reads and reports status. Every front door (CLI, LSP, MCP, the Python API) is glue over
it.

Threads: writes go through the engine's one ``Writer`` (callers submit ``index_folder``, ``update_files`` and
``update_buffer`` there, or call ``update``/``watch`` which do); reads (``search``, ``related``, ``read``) run on any
thread, also while a run writes (LanceDB readers do not wait for writers). The encoder is loaded once, on first need
(``load_encoder``); lexical search, ``related``, ``read`` and status never load it.

Every request is held to ``semcode.limits`` here (``SearchQuery``, ``search``'s deadline, ``related``, ``read``), so
each front door gets the same limits and the same messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .limits import (
    SEARCH_DEADLINE_S,
    Deadline,
    check_glob,
    check_languages,
    check_limit,
    check_line,
    model_text,
)
from .lines import Lines, cut_lines, source_lines
from .query import EmptyFilter, SearchQuery
from .query_vectors import QueryBatcher, QueryVectors
from .search_gate import SearchGate, shared_gate
from .settings import Settings
from .workspace import Folder, PathOutside, check_length
from .writer import Writer, result

if TYPE_CHECKING:
    import numpy as np

    from encoder import Encoder
    from encoder.query_numpy import NumpyQueryEncoder
    from encoder.tokenize import TextTokenizer
    from indexer.coverage import Coverage
    from indexer.index import IndexOptions, IndexReport, Progress
    from indexer.read_cache import Mirror
    from indexer.search import Where
    from indexer.storage import Location
    from indexer.store import Hit, Store, StoredChunk

    from .models import ModelCache
    from .phase_one import PhaseOneApart

F = TypeVar("F", bound=Folder)
T = TypeVar("T")
Stop = Callable[[], bool] | None
CANDIDATE_DEPTH = 40  # each retriever's list a ranked search reads (at least; 3 x the limit when that is more)
VECTOR_INDEX_MIN_ROWS = 100_000  # an IVF_PQ index past this many rows; below, flat search is exact and fast
BUFFER_WRITES_PER_COMPACTION = 50


class Engine:
    """The indexes of a set of repository roots, opened with one model (see the module docstring)."""

    def __init__(
        self,
        settings: Settings | None = None,
        roots: Iterable[Path] = (),
        *,
        read_only: bool = False,
        open_on_read: bool = True,
        models: ModelCache | None = None,
        phase_one_apart: bool = False,
    ) -> None:
        """``read_only``: serve indexes other processes maintain (every write raises PermissionError).
        ``open_on_read`` False: searches skip a folder until a write opened its store (a server that indexes
        every folder at start). ``models``: loaded encoders shared with other engines of this process (the CLI's
        daemon, one engine per index: one model in memory, not one per index); None: this engine loads its own.
        ``phase_one_apart``: a new index's phase 1 runs in a child process (``semcode.phase_one``: a server whose
        own imports would hold up phase 1)."""
        self.settings = settings or Settings()
        self.models = models
        self.read_only = read_only
        self.open_on_read = open_on_read
        self.apart: PhaseOneApart | None = None  # new indexes' phase 1 in a child process
        if phase_one_apart:
            from .phase_one import PhaseOneApart

            self.apart = PhaseOneApart()
        self.folders: list[Folder] = []
        self.writer = Writer()
        self.encoder: Encoder | None = None
        self._query_encoder: NumpyQueryEncoder | None = None
        self._tokenizer: TextTokenizer | None = None
        self._query_lock = threading.Lock()
        self._query_vectors = QueryVectors()
        # queries arriving together are encoded in one batch, by whichever encoder is current when it runs
        self._query_batcher = QueryBatcher(lambda texts: self.query_encoder().encode(texts, kind="query"))
        self.gate: SearchGate = shared_gate()  # searches at once and waiting, for the whole process
        self._model: str | None = None
        self._stores: dict[str, Store] = {}  # index folder -> its store
        self._lock = threading.RLock()  # store opening
        # encoder loading: its own lock, so a search that opens a store meanwhile does not wait 1-3 s for the weights
        # (a server's first search right after phase 1, while phase 2 loads the model)
        self._encoder_lock = threading.Lock()
        self._buffer_writes: dict[str, int] = {}  # index folder -> buffer writes since its last compaction
        self.building: set[str] = set()  # index folders whose vector index is being built
        for root in roots:
            self.add_folder(root)

    # -- model ----------------------------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The resolved model (``Settings.model`` -> ``$SEMCODE_MODEL`` -> config file -> shipped model)."""
        if self._model is None:
            self._model = self.settings.resolved_model()
        return self._model

    def model_id(self) -> str:
        """The model's stable name (its index tables are keyed by it); no weights are loaded."""
        if self.encoder is not None:
            return self.encoder.name
        from encoder.load import model_id

        from .config import user_dir

        # the shipped model is named by a hash of its weights: 50 ms, kept in the user's cache for the next process
        return model_id(self.model, known=user_dir("cache") / "model-ids.json")

    def load_encoder(self) -> Encoder:
        """The encoder, loaded on first call (any thread; later calls return the same one). With ``models``, the
        one shared by every engine of this model. Loaded under a lock of its own (the cache's, with ``models``),
        never the one stores are opened under: a search that opens a store meanwhile does not wait for the
        weights."""

        def load() -> Encoder:
            from encoder import load_encoder

            s = self.settings
            return load_encoder(self.model, device=s.device, dtype=s.dtype, threads=s.threads, max_tokens=s.max_tokens)

        if self.models is not None and self.encoder is None:
            from .models import ModelKey

            self.encoder = self.models.encoder(ModelKey.of(self.model, self.settings), load)
        with self._encoder_lock:
            if self.encoder is None:
                self.encoder = load()
            return self.encoder

    def query_encoder(self) -> Encoder | NumpyQueryEncoder:
        """What encodes a search's query: the encoder once loaded, else the torch-free NumPy one (same vectors to
        float rounding; milliseconds to load, no torch import), so a cold search or a server whose model is still
        loading answers at once."""
        if self.encoder is not None:
            return self.encoder
        with self._query_lock:  # not the encoder's lock: a query must not wait for the model to load
            if self._query_encoder is None:
                from encoder.query_numpy import load_query_encoder

                from .models import ModelKey

                def load() -> NumpyQueryEncoder:
                    return load_query_encoder(self.model, max_tokens=self.settings.max_tokens)

                shared, key = self.models, ModelKey.of(self.model, self.settings)  # shared: one per model, process-wide
                self._query_encoder = load() if shared is None else shared.query_encoder(key, load)
            return self._query_encoder

    def tokenizer(self) -> TextTokenizer:
        """The model's tokenizer (it counts a chunk's tokens): the encoder's once loaded, else the tokenizer alone,
        without weights or torch: phase 1 of a full run needs nothing more, so every file is searchable before the
        model has loaded."""
        if self.encoder is not None:
            return self.encoder.tokenizer
        with self._query_lock:
            if self._tokenizer is None:
                from encoder.tokenize import load_tokenizer

                self._tokenizer = load_tokenizer(self.model, self.settings.max_tokens)
            return self._tokenizer

    def index_options(self, *, vector_index: bool = True, embed: bool = True) -> IndexOptions:
        """Indexing options; ``vector_index`` builds the vector index inside a full run (else ``build_vector_index``
        does it in the background); ``embed`` False stops a full run after phase 1."""
        limit = self.tokenizer().max_tokens
        return self.settings.index_options(limit, VECTOR_INDEX_MIN_ROWS if vector_index else None, embed=embed)

    # -- folders and stores ---------------------------------------------------------------------------------------

    def add_folder(self, root: Path, factory: Callable[[Path, str], F] = Folder) -> F | None:  # type: ignore[assignment]
        """Serve one more root (None when it is served already)."""
        resolved = Path(root).resolve()
        if any(f.root == resolved for f in self.folders):
            return None
        folder = factory(resolved, self.settings.index_dir_for(resolved))
        self.folders.append(folder)
        return folder

    def remove_folder(self, folder: Folder) -> Callable[[], None] | None:
        """Stop serving `folder` (its index stays on disk). Returns its watcher's ``stop`` to call off the event
        loop, if it had one."""
        folder.cancel.set()  # a full run stops at its next file
        self.folders.remove(folder)
        watcher, folder.watcher = folder.watcher, None
        return None if watcher is None else watcher.stop

    def folder_of(self, path: Path) -> tuple[Folder, str] | None:
        """(served folder, relative path) of an absolute path, or None when it lies outside every root."""
        for folder in self.folders:
            rel = folder.relative(path)
            if rel is not None:
                return folder, rel
        return None

    def locate(self, path: str, repo: str | None = None) -> tuple[Folder, str]:
        """(folder, checked relative path) for a path given by a user or an agent: absolute, or relative to a served
        root (`repo` names which when several roots hold that path). Raises ``PathOutside`` (``PathTooLong`` for a
        path no file can have, before any system call sees it)."""
        check_length(path)
        folders = [f for f in self.folders if repo is None or repo in (f.repo, str(f.root), f.root.name)]
        if repo is not None and not folders:
            raise PathOutside(f"{repo!r} is not a served repository")
        if Path(path).is_absolute():
            for folder in folders:
                rel = folder.relative(Path(path))
                if rel is not None:
                    return folder, folder.inside(rel)
            raise PathOutside(f"{path}: outside the served repositories")
        checked = [(f, f.inside(path)) for f in folders]
        existing = [(f, rel) for f, rel in checked if (f.root / rel).exists()]
        if len(existing) > 1:
            raise PathOutside(f"{path} is in several repositories; name one with repo= or give an absolute path")
        return (existing or checked)[0]

    def store(self, folder: Folder, *, create: bool = True) -> Store | None:
        """The folder's store, opened on first use (folders naming one index folder share it). With ``create``
        False, an index folder that does not exist yet is not created (None). While the phase-1 child of a new
        index answers its searches, this process is opening the index: a caller waits for that."""
        if self.apart is not None:
            self.apart.await_hand_over(folder.index_dir)
        with self._lock:
            if folder.store is None:
                if self.apart is not None and self.apart.building(folder.index_dir):
                    return None  # a child is creating its tables (``PhaseOneApart``)
                if folder.index_dir not in self._stores:
                    if not create and not self.location(folder.index_dir).exists():
                        return None
                    self._stores[folder.index_dir] = self._open_store(folder.index_dir)
                folder.store = self._stores[folder.index_dir]
            return folder.store

    def _open_beside_child(self, index_dir: str) -> None:
        """Open the index a phase-1 child is filling, once the child has created its tables and indexes (it says
        so): the store is ready when the child's rows are, and ``store()`` hands it out after the child's release."""
        with self._lock:
            store = self._stores.get(index_dir)
        if store is None:  # (opened outside the lock: answers meanwhile, from the child, read the folders' states)
            opened = self._open_store(index_dir)  # (LanceDB's import, 0.5 s)
            with self._lock:
                store = self._stores.setdefault(index_dir, opened)
        try:  # the first search's one-time costs (modules, LanceDB's full-text query set-up) before it comes
            from indexer.search import Where, candidates

            from .query_terms import analyze
            from .ranking import Candidates, rank

            found = candidates(store, "semcode", None, "semcode", 1, Where())
            rank(analyze("semcode"), Candidates(found.semantic, found.lexical, found.names), 1)
        except Exception as e:  # (only a warm-up: the search itself says what is wrong)
            import logging

            logging.getLogger(__name__).debug("warming the search of %s: %s", index_dir, e)

    def location(self, index_dir: str) -> Location:
        """Where an index lives (a local folder or an object-store URI) with the storage options that reach it."""
        return self.settings.index_location(index_dir)

    def _open_store(self, index_dir: str) -> Store:
        from indexer.store import Store

        where, read_only = self.location(index_dir), self.read_only
        copy = self._read_cache(where) if read_only and where.remote else None
        if self.encoder is not None:
            return Store.open(where, self.encoder.name, self.encoder.dim, read_only=read_only, read_cache=copy)
        from encoder.load import read_tokenizer_files

        config, _, _ = read_tokenizer_files(self.model)  # the vector size without loading the weights
        return Store.open(where, self.model_id(), config.hidden_size, read_only=read_only, read_cache=copy)

    def _read_cache(self, where: Location) -> Mirror | None:
        """The local read cache of a read-only index on object storage (``semcode.config.read_cache``; None when
        it is turned off)."""
        from indexer.read_cache import Mirror

        from .config import read_cache

        folder, max_bytes = read_cache()
        return Mirror(where, folder, max_bytes) if max_bytes > 0 else None

    # -- writes (on the writer thread) ----------------------------------------------------------------------------

    def index_folder(
        self,
        folder: Folder,
        progress: Callable[[Progress], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        *,
        vector_index: bool = True,
        embed: bool = True,
    ) -> IndexReport:
        """Bring the folder's index up to date (writer thread). Urgent writer jobs run between its files; it stops
        at the next file once `cancelled()` or the folder's ``cancel`` is set (the next run completes it). `embed`
        False: phase 1 only (every file indexed by text; the next run embeds)."""
        self._check_writable()
        if embed and self.apart is not None:  # (before any LanceDB import: the child starts at once)
            opened = partial(self._open_beside_child, folder.index_dir)
            self.apart.run(self.settings, folder, lambda: self.store(folder), opened, progress, cancelled)
        from indexer.index import index_repository

        store = self.store(folder)
        assert store is not None
        folder.refresh_counts()  # what the index holds already (a complete index on disk is no "0 chunks, new")
        folder.building = folder.interrupted or not folder.files
        folder.state, folder.last_error = "indexing", None

        def on_progress(p: Progress) -> None:
            folder.pending, folder.total = p.files_total - p.files_done, p.files_total
            if p.phase == "vectors":
                if folder.phase != "vectors":
                    store.end_run(folder.repo)  # every file is indexed (by text): a stop from now on leaves no file
                    # out, only vectors to fill in, which the coverage figure reports
                    folder.refresh_counts()  # counts as of phase 1's end
                folder.coverage = store.coverage(folder.repo)
            folder.phase = p.phase
            if progress is not None:
                progress(p)

        def between_files() -> bool:
            self.writer.drain()
            return folder.cancel.is_set() or (cancelled is not None and cancelled())

        store.begin_run(folder.repo)  # until end_run, status says a run was cut short (Ctrl-C, kill -9)
        try:
            report = index_repository(
                folder.root, store, _EncoderOnFirstUse(self), self.tokenizer().count,
                self.index_options(vector_index=vector_index, embed=embed), on_progress, cancelled=between_files,
            )  # fmt: skip
        except Exception as e:
            failure = self._storage_failure(folder.index_dir, e)
            folder.fail(f"indexing failed: {failure or e}")
            if failure is not None:
                raise failure from e
            raise
        finally:
            folder.pending = folder.total = 0
            folder.phase = None
        if not report.cancelled:
            store.end_run(folder.repo)
        folder.refresh_counts()
        if not folder.cancel.is_set():  # else the folder was removed, or the engine closes
            folder.state = "ready"
        return report

    def update_files(self, folder: Folder, paths: list[str]) -> IndexReport:
        """Re-index the given repository-relative paths (a save, a watcher batch): writer thread."""
        from indexer.index import update_files

        self._check_writable()
        enc = self.load_encoder()
        store = self.store(folder)
        assert store is not None
        report = update_files(folder.root, store, enc, enc.tokenizer.count, paths, self.index_options())
        folder.refresh_counts()
        return report

    def update_buffer(self, folder: Folder, rel: str, text: str) -> IndexReport:
        """Index an open document's text as the content of `rel` (writer thread); compacts the store every
        ``BUFFER_WRITES_PER_COMPACTION`` buffer writes (each writes a few table versions, and typing goes on)."""
        from indexer.index import update_buffer

        self._check_writable()
        enc = self.load_encoder()
        store = self.store(folder)
        assert store is not None
        report = update_buffer(folder.root, store, enc, enc.tokenizer.count, rel, text, self.index_options())
        if report.files_changed:
            writes = self._buffer_writes[folder.index_dir] = self._buffer_writes.get(folder.index_dir, 0) + 1
            if writes >= BUFFER_WRITES_PER_COMPACTION:
                store.compact()
                self._buffer_writes[folder.index_dir] = 0
            folder.refresh_counts()
        return report

    def update(
        self, progress: Callable[[Folder, Progress], None] | None = None, *, rebuild: bool = False
    ) -> dict[Path, IndexReport]:
        """Bring every folder's index up to date, one after the other on the writer; blocks until done."""
        reports = {}
        for folder in list(self.folders):
            if rebuild:
                self._destroy(folder)
            on_progress = None if progress is None else (lambda p, f=folder: progress(f, p))
            reports[folder.root] = result(self.writer.submit(self.index_folder, folder, on_progress))
        return reports

    def _destroy(self, folder: Folder) -> None:
        from indexer.store import Store

        self._check_writable()
        with self._lock:
            for f in self.folders:
                if f.index_dir == folder.index_dir:
                    f.store = None
            self._stores.pop(folder.index_dir, None)
            Store.destroy(self.location(folder.index_dir))

    def watch(
        self,
        folder: Folder,
        on_report: Callable[[IndexReport], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Start keeping the folder's index current as files change: each debounced batch runs on the writer as an
        urgent job. Raises OSError when the folder cannot be watched (e.g. the inotify limit)."""
        from indexer.watch import watch_repository

        self._check_writable()
        enc = self.load_encoder()
        store = self.store(folder)
        assert store is not None

        def on_writer(handle: Callable[[list[str]], None], batch: list[str]) -> None:  # the watcher's thread
            try:
                self.writer.urgent(handle, batch).result()
            except CancelledError:
                pass  # the engine closes
            except Exception as e:
                if on_error is not None:
                    on_error(e)
                raise

        def after(report: IndexReport) -> None:
            folder.refresh_counts()
            if on_report is not None:
                on_report(report)

        watcher = watch_repository(
            folder.root, store, enc, enc.tokenizer.count, self.index_options(),
            debounce_s=self.settings.debounce_s, on_report=after, run=on_writer,
        )  # fmt: skip
        watcher.start()
        folder.watcher = watcher

    def build_vector_index(self, folder: Folder, on_done: Callable[[str, bool], None] | None = None) -> None:
        """Build the vector index in a daemon thread once the folder's index holds ``VECTOR_INDEX_MIN_ROWS`` rows;
        searches stay exact (flat) until it is ready. ``on_done(message, ok)`` reports the outcome.

        Writes go on meanwhile; a compaction that commits first makes LanceDB refuse the build ("retryable commit
        conflict"), so it is retried twice; it is tried again after the next full run."""
        store, key = folder.store, folder.index_dir
        if store is None or key in self.building or self.read_only:
            return
        self.building.add(key)

        def build() -> None:
            try:
                for attempt in range(3):
                    try:
                        if store.ensure_vector_index(VECTOR_INDEX_MIN_ROWS) and on_done is not None:
                            on_done(f"vector index of {key} ready", True)
                        return
                    except Exception as e:
                        if attempt == 2 or "retryable" not in str(e).lower():
                            if on_done is not None:
                                on_done(f"building the vector index of {key} failed ({e}); searches stay flat", False)
                            return
            finally:
                self.building.discard(key)

        threading.Thread(target=build, name="semcode-vector-index", daemon=True).start()

    def _storage_failure(self, index_dir: str, error: Exception) -> Exception | None:
        """An object-store failure amid work on a remote index (the endpoint went away, access was revoked) as a
        StoreError naming the URI and the cause; None for anything else, and for local indexes."""
        from indexer.errors import StoreError
        from indexer.storage import is_uri, storage_cause

        if isinstance(error, StoreError) or not is_uri(index_dir):
            return None
        cause = storage_cause(error, self.settings.storage())
        return None if cause is None else StoreError(f"{index_dir}: {cause}")

    def forget_repository(self, repo: str | Path, index_dir: str | None = None) -> int:
        """Remove a repository from an index shared by several (``semcode index --ray``): its chunks, its file
        records and its marker entries (writer thread; blocks until done). `repo`: its root (an existing folder) or
        its repo id as the index records it (a repository gone from disk); `index_dir`: default, the settings' index
        of that root. Returns the chunk rows removed (0 when the index does not exist)."""
        from indexer.identity import repo_id

        self._check_writable()
        root = Path(repo)
        rid = repo_id(root) if root.is_dir() else str(repo)
        index_dir = index_dir or self.settings.index_dir_for(root)
        with self._lock:
            if index_dir not in self._stores:
                if not self.location(index_dir).exists():
                    return 0
                self._stores[index_dir] = self._open_store(index_dir)
            store = self._stores[index_dir]
        removed: int = result(self.writer.submit(store.forget_repo, rid))
        for folder in self.folders:
            if folder.store is store and folder.repo == rid:
                folder.refresh_counts()
        return removed

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError("this index is served read-only: another process maintains it")

    # -- reads (any thread) ---------------------------------------------------------------------------------------

    def search(
        self,
        q: SearchQuery,
        *,
        repo: str | None = None,
        everywhere: bool = False,
        stop: Callable[[], bool] | None = None,
        deadline_s: float = SEARCH_DEADLINE_S,
    ) -> list[Hit]:
        """Hits of every served folder x every path glob. Hybrid searches are ranked by ``semcode.ranking`` over the
        candidates of all of them together; semantic and lexical ones are each retriever's own list, merged by score
        (best per chunk). ``repo`` keeps the rows of that repository id only; ``everywhere`` keeps every repository
        in the opened indexes, served or not (``semcode search`` without ``--repo``). Before each search, `stop()` is
        checked (True: return []) and the deadline (past `deadline_s` seconds from the call: ``SearchTimeout``). A
        broken glob raises ValueError before any search runs. The query is encoded once (``query_vector``). The
        search waits for a turn of the process's ``SearchGate`` (``Busy`` when too many are waiting), and for a new
        index's phase 1 in a child (``PhaseOneApart.wait``)."""
        if self.apart is not None:
            self.apart.wait()
        with self.gate.slot():
            if self.apart is not None and (hits := self.apart.search(self.folders, q, repo, everywhere)) is not None:
                return hits  # the child that built a new index answers while this process opens it
            return self._search(q, repo, everywhere, stop, deadline_s)

    def _search(self, q: SearchQuery, repo: str | None, everywhere: bool, stop: Stop, deadline_s: float) -> list[Hit]:
        deadline = Deadline(deadline_s)
        scopes = self._scopes(repo, everywhere)
        if not scopes:
            return []  # (before importing LanceDB: a server's first query may come before any index exists)
        from indexer.search import Where
        from indexer.sql import path_regex

        for pattern in (*q.include, *q.exclude):
            path_regex(pattern)  # a broken glob is refused before any search runs
        if not q.query.strip():
            return []
        vector = self.query_vector(q.query) if q.mode != "lexical" and self._any_vector(repo, everywhere) else None
        languages = list(q.languages) if q.languages else None
        globs: list[str | None] = [*q.include] if q.include else [None]
        jobs = [
            (store, Where(scope_repo, languages, glob, q.exclude, only))
            for (_dir, scope_repo, only), store in scopes.items()
            for glob in globs
        ]
        hits = (
            self._ranked(q, jobs, vector, deadline, stop)
            if q.mode == "hybrid"
            else self._merged(q, jobs, vector, deadline, stop)
        )
        # an empty answer because the filters match nothing says so (unless the deadline leaves no time to check)
        stopped = stop is not None and stop()
        if not hits and (q.paths or q.languages) and not (stopped or deadline.passed()) and not self._any_match(jobs):
            raise EmptyFilter(
                f"no indexed file matches the filter ({q.describe_filter()}); globs are relative to the repository "
                "root ('src/**/*.py'), and '!glob' leaves files out ('!tests/**')"
            )
        return hits

    def _ranked(
        self, q: SearchQuery, jobs: list[tuple[Store, Where]], vector: np.ndarray | None, deadline: Deadline, stop: Stop
    ) -> list[Hit]:
        from indexer.search import candidates

        from .query_terms import analyze, lexical_query
        from .ranking import Candidates, names_query, rank

        terms = analyze(q.query)
        name_terms = names_query(terms, vector is not None)
        depth = max(CANDIDATE_DEPTH, 3 * q.limit)
        semantic: list[Hit] = []
        lexical: list[Hit] = []
        names: list[Hit] = []
        for done, (store, where) in enumerate(jobs):
            if stop is not None and stop():
                return []
            deadline.check(done, len(jobs))
            text = lexical_query(terms, self._guarded(store, store.count_chunks))
            found = self._guarded(store, partial(candidates, store, text, vector, name_terms, depth, where))
            semantic += found.semantic
            lexical += found.lexical
            names += found.names
        if len(jobs) > 1:  # one list per side, best first, as if from one search
            semantic.sort(key=lambda h: -h.score)
            lexical.sort(key=lambda h: -h.score)
        return rank(
            terms,
            Candidates(semantic, lexical, names),
            q.limit,
            filtered=bool(q.include),
            group_by_file=q.group_by_file,
        )

    def _merged(
        self, q: SearchQuery, jobs: list[tuple[Store, Where]], vector: np.ndarray | None, deadline: Deadline, stop: Stop
    ) -> list[Hit]:
        from indexer.search import search

        best: dict[tuple[str, str, int, int], Hit] = {}
        for done, (store, where) in enumerate(jobs):
            if stop is not None and stop():
                return []
            deadline.check(done, len(jobs))
            hits = self._guarded(
                store, partial(search, store, None, q.query, q.mode, q.limit, vector=vector, **where.kwargs())
            )
            for h in where.keep(hits):
                key = (h.chunk.repo, h.chunk.path, h.chunk.start_line, h.chunk.end_line)
                if key not in best or best[key].score < h.score:
                    best[key] = h
        ordered = sorted(best.values(), key=lambda h: (-h.score, h.chunk.path, h.chunk.start_line))
        if q.group_by_file:
            firsts: dict[tuple[str, str], Hit] = {}
            for h in ordered:
                firsts.setdefault((h.chunk.repo, h.chunk.path), h)
            ordered = list(firsts.values())
        return ordered[: q.limit]

    def coverage(self, *, repo: str | None = None, everywhere: bool = False) -> Coverage:
        """How much of what a search with these scopes reads is embedded (``Coverage.share``: "82% embedded"):
        while a full run's phase 2 goes on, semantic matching covers only the embedded rows and the rest are found
        by their text, names and paths. Every front door reports it with its answers."""
        from indexer.coverage import Coverage

        if self.apart is not None and (answered := self.apart.coverage(self.folders, repo, everywhere)) is not None:
            return answered
        total = Coverage()
        for (_dir, scope, _only), store in self._scopes(repo, everywhere).items():
            total += self._guarded(store, partial(store.coverage, scope))
        return total

    def partial_notes(self, *, repo: str | None = None, everywhere: bool = False) -> list[str]:
        """Why answers from these scopes may miss files (``Folder.partial``: a run that has not looked at every file
        yet, or one cut short and not finished since), one sentence per folder; [] when every index is whole."""
        notes = []
        for folder in self.folders:
            if not everywhere and repo is not None and repo not in (folder.repo, str(folder.root)):
                continue
            if self.apart is not None and self.apart.handing_over(folder.index_dir) is not None:
                continue  # a new index, every file in (its child answers while this process opens it)
            store = self.store(folder, create=False)
            if store is None:
                continue
            if folder.state != "indexing":  # (a run in progress keeps its own figures)
                folder.interrupted = self._guarded(store, partial(store.incomplete, folder.repo))
                if folder.interrupted:
                    folder.files = self._guarded(store, partial(store.count_files, folder.repo))
            if (note := folder.partial()) is not None:
                notes.append(note)
        return notes

    def _any_match(self, jobs: list[tuple[Store, Where]]) -> bool:
        return any(self._guarded(store, partial(store.count_matching, **where.kwargs())) for store, where in jobs)

    def _guarded(self, store: Store, call: Callable[[], T]) -> T:
        """``call()``, a storage failure turned into the one-line error of ``_storage_failure``."""
        try:
            return call()
        except Exception as e:
            failure = self._storage_failure(store.location.uri, e)
            if failure is None:
                raise
            raise failure from e

    def query_vector(self, query: str) -> np.ndarray:
        """The query's vector, of its first ``MAX_QUERY_TOKENS`` tokens (``semcode.limits.model_text``): the same
        text whichever encoder is loaded, at a bounded cost. Repeated queries (agents ask the same ones again, and
        each page of an answer repeats its query) come from ``QueryVectors``, keyed by the encoder that made them."""
        encoder = self.query_encoder()
        key = (type(encoder).__name__, str(encoder.name), query)  # (the NumPy encoder until torch's has loaded)
        if (vector := self._query_vectors.get(key)) is None:
            vector = self._query_batcher.encode(model_text(query, encoder.tokenizer.count))
            self._query_vectors.put(key, vector)
        return vector

    def _any_vector(self, repo: str | None, everywhere: bool) -> bool:
        """Whether any chunk a search with these scopes reads has a vector: a first run's phase 1 has written every
        row and embedded none yet, and a hybrid search then ranks by text, names and paths without loading an
        encoder for a vector nothing could match."""
        return self.coverage(repo=repo, everywhere=everywhere).embedded > 0

    def _scopes(self, repo: str | None, everywhere: bool) -> dict[tuple[str, str | None, str | None], Store]:
        """(index folder, repository filter or None, repository its hits must be of or None) -> store, for every
        folder a search reads. A store whose rows are all of the wanted repository (``Store.only_repo``) is read
        without the filter, which costs about 10 ms at 100k rows; its hits are then checked instead (a read-only
        store's version, which that answer is cached by, may be a moment old)."""
        scopes: dict[tuple[str, str | None, str | None], Store] = {}
        for folder in list(self.folders):
            store = self.store(folder, create=False) if self.open_on_read else folder.store
            if store is not None:
                scope = repo if repo is not None else None if everywhere else folder.repo
                if scope is not None and store.only_repo() == scope:
                    scopes.setdefault((folder.index_dir, None, scope), store)
                else:
                    scopes.setdefault((folder.index_dir, scope, None), store)
        return scopes

    def related(
        self,
        folder: Folder,
        rel: str,
        line: int,
        limit: int = 10,
        *,
        languages: Sequence[str] | None = None,
        path_glob: str | None = None,
    ) -> tuple[StoredChunk | None, list[Hit]]:
        """(the chunk at `rel`:`line` (0-based), the chunks most like it); (None, []) when no indexed chunk covers
        that line. The query vector comes from the index; a chunk phase 2 has not embedded yet is encoded now (its
        first ``MAX_QUERY_TOKENS`` tokens, by ``query_encoder``: no model load). The arguments are checked against
        ``semcode.limits`` (ValueError naming the field)."""
        from indexer.search import related

        check_line(line)
        check_limit(limit)
        langs, glob = check_languages(languages), check_glob(path_glob)
        if self.apart is not None:
            self.apart.wait()
        store = self.store(folder, create=False)
        if store is None:
            return None, []
        exclude = (glob[1:],) if glob and glob.startswith("!") else ()
        glob = None if exclude else glob
        with self.gate.slot():
            return related(
                store, folder.repo, rel, line, limit, languages=list(langs or []) or None, path_glob=glob,
                exclude=exclude, encode=self._document_vector,
            )  # fmt: skip

    def why_no_chunk(self, folder: Folder, rel: str, line: int) -> str:
        """What was wrong when ``related`` found no chunk at `rel`:`line` (0-based): no index, no such file, a file
        the index does not hold (and why), a line past the file's end, or a line no chunk covers."""
        where = f"{rel}:{line + 1}"
        store = self.store(folder, create=False)
        if store is None:
            return f"{folder.root} is not indexed yet; index it with: semcode index {folder.root}"
        path = folder.root / rel
        record = self._guarded(store, partial(store.file_record, folder.repo, rel))
        if record is None and not path.is_file():
            return f"{rel}: no such file in {folder.root}"
        if record is None:
            return (
                f"{rel} is not in the index of {folder.root}: ignored (.gitignore, .semcodeignore, built-in "
                f"excludes), or new since the last run (semcode index {folder.root})"
            )
        if record.status != "indexed":
            return f"{rel} is not indexed: {record.reason}"
        lines = _line_count(path)
        if lines is not None and line >= lines:
            return f"{where} is past the end of {rel}, which has {lines} lines"
        return f"{where}: no indexed chunk covers this line (if the file changed since: semcode index {folder.root})"

    def _document_vector(self, text: str) -> np.ndarray:
        encoder = self.query_encoder()
        vector: np.ndarray = encoder.encode([model_text(text, encoder.tokenizer.count)], kind="document")[0]
        return vector

    def read(
        self,
        folder: Folder,
        rel: str,
        start_line: int | None = None,
        end_line: int | None = None,
        *,
        max_lines: int | None = None,
        max_chars: int | None = None,
    ) -> Lines:
        """Lines `start_line`..`end_line` (0-based, inclusive; default the whole file) of an indexed file, cut to
        `max_lines` and `max_chars`. Only files the index holds are read: ignored, skipped and secret-bearing files
        and paths out of the root raise ``PathOutside``/``FileNotFoundError``; a line past ``semcode.limits.MAX_LINES``
        raises ValueError."""
        for name, value in (("start_line", start_line), ("end_line", end_line)):
            if value is not None:
                check_line(value, name)
        rel = folder.inside(rel)
        store = self.store(folder, create=False)
        record = None if store is None else store.files(folder.repo).get(rel)
        if record is None or record.status != "indexed":
            why = f"skipped ({record.reason})" if record is not None else "not in the index"
            raise FileNotFoundError(f"{rel}: {why}; only indexed files of {folder.root} can be read")
        lines = source_lines(folder.root, rel, self.settings.discover_options())
        return cut_lines(rel, lines, start_line, end_line, max_lines=max_lines, max_chars=max_chars)

    def skipped_files(self, folder: Folder) -> list[tuple[str, str]]:
        """(path, reason) of every file the folder's index skipped."""
        store = self.store(folder, create=False)
        if store is None:
            return []
        return sorted((r.path, r.reason or "") for r in store.files(folder.repo).values() if r.status == "skipped")

    def text_only_files(self, folder: Folder) -> list[tuple[str, str]]:
        """(path, reason) of every file the folder's index searches by text only (``indexer.embed_policy``)."""
        from indexer.index import TEXT_ONLY

        store = self.store(folder, create=False)
        if store is None:
            return []
        records = store.files(folder.repo).values()
        return sorted(
            (r.path, r.reason.removeprefix(TEXT_ONLY))
            for r in records
            if r.status == "indexed" and r.reason and r.reason.startswith(TEXT_ONLY)
        )

    def stats(self, folder: Folder) -> dict[str, Any]:
        """The folder's index folder: counts, versions, bytes (``Store.stats``); {} before it exists."""
        store = self.store(folder, create=False)
        return {} if store is None else store.stats()

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def close(self) -> list[Callable[[], None]]:
        """No new writes; a running full run stops at its next file. Returns the watchers' ``stop``s (call them off
        any event loop; ``close_now`` does)."""
        for folder in self.folders:
            folder.cancel.set()
        self.writer.close()
        stops = []
        for folder in self.folders:
            watcher, folder.watcher = folder.watcher, None
            if watcher is not None:
                stops.append(watcher.stop)
        return stops

    def close_now(self) -> None:
        for stop in self.close():
            stop()

    # -- hit ids (``semcode.hit_ids``) ----------------------------------------------------------------------------

    def chunk_at(self, folder: Folder, rel: str, line: int) -> StoredChunk | None:
        """The innermost indexed chunk of `rel` whose lines cover `line` (0-based), or None (no index yet, no such
        chunk). ``semcode.hit_ids`` finds and expands hits with it; any thread."""
        store = self.store(folder, create=False)
        return None if store is None else self._guarded(store, partial(store.chunk_at, folder.repo, rel, line))


def _line_count(path: Path) -> int | None:
    """Lines in a file as an editor numbers them (a last line without a newline counts); None when unreadable."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


class _EncoderOnFirstUse:
    """The encoder as a full run sees it: loaded when phase 2 first encodes (on the writer thread), so phase 1
    (every file searchable by text) does not wait for torch and the weights."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dim(self) -> int:
        return int(self.engine.load_encoder().dim)

    def encode(
        self,
        texts: list[str],
        kind: Literal["document", "query"] = "document",
        progress: Callable[[int, int], None] | None = None,
        max_tokens: int | None = None,
    ) -> np.ndarray:
        return self.engine.load_encoder().encode(texts, kind=kind, progress=progress, max_tokens=max_tokens)
