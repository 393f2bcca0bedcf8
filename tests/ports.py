"""A free TCP port on loopback, for tests that start a server (MCP over HTTP, moto's S3)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
