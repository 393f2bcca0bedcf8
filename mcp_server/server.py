"""``semcode mcp``: semcode's MCP server, over stdio (default) or streamable HTTP (``--http HOST:PORT``, path ``/mcp``).

On start it opens the served roots' indexes (an existing index answers at once), and unless ``read_only`` it brings
them up to date in the background and then watches them; searches answer meanwhile, saying how complete the index
is. HTTP safety: loopback by default, where every local user can reach it unless a bearer token is set (``--token``)
or a Unix socket is served instead (``--http unix:PATH``: mode 0600, in a folder of the user's that nobody else may
enter); any other bind needs a bearer token; a request whose ``Host`` is not one of this machine's own names or
addresses (or ``--allowed-host``) is refused with 421, one whose ``Origin`` is foreign with 403 (DNS rebinding);
sessions are bounded (``SessionBound``); every path stays inside the served roots.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semcode import interrupts
from semcode.engine import Engine
from semcode.settings import Settings
from semcode.workspace import Folder

from .budget import DEFAULT_MAX_TOKENS, check_budget

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

log = logging.getLogger(__name__)
TOKEN_ENV = "SEMCODE_MCP_TOKEN"
MCP_PATH = "/mcp"
UNIX_PREFIX = "unix:"  # --http unix:PATH serves a Unix socket
MAX_SESSIONS = 100  # MCP HTTP sessions one server keeps; a new one past them ends the one idle longest
SESSION_IDLE_S = 300.0  # a session with no request in flight for this long is closed (its client opens another)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_unspecified(host: str) -> bool:
    """A wildcard bind address (0.0.0.0, ::): every interface."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def parse_http(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) -> (host, port); ValueError with the expected form."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--http {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    return host.strip("[]"), int(port)


def unix_path(value: str) -> Path | None:
    """The socket of ``--http unix:PATH``, or None for ``HOST:PORT``."""
    return Path(value.removeprefix(UNIX_PREFIX)).absolute() if value.startswith(UNIX_PREFIX) else None


def bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at `path`, mode 0600, in a folder of this user's that nobody else may enter (made
    with mode 0700 when missing); a dead server's socket there is replaced. ValueError saying what is wrong."""
    where, folder = f"--http {UNIX_PREFIX}{path}", path.parent
    try:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        st = folder.lstat()  # not stat: a symlink is refused, not followed
    except OSError as e:
        raise ValueError(f"{where}: {e}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ValueError(f"{where}: {folder} must be a folder of yours that nobody else may enter (mode 700)")
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ValueError(f"{where}: {path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2.0)
            try:
                probe.connect(str(path))
            except ConnectionRefusedError:
                path.unlink()  # a dead server's
            except OSError as e:  # EAGAIN: a live server, swamped
                raise ValueError(f"{where}: another server listens there ({e})") from None
            else:
                raise ValueError(f"{where}: another server listens there")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        path.chmod(0o600)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ValueError(f"{where}: {e}") from None
    return sock


def interface_addresses() -> set[str]:
    """This machine's own IP addresses, every interface's (Linux: ``/proc/net/if_inet6`` and ``SIOCGIFADDR``;
    elsewhere only what its host name resolves to, see ``machine_names``)."""
    found: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as table:  # 32 hex digits, then the interface
        found |= {str(ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))) for line in table if line.strip()}
    if sys.platform.startswith("linux"):
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                with contextlib.suppress(OSError):  # an interface without an IPv4 address
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
                    found.add(socket.inet_ntoa(packed[20:24]))
    return found


def machine_names(host: str) -> set[str]:
    """What a client may call this server in ``Host`` when it binds `host` (not loopback): that address, or on a
    wildcard bind every address of this machine and the loopback names; and this machine's own names."""
    names = {"localhost", "127.0.0.1", "::1", *interface_addresses()} if is_unspecified(host) else {host}
    for name in {socket.gethostname(), socket.getfqdn()}:
        names.add(name)
        with contextlib.suppress(OSError, UnicodeError):
            names |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
    return {n for name in names if "%" not in name for n in (name, name.lower())}  # no zone ids (fe80::1%eth0)


