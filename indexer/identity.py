"""Identity, defined once: the root a path belongs to, a root's repo id, and what makes a location a semcode index
(its marker, ``semcode-store.json``, which also records the index format, each model's vector size and the
repositories whose last full run was cut short). The location is a local folder or an object-store URI
(``indexer/storage.py`` reads and writes the marker in either). No heavy imports: the CLI's warm path uses this
module."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexer.errors import StoreError
from indexer.storage import Location, location, user_name


def _path_limits() -> tuple[int, int]:
    """(PATH_MAX, NAME_MAX) of the filesystem at /: the longest path (with its NUL) and the longest name the system
    calls take; past them they fail with ENAMETOOLONG. 4096 and 255 on Linux."""
    try:
        return os.pathconf("/", "PC_PATH_MAX"), os.pathconf("/", "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - no pathconf (Windows)
        return 4096, 255


MAX_PATH_BYTES, MAX_NAME_BYTES = _path_limits()


def path_too_long(path: str | os.PathLike[str]) -> str | None:
    """Why no file can have this path (longer than PATH_MAX, or a name longer than NAME_MAX: every system call would
    fail with ENAMETOOLONG), or None. The reason repeats only the path's first 40 characters (it may be megabytes)."""
    text = os.fspath(path)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size >= MAX_PATH_BYTES:
        return f"path too long ({size:,} bytes; at most {MAX_PATH_BYTES - 1:,}): {text[:40]!r}..."
    longest = max(len(name.encode("utf-8", "surrogatepass")) for name in text.split(os.sep))
    if longest > MAX_NAME_BYTES:
        return f"path too long: a name of {longest:,} bytes (at most {MAX_NAME_BYTES}) in {text[:40]!r}..."
    return None


def find_root(path: Path) -> Path:
    """The repository a path belongs to: the nearest ancestor holding ``.git``, else the folder itself (or a
    file's folder). ValueError for a path no file can have (``path_too_long``)."""
    if (why := path_too_long(path)) is not None:
        raise ValueError(why)
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

# Where: a local folder (str or Path) or an object-store URI (str), or a Location carrying its storage options.
Where = str | os.PathLike[str] | Location


def is_index(where: Where) -> bool:
    """Whether `where` is an index semcode made (it carries the marker). A remote location that cannot be reached
    raises StoreError naming the cause. A local folder this user may not look into (another user's index: semcode
    makes them private) counts as one: reading it then says whose it is (``read_marker``), where "not indexed yet"
    would send the user to build one."""
    loc = location(where)
    if not loc.remote:
        try:
            return (Path(loc.uri) / MARKER).is_file()
        except PermissionError:
            return True
    loc.check()
    return loc.read(MARKER) is not None


def claim_dir(where: Where) -> None:
    """Create the index location with its marker, or check that an existing one is a semcode index we can read.
    A remote location is checked first (the bucket exists, the credentials may read it), so nothing is written
    where the index cannot live. A local folder is created private to this user (0700, and the folders made above
    it; the marker 0600), and an existing one of this user's that others can read is made private
    (``Location.make_dir``, ``make_private``): an index holds every chunk's full text."""
    loc = location(where)
    root = loc.root
    if not loc.remote and Path(root).exists() and not Path(root).is_dir():
        raise StoreError(f"{root} is not a directory; choose another index location")
    loc.check()
    data = _read_raw(loc)
    if data is None and loc.entries():
        raise StoreError(
            f"{root} is not a semcode index (it has files but no {MARKER}); choose another index location, "
            "or delete the directory if it is a broken index"
        )
    if data is None:
        loc.make_dir()
        loc.make_private()  # (a folder that was there, empty)
        write_marker(loc, {"format": FORMAT})
        return
    check_format(loc, _parse_marker(loc, data))
    loc.make_private()  # an index from before semcode made them private: fixed on its next write


def check_format(where: Where, marker: dict[str, Any]) -> None:
    fmt = marker.get("format")
    if fmt != FORMAT:
        raise StoreError(f"the index at {location(where)} has format {fmt!r}, this semcode uses {FORMAT}; {REBUILD}")


def read_marker(where: Where) -> dict[str, Any]:
    """The marker's record: {"format", "models": {model id: dim}, "incomplete": {model id: [repo, ...]}}."""
    loc = location(where)
    data = _read_raw(loc)
    if data is None:
        raise StoreError(f"{_marker_name(loc)} cannot be read (there is none: not a semcode index); {REBUILD}")
    return _parse_marker(loc, data)


def _read_raw(loc: Location) -> bytes | None:
    try:
        return loc.read(MARKER)
    except PermissionError as e:
        raise StoreError(_denied(loc)) from e
    except OSError as e:  # (a remote location's errors are StoreErrors already)
        raise StoreError(f"{_marker_name(loc)} cannot be read ({e}); {REBUILD}") from e


def _denied(loc: Location) -> str:
    """Why this user cannot read a local index: most often another user's (indexes are private to their owner)."""
    try:
        owner = os.stat(loc.uri).st_uid
    except OSError:
        owner = None
    whose = f"it belongs to {user_name(owner)}" if owner is not None and owner != os.geteuid() else "see its mode"
    private = "indexes are private to their owner"
    return f"{loc.uri}: permission denied: this user cannot read this index ({whose}; {private})"


def _marker_name(loc: Location) -> str:
    return f"{loc.uri}/{MARKER}" if loc.remote else str(Path(loc.uri) / MARKER)


def _parse_marker(loc: Location, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise StoreError(f"{_marker_name(loc)} cannot be read ({e}); {REBUILD}") from e
    if not isinstance(data, dict):
        raise StoreError(f"{_marker_name(loc)} is not a semcode marker; {REBUILD}")
    return data


def write_marker(where: Where, data: dict[str, Any]) -> None:
    """Write the marker whole (atomic: a local temporary file renamed, or one PUT of the object)."""
    location(where).write(MARKER, (json.dumps(data, sort_keys=True) + "\n").encode("utf-8"))


def update_marker(where: Where, change: Callable[[dict[str, Any]], None]) -> None:
    """Read, change, write back when changed. Not guarded against a concurrent writer (the last write wins): one
    writer per index (semcode.Engine's writer thread; one indexing job per shared index)."""
    loc = location(where)
    data = read_marker(loc)
    before = json.dumps(data, sort_keys=True)
    change(data)
    if json.dumps(data, sort_keys=True) != before:
        write_marker(loc, data)


def delete_index(where: Where) -> bool:
    """Delete an index (``--rebuild``, ``semcode forget``): True when one was deleted, False when nothing is there.
    Refuses (StoreError) a location that holds something other than a semcode index."""
    loc = location(where)
    if not loc.remote and Path(loc.uri).exists() and not Path(loc.uri).is_dir():
        raise StoreError(f"{loc.uri} is not a directory; not deleting it")
    if not is_index(loc):
        if loc.entries():
            raise StoreError(f"{loc.uri} is not a semcode index (no {MARKER}); not deleting it")
        if not loc.exists():
            return False
    elif not loc.remote:
        _read_raw(loc)  # a folder this user may not look into is an index for `is_index`: never deleted blind
    loc.remove()
    return True
