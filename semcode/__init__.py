"""semcode: local semantic code search. The application core and its public Python API.

    import semcode
    with semcode.open("path/to/repo") as index:
        index.update()
        for hit in index.search("parse a config file", limit=5):
            print(hit.path, hit.start_line, hit.symbol, hit.score)

Line numbers are 0-based, end lines inclusive (as ``semcode search --json``). See ``semcode.api``.
Importing this package is cheap: torch, LanceDB and tree-sitter load on first use.
"""

from .api import Hit, Index, RepositoryStatus, Status, UpdateSummary, open
from .engine import Engine, Lines, SearchQuery
from .settings import Settings, configured_model
from .workspace import Folder, PathOutside

__all__ = [
    "Engine",
    "Folder",
    "Hit",
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
