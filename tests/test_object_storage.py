"""An index on object storage: a real S3 endpoint on loopback (moto's server, offline), the tiny random model.

One CLI run indexes a small repository into ``s3://BUCKET/shared`` (credentials and endpoint from the ``AWS_*``
environment, as LanceDB and the AWS tools read them); it is then searched through the CLI, the Python API (also
read-only, also with explicit storage options and no environment) and the MCP server in-process, and indexed again
(nothing encoded). A missing bucket, a wrong endpoint and unknown credentials each give one line naming the URI and
the cause, never a traceback or the secret key, and write nothing. Lexical search carries the exact assertions (the
tiny model's vectors mean nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from lsprotocol import types
from mcp import Client
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

import semcode
from indexer.storage import describe, location, scrub, storage_cause
from indexer.types import StoreError
from mcp_server.tools import build_server
from semcode.engine import Engine
from semcode.settings import Settings
from tests.ports import free_port
from tests.processes import stop

pytestmark = pytest.mark.timeout(180)

REPO_ROOT = Path(__file__).resolve().parent.parent
BUCKET = "semcode-test"
SECRET = "s3cr3t-Key-That-Must-Never-Show"
KEY_ID = "AKIATESTSEMCODE"
FILES = {
    "src/geometry.py": "def zorblax_triangle_area(a, b, c):\n    s = (a + b + c) / 2\n    return s\n",
    "src/text.py": "class Snorkel:\n    def wibble(self, x):\n        return x * 2\n",
}


@dataclass
class S3:
    endpoint: str
    env: dict[str, str]  # AWS_* variables that reach it

    def options(self) -> dict[str, str]:
        """The same, as LanceDB storage options (the [storage] table of the config file)."""
        return {
            "aws_endpoint": self.endpoint, "aws_region": "us-east-1", "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET, "allow_http": "true",
        }  # fmt: skip

    def keys(self, prefix: str) -> list[str]:
        client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        )  # fmt: skip
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def moto_server(port: int, **env: str) -> subprocess.Popen[bytes]:
    """``moto_server`` on 127.0.0.1:`port`, returned once it accepts connections."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ | env,
    )  # fmt: skip
    end = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "moto_server exited"
        assert time.monotonic() < end, "moto_server never listened"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)


def aws_env(endpoint: str, key_id: str = KEY_ID, secret: str = SECRET) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret, "AWS_ALLOW_HTTP": "true",
    }  # fmt: skip


@contextmanager
def s3_with_bucket() -> Iterator[S3]:
    """A moto S3 server on a free loopback port holding the empty bucket ``BUCKET``; stopped on exit."""
    port = free_port()
    proc = moto_server(port)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
        ).create_bucket(Bucket=BUCKET)
        yield S3(endpoint, aws_env(endpoint))
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with s3_with_bucket() as server:
        yield server


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s3repo")
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: no AWS_* of the caller's, no config file, no daemon."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEMCODE_"))}
    return env | {"PYTHONPATH": str(REPO_ROOT), "SEMCODE_NO_DAEMON": "1", "XDG_CONFIG_HOME": str(tmp)} | extra