def transport_security(host: str | None, port: int, allowed_hosts: Sequence[str]) -> TransportSecuritySettings:
    """The SDK's Host/Origin checks (DNS rebinding): on loopback, the loopback names; on any other bind, the
    names of ``machine_names`` and `allowed_hosts` (``NAME`` or ``NAME:PORT``); none on a Unix socket (``host``
    None), which no browser reaches."""
    from mcp.server.transport_security import TransportSecuritySettings

    if host is None:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = {host, "127.0.0.1", "localhost", "::1"} if is_loopback(host) else machine_names(host)
    hosts = [f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in sorted(names)]
    for given in allowed_hosts:  # a name without a port: a proxy may leave the port out
        hosts += [given] if given.rpartition(":")[2].isdigit() else [given, f"{given}:{port}"]
    return TransportSecuritySettings(
        allowed_hosts=hosts, allowed_origins=[f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    )


def start_indexing(engine: Engine) -> None:
    """Bring every root's index up to date on the writer, then watch it (background; failures are logged and
    shown by ``index_status``)."""

    def run(folder: Folder) -> None:
        try:
            engine.index_folder(folder)
        except Exception as e:
            log.error("indexing %s failed: %s", folder.root, e)
            folder.fail(f"indexing failed: {e}")  # also a failure before the run starts (e.g. the model)
            return
        if folder.cancel.is_set():
            return
        try:
            engine.watch(folder, on_error=lambda e: log.error("indexing changes in %s failed: %s", folder.root, e))
        except OSError as e:  # e.g. the inotify limit: the index stays; reindex updates it
            folder.last_error = f"cannot watch {folder.root}: {e}"
        engine.build_vector_index(folder, lambda message, ok: log.log(logging.INFO if ok else logging.WARNING, message))

    for folder in engine.folders:
        engine.writer.submit(run, folder)
    if engine.apart is not None and engine.folders:
        engine.apart.decided.wait(1.0)  # a new index's phase 1 starts in its child before the MCP SDK's import


class BearerToken:
    """ASGI middleware: every request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"")
            if not (given.startswith(b"Bearer ") and hmac.compare_digest(given[7:].strip(), self.token)):
                body = b'{"error": "missing or wrong bearer token (Authorization: Bearer ...)"}'
                head = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
                await send({"type": "http.response.start", "status": 401, "headers": head})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def header(headers: Any, name: bytes) -> str | None:
    """A header of an ASGI scope or ``http.response.start`` message, or None."""
    return next((v.decode("latin-1") for k, v in headers.get("headers") or [] if k.lower() == name), None)


@dataclass
class Session:
    """What ``SessionBound`` knows of one MCP session."""

    host: str  # the Host its client sends (a DELETE in its name must pass the same check)
    in_flight: int = 1
    last: float = field(default_factory=time.monotonic)


class SessionBound:
    """ASGI middleware that bounds the SDK's stateful MCP sessions. The SDK's session manager
    (``mcp.server.streamable_http_manager.StreamableHTTPSessionManager``) keeps every session in a dict until its
    client deletes it or it idles out, and past its own cap answers 503 to every new client: one client that opened
    10,000 sessions locked everyone else out for 30 minutes. Here at most `cap` are kept: a new session at the cap
    first ends the one idle longest (nothing in flight), else the one least recently used, as its client would end it
    (a DELETE through the SDK, so no private state of the SDK is touched). Sessions idle for `idle_s` are closed by
    the SDK (``session_idle_timeout``) and forgotten here."""

    def __init__(self, app: Any, cap: int, idle_s: float) -> None:
        self.app, self.cap, self.idle_s = app, cap, idle_s
        self.sessions: dict[str, Session] = {}
        self.opening = 0  # requests that may open a session, under way

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        sid = header(scope, b"mcp-session-id") if scope["type"] == "http" else None
        if scope["type"] == "http" and sid is None and scope["method"] == "POST":
            await self.open(scope, receive, send)
            return
        session = None if sid is None else self.sessions.get(sid)
        if session is None:  # not HTTP, or a session the SDK answers for (404: unknown or ended)
            await self.app(scope, receive, send)
            return
        session.in_flight, session.last = session.in_flight + 1, time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            session.in_flight, session.last = session.in_flight - 1, time.monotonic()
            if scope["method"] == "DELETE":
                self.sessions.pop(str(sid), None)

    async def open(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A request without a session: it opens one when it is an ``initialize`` the SDK accepts."""
        now = time.monotonic()
        for sid in [sid for sid, s in self.sessions.items() if not s.in_flight and now - s.last > 2 * self.idle_s]:
            del self.sessions[sid]  # the SDK has closed it (after idle_s: a session is never forgotten while open)
        self.opening += 1
        opened: Session | None = None

        async def watch(message: dict[str, Any]) -> None:
            nonlocal opened
            sid = header(message, b"mcp-session-id") if message["type"] == "http.response.start" else None
            if sid is not None and message["status"] < 400:
                opened = self.sessions[sid] = Session(header(scope, b"host") or "")
            await send(message)

        try:
            while len(self.sessions) + self.opening > self.cap and self.sessions:
                await self.end(scope, self.victim())
            await self.app(scope, receive, watch)
        finally:
            self.opening -= 1
            if opened is not None:
                opened.in_flight, opened.last = opened.in_flight - 1, time.monotonic()

    def victim(self) -> str:
        """The session to end for a new one: the one idle longest, else the one least recently used."""
        idle = [(s.last, sid) for sid, s in self.sessions.items() if not s.in_flight]
        _, sid = min(idle or [(s.last, sid) for sid, s in self.sessions.items()])
        return sid

    async def end(self, scope: dict[str, Any], sid: str) -> None:
        session = self.sessions.pop(sid)
        log.info("ending MCP session %s for a new one: %d sessions is the most", sid[:8], self.cap)
        headers = [(b"host", session.host.encode("latin-1")), (b"mcp-session-id", sid.encode())]
        delete = scope | {"method": "DELETE", "path": MCP_PATH, "raw_path": MCP_PATH.encode(), "query_string": b""}
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            return requests.pop() if requests else {"type": "http.disconnect"}

        async def discard(message: dict[str, Any]) -> None:
            pass

        await self.app(delete | {"headers": headers}, receive, discard)


def http_app(
    engine: Engine,
    host: str | None,
    port: int,
    token: str | None,
    security: TransportSecuritySettings | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Any:
    """The ASGI app of ``--http``: the SDK's streamable HTTP app with Host/Origin checks (`security`, by default
    ``transport_security(host, port, ())``) and a bounded number of sessions (``SessionBound``), behind the bearer
    token when one is set (required off loopback). `host` None: a Unix socket. `max_tokens`: the answers' budget."""
    if host is not None and not is_loopback(host) and not token:
        raise ValueError(
            f"--http {host}:{port} is reachable from other machines: set a bearer token (--token or ${TOKEN_ENV}), "
            "or bind 127.0.0.1"
        )
    from .tools import build_server  # (the MCP SDK loads here: see `serve`)

    app: Any = build_server(engine, max_tokens).streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=security or transport_security(host, port, ()),
        host=host or "127.0.0.1",
        session_idle_timeout=SESSION_IDLE_S,
        max_sessions=2 * MAX_SESSIONS,  # a backstop only: SessionBound keeps MAX_SESSIONS
    )
    app = SessionBound(app, MAX_SESSIONS, SESSION_IDLE_S)
    return BearerToken(app, token) if token else app


INTERRUPT_WAIT_S = 10.0  # how long a Ctrl-C waits for the write in progress before the process ends


async def _serve_stdio(engine: Engine, own_ctrl_c: bool, max_tokens: int) -> None:
    """The MCP server over stdio, where Ctrl-C ends the process at once (``_interrupted``): asyncio's own handler
    would only cancel the server's task, which then waits for the thread reading stdin, so a server started by hand in
    a terminal would not stop until stdin closed. The handler is the event loop's: the kernel may hand the signal to
    any thread (LanceDB's, the watcher's), and the loop's wake-up pipe still wakes the main thread."""
    import asyncio

    if own_ctrl_c:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, _interrupted, engine)
    from .tools import build_server  # (the MCP SDK loads here: see `serve`)

    await build_server(engine, max_tokens).run_stdio_async()


