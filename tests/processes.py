"""Stopping a server a test started (MCP over HTTP, moto's S3): SIGTERM, then SIGKILL if it does not exit."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)
