"""Identity, defined once: the root a path belongs to, a root's repo id, and what makes a folder a semcode index
(its marker file). No heavy imports: the CLI's warm path uses this module."""

from __future__ import annotations

from pathlib import Path


def find_root(path: Path) -> Path:
    """The repository a path belongs to: the nearest ancestor holding ``.git``, else the folder itself (or a
    file's folder)."""
    start = path.resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def repo_id(root: Path) -> str:
    """The id rows of a repository carry in the index: its resolved absolute root."""
    return str(root.resolve())


MARKER = "semcode-store.json"  # written into every index directory we create; its absence means "not ours"


def is_index(folder: Path) -> bool:
    """Whether `folder` is an index folder semcode made (it carries the marker)."""
    return (folder / MARKER).is_file()
