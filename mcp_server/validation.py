"""Arguments that do not match a tool's input schema are answered in one line an agent can act on
("search_code: limit must be at most 100, got 500"), not with pydantic's multi-line report and its links."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from semcode.limits import short

BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "below"),
    "greater_than": ("gt", "above"),
}


def one_line(tool: str, error: ValidationError) -> str:
    """`error` as ``TOOL: FIELD must ..., got VALUE; ...`` (each value cut to a few dozen characters)."""
    return f"{tool}: " + "; ".join(_problem(e) for e in error.errors())


def _problem(e: Any) -> str:
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in e["loc"]).lstrip(".")
    field = field or "arguments"
    kind, ctx, got = e["type"], e.get("ctx") or {}, short(e.get("input"), 40)
    if kind == "missing":
        return f"{field} is required"
    if kind in BOUNDS and BOUNDS[kind][0] in ctx:
        key, words = BOUNDS[kind]
        return f"{field} must be {words} {ctx[key]}, got {got}"
    if kind == "literal_error" and "expected" in ctx:
        return f"{field} must be {ctx['expected']}, got {got}"
    message = str(e["msg"]).replace("\n", " ")
    for subject in ("Input should", "String should", "List should", "Value should"):
        if message.startswith(subject):
            return f"{field} should{message[len(subject) :]}, got {got}"
    return f"{field}: {message}, got {got}"


class ToolServer(MCPServer):
    """``MCPServer`` whose argument errors are one line (``one_line``)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:  # (a crash, UnexpectedToolError, stays one: its cause may be the output's validation)
            if isinstance(e.__cause__, ValidationError) and not isinstance(e, UnexpectedToolError):
                raise ToolError(one_line(name, e.__cause__)) from None
            raise


__all__ = ["ToolServer", "one_line"]
