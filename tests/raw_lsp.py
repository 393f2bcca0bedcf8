"""A raw client of `semcode lsp` for tests that must speak bytes the LSP libraries would refuse to send: any bytes in,
framed messages out (read on a thread), the server's stderr in a file. Shared by the tests of the server's first
minute and of hostile input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pygls.uris import from_fs_path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-m", "lsp_server.cli", "lsp"]
ANSWER_S = 60.0  # two busy cores: generous deadlines, never asserted as timings


def frame(body: bytes | dict[str, Any], length_delta: int = 0) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(raw) + length_delta, raw)


def request(msg_id: Any, method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def search(msg_id: Any, query: str = "zorblax_triangle_area") -> dict[str, Any]:
    return request(msg_id, "semcode/search", {"query": query, "mode": "lexical"})


class RawServer:
    """`semcode lsp` over pipes: any bytes in; framed messages out, read on a thread; stderr in a file."""

    def __init__(self, stderr: Path, cwd: Path) -> None:
        self.stderr_path, self.stderr = stderr, stderr.open("w")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, cwd=cwd, env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a suite run with `&` ignores it
        )  # fmt: skip
        self.answers: dict[Any, dict[str, Any]] = {}
        self.null_answers: list[dict[str, Any]] = []  # answers with "id": null (the id was unknown)
        self.notes: list[dict[str, Any]] = []  # notifications
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while (line := out.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                length = int(value) if name.strip().lower() == "content-length" else length
            if not line or length is None:
                return
            message = json.loads(out.read(length))
            with self.changed:
                if "method" in message:
                    self.notes.append(message)
                elif message.get("id") is None:
                    self.null_answers.append(message)
                else:
                    self.answers[message["id"]] = message
                self.changed.notify_all()

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = ANSWER_S) -> Any:
        with self.changed:
            if not self.changed.wait_for(condition, timeout):
                raise AssertionError(f"no {what} within {timeout} s; stderr:\n{self.stderr_path.read_text()[-3000:]}")
            return condition()

    def answer(self, msg_id: Any, timeout: float = ANSWER_S) -> dict[str, Any]:
        return self.wait(lambda: self.answers.get(msg_id), f"answer to {msg_id!r}", timeout)

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.write(frame(message))
        return self.answer(message["id"])

    def start(self, root: Path, index: Path, model: Path) -> None:
        uri = from_fs_path(str(root))
        params = {
            "capabilities": {}, "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": root.name}],
            "initializationOptions": {"indexDir": str(index), "model": str(model)},
        }  # fmt: skip
        assert "result" in self.ask(request("init", "initialize", params))
        self.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

    def serves(self, msg_id: Any = "check") -> None:
        """A normal search answers with the right hit."""
        top = self.ask(search(msg_id))["result"]["results"][0]
        assert top["symbol"] == "zorblax_triangle_area", top

    def stop(self) -> str:
        """shutdown + exit: the process ends with 0; its stderr, which holds no traceback."""
        assert self.ask(request("bye", "shutdown", None))["result"] is None
        self.write(frame({"jsonrpc": "2.0", "method": "exit"}))
        assert self.proc.wait(timeout=ANSWER_S) == 0
        return self.logged()

    def logged(self) -> str:
        self.stderr.flush()
        text = self.stderr_path.read_text()
        assert "Traceback" not in text, text
        return text

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()
