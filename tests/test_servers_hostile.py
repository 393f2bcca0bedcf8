"""Other local users against semcode's servers, through real processes.

The MCP server over HTTP: a token guards loopback too, a Unix socket is private, a wildcard bind checks ``Host``, the
number of sessions is bounded (a flood does not lock new clients out) and idle sessions close. The CLI's warm daemon:
half a request holds one thread, not the daemon; an unfinished or oversized request is cut off; a stopped daemon or a
full listen backlog leaves its socket alone (the CLI answers cold and says so); a runtime folder another user made
first is never used. Every wait polls a condition up to a deadline; every process started is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from lsp_server import daemon
from mcp_server.server import TOKEN_ENV
from tests.ports import free_port
from tests.processes import stop
from tests.test_cli_first_minute import WARM_NEVER, Indexed, Warm, cli, env_with, indexed, wait_until, warm

__all__ = ["indexed", "warm"]  # fixtures of test_cli_first_minute this module uses

ROOT = Path(__file__).resolve().parent.parent
MCP_ENV = {k: v for k, v in env_with().items() if k != TOKEN_ENV}
ACCEPT = {"Accept": "application/json, text/event-stream"}
INIT_PARAMS = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
# `semcode` with some of mcp_server.server's constants set first (argv[1], JSON)
LAUNCHER = """import json, sys
import mcp_server.server as server
for name, value in json.loads(sys.argv[1]).items():
    setattr(server, name, value)
from lsp_server.cli import main
sys.exit(main(sys.argv[2:]))
"""


# -- the MCP server over HTTP ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src/payroll.py").write_text("def monthly_salary(employee):\n    return employee.salary / 12\n")
    return root


@contextmanager
def mcp_server(tmp_path: Path, root: Path, model: Path, http: str, *extra: str, **kw: Any) -> Iterator[Path]:
    """A ``semcode mcp --http`` subprocess (`kw`: ``env``, and constants of mcp_server.server to set first); yields
    its log once it accepts connections on 127.0.0.1 or its Unix socket."""
    env, patch = kw.pop("env", MCP_ENV), json.dumps(kw)
    log_path = tmp_path / f"mcp-{free_port()}.log"
    args = ["mcp", str(root), "--index-dir", str(tmp_path / "index"), "--model", str(model), "--http", http, *extra]
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, patch, *args], env=env, stdout=log, stderr=log)
        try:
            wait_until(lambda: proc.poll() is not None or accepts(http), "the MCP server to listen", timeout=120)
            assert proc.poll() is None, f"the server exited: {log_path.read_text()}"
            yield log_path
        finally:
            stop(proc)


def accepts(http: str) -> bool:
    unix = http.removeprefix("unix:") if http.startswith("unix:") else None
    family, where = (socket.AF_UNIX, unix) if unix else (socket.AF_INET, ("127.0.0.1", int(http.rsplit(":", 1)[1])))
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.connect(where)
            return True
        except OSError:
            return False


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, json=body, headers=ACCEPT | headers)


async def open_session(url: str, headers: dict[str, str]) -> str:
    """A new session (an ``initialize`` and nothing more, as a flood would send); its id."""
    answer = await post(url, INITIALIZE, headers)
    assert answer.status_code == 200, (answer.status_code, answer.text)
    return answer.headers["mcp-session-id"]


async def ping(url: str, session: str, headers: dict[str, str]) -> int:
    """The HTTP status of a ping in `session`: 200 while it lives, 404 once it has ended."""
    session_headers = {"mcp-session-id": session, "mcp-protocol-version": INIT_PARAMS["protocolVersion"]}
    return (await post(url, PING, headers | session_headers)).status_code


@asynccontextmanager
async def client(url: str, headers: dict[str, str], transport: Any = None) -> AsyncIterator[Client]:
    """The SDK's client over HTTP, sending `headers` (over `transport`, e.g. a Unix socket's)."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120), transport=transport) as http,
        Client(streamable_http_client(url, http_client=http)) as connected,
    ):
        yield connected


