"""semcode: local semantic code search. The application core and its public Python API.

    import semcode
    with semcode.open("path/to/repo") as index:
        index.update()
        for hit in index.search("parse a config file", limit=5):
            print(hit.path, hit.start_line, hit.symbol, hit.score)

Line numbers are 0-based, end lines inclusive (as ``semcode search --json``). See ``semcode.api``.
Importing this package is cheap: torch, LanceDB and tree-sitter load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Hit, Hits, Index, RepositoryStatus, Status, UpdateSummary, open
    from .engine import Engine
    from .lines import Lines
    from .query import EmptyFilter, SearchQuery
    from .search_gate import Busy
    from .settings import Settings, configured_model
    from .workspace import Folder, PathOutside

# each name loads its module on first use (PEP 562): the CLI's warm path imports only what it needs
_LAZY = {
    "Hit": "api", "Hits": "api", "Index": "api", "RepositoryStatus": "api", "Status": "api", "UpdateSummary": "api",
    "open": "api",
    "Engine": "engine", "Lines": "lines", "SearchQuery": "query", "EmptyFilter": "query", "Settings": "settings",
    "configured_model": "settings", "Folder": "workspace", "PathOutside": "workspace", "Busy": "search_gate",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Busy",
    "EmptyFilter",
    "Engine",
    "Folder",
    "Hit",
    "Hits",
    "Index",
    "Lines",
    "PathOutside",
    "RepositoryStatus",
    "SearchQuery",
    "Settings",
    "Status",
    "UpdateSummary",
    "configured_model",
    "open",
]
__version__ = "0.1.0"
