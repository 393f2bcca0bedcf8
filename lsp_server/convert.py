"""Conversions between the LSP wire and the core: custom request params -> core queries, hits -> JSON objects and
LSP types. Invalid params raise ``JsonRpcInvalidParams`` with a message naming the field; the limits are the core's
(``semcode.limits``), so an oversized field gets the same message as from the CLI, MCP or the Python API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path

from indexer.chunk import chunk_header
from semcode.limits import check_limit, check_line, short
from semcode.query import MODES, SearchQuery
from semcode.relevance import Mode, relevance

if TYPE_CHECKING:
    from indexer.store import Hit, StoredChunk

SYMBOL_KINDS = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "struct": types.SymbolKind.Struct,
    "interface": types.SymbolKind.Interface,
    "enum": types.SymbolKind.Enum,
    "module": types.SymbolKind.Module,
    "section": types.SymbolKind.String,
    "text": types.SymbolKind.File,
}


def field(params: Any, key: str, default: Any = None) -> Any:
    """A field of custom params, which pygls passes as attribute objects (or dicts from other callers)."""
    if isinstance(params, Mapping):
        return params.get(key, default)
    return getattr(params, key, default)


def str_list(params: Any, key: str, method: str) -> list[str] | None:
    value = field(params, key)
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise JsonRpcInvalidParams(f"{method}: {key!r} must be a list of strings")
    return list(value)


def limit_of(params: Any, method: str, default: int = 20) -> int:
    try:
        return check_limit(field(params, "limit", default))
    except ValueError as e:
        raise JsonRpcInvalidParams(f"{method}: {e}") from None


def line_of(params: Any, method: str) -> int:
    """``position.line`` (0-based, within ``semcode.limits.MAX_LINES``)."""
    try:
        return check_line(field(field(params, "position"), "line"), "'position.line'")
    except ValueError as e:
        raise JsonRpcInvalidParams(f"{method}: {e}") from None


def search_query(params: Any, method: str = "semcode/search") -> SearchQuery:
    """The ``SearchQuery`` of ``semcode/search`` params; its ``warnings`` (a cut query) belong in the answer."""
    query = field(params, "query")
    if not isinstance(query, str):
        raise JsonRpcInvalidParams(f"{method}: 'query' (a string) is required")
    mode = field(params, "mode", "hybrid")
    if mode not in MODES:
        raise JsonRpcInvalidParams(f"{method}: 'mode' must be one of {', '.join(MODES)}, got {short(mode)}")
    languages = str_list(params, "languages", method)
    group_by = field(params, "groupBy", "chunk")
    if group_by not in ("chunk", "file"):
        raise JsonRpcInvalidParams(f'{method}: \'groupBy\' must be "chunk" or "file", got {short(group_by)}')
    try:
        paths = str_list(params, "paths", method)
        return SearchQuery(query, limit_of(params, method), mode, paths, languages, group_by == "file")
    except ValueError as e:
        raise JsonRpcInvalidParams(f"{method}: {e}") from None


def lsp_range(c: StoredChunk) -> dict[str, Any]:
    return {
        "start": {"line": c.start_line, "character": c.start_col},
        "end": {"line": c.end_line, "character": c.end_col},
    }


def chunk_uri(c: StoredChunk) -> str:
    return from_fs_path(str(Path(c.repo) / c.path)) or ""


def preview(c: StoredChunk, lines: int = 3) -> str:
    text = c.text.splitlines()
    header = chunk_header(c.qualified_name)
    if header and text and text[0] == header:
        text = text[1:]
    return "\n".join(text[:lines])


def hit_json(h: Hit, mode: Mode) -> dict[str, Any]:
    """A hit on the wire; `mode` puts its raw score on the one 0-1 relevance scale (``semcode.relevance``)."""
    c = h.chunk
    return {
        "uri": chunk_uri(c),
        "range": lsp_range(c),
        "relevance": round(relevance(mode, h.score), 4),
        "score": h.score,
        "symbol": c.qualified_name,
        "kind": c.kind,
        "language": c.language,
        "preview": preview(c),
        "reasons": list(h.reasons),
    }


def origin_json(c: StoredChunk | None) -> dict[str, Any] | None:
    """The chunk a related-code request started from."""
    return None if c is None else {"uri": chunk_uri(c), "range": lsp_range(c), "symbol": c.qualified_name}


def symbol_information(h: Hit) -> types.SymbolInformation:
    c = h.chunk
    rng = types.Range(types.Position(c.start_line, c.start_col), types.Position(c.end_line, c.end_col))
    return types.SymbolInformation(
        name=c.symbol or preview(c, 1) or c.path,
        kind=SYMBOL_KINDS.get(c.kind, types.SymbolKind.Object),
        location=types.Location(uri=chunk_uri(c), range=rng),
        container_name=c.parent or c.path,
    )
