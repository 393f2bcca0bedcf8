"""Repository identity, defined once: the root a path belongs to and a root's repo id. No heavy imports."""

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
