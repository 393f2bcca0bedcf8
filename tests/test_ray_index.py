"""The distributed job (``ray_index``) on a local Ray: the same index one process builds, incremental runs alike,
a killed chunking worker and a killed encoder actor retried, a driver killed with kill -9 mid-job.

One local Ray (2 CPUs, no dashboard, token auth off) serves the whole module; two tiny repositories, the tiny
random ModernBERT of the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import ray

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parent.parent


def function(name: str, i: int) -> str:
    return textwrap.dedent(
        f'''\
        def {name}(value):
            """Scale value by {i} and shift it."""
            total = value * {i}
            return total + {i}
        '''
    )


def make_repos(base: Path) -> tuple[Path, Path]:
    """Two small repositories: Python modules, Markdown, Go, a binary file, an ignored folder."""
    a, b = base / "alpha", base / "beta"
    for root in (a, b):
        (root / ".git").mkdir(parents=True)
        (root / ".gitignore").write_text("build/\n")
        (root / "build").mkdir()
        (root / "build/out.py").write_text("def generated(): pass\n")
        (root / "blob.py").write_bytes(b"\x00\x01binary")
    for i in range(8):
        (a / f"pkg/mod_{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (a / f"pkg/mod_{i}.py").write_text(function(f"alpha_{i}", i) + "\n\n" + function(f"shared_{i % 3}", i % 3))
    (a / "README.md").write_text("# Alpha\n\nParses configuration files.\n\n## Usage\n\nRun it.\n")
    (b / "main.go").write_text('package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n')
    for i in range(4):
        (b / f"lib_{i}.py").write_text(function(f"beta_{i}", 10 + i) + "\n\n" + function(f"shared_{i % 3}", i % 3))
    return a, b


def settings(model: Path, index: Path | str):
    from semcode import Settings

    return Settings(model=str(model), index_dir=str(index), device="cpu", dtype="fp32")


def options(**kw):
    from ray_index.job import JobOptions

    # small blocks and commits: several encoder calls and write batches even for these repositories
    return JobOptions(**{"actors": 1, "files_per_task": 4, "block_tokens": 96, "commit_chunks": 8} | kw)


def single_process(model: Path, index: Path | str, roots: list[Path]) -> None:
    """What `semcode index --index-dir INDEX ROOT...` does."""
    from semcode import Engine

    engine = Engine(settings(model, index), roots)
    try:
        engine.update()
    finally:
        engine.close_now()


def tables(index: Path | str, model: Path) -> tuple[dict[str, dict], dict[tuple[str, str], dict]]:
    """(chunk rows by key, without the vector; file records by (repo, path)) plus the vectors, read with LanceDB
    (an s3:// index through the AWS_* variables of the environment)."""
    import lancedb

    from encoder.load import model_id
    from indexer.store import table_names

    names = table_names(model_id(str(model)))
    db = lancedb.connect(str(index))
    chunks = db.open_table(names["chunks"]).to_arrow().to_pylist()
    files = db.open_table(names["files"]).to_arrow().to_pylist()
    return {r["key"]: r for r in chunks}, {(r["repo"], r["path"]): r for r in files}


def assert_same_index(job_index: Path | str, one_index: Path | str, model: Path) -> None:
    """The same rows (every stored field, so the same line ranges), the same file records, vectors within 1e-4."""
    job_rows, job_files = tables(job_index, model)
    one_rows, one_files = tables(one_index, model)
    assert job_rows.keys() == one_rows.keys()
    for key, row in job_rows.items():
        other = one_rows[key]
        assert {k: v for k, v in row.items() if k != "vector"} == {k: v for k, v in other.items() if k != "vector"}
        cosine = float(np.dot(row["vector"], other["vector"]))
        assert cosine > 1 - 1e-4, (row["path"], row["start_line"], cosine)
    assert job_files == one_files


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for the module (as `semcode index --ray` starts one), stopped at its end."""
    from ray_index.job import connect

    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # Ray 2.60 turns token auth on by default
    os.environ.pop("RAY_ADDRESS", None)
    connect(None, num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    return make_repos(tmp_path_factory.mktemp("repos"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model, repos):
    """The index one process builds from the two repositories."""
    index = tmp_path_factory.mktemp("reference") / "index"
    single_process(model, index, list(repos))
    return index


def test_the_job_builds_what_one_process_builds_and_updates_it_alike(tmp_path, model, cluster):
    from ray_index.job import run

    a, b = make_repos(tmp_path / "repos")
    job_index, one_index = tmp_path / "job", tmp_path / "one"
    first = run([a, b], settings(model, job_index), options=options(actors=2))
    single_process(model, one_index, [a, b])
    assert_same_index(job_index, one_index, model)
    assert [(r.root, r.status) for r in first.repos] == [(str(a), "indexed"), (str(b), "indexed")]
    alpha, beta = (r.report for r in first.repos)
    assert alpha is not None and beta is not None
    assert (alpha.files_changed, beta.files_changed) == (9, 5)  # blob.py skipped; build/ ignored
    assert [s.path for s in alpha.skipped] == ["blob.py"]
    assert first.chunks_encoded == len({r["content_hash"] for r in tables(job_index, model)[0].values()})
    assert first.commits > 1 and first.actors == 2  # (several write batches: commit_chunks is 8)
    assert (first.repos[0].files, first.repos[0].chunks) == (9, alpha.chunks_written)

    # nothing changed: nothing read, nothing encoded, no actor started
    again = run([a, b], settings(model, job_index), options=options())
    assert (again.files_changed, again.chunks_encoded, again.actors) == (0, 0, 0)
    assert [r.report.files_unchanged for r in again.repos if r.report] == [9, 5]

    # an edit re-encodes only its new chunk; a deleted file leaves the index; as one process does
    (a / "pkg/mod_0.py").write_text(function("alpha_0", 0) + "\n\n" + function("edited", 99))
    (b / "lib_3.py").unlink()
    edit = run([a, b], settings(model, job_index), options=options())
    single_process(model, one_index, [a, b])
    assert_same_index(job_index, one_index, model)
    assert (edit.files_changed, edit.chunks_encoded) == (1, 1)
    assert edit.repos[1].report is not None and edit.repos[1].report.files_deleted == 1

    # a repository leaves the shared index: its rows and records, nothing of the other one
    from semcode import Engine
    from semcode.workspace import repo_id

    engine = Engine(settings(model, job_index))
    try:
        removed = engine.forget_repository(b)
    finally:
        engine.close_now()
    rows, files = tables(job_index, model)
    assert removed == edit.repos[1].chunks > 0
    assert {r["repo"] for r in rows.values()} == {f[0] for f in files} == {repo_id(a)}


def test_a_killed_chunking_worker_and_encoder_actor_are_retried(tmp_path, model, cluster, repos, reference):
    """Each kills its own worker process once (SIGKILL, as a lost node would): Ray runs the task again and restarts
    the actor, which encodes its block again; the index is the one one process builds."""
    from ray_index.job import run

    marks = tmp_path / "marks"
    marks.mkdir()
    summary = run(list(repos), settings(model, tmp_path / "job"), options=options(fail_once=str(marks)))
    assert sorted(p.name for p in marks.iterdir()) == ["chunk", "encode"]
    assert_same_index(tmp_path / "job", reference, model)
    assert all(r.status == "indexed" for r in summary.repos)


DRIVER = """
import sys, time
from pathlib import Path
from ray_index.job import JobOptions, run
from semcode import Settings
address, root, index, model = sys.argv[1:]
def progress(p):
    print("PROGRESS", p.chunks_written, flush=True)
    time.sleep(0.2)  # a slow driver: the parent kills it between two commits
settings = Settings(model=model, index_dir=index, device="cpu", dtype="fp32")
run([root], settings, address=address, progress=progress,
    options=JobOptions(actors=1, files_per_task=4, block_tokens=96, commit_chunks=8))
print("DONE", flush=True)
"""


def test_a_driver_killed_mid_job_leaves_a_readable_index_and_the_next_run_encodes_only_the_rest(
    tmp_path, model, enc, cluster
):
    from indexer.store import Store
    from ray_index.job import run
    from semcode.workspace import repo_id

    root = tmp_path / "big"
    (root / ".git").mkdir(parents=True)
    for i in range(24):
        (root / f"m{i}.py").write_text("\n\n".join(function(f"f_{i}_{j}", 100 * i + j) for j in range(4)))
    index = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, cluster, str(root), str(index), str(model)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("PROGRESS") and int(line.split()[1]) > 0:  # rows were committed
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL

    store = Store.open(index, model_id=enc.name, dim=enc.dim)
    stats = store.stats()
    assert stats["rows"] > 0 and store.search_text("f_0_0", 3)  # readable: the last committed version
    assert store.incomplete(repo_id(root))
    cached = stats["vectors"]
    store.close()

    done = run([root], settings(model, index), options=options())
    store = Store.open(index, model_id=enc.name, dim=enc.dim)
    total = store.stats()["vectors"]
    assert 0 < cached < total
    assert done.chunks_encoded == total - cached  # what was committed is not encoded again
    assert store.stats()["rows"] == 96 and not store.incomplete(repo_id(root))
    shutil.rmtree(index)


def test_the_job_writes_to_object_storage_what_one_process_writes(tmp_path, model, cluster, repos, monkeypatch):
    """`semcode index --ray --index-dir s3://...` against a real S3 endpoint (moto_server on loopback): the driver,
    the one committer, writes the same index as one process writing to S3; workers never touch the store."""
    from ray_index.job import run
    from tests.test_object_storage import BUCKET, s3_with_bucket

    with s3_with_bucket() as s3:
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)
        job_uri, one_uri = f"s3://{BUCKET}/ray-job", f"s3://{BUCKET}/one-process"
        done = run(list(repos), settings(model, job_uri), options=options())
        assert [r.status for r in done.repos] == ["indexed", "indexed"] and done.index_dir == job_uri
        single_process(model, one_uri, list(repos))
        assert_same_index(job_uri, one_uri, model)
        again = run(list(repos), settings(model, job_uri), options=options())
        assert (again.files_changed, again.chunks_encoded) == (0, 0)


def test_rays_notice_that_token_authentication_is_on_goes_unsaid_and_its_warning_that_it_is_off_stays(caplog):
    from ray._private.authentication import authentication_token_setup as ray_auth

    from ray_index.job import quiet_token_auth

    quiet_token_auth()
    with caplog.at_level("WARNING", logger=ray_auth.logger.name):
        ray_auth._warn_token_auth_enabled()  # what `ray.init()` says starting a local cluster with the default
        ray_auth._warn_token_auth_disabled()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith("Token authentication is disabled"), said