async def index_status(connected: Client) -> dict[str, Any]:
    result = await connected.call_tool("index_status", {})
    assert not result.is_error and result.structured_content is not None, result
    return result.structured_content


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_sessions_are_bounded_and_a_new_client_still_gets_answers(repo: Path, model: Path, tmp_path: Path):
    port, cap = free_port(), 4
    env = MCP_ENV | {TOKEN_ENV: "s3cret"}  # the token from the environment guards loopback too
    with mcp_server(tmp_path, repo, model, f"127.0.0.1:{port}", env=env, MAX_SESSIONS=cap):
        url, bearer = f"http://127.0.0.1:{port}/mcp", {"Authorization": "Bearer s3cret"}
        assert (await post(url, INITIALIZE, {})).status_code == 401
        flood = [await open_session(url, bearer) for _ in range(3 * cap)]  # never closed, as a flood leaves them
        alive = [s for s in flood if await ping(url, s, bearer) == 200]
        assert alive == flood[-cap:]  # the oldest idle ones were ended for the newer ones
        assert await ping(url, flood[0], bearer) == 404
        async with client(url, bearer) as connected:  # a new client gets in and gets answers
            assert (await index_status(connected))["repositories"][0]["root"] == str(repo.resolve())
        assert await open_session(url, bearer)


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_an_idle_session_is_closed(repo: Path, model: Path, tmp_path: Path) -> None:
    port, idle_s = free_port(), 1.0
    with mcp_server(tmp_path, repo, model, f"127.0.0.1:{port}", SESSION_IDLE_S=idle_s):
        url = f"http://127.0.0.1:{port}/mcp"
        session = await open_session(url, {})
        assert await ping(url, session, {}) == 200
        deadline = time.monotonic() + 60
        while await ping(url, session, {}) == 200:  # each ping starts its idle time again: poll slower than it
            assert time.monotonic() < deadline, "the idle session was never closed"
            await asyncio.sleep(1.5 * idle_s)
        assert await ping(url, session, {}) == 404
        assert await ping(url, await open_session(url, {}), {}) == 200


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_wildcard_bind_accepts_only_this_machines_names_in_host(repo: Path, model: Path, tmp_path: Path):
    port = free_port()
    env = MCP_ENV | {TOKEN_ENV: "s3cret"}
    with mcp_server(tmp_path, repo, model, f"0.0.0.0:{port}", "--allowed-host", "proxy.example", env=env):
        url, bearer = f"http://127.0.0.1:{port}/mcp", {"Authorization": "Bearer s3cret"}
        for headers, status in [
            ({"Host": f"127.0.0.1:{port}"}, 200),
            ({"Host": f"localhost:{port}"}, 200),
            ({"Host": f"{socket.gethostname()}:{port}"}, 200),
            ({"Host": "proxy.example"}, 200),  # --allowed-host, with or without the port
            ({"Host": f"proxy.example:{port}"}, 200),
            ({"Host": f"evil.example:{port}"}, 421),  # DNS rebinding: a name this machine does not answer to
            ({"Host": f"proxy.example.evil:{port}"}, 421),
            ({"Origin": "http://evil.example"}, 403),
            ({"Origin": f"http://127.0.0.1:{port}"}, 200),
        ]:
            assert (await post(url, INITIALIZE, bearer | headers)).status_code == status, headers


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_unix_socket_is_private(repo: Path, model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"  # missing: made with mode 700
    sock = folder / "mcp.sock"
    with mcp_server(tmp_path, repo, model, f"unix:{sock}"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(sock.stat().st_mode) == 0o600
        async with client("http://localhost/mcp", {}, httpx2.AsyncHTTPTransport(uds=str(sock))) as connected:
            assert (await index_status(connected))["repositories"][0]["root"] == str(repo.resolve())
        taken = cli("mcp", str(repo), "--index-dir", str(tmp_path / "index2"), "--http", f"unix:{sock}")
        assert taken.returncode == 2 and "another server listens there" in taken.stderr, taken.stderr
    assert not sock.exists()  # removed on the way out

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    refused = cli("mcp", str(repo), "--index-dir", str(tmp_path / "index3"), "--http", f"unix:{shared}/mcp.sock")
    assert refused.returncode == 2 and "nobody else may enter (mode 700)" in refused.stderr, refused.stderr
    assert list(shared.iterdir()) == []


# -- the CLI's warm daemon ---------------------------------------------------------------------------------------------


def warm_search(warm: Warm) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """A CLI search whose modules are listed on stderr's last line: the warm path never imports the daemon's side
    (``lsp_server.daemon``), the cold one does."""
    argv = ["search", "value", "--mode", "lexical", "--json", *warm.indexed.flags()]
    probe = (
        f"import sys\nfrom lsp_server.cli import main\ncode = main({argv!r})\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=warm.env, cwd=warm.indexed.root, timeout=300
    )
    assert run.returncode == 0 and run.stdout.count("\n") == 10, run.stderr[-3000:]
    return run, set(run.stderr.splitlines()[-1].split())


@contextmanager
def daemon_with(warm: Warm, request_timeout_s: float) -> Iterator[int]:
    """A ``semcode daemon serve`` opening `warm`'s index whose wait for a whole request is `request_timeout_s`; its
    pid."""
    setup = "import sys\nimport lsp_server.daemon_client as c\nc.REQUEST_TIMEOUT_S = float(sys.argv[2])\n"
    launch = setup + "from lsp_server.cli import main\nsys.exit(main(sys.argv[3:]))\n"
    args = ["daemon", "serve", "--root", str(warm.indexed.root), "--index-dir", str(warm.indexed.index)]
    # argv[1] names the module, so that Warm.pids() and Warm.cleanup() see this daemon as any other
    cmd = [sys.executable, "-c", launch, "lsp_server.cli", str(request_timeout_s), *args, "--model", warm.indexed.model]
    proc = subprocess.Popen(cmd, env=warm.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = warm.serving()["pid"]
        assert pid == proc.pid
        yield pid
    finally:
        daemon.stop(warm.sock)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def unix_connection(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    return s


def read_all(s: socket.socket, timeout: float = 60) -> bytes:
    """What `s` receives until the other side closes it (an error for a reset)."""
    s.settimeout(timeout)
    data = b""
    while part := s.recv(65536):
        data += part
    return data


def test_half_a_request_holds_one_thread_not_the_daemon(warm: Warm) -> None:
    with daemon_with(warm, request_timeout_s=120) as pid, unix_connection(warm.sock) as half:
        half.sendall(b'{"version": %d, "cmd": "sea' % daemon.PROTOCOL)  # and nothing more, for the whole test
        pinged = daemon.ask(warm.sock, "ping", {})
        assert pinged is not None and pinged["ok"] and pinged["pid"] == pid
        run, modules = warm_search(warm)
        assert "lsp_server.daemon" not in modules and "answering without it" not in run.stderr  # answered warm
        assert not [m for m in WARM_NEVER if m in modules]
        half.setblocking(False)
        with pytest.raises(BlockingIOError):  # still waiting on the half request: it held its own thread only
            half.recv(1)
        assert warm.pids() == [pid]


def test_an_unfinished_or_oversized_request_is_cut_off(warm: Warm) -> None:
    warm.search()
    pid = warm.serving()["pid"]
    with unix_connection(warm.sock) as half:
        half.sendall(b'{"version": %d, "cmd": "sea' % daemon.PROTOCOL)
        answer = json.loads(read_all(half))  # within REQUEST_TIMEOUT_S, not the old 120 s
    assert answer["ok"] is False and "no whole line" in answer["error"]
    for line in (b"x" * (3 << 20), b'"' + b"x" * (3 << 20) + b'"\n'):  # no newline; a newline past the limit
        with unix_connection(warm.sock) as big:
            with contextlib.suppress(OSError):  # the daemon stops reading past MAX_REQUEST_BYTES and closes
                big.sendall(line)
            with contextlib.suppress(OSError):
                answer = json.loads(read_all(big) or b"{}")
                assert answer.get("ok") in (None, False) and "over" in answer.get("error", "over")
    pinged = daemon.ask(warm.sock, "ping", {})
    assert pinged is not None and pinged["pid"] == pid  # it lives on, the same daemon
    assert "lsp_server.daemon" not in warm_search(warm)[1]


def test_a_stopped_daemon_or_a_full_backlog_leaves_the_socket(warm: Warm) -> None:
    warm.search()
    pid = warm.serving()["pid"]
    waiting: list[socket.socket] = []
    os.kill(pid, signal.SIGSTOP)  # it accepts nothing: connections queue, then the backlog is full
    try:
        run = cli("search", "value", "--mode", "lexical", "--json", *warm.indexed.flags(), env=warm.env)
        assert run.returncode == 0 and run.stdout.count("\n") == 10, run.stderr
        assert f"the daemon at {warm.sock} did not answer within" in run.stderr, run.stderr
        assert len(run.stderr.splitlines()) == 1 and warm.sock.is_socket()
        for _ in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(str(warm.sock))
            except BlockingIOError:  # EAGAIN: the backlog is full
                s.close()
                break
            waiting.append(s)
        else:
            raise AssertionError("the backlog never filled")
        assert (busy := daemon.ask(warm.sock, "ping", {})) is not None and busy.get("busy"), busy
        assert warm.sock.is_socket()  # EAGAIN is not a dead daemon
        run = cli("search", "value", "--mode", "lexical", "--json", *warm.indexed.flags(), env=warm.env)
        assert run.returncode == 0 and run.stdout.count("\n") == 10, run.stderr
        assert "does not accept connections; answering without it" in run.stderr, run.stderr
        assert warm.sock.is_socket() and warm.pids() == [pid]  # no second daemon started
    finally:
        os.kill(pid, signal.SIGCONT)
        for s in waiting:
            s.close()
    pinged = wait_until(lambda: (a := daemon.ask(warm.sock, "ping", {})) and a["ok"] and a, "the daemon to answer")
    assert pinged["pid"] == pid


@pytest.fixture
def other_user() -> Iterator[str]:
    """A local user made for the test (root only), deleted afterwards."""
    name = f"semcode-t{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, timeout=60)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, timeout=60)


RUNTIME_CASES = ["made by another user", "open to other users", "a symlink", "cannot be made"]


@pytest.mark.parametrize("case", RUNTIME_CASES)
def test_a_runtime_folder_that_is_not_private_is_never_used(
    case: str, indexed: Indexed, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    folder = tmp / f"semcode-{os.getuid()}"
    if case == "made by another user" and os.geteuid() == 0:  # (without root: the mode 777 case below stands in)
        folder.mkdir(mode=0o700)
        user = request.getfixturevalue("other_user")
        subprocess.run(["chown", f"{user}:", str(folder)], check=True, timeout=60)
    elif case in ("made by another user", "open to other users"):
        folder.mkdir()
        folder.chmod(0o777)
    elif case == "a symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        (tmp / "file").write_text("")
        tmp = tmp / "file"  # a TMPDIR that is a file: no folder can be made in it
        folder = tmp / f"semcode-{os.getuid()}"
    env = {k: v for k, v in env_with(TMPDIR=str(tmp)).items() if k not in ("XDG_RUNTIME_DIR", daemon.NO_DAEMON_ENV)}
    root, flags = indexed.root, ["--model", indexed.model, "--index-dir", str(indexed.index)]
    for args in (["search", "value", "--mode", "lexical"], ["related", f"{root}/pkg/mod_3.py:2"], ["status"]):
        run = cli(*args, *flags, env=env, cwd=root)
        assert run.returncode == 0 and run.stdout, (args, run.stderr)
        (line,) = run.stderr.splitlines()  # one line, no traceback
        assert line.startswith("semcode: not using a daemon: ") and str(folder) in line, line
    if case != "cannot be made":
        assert not list(folder.iterdir()) and not list((tmp_path / "elsewhere").glob("*"))  # nothing made there
    daemons = [p for p in Path("/proc").iterdir() if p.name.isdigit() and f"TMPDIR={tmp}".encode() in environ(p)]
    assert daemons == []  # and no daemon started


def environ(proc: Path) -> list[bytes]:
    with contextlib.suppress(OSError):
        return (proc / "environ").read_bytes().split(b"\0")
    return []
