"""Indexing end to end: a real fixture repository, the tiny ModernBERT, a real LanceDB on disk.

Incrementality (edit, rename, delete, revert), crash safety (SIGKILL mid-index, then reopen and complete), and the
CLI's index/search/status through a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from indexer.index import IndexOptions, index_repository, repo_id
from indexer.store import Coverage, Store

ROOT = Path(__file__).resolve().parent.parent


def py_function(i: int) -> str:
    return textwrap.dedent(
        f"""\
        def function_{i}(value):
            \"\"\"Return value scaled by {i}.\"\"\"
            total = value * {i}
            return total + {i}
        """
    )


def make_repo(root: Path, n_files: int = 6) -> Path:
    (root / ".git").mkdir(parents=True)
    (root / ".gitignore").write_text("ignored/\n")
    for i in range(n_files):
        (root / f"pkg/mod_{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / f"pkg/mod_{i}.py").write_text(py_function(i) + "\n\n" + py_function(100 + i))
    (root / "ignored").mkdir()
    (root / "ignored/skip.py").write_text("def hidden(): pass\n")
    (root / "README.md").write_text("# Fixture\n\nParses configuration files.\n")
    (root / "blob.py").write_bytes(b"\x00\x01binary")
    return root


def run_index(root: Path, store: Store, enc, **kw):
    return index_repository(root, store, enc, enc.tokenizer.count, IndexOptions(**kw))


def test_index_then_noop_then_incremental_changes(tmp_path, enc):
    root = make_repo(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    first = run_index(root, store, enc)
    assert first.files_changed == 7  # 6 modules + README
    assert first.chunks_encoded == first.chunks_written > 0
    assert {s.path: s.reason for s in first.skipped} == {"blob.py": "binary file (NUL bytes)"}

    again = run_index(root, store, enc)
    assert (again.files_changed, again.chunks_encoded, again.files_unchanged) == (0, 0, 7)

    # edit one file: only it is re-chunked; only its new function is encoded
    mod0 = root / "pkg/mod_0.py"
    mod0.write_text(py_function(0) + "\n\n" + py_function(999))
    edit = run_index(root, store, enc)
    assert edit.files_changed == 1 and edit.chunks_encoded == 1
    hits = store.search_text("function_999", 5)
    assert hits and hits[0].chunk.path == "pkg/mod_0.py" and hits[0].chunk.symbol == "function_999"

    # rename: the file moves, nothing is encoded again; the old path leaves the index
    mod0.rename(root / "pkg/renamed.py")
    moved = run_index(root, store, enc)
    assert moved.files_deleted == 1 and moved.chunks_encoded == 0
    hits = store.search_text("function_999", 5)
    assert hits[0].chunk.path == "pkg/renamed.py" and hits[0].chunk.symbol == "function_999"
    assert all(h.chunk.path != "pkg/mod_0.py" for h in hits)

    # revert the edit: its old content is cached, nothing to encode
    (root / "pkg/renamed.py").write_text(py_function(0) + "\n\n" + py_function(100))
    reverted = run_index(root, store, enc)
    assert reverted.chunks_encoded == 0

    # delete: gone from search and from the files table
    (root / "pkg/mod_1.py").unlink()
    deleted = run_index(root, store, enc)
    assert deleted.files_deleted == 1
    assert all(h.chunk.path != "pkg/mod_1.py" for h in store.search_text("function_1", 20))
    assert "pkg/mod_1.py" not in store.files(repo_id(root))

    # touching a file without changing it refreshes the record only
    os.utime(root / "pkg/mod_2.py", None)
    touched = run_index(root, store, enc)
    assert touched.chunks_encoded == 0 and touched.files_changed == 0


def test_versions_grow_with_batches_not_files(tmp_path, enc):
    root = make_repo(tmp_path / "repo", n_files=30)
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    run_index(root, store, enc, batch_files=16)
    stats = store.stats()
    assert stats["rows"] > 60
    # a version per write batch, per phase-2 slice and per compaction step (kept for 60 s), not one per file (30)
    assert max(stats["versions"].values()) <= 16, stats


def test_semantic_search_returns_the_indexed_chunk(tmp_path, enc):
    root = make_repo(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    run_index(root, store, enc)
    # the tiny model is random, so query with a chunk's own text: it must come back first
    target = store.search_text("function_103", 1)[0].chunk
    vec = enc.encode([target.text])[0]
    hits = store.search_vector(vec, 3)
    assert hits[0].chunk.path == target.path and hits[0].chunk.symbol == target.symbol
    assert hits[0].score > 0.99 and hits[0].reasons == ("semantic",)


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from encoder import load_encoder
from indexer.index import IndexOptions, index_repository
from indexer.store import Coverage, Store
root, index, model = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
enc = load_encoder(model, device="cpu", dtype="fp32")
store = Store.open(index, model_id=enc.name, dim=enc.dim)
def progress(p):
    print("BATCH", p.phase, p.files_done, p.chunks_embedded, flush=True)
    time.sleep(0.3)  # give the parent time to kill us between (or during) batches
options = IndexOptions(batch_files=4, checkpoint_seconds=0.0)  # phase 2 in slices of MIN_CHECKPOINT_TOKENS
index_repository(root, store, enc, enc.tokenizer.count, options, progress=progress)
print("DONE", flush=True)
"""


