"""Identity, defined once: the root a path belongs to, a root's repo id, and what makes a folder a semcode index
(its marker file, which also records the index format, each model's vector size and the repositories whose last
full run was cut short). No heavy imports: the CLI's warm path uses this module."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexer.types import StoreError


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
    """The id rows of a repository carry in the index: its resolved absolute root (valid UTF-8: the bytes of a
    folder name that is not UTF-8 written as ``\\xNN``, as discovery writes file names)."""
    path = str(root.resolve())
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        path = os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


MARKER = "semcode-store.json"  # written into every index directory we create; its absence means "not ours"
FORMAT = 1  # bump when a table layout changes incompatibly; an old index then asks for --rebuild
REBUILD = "run `semcode index --rebuild` to start a fresh index"


def is_index(folder: Path) -> bool:
    """Whether `folder` is an index folder semcode made (it carries the marker)."""
    return (folder / MARKER).is_file()


def claim_dir(root: Path) -> None:
    """Create the index directory with its marker, or check that an existing one is a semcode index we can read."""
    marker = root / MARKER
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root} is not a directory; choose another index location")
    if root.is_dir() and not marker.exists() and any(root.iterdir()):
        raise StoreError(
            f"{root} is not a semcode index (it has files but no {MARKER}); choose another index location, "
            "or delete the directory if it is a broken index"
        )
    if not marker.exists():
        root.mkdir(parents=True, exist_ok=True)
        write_marker(root, {"format": FORMAT})
        return
    fmt = read_marker(root).get("format")
    if fmt != FORMAT:
        raise StoreError(f"the index at {root} has format {fmt!r}, this semcode uses {FORMAT}; {REBUILD}")


def read_marker(root: Path) -> dict[str, Any]:
    """The marker's record: {"format", "models": {model id: dim}, "incomplete": {model id: [repo, ...]}}."""
    marker = root / MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StoreError(f"{marker} cannot be read ({e}); {REBUILD}") from e
    if not isinstance(data, dict):
        raise StoreError(f"{marker} is not a semcode marker; {REBUILD}")
    return data


def write_marker(root: Path, data: dict[str, Any]) -> None:
    tmp = root / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, root / MARKER)  # atomic: a crash leaves no half-written marker


def update_marker(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = read_marker(root)
    before = json.dumps(data, sort_keys=True)
    change(data)
    if json.dumps(data, sort_keys=True) != before:
        write_marker(root, data)
