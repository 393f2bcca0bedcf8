"""``semcode mcp``: semcode's MCP server, over stdio (default) or streamable HTTP (``--http HOST:PORT``, path ``/mcp``).

On start it opens the served roots' indexes (an existing index answers at once), and unless ``read_only`` it brings
them up to date in the background and then watches them; searches answer meanwhile, saying how complete the index
is. HTTP safety: loopback by default; any other bind needs a bearer token; a request whose ``Origin`` is not the
server's own (DNS rebinding) or whose ``Host`` is foreign is refused; every path stays inside the served roots.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semcode import interrupts
from semcode.engine import Engine
from semcode.settings import Settings
from semcode.workspace import Folder

from .tools import build_server

log = logging.getLogger(__name__)
TOKEN_ENV = "SEMCODE_MCP_TOKEN"
MCP_PATH = "/mcp"


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


class SameOrigin:
    """ASGI middleware for wildcard binds (0.0.0.0, ::), which clients reach by names the server cannot list: a
    request that carries an ``Origin`` (a browser) must come from the host it addresses, else 403 (DNS rebinding)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            origin, host = headers.get(b"origin"), headers.get(b"host", b"")
            if origin is not None and origin.split(b"://", 1)[-1].rstrip(b"/") != host:
                await send({"type": "http.response.start", "status": 403, "headers": []})
                await send({"type": "http.response.body", "body": b"Invalid Origin header"})
                return
        await self.app(scope, receive, send)


def http_app(engine: Engine, host: str, port: int, token: str | None) -> Any:
    """The ASGI app of ``--http``: the SDK's streamable HTTP app with Host/Origin checks, behind the bearer token
    when one is set (required off loopback)."""
    from mcp.server.transport_security import TransportSecuritySettings

    if not is_loopback(host) and not token:
        raise ValueError(
            f"--http {host}:{port} is reachable from other machines: set a bearer token (--token or ${TOKEN_ENV}), "
            "or bind 127.0.0.1"
        )
    names = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else [f"[{host}]" if ":" in host else host]
    security = TransportSecuritySettings(
        # a wildcard bind (0.0.0.0, ::) is reached by names it cannot know: SameOrigin and the token guard it
        enable_dns_rebinding_protection=not is_unspecified(host),
        allowed_hosts=[f"{n}:{port}" for n in names] + [f"{n}:*" for n in names],
        allowed_origins=[f"{scheme}://{n}:{port}" for n in names for scheme in ("http", "https")],
    )
    app: Any = build_server(engine).streamable_http_app(
        streamable_http_path=MCP_PATH, transport_security=security, host=host
    )
    if is_unspecified(host):
        app = SameOrigin(app)
    return BearerToken(app, token) if token else app


INTERRUPT_WAIT_S = 10.0  # how long a Ctrl-C waits for the write in progress before the process ends


async def _serve_stdio(engine: Engine, own_ctrl_c: bool) -> None:
    """The MCP server over stdio, where Ctrl-C ends the process at once (``_interrupted``): asyncio's own handler
    would only cancel the server's task, which then waits for the thread reading stdin, so a server started by hand in
    a terminal would not stop until stdin closed. The handler is the event loop's: the kernel may hand the signal to
    any thread (LanceDB's, the watcher's), and the loop's wake-up pipe still wakes the main thread."""
    import asyncio

    if own_ctrl_c:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, _interrupted, engine)
    await build_server(engine).run_stdio_async()


def _interrupted(engine: Engine) -> None:
    """One ``semcode: interrupted`` line and exit 130. The write in progress may finish first, for up to
    ``INTERRUPT_WAIT_S`` seconds; what was committed stays, as after a kill."""
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
) -> int:
    """Run the MCP server until the client closes stdio, or until Ctrl-C/SIGTERM over HTTP. Returns the exit
    status."""
    engine = Engine(settings, [r.resolve() for r in roots], read_only=read_only)
    token = token or os.environ.get(TOKEN_ENV) or None
    try:
        if http is not None:
            host, port = parse_http(http)
            app = http_app(engine, host, port, token)  # refuses an open bind before anything starts
        if read_only:
            for folder in engine.folders:  # the state and counts of the index others maintain
                if engine.store(folder, create=False) is not None:
                    folder.refresh_counts()
        else:
            start_indexing(engine)
        if http is None:
            import anyio

            anyio.run(_serve_stdio, engine, interrupts.owned())
        else:
            import uvicorn

            print(f"semcode mcp: serving {', '.join(str(f.root) for f in engine.folders)} on "
                  f"http://{host}:{port}{MCP_PATH}", file=sys.stderr, flush=True)  # fmt: skip
            with interrupts.raising():  # uvicorn stops gracefully, then raises the signal it caught again
                uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        stops = engine.close()
        threading.Thread(target=lambda: [stop() for stop in stops], daemon=True).start()
    return 0