def kill_at(tmp_path: Path, model: Path, root: Path, moment: Callable[[str, int, int], bool]) -> Path:
    """Run KILL_SCRIPT and SIGKILL it at the first progress report for which ``moment(phase, files_done,
    chunks_embedded)`` holds; returns the index folder."""
    index = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(root), str(index), str(model)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("BATCH"):
            _, phase, files, embedded = line.split()
            if moment(phase, int(files), int(embedded)):
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return index


def test_sigkill_in_phase_1_then_reopen_and_complete(tmp_path, model, enc):
    root = make_repo(tmp_path / "repo", n_files=24)
    index = kill_at(tmp_path, model, root, lambda phase, files, _embedded: phase == "rows" and files >= 8)

    # the index opens, answers, and holds what was written before the kill
    store = Store.open(index, model_id=enc.name, dim=enc.dim)
    partial = store.stats()["rows"]
    assert partial > 0
    assert store.search_text("function_0", 3)
    before = store.coverage()
    # the next run completes it, encoding only what had no vector yet
    report = run_index(root, store, enc)
    total = store.stats()["rows"]
    assert total > partial
    assert report.chunks_encoded <= total - partial + before.pending
    assert store.coverage().pending == 0 and store.coverage().share == 1.0
    assert run_index(root, store, enc).chunks_encoded == 0


def test_sigkill_in_phase_2_resumes_where_it_stopped(tmp_path, model, enc):
    root = make_repo(tmp_path / "repo", n_files=24)
    index = kill_at(tmp_path, model, root, lambda phase, _files, embedded: phase == "vectors" and embedded > 0)

    store = Store.open(index, model_id=enc.name, dim=enc.dim)
    before = store.coverage()
    assert before.embedded > 0 and before.pending > 0  # killed amid phase 2
    rows = store.stats()["rows"]
    # every file was searchable by text before the kill
    assert {c.path for c in store.chunks()} == {r.path for r in store.files(repo_id(root)).values()
                                                if r.status == "indexed"}  # fmt: skip
    # the next run reads no file again and embeds only the rows that had no vector
    report = run_index(root, store, enc)
    assert report.files_changed == 0 and store.stats()["rows"] == rows
    assert 0 < report.chunks_encoded <= before.pending
    after = store.coverage()
    assert after.pending == 0 and after.embedded == rows


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_cli_index_search_status(tmp_path, model):
    root = make_repo(tmp_path / "repo")
    index = str(tmp_path / "index")
    out = cli("index", str(root), "--model", str(model), "--index-dir", index)
    assert out.returncode == 0, out.stderr
    assert "7 changed" in out.stdout and "skipped 1: binary file" in out.stdout
    out = cli("search", "function_104", "--mode", "lexical", "--model", str(model), "--index-dir", index, "--json")
    assert out.returncode == 0, out.stderr
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert hits[0]["path"] == "pkg/mod_4.py" and hits[0]["symbol"] == "function_104"
    assert hits[0]["reasons"] == ["lexical"]
    out = cli("search", "scaled value", "--model", str(model), "--index-dir", index, "--json", "--lang", "markdown")
    assert out.returncode == 0, out.stderr
    assert all(json.loads(line)["language"] == "markdown" for line in out.stdout.splitlines())
    out = cli("status", "--model", str(model), "--index-dir", index, "--json", "--repo", str(root))
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["rows"] > 0 and status["files"] == 7
    assert status["skippedFiles"] == [{"path": "blob.py", "reason": "binary file (NUL bytes)"}]
    # no --model: the shipped default model, in a table of its own beside the tiny model's
    out = cli("index", str(root), "--index-dir", index)
    assert out.returncode == 0, out.stderr
    status = json.loads(cli("status", "--index-dir", index, "--json", "--repo", str(root)).stdout)
    assert status["model"].startswith("semcode-code-minilm@") and status["files"] == 7
    out = cli("search", "scale a value", "--index-dir", index, "--json", "--repo", str(root), "--mode", "semantic")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["symbol"].startswith("function_")


