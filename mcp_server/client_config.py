"""``semcode mcp --print-config CLIENT``: the snippet that makes a coding agent or editor start this installation's
``semcode mcp`` over stdio, in that client's documented format, with absolute paths (agents start servers from
folders of their own choosing, with a PATH that may lack a virtual environment's ``bin``).

The formats, as each client documents them:

- ``claude-code``: ``.mcp.json`` in the project (or ``claude mcp add-json semcode '<the server object>'``):
  ``{"mcpServers": {NAME: {"type": "stdio", "command", "args"}}}``.
- ``codex``: ``~/.codex/config.toml`` (or a trusted project's ``.codex/config.toml``): a ``[mcp_servers.NAME]``
  table with ``command``, ``args`` and ``startup_timeout_sec``.
- ``cursor``: ``.cursor/mcp.json`` in the project (or ``~/.cursor/mcp.json``): ``{"mcpServers": {NAME: {"command",
  "args"}}}``.
- ``vscode``: ``.vscode/mcp.json`` in the workspace: ``{"servers": {NAME: {"type": "stdio", "command", "args"}}}``.
- ``continue``: a block file ``.continue/mcpServers/semcode.yaml`` in the workspace: ``name``, ``version``,
  ``schema: v1`` and an ``mcpServers`` list of ``{name, command, args}``.

The snippet goes to stdout (so ``> .mcp.json`` works); where to put it goes to stderr.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .budget import check_budget

NAME = "semcode"
STARTUP_TIMEOUT_S = 30  # Codex waits 10 s by default; a cold start on a busy machine may need more


@dataclass(frozen=True)
class ServerArgs:
    """What the configured server is started with: the roots (absolute) and the options given with
    ``--print-config`` that the server takes too."""

    roots: Sequence[Path]
    index_dir: str | None = None
    model: str | None = None
    read_only: bool = False
    max_tokens: int | None = None

    def argv(self) -> list[str]:
        args = ["mcp", *(str(r.absolute()) for r in self.roots)]
        if self.index_dir:
            args += ["--index-dir", self.index_dir if "://" in self.index_dir else str(Path(self.index_dir).absolute())]
        if self.model:
            args += ["--model", str(Path(self.model).absolute()) if Path(self.model).exists() else self.model]
        if self.read_only:
            args.append("--read-only")
        if self.max_tokens is not None:
            args += ["--max-tokens", str(self.max_tokens)]
        return args


def launcher() -> list[str]:
    """How to run this installation's ``semcode``: the ``semcode`` script beside the running Python (a virtual
    environment's ``bin``, a pipx or ``uv tool`` install), else that Python with ``-m lsp_server.cli``."""
    python = Path(sys.executable).absolute()  # not resolved: a venv's python is a symlink out of the venv
    script = python.parent / ("semcode.exe" if os.name == "nt" else "semcode")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-m", "lsp_server.cli"]


def command_line(server: ServerArgs) -> tuple[str, list[str]]:
    """(command, args) of the configured server."""
    first, *rest = launcher()
    return first, [*rest, *server.argv()]


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _quoted(text: str) -> str:
    """A double-quoted string TOML and YAML read alike (JSON's escapes; non-ASCII as is)."""
    return json.dumps(text, ensure_ascii=False)


def claude_code(command: str, args: list[str]) -> str:
    return _json({"mcpServers": {NAME: {"type": "stdio", "command": command, "args": args}}})


def codex(command: str, args: list[str]) -> str:
    listed = ", ".join(_quoted(a) for a in args)
    return (
        f"[mcp_servers.{NAME}]\ncommand = {_quoted(command)}\nargs = [{listed}]\n"
        f"startup_timeout_sec = {STARTUP_TIMEOUT_S}\n"
    )


def cursor(command: str, args: list[str]) -> str:
    return _json({"mcpServers": {NAME: {"command": command, "args": args}}})


def vscode(command: str, args: list[str]) -> str:
    return _json({"servers": {NAME: {"type": "stdio", "command": command, "args": args}}})


def continue_dev(command: str, args: list[str]) -> str:
    listed = "".join(f"      - {_quoted(a)}\n" for a in args)
    return (
        f"name: {NAME}\nversion: 0.0.1\nschema: v1\nmcpServers:\n  - name: {NAME}\n    command: {_quoted(command)}\n"
        f"    args:\n{listed}"
    )


@dataclass(frozen=True)
class Client:
    snippet: Callable[[str, list[str]], str]
    where: str  # where the snippet goes, told on stderr


CLIENTS: dict[str, Client] = {
    "claude-code": Client(claude_code, "save it as .mcp.json in the project (or merge its mcpServers entry there)"),
    "codex": Client(codex, "add it to ~/.codex/config.toml (or to .codex/config.toml of a trusted project)"),
    "cursor": Client(cursor, "save it as .cursor/mcp.json in the project (or merge it into ~/.cursor/mcp.json)"),
    "vscode": Client(vscode, "save it as .vscode/mcp.json in the workspace (or merge its servers entry there)"),
    "continue": Client(continue_dev, "save it as .continue/mcpServers/semcode.yaml in the workspace"),
}


def snippet(client: str, server: ServerArgs) -> str:
    """`client`'s configuration snippet for `server` (KeyError for a client not in ``CLIENTS``)."""
    return CLIENTS[client].snippet(*command_line(server))


def print_config(client: str, server: ServerArgs) -> int:
    """Print `client`'s snippet on stdout and where it goes on stderr; the exit status. ValueError for options the
    server would refuse at start."""
    if server.max_tokens is not None:
        check_budget(server.max_tokens)
    text = snippet(client, server)
    print(text, end="" if text.endswith("\n") else "\n")
    hint = f"semcode: {CLIENTS[client].where}"
    if client == "claude-code":
        command, args = command_line(server)
        entry = json.dumps({"type": "stdio", "command": command, "args": args}, ensure_ascii=False)
        hint += f"; or run: claude mcp add-json {NAME} {shlex.quote(entry)}"
    print(hint, file=sys.stderr)
    return 0


__all__ = ["CLIENTS", "ServerArgs", "command_line", "launcher", "print_config", "snippet"]