def semcode_cli(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip


def where(uri: str, model: Path) -> tuple[str, ...]:
    return ("--index-dir", uri, "--model", str(model))


def index_json(env: dict[str, str], repo: Path, uri: str, model: Path) -> dict[str, Any]:
    done = semcode_cli(env, "index", repo, "--index-dir", uri, "--model", model, "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)[str(repo)]
    return report


@pytest.fixture(scope="module")
def shared(s3: S3, repo: Path, model: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`repo` indexed by the CLI into s3://BUCKET/shared; the URI (given with a trailing slash: one index)."""
    env = clean_env(tmp_path_factory.mktemp("cfg"), **s3.env)
    report = index_json(env, repo, f"s3://{BUCKET}/shared/", model)
    assert report["files_changed"] == 2 and report["chunks_encoded"] > 0
    return f"s3://{BUCKET}/shared"


def one_error_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single `semcode: error: ...` line of a failed command, which names every needle and no secret."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semcode: error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], done.stderr
    assert SECRET not in done.stderr + done.stdout
    return lines[0]


# -- the CLI -------------------------------------------------------------------------------------------------------


def test_cli_indexes_searches_and_reports_an_s3_index(
    s3: S3, shared: str, repo: Path, model: Path, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, **s3.env)
    assert "shared/semcode-store.json" in s3.keys("shared/")  # the marker, an object under the prefix
    found = semcode_cli(env, "search", "zorblax", "--mode", "lexical", "--json", "--repo", repo, *where(shared, model))
    assert found.returncode == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert hits and hits[0]["path"] == "src/geometry.py" and hits[0]["symbol"] == "zorblax_triangle_area"

    again = index_json(env, repo, shared, model)  # incremental: nothing changed, nothing encoded
    assert (again["files_changed"], again["chunks_encoded"]) == (0, 0)

    status = semcode_cli(env, "status", "--json", "--repo", repo, *where(shared, model))
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout)
    assert row["indexDir"] == shared and row["files"] == 2 and row["rows"] >= 2 and row["bytes"] > 0
    listed = semcode_cli(env, "indexes", "--json", "--index-dir", shared)
    assert listed.returncode == 0, listed.stderr
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines() if shared in line]
    assert entry["bytes"] > 0 and entry["models"][0]["repos"][str(repo)]["files"] == 2
    assert SECRET not in found.stdout + status.stdout + listed.stdout + found.stderr + status.stderr


def test_credentials_from_the_config_file(s3: S3, shared: str, repo: Path, model: Path, tmp_path: Path) -> None:
    """No AWS_* environment: the [storage] table of the config file reaches the bucket (both LanceDB and the
    marker's reads), and nothing of it is printed."""
    (tmp_path / "semcode").mkdir()
    table = "\n".join(f'{k} = "{v}"' for k, v in s3.options().items())
    (tmp_path / "semcode" / "config.toml").write_text(f"[storage]\n{table}\n")
    env = clean_env(tmp_path)
    found = semcode_cli(env, "search", "wibble", "--mode", "lexical", "--json", "--repo", repo, *where(shared, model))
    assert found.returncode == 0, found.stderr
    assert next(json.loads(line)["symbol"] for line in found.stdout.splitlines()) == "Snorkel.wibble"
    status = semcode_cli(env, "status", "--repo", repo, *where(shared, model))
    assert status.returncode == 0 and SECRET not in status.stdout + status.stderr, status.stderr


def test_forget_deletes_an_s3_index_and_nothing_else(s3: S3, repo: Path, model: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, **s3.env)
    uri = f"s3://{BUCKET}/to-forget"
    index_json(env, repo, uri, model)
    assert s3.keys("to-forget/") and s3.keys("shared/")
    done = semcode_cli(env, "forget", repo, "--index-dir", uri)
    assert done.returncode == 0 and f"deleted {uri}" in done.stdout, done.stderr
    assert s3.keys("to-forget/") == [] and s3.keys("shared/")


# -- errors: one line naming the URI and the cause; nothing written -------------------------------------------------


def test_a_missing_bucket(s3: S3, repo: Path, model: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, **s3.env)
    uri = "s3://no-such-bucket/idx"
    line = one_error_line(semcode_cli(env, "index", repo, "--index-dir", uri, "--model", model), uri)
    assert "does not exist" in line
    search = semcode_cli(env, "search", "x", "--repo", repo, "--index-dir", uri)
    assert "does not exist" in one_error_line(search, uri)


def test_a_wrong_endpoint(repo: Path, model: Path, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = clean_env(tmp_path, **aws_env(closed))
    uri = f"s3://{BUCKET}/idx"
    line = one_error_line(semcode_cli(env, "index", repo, "--index-dir", uri, "--model", model), uri)
    assert f"connection refused by {closed}" in line
    status = semcode_cli(env, "status", "--repo", repo, "--index-dir", uri)
    assert "connection refused" in one_error_line(status, uri)


def test_unknown_credentials(repo: Path, model: Path, tmp_path: Path) -> None:
    """A server that checks signatures (moto with authentication on) refuses keys it does not know."""
    port = free_port()
    proc = moto_server(port, INITIAL_NO_AUTH_ACTION_COUNT="0")
    try:
        env = clean_env(tmp_path, **aws_env(f"http://127.0.0.1:{port}"))
        uri = f"s3://{BUCKET}/idx"
        line = one_error_line(semcode_cli(env, "index", repo, "--index-dir", uri, "--model", model), uri)
        assert "check the credentials" in line
        search = semcode_cli(env, "search", "x", "--repo", repo, "--index-dir", uri)
        assert "check the credentials" in one_error_line(search, uri)
    finally:
        stop(proc)


def test_a_prefix_holding_other_data_is_refused_and_left_alone(s3: S3, repo: Path, model: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, **s3.env)
    client = boto3.client(
        "s3", endpoint_url=s3.endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )
    client.put_object(Bucket=BUCKET, Key="foreign/data.csv", Body=b"a,b\n")
    uri = f"s3://{BUCKET}/foreign"
    line = one_error_line(semcode_cli(env, "index", repo, "--index-dir", uri, "--model", model), uri)
    assert "not a semcode index" in line
    assert s3.keys("foreign/") == ["foreign/data.csv"]
    forget = semcode_cli(env, "forget", repo, "--index-dir", uri)
    assert "left alone" in forget.stderr and s3.keys("foreign/") == ["foreign/data.csv"]


# -- the Python API and MCP, in process ----------------------------------------------------------------------------


@pytest.fixture
def aws(s3: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The AWS_* environment of the S3 server in this process (LanceDB and pyarrow read it)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")  # no config file's [storage]
    return s3


def test_python_api_read_only(aws: S3, shared: str, repo: Path, model: Path) -> None:
    with semcode.open(repo, index_dir=shared + "/", model=str(model), read_only=True) as index:
        hits = index.search("zorblax", mode="lexical")
        assert hits[0].symbol == "zorblax_triangle_area" and hits[0].repo == str(repo)
        assert index.search("triangle area", limit=3)  # hybrid: the query encoder reads the model
        status = index.status()
        assert status.read_only and status.repositories[0].index_dir == shared
        assert (status.repositories[0].state, status.repositories[0].files) == ("ready", 2)
        with pytest.raises(PermissionError):
            index.update()


def test_an_index_lost_from_the_object_store_mid_run_is_named(aws: S3, repo: Path, model: Path) -> None:
    """Another process deletes the index's objects while a run encodes: the error names the URI and what is missing,
    not a bare "No such file or directory"."""
    uri = f"s3://{BUCKET}/lost"
    client = boto3.client(
        "s3", endpoint_url=aws.endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )

    def lose_everything(_progress: object) -> None:
        for key in aws.keys("lost/"):
            client.delete_object(Bucket=BUCKET, Key=key)

    with semcode.open(repo, index_dir=uri, model=str(model)) as index, pytest.raises(StoreError) as failed:
        index.update(progress=lose_everything, rebuild=True)
    message = str(failed.value)
    # (lost while the rows are written: the marker is gone; while they are embedded: a table)
    assert uri in message and ("missing" in message or "there is none" in message), message
    assert "No such file or directory" not in message and SECRET not in message


def test_python_api_with_explicit_storage_options(
    s3: S3, shared: str, repo: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")
    with semcode.open(repo, index_dir=shared, model=str(model), storage_options=s3.options()) as index:
        assert index.search("wibble", mode="lexical")[0].symbol == "Snorkel.wibble"
        assert SECRET not in repr(index.engine.settings) + repr(index.engine.location(shared))


def test_python_api_errors_name_the_uri(aws: S3, repo: Path, model: Path) -> None:
    uri = "s3://no-such-bucket/idx"
    with semcode.open(repo, index_dir=uri, model=str(model)) as index, pytest.raises(StoreError, match=uri):
        index.update()
    with semcode.open(repo, index_dir=f"s3://{BUCKET}/never-built", model=str(model), read_only=True) as index:
        assert index.search("zorblax", mode="lexical") == []  # nothing there yet: no hits, nothing created
    assert aws.keys("never-built/") == []


def test_mcp_serves_an_s3_index_read_only(aws: S3, shared: str, repo: Path, model: Path) -> None:
    engine = Engine(Settings(model=str(model), index_dir=shared), [repo], read_only=True)

    async def session() -> tuple[dict[str, Any], dict[str, Any]]:
        async with Client(build_server(engine)) as client:
            found = await client.call_tool("search_code", {"query": "zorblax", "mode": "lexical"})
            status = await client.call_tool("index_status", {})
        assert not found.is_error and not status.is_error
        assert found.structured_content is not None and status.structured_content is not None
        return found.structured_content, status.structured_content

    try:
        found, status = asyncio.run(asyncio.wait_for(session(), 120))
    finally:
        engine.close_now()
    assert found["hits"][0]["path"] == "src/geometry.py" and found["hits"][0]["start_line"] == 1  # 1-based
    assert status["read_only"] is True and SECRET not in json.dumps(status)


@pytest.mark.asyncio(loop_scope="function")
async def test_lsp_with_an_s3_index_dir(s3: S3, shared: str, repo: Path, model: Path, tmp_path: Path) -> None:
    """``initializationOptions.indexDir`` on S3: the server brings the shared index up to date (nothing changed)
    and answers from it."""
    env = clean_env(tmp_path, **s3.env)
    config = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server.cli", "lsp"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    uri = from_fs_path(str(repo)) or ""
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name=repo.name)],
            initialization_options={"model": str(model), "indexDir": shared},
        )
    )
    try:
        end = time.monotonic() + 60
        while True:
            answer = await asyncio.wait_for(
                client.protocol.send_request_async("semcode/search", {"query": "zorblax", "mode": "lexical"}), 20
            )
            if answer.results:
                break
            assert time.monotonic() < end, "no answer from the S3 index"
            await asyncio.sleep(0.1)
        assert answer.results[0].symbol == "zorblax_triangle_area"
        status = await asyncio.wait_for(client.protocol.send_request_async("semcode/status", {}), 20)
        assert status.indexDir == shared and SECRET not in json.dumps(status, default=str)
    finally:
        await client.shutdown_session()
        await client.stop()