def test_update_files_for_single_paths(tmp_path, enc):
    from indexer.index import update_files

    root = make_repo(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    run_index(root, store, enc)
    (root / "pkg/new.py").write_text(py_function(4242))
    (root / "pkg/mod_3.py").unlink()
    (root / "ignored/also.py").write_text(py_function(7777))
    report = update_files(
        root, store, enc, enc.tokenizer.count, ["pkg/new.py", "pkg/mod_3.py", "ignored/also.py", "pkg/mod_4.py"]
    )
    assert report.files_deleted == 1  # mod_3 is gone
    assert report.files_changed == 1 and report.chunks_encoded == 1  # new.py; mod_4 is unchanged
    assert store.search_text("function_4242", 1)[0].chunk.path == "pkg/new.py"
    assert all(h.chunk.path != "ignored/also.py" for h in store.search_text("function_7777", 10))
    assert "pkg/mod_3.py" not in store.files(repo_id(root))


def test_search_modes_and_related(tmp_path, enc):
    from indexer.search import related, search

    root = make_repo(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    run_index(root, store, enc)
    lexical = search(store, None, "function_102", "lexical", 3)
    assert lexical[0].chunk.symbol == "function_102" and lexical[0].reasons == ("lexical",)
    hybrid = search(store, enc, "function_102", "hybrid", 5, languages=["python"], path_glob="pkg/*.py")
    assert hybrid and all(h.chunk.language == "python" and h.chunk.path.startswith("pkg/") for h in hybrid)
    assert any("lexical" in h.reasons for h in hybrid) and any("semantic" in h.reasons for h in hybrid)
    assert search(store, enc, "   ", "hybrid") == []
    with pytest.raises(ValueError, match="needs an encoder"):
        search(store, None, "x", "semantic")

    # related: line 1 of pkg/mod_2.py is inside function_2; it and its overlaps are not results
    chunk, hits = related(store, repo_id(root), "pkg/mod_2.py", 1, limit=5)
    assert chunk is not None and chunk.symbol == "function_2"
    assert hits and all(not (h.chunk.path == "pkg/mod_2.py" and h.chunk.start_line <= 3) for h in hits)
    assert related(store, repo_id(root), "pkg/mod_2.py", 500) == (None, [])
    # the query vector is the row's own: an emptied vector cache (pruned by another process's compaction while
    # an indexing run had not committed its rows yet) changes nothing
    store._vectors.delete("true")
    assert related(store, repo_id(root), "pkg/mod_2.py", 1, limit=5) == (chunk, hits)


def test_cli_related(tmp_path, model):
    root = make_repo(tmp_path / "repo")
    index = str(tmp_path / "index")
    assert cli("index", str(root), "--model", str(model), "--index-dir", index).returncode == 0
    out = cli("related", f"{root}/pkg/mod_2.py:2", "--model", str(model), "--index-dir", index, "--json")
    assert out.returncode == 0, out.stderr
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert hits and all(not (h["path"] == "pkg/mod_2.py" and h["start_line"] <= 3) for h in hits)
    assert all(h["reasons"] == ["semantic"] for h in hits)
    out = cli("related", f"{root}/pkg/mod_2.py:400", "--model", str(model), "--index-dir", index)
    assert out.returncode == 2 and "pkg/mod_2.py:400 is past the end of pkg/mod_2.py, which has" in out.stderr
    out = cli("related", f"{root}/pkg/mod_2.py", "--model", str(model), "--index-dir", index)
    assert out.returncode == 2 and "expected FILE:LINE" in out.stderr


def test_update_buffer_indexes_unsaved_text_and_the_disk_wins_back(tmp_path, enc):
    from indexer.index import update_buffer, update_files

    root = make_repo(tmp_path / "repo")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    run_index(root, store, enc)

    def buffer(path: str, text: str):
        return update_buffer(root, store, enc, enc.tokenizer.count, path, text)

    # an unsaved edit: the buffer's function replaces the file's in the index; only it is encoded
    edited = py_function(0) + "\n\n" + py_function(5151)
    report = buffer("pkg/mod_0.py", edited)
    assert (report.files_changed, report.chunks_encoded) == (1, 1)
    assert store.search_text("function_5151", 1)[0].chunk.path == "pkg/mod_0.py"
    assert all(h.chunk.symbol != "function_100" for h in store.search_text("function_100", 20))
    assert store.chunk_at(repo_id(root), "pkg/mod_0.py", 6) is not None
    assert buffer("pkg/mod_0.py", edited).chunks_written == 0  # the index already holds this text
    # a buffer of a file not yet on disk
    assert buffer("pkg/unsaved.py", py_function(6161)).files_changed == 1
    assert store.search_text("function_6161", 1)[0].chunk.path == "pkg/unsaved.py"

    # what the walk would not index is not indexed from a buffer either
    skipped = {
        p: buffer(p, text).skipped
        for p, text in [
            ("ignored/skip.py", py_function(7171)),
            (".env", "TOKEN=1\n"),
            ("pkg/min.py", "x = 1;" * 3000),
            ("pkg/data.bin", "abc"),
        ]
    }
    assert {p: [s.reason.split(" (")[0] for s in v] for p, v in skipped.items()} == {
        "ignored/skip.py": ["ignored"],
        ".env": ["secret-bearing file"],
        "pkg/min.py": ["minified or generated"],
        "pkg/data.bin": ["unsupported file type"],
    }
    assert all(h.chunk.symbol != "function_7171" for h in store.search_text("function_7171", 20))

    # closing the buffers: update_files reverts to the disk (a vanished file leaves), without encoding anything
    reverted = update_files(root, store, enc, enc.tokenizer.count, ["pkg/mod_0.py", "pkg/unsaved.py"])
    assert (reverted.files_changed, reverted.files_deleted, reverted.chunks_encoded) == (1, 1, 0)
    assert store.search_text("function_100", 1)[0].chunk.path == "pkg/mod_0.py"
    assert all(h.chunk.symbol != "function_5151" for h in store.search_text("function_5151", 20))
    assert "pkg/unsaved.py" not in store.files(repo_id(root))

    # a crash with unsaved text in the index: the next full run reads the disk again
    buffer("pkg/mod_1.py", py_function(8181))
    healed = run_index(root, store, enc)
    assert (healed.files_changed, healed.chunks_encoded) == (1, 0)
    assert all(h.chunk.symbol != "function_8181" for h in store.search_text("function_8181", 20))
    assert store.search_text("function_101", 1)[0].chunk.path == "pkg/mod_1.py"


def test_progress_of_both_phases_and_cancel_mid_slice(tmp_path, enc):
    root = make_repo(tmp_path / "repo", n_files=12)
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    saved = enc.batch_tokens
    enc.batch_tokens = 64  # several encoder batches inside the one slice of phase 2
    try:
        seen = []
        report = index_repository(root, store, enc, enc.tokenizer.count, IndexOptions(), progress=seen.append)
        total = report.files_changed + len(report.skipped)
        # phase 1 first (files, nothing encoded), then phase 2 (every file done, chunks embedded, tokens growing)
        phases = [p.phase for p in seen]
        assert phases == sorted(phases, key=["rows", "vectors"].index) and "rows" in phases
        rows = [p for p in seen if p.phase == "rows"]
        assert rows[-1].files_done == total and all(p.tokens_encoded == 0 for p in rows)
        vectors = [p for p in seen if p.phase == "vectors"]
        assert len(vectors) >= 3
        assert all(p.files_done == p.files_total == total for p in vectors)
        assert [p.tokens_encoded for p in vectors] == sorted(p.tokens_encoded for p in vectors)
        assert [p.chunks_embedded for p in vectors] == sorted(p.chunks_embedded for p in vectors)
        assert vectors[-1].chunks_embedded == vectors[-1].chunks_to_embed == report.chunks_written
        assert seen[-1].tokens_encoded == report.tokens_encoded
        assert report.searchable_seconds is not None and report.searchable_seconds <= report.seconds

        # a cancel seen while a slice is encoded stops the run at once: every row is there (phase 1), no vector of
        # the slice is; the next run embeds them without writing a row again
        fresh = Store.open(tmp_path / "index2", model_id=enc.name, dim=enc.dim)
        calls = []
        cancelled = index_repository(
            root,
            fresh,
            enc,
            enc.tokenizer.count,
            IndexOptions(),
            progress=calls.append,
            cancelled=lambda: any(p.tokens_encoded for p in calls),
        )
        assert cancelled.cancelled and cancelled.chunks_written == report.chunks_written
        assert cancelled.chunks_pending == report.chunks_written
        assert fresh.coverage() == Coverage(embedded=0, pending=report.chunks_written)
        again = index_repository(root, fresh, enc, enc.tokenizer.count, IndexOptions())
        assert not again.cancelled and again.chunks_written == 0 and again.chunks_encoded == report.chunks_encoded
        assert fresh.coverage() == Coverage(embedded=report.chunks_written)
    finally:
        enc.batch_tokens = saved


class _Killed(Exception):
    """Stands for a kill -9 between two slices of encoding."""


class _DyingEncoder:
    """The real encoder until its `die_at`-th encode call, which raises _Killed; counts the texts it encoded."""

    def __init__(self, enc, die_at: int) -> None:
        self.enc, self.die_at, self.calls, self.texts = enc, die_at, 0, 0

    @property
    def dim(self) -> int:
        return int(self.enc.dim)

    def encode(self, texts, kind="document", progress=None, max_tokens=None):
        self.calls += 1
        if self.calls == self.die_at:
            raise _Killed
        self.texts += len(texts)
        return self.enc.encode(texts, kind=kind, progress=progress, max_tokens=max_tokens)


@pytest.mark.parametrize("shape", ["many files", "one big file"])
def test_a_kill_loses_at_most_the_last_slice_of_encoding(tmp_path, enc, shape):
    root = tmp_path / "repo"
    if shape == "many files":
        make_repo(root, n_files=40)
    else:
        (root / ".git").mkdir(parents=True)
        (root / "big.py").write_text("\n\n".join(py_function(i) for i in range(120)))
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    # no time at all between checkpoints: every slice and batch is the minimum (1,024 tokens)
    dying = _DyingEncoder(enc, die_at=3)
    with pytest.raises(_Killed):
        index_repository(root, store, dying, enc.tokenizer.count, IndexOptions(checkpoint_seconds=0.0))
    assert dying.texts > 0
    if shape == "many files":  # the batches before the kill were written whole: rows and records
        assert store.stats()["rows"] > 0
        assert any(r.status == "indexed" for r in store.files(repo_id(root)).values())
    after = index_repository(root, store, enc, enc.tokenizer.count, IndexOptions())
    clean = Store.open(tmp_path / "index2", model_id=enc.name, dim=enc.dim)
    fresh = index_repository(root, clean, enc, enc.tokenizer.count)
    # everything encoded before the kill was kept: the next run encodes only the rest, and the index is whole
    assert after.chunks_encoded == fresh.chunks_encoded - dying.texts
    assert store.stats()["rows"] == clean.stats()["rows"]


def test_new_content_checks_reread_every_file_once(tmp_path, enc):
    """An index made before a content check existed (secrets by content) holds files that check now refuses: the
    first run after the upgrade reads every file once, even those whose size and mtime are unchanged."""
    import random
    import string

    from indexer.read import CONTENT_CHECKS

    root = make_repo(tmp_path / "repo", n_files=3)
    target = root / "pkg/mod_0.py"
    target.write_text(target.read_text() + "# " + "padding " * 60 + "\n")
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    run_index(root, store, enc)
    repo = repo_id(root)
    assert store.checks_version(repo) == CONTENT_CHECKS
    # the file takes a private key without its size or mtime changing: an ordinary run does not read it again
    st = target.stat()
    rng = random.Random(0)
    body = "\n".join("".join(rng.choice(string.ascii_letters + string.digits) for _ in range(64)) for _ in range(4))
    key = f'KEY = """-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"""\n'
    text = key + "#" * (st.st_size - len(key) - 1) + "\n"
    assert len(text) == st.st_size
    target.write_text(text)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run_index(root, store, enc).files_unchanged == 4
    assert store.files(repo)["pkg/mod_0.py"].status == "indexed"
    store.set_checks_version(repo, CONTENT_CHECKS - 1)  # as an index of the version before
    rerun = run_index(root, store, enc)
    assert rerun.chunks_encoded == 0  # every other file hashed as before: nothing encoded again
    record = store.files(repo)["pkg/mod_0.py"]
    assert record.status == "skipped" and "contains a secret (private key, line 1)" in (record.reason or "")
    assert all(h.chunk.path != "pkg/mod_0.py" for h in store.search_text("KEY", 50))
    assert store.checks_version(repo) == CONTENT_CHECKS


def test_a_new_chunking_rechunks_every_file_once(tmp_path, enc):
    """An index made by an older chunker keeps its chunks while files do not change; when CONTENT_CHECKS moves on,
    the next run chunks every file again, and only chunk texts never encoded before are encoded."""
    from indexer.read import CONTENT_CHECKS

    root = make_repo(tmp_path / "repo", n_files=3)
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    run_index(root, store, enc)
    repo = repo_id(root)
    current = sorted((c.path, c.start_line, c.symbol or "") for c in store.chunks(repo))
    # as an older chunker would have left it: pkg/mod_0.py as one block chunk
    old = next(c for c in store.chunks(repo) if c.path == "pkg/mod_0.py")
    whole = dataclasses.replace(old, symbol=None, kind="block", start_line=0, end_line=20, text="old chunking")
    store.replace_file_chunks(repo, {"pkg/mod_0.py": [(whole, np.ones(enc.dim, dtype=np.float32) / enc.dim**0.5)]})
    assert run_index(root, store, enc).files_unchanged == 4  # an ordinary run does not read it again
    store.set_checks_version(repo, CONTENT_CHECKS - 1)  # as an index of the version before
    rerun = run_index(root, store, enc)
    assert rerun.chunks_encoded == 0  # every chunk text of today's chunker was encoded before
    assert sorted((c.path, c.start_line, c.symbol or "") for c in store.chunks(repo)) == current
    assert store.checks_version(repo) == CONTENT_CHECKS


@pytest.mark.parametrize(("embed_tokens", "whole"), [(16, False), (4096, True)])
def test_a_chunk_vector_reads_its_first_embed_tokens(tmp_path, enc, model, embed_tokens, whole):
    """``IndexOptions.embed_tokens``: the vector of a chunk longer than the window is the vector of its first
    `embed_tokens` tokens (as the encoder truncates), for phase 2 and for a save (``update_files``) alike; the row
    keeps its whole text, and the report counts the tokens read. A window larger than every chunk changes nothing."""
    from encoder import load_encoder
    from indexer.index import update_files

    root = make_repo(tmp_path / "repo", n_files=2)
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    report = run_index(root, store, enc, embed_tokens=embed_tokens)
    first = {c.content_hash: c.tokens for c in store.chunks()}
    assert report.tokens_encoded == sum(min(t, embed_tokens) for t in first.values())
    (root / "pkg/mod_0.py").write_text(py_function(7) + "\n\n" + py_function(8))  # a save: both phases at once
    update_files(root, store, enc, enc.tokenizer.count, ["pkg/mod_0.py"], IndexOptions(embed_tokens=embed_tokens))
    cut = load_encoder(model, device="cpu", dtype="fp32", max_tokens=16)  # (the tokenizer's own truncation)
    chunks, vectors = store.chunks_with_vectors()
    long = [(c, v) for c, v in zip(chunks, vectors, strict=True) if c.tokens > 16]
    assert any(c.path == "pkg/mod_0.py" and c.content_hash not in first for c, _ in long)  # the save's chunks too
    for chunk, vector in long:
        expected, other = (enc, cut) if whole else (cut, enc)
        assert np.allclose(vector, expected.encode([chunk.text])[0], atol=1e-5), chunk.path
        assert not np.allclose(vector, other.encode([chunk.text])[0], atol=1e-3)
        assert chunk.tokens == enc.tokenizer.count([chunk.text])[0]  # the row is whole


def test_embed_tokens_setting_is_checked_and_passed_on():
    from indexer.index import EMBED_TOKENS
    from semcode.settings import Settings

    assert Settings().index_options(8192).embed_tokens == EMBED_TOKENS
    assert Settings(embed_tokens=64).index_options(8192).embed_tokens == 64
    with pytest.raises(ValueError, match="embed_tokens must be at least 2"):
        Settings(embed_tokens=1).index_options(8192)