def _interrupted(engine: Engine) -> None:
    """One ``semcode: interrupted`` line and exit 130, over stdio and HTTP alike. The write in progress may finish
    first, for up to ``INTERRUPT_WAIT_S`` seconds; what was committed stays, as after a kill."""
    os.write(sys.stderr.fileno(), b"semcode: interrupted\n")
    engine.close()
    engine.writer.join(INTERRUPT_WAIT_S)
    os._exit(130)


def serve(
    settings: Settings,
    roots: Sequence[Path],
    *,
    http: str | None = None,
    read_only: bool = False,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    max_tokens: int | None = None,
) -> int:
    """Run the MCP server until the client closes stdio, or until Ctrl-C/SIGTERM over HTTP (``HOST:PORT`` or
    ``unix:PATH``); Ctrl-C says ``semcode: interrupted`` and ends it with status 130 on either transport. Every
    answer stays within `max_tokens` (default ``DEFAULT_MAX_TOKENS``) unless a call sets its own budget. Returns the
    exit status."""
    max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else check_budget(max_tokens)
    engine = Engine(settings, [r.resolve() for r in roots], read_only=read_only, phase_one_apart=not read_only)
    token = token or os.environ.get(TOKEN_ENV) or None
    path, unix = None if http is None else unix_path(http), None
    interrupted = False
    try:
        if http is not None:  # an open bind or an unsafe socket folder is refused before anything starts
            host, port = (None, 0) if path else parse_http(http)
            security = transport_security(host, port, allowed_hosts)
            app = http_app(engine, host, port, token, security, max_tokens)
            unix = None if path is None else bind_unix(path)
        if read_only:
            for folder in engine.folders:  # the state and counts of the index others maintain
                if engine.store(folder, create=False) is not None:
                    folder.refresh_counts()
        else:
            start_indexing(engine)
        if http is None:
            import anyio

            anyio.run(_serve_stdio, engine, interrupts.owned(), max_tokens)
        else:
            interrupted = _serve_http(engine, app, host, port, unix, security.allowed_hosts)
    finally:
        if unix is not None and path is not None:
            unix.close()
            path.unlink(missing_ok=True)
        stops = engine.close()
        threading.Thread(target=lambda: [stop() for stop in stops], daemon=True).start()
    if interrupted:
        _interrupted(engine)
    return 0