# -- the storage module --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (
            "Generic S3 error: <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist"
            "</Message></Error>",
            "the bucket does not exist",
        ),
        (
            "When getting information for bucket 'b': AWS Error ACCESS_DENIED during HeadBucket operation: "
            "No response body.",
            "access denied (check the credentials and the bucket's policy)",
        ),
        (
            'ListRequest { source: RetryError { inner: Http(HttpError { kind: Connect, source: ConnectError("tcp '
            'connect error", 127.0.0.1:9, Os { code: 111, kind: ConnectionRefused }) }) } }',
            "connection refused by http://127.0.0.1:9",
        ),
        ("AWS Error NETWORK_CONNECTION during HeadObject operation: curlCode: 6, Could not resolve hostname",
         "the host of http://127.0.0.1:9 cannot be resolved"),
        ("Table 'x' was not found", None),
        ("lance error: Not found: idx/chunks_m_1a2b.lance/_versions, /root/.cargo/registry/src/commit.rs:653:26",
         "its table chunks_m_1a2b.lance is missing from the object store (deleted or moved while in use; semcode "
         "index builds it again)"),
    ],
)  # fmt: skip
def test_storage_causes(message: str, cause: str | None) -> None:
    options = {"aws_endpoint": "http://127.0.0.1:9"}
    assert storage_cause(OSError(message), options) == cause


def test_secrets_are_scrubbed_and_never_in_a_repr() -> None:
    options = {"aws_secret_access_key": SECRET, "aws_access_key_id": KEY_ID, "aws_session_token": "tok-123456"}
    assert scrub(f"bad {SECRET} and tok-123456 for {KEY_ID}", options) == f"bad *** and *** for {KEY_ID}"
    assert SECRET not in describe(OSError(f"signature of {SECRET} does not match"), options)
    where = location("s3://bucket/prefix/", options)
    assert where.uri == "s3://bucket/prefix" and SECRET not in repr(where)
    with pytest.raises(StoreError) as refused:
        location(f"s3://{KEY_ID}:{SECRET}@bucket/prefix")
    assert SECRET not in str(refused.value) and "not in the index URI" in str(refused.value)
    with pytest.raises(StoreError) as refused:
        location(f"s3://{KEY_ID}:{SECRET}/prefix")
    assert SECRET not in str(refused.value)
    with pytest.raises(StoreError, match="not a supported index location"):
        location("ftp://host/x")