def _serve_http(
    engine: Engine, app: Any, host: str | None, port: int, unix: socket.socket | None, hosts: list[str]
) -> bool:
    """Serve `app` until Ctrl-C (True: the caller ends with ``_interrupted``, as the stdio server does) or until the
    server stops otherwise (False). ``uvicorn.Server``, not ``uvicorn.run``, which swallows the Ctrl-C."""
    import uvicorn

    roots = ", ".join(str(f.root) for f in engine.folders)
    where = f"{UNIX_PREFIX}{unix.getsockname()}" if unix else f"http://{host}:{port}{MCP_PATH}"
    print(f"semcode mcp: serving {roots} on {where}", file=sys.stderr, flush=True)
    if host is not None and not is_loopback(host):
        print(f"semcode mcp: a request must name this machine in Host (others get 421): "
              f"{', '.join(hosts)}; --allowed-host NAME adds one",
              file=sys.stderr, flush=True)  # fmt: skip
    where_to = {"fd": unix.fileno()} if unix is not None else {"host": host or "127.0.0.1", "port": port}

    class Server(uvicorn.Server):
        """uvicorn's server, remembering a Ctrl-C it took."""

        interrupted = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.interrupted = self.interrupted or sig == signal.SIGINT
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(app, log_level="warning", **where_to))
    try:
        with interrupts.raising(), _removed_on_sigterm(unix):  # uvicorn stops gracefully, then raises it again
            server.run()
    except KeyboardInterrupt:
        return True
    # (asyncio's runner turns the Ctrl-C uvicorn raises again into a cancel of its task, which a task that is just
    # ending never sees: the run then returns as if nothing had happened)
    return server.interrupted


@contextlib.contextmanager
def _removed_on_sigterm(unix: socket.socket | None) -> Iterator[None]:
    """Remove `unix`'s socket file when SIGTERM ends the process: uvicorn raises the signal again after its graceful
    stop, and the default action ends the process before any ``finally`` runs."""
    if unix is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    path = unix.getsockname()

    def remove_then_end(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    previous = signal.signal(signal.SIGTERM, remove_then_end)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
