"""Read one discovered file: bytes -> text, or a `Skip` with the reason (the stage between discover.py's walk and
the chunker). `read_source` never raises for a file's problems.

Decoding: UTF-8, less a leading BOM. A UTF-16 or UTF-32 byte-order mark selects that encoding (Windows tools write
UTF-16 with a BOM; without a BOM such a file's NUL bytes mark it binary). Invalid sequences become U+FFFD and are
counted; a file with too many is skipped as not text.

Content checks, shared with unsaved editor buffers (`check_text`): NUL characters, a line too long for source (a
minified or generated file), and a secret (`indexer.secrets.find_secret`: private keys in any wrapping, cloud
credentials, API tokens, high-entropy values assigned to secret names) unless ``include_secrets``; the reason names
the kind and line, never the value. A file with no text (empty or whitespace only) is skipped too: it has nothing to
search, and its record says why it has no chunks.

Opening: never through a symlink. The walk (discover.py) follows none, but a file can be swapped for one between the
walk and the read (a ``git pull``, or another local user with write access to the tree): `open_beneath` opens each
folder below the root and then the file with ``O_NOFOLLOW``, so what is read lies inside the root. A path that is
itself a symlink to a file inside the root (discover indexes a link to a file of no supported type at the link's
path) is opened at its target the same way; one out of the root, or a folder on the path that is a symlink, is a
Skip ("changed into a symlink while indexing"). Given the walk's stat of the path, the file opened must also be the
one the walk saw (device and inode): a file swapped for a symlink to another file inside the root is skipped too.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.languages import language_for
from indexer.secrets import find_secret
from indexer.types import Skip, SourceFile

if TYPE_CHECKING:
    from indexer.discover import DiscoverOptions

# bump when read_source's checks or the chunker's output change: indexes re-read and re-chunk every file once (chunks
# whose text is unchanged keep their vectors). 2: secrets by content; 3: objects of methods, C# delegates; 4: secrets
# in any wrapping (a private key in string literals or comments), generic high-entropy secrets, KEY_AKIA...
CONTENT_CHECKS = 4
BINARY_SNIFF_BYTES = 8192
SURROGATES = re.compile("[\ud800-\udfff]")  # lone surrogates: no UTF-8 encoding
MAX_INVALID_FRACTION = 0.30
# byte-order marks, UTF-32 before UTF-16 (the UTF-32 LE mark starts with the UTF-16 LE one)
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def too_big(size: int, options: DiscoverOptions) -> str:
    """The reason for a file of `size` bytes over the limit."""
    return f"over the size limit: {_human(size)} > {_human(options.max_file_bytes)}"


_FILE_KINDS = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device"))


def not_regular(mode: int) -> str:
    """The reason for a file of this mode that is not a regular file (never read: a fifo could block forever)."""
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "folder" if stat.S_ISDIR(mode) else "other")
    return f"not a regular file ({kind})"


def check_text(text: str, options: DiscoverOptions) -> str | None:
    """Why a decoded text (a file's or an editor buffer's) is not indexed, or None: NUL characters, a minified
    line, or a secret (kind and line only, never the value) unless ``options.include_secrets``."""
    if "\x00" in text[:BINARY_SNIFF_BYTES]:
        return "binary file (NUL bytes)"
    longest = max((len(line) for line in text.split("\n")), default=0)
    if longest > options.max_line_chars:
        return f"minified or generated (a line of {longest:,} characters)"
    if not options.include_secrets and (found := find_secret(text)) is not None:
        return found.reason
    return None


def replace_surrogates(text: str) -> tuple[str, int]:
    """(text, count) with each lone surrogate replaced by U+FFFD: text from outside (an editor buffer sent as JSON
    may hold "\\ud800") that could not be stored as UTF-8 otherwise. The text itself when it is valid."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        clean, n = SURROGATES.subn("\ufffd", text)
        return clean, n
    return text, 0


def decode(data: bytes) -> tuple[str, int] | str:
    """(text, invalid sequences replaced) of a file's bytes (see the module docstring), or the reason it is not
    text."""
    encoding, body = "utf-8", data
    for bom, name in BOMS:
        if data.startswith(bom):
            encoding, body = name, data[len(bom) :]
            break
    else:
        if b"\x00" in data[:BINARY_SNIFF_BYTES]:
            return "binary file (NUL bytes)"
    try:
        return body.decode(encoding), 0
    except UnicodeDecodeError:
        text = body.decode(encoding, errors="replace")
    # U+FFFD encoded validly in the file is text, not damage; an invalid sequence never swallows its lead byte
    replaced = text.count("\ufffd") - body.count("\ufffd".encode(encoding))
    if replaced > MAX_INVALID_FRACTION * len(text):
        label = encoding.upper().removesuffix("-LE").removesuffix("-BE")
        return f"not {label} text ({round(100 * replaced / len(text))}% invalid bytes)"
    return text, replaced


# why a file cannot be read safely: the walk saw a regular file (or a symlink discover keeps) at a path that is now a
# symlink out of the repository or to another file, or whose folders changed; or another file was renamed onto it
SYMLINK_SWAPPED = "changed into a symlink while indexing; skipped"
FOLDER_SWAPPED = "a folder on its path changed into a symlink (or a file) while indexing; skipped"
REPLACED = "replaced by another file while indexing; skipped (the next run reads it again)"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a fifo that replaced the file must not hang
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC  # (O_PATH: Linux)
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC
_FINAL_LINK = (errno.ELOOP, errno.EMLINK)  # O_NOFOLLOW met a symlink (EMLINK: FreeBSD)


class _Unsafe(Exception):
    """A symlink (or a file) where the walk saw a file or a folder: the reason is the message."""


def open_beneath(root: str, relpath: str) -> int:
    """A read-only descriptor of `relpath` (repository-relative, POSIX) below the folder `root`, following no symlink
    on the way: each folder is opened relative to the one above it, then the file, all with ``O_NOFOLLOW`` (and
    ``O_NONBLOCK``: a fifo never blocks the open). What it opens lies inside `root` whatever is renamed or swapped
    for a symlink meanwhile (``root`` itself may be reached through symlinks). A symlink met raises OSError: ELOOP
    for the file itself, ENOTDIR for a folder."""
    parts = relpath.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise FileNotFoundError(errno.ENOENT, "not a path inside the repository", relpath)
    if os.open not in os.supports_dir_fd:  # pragma: no cover - no openat (Windows): the file's own name only
        return os.open(os.path.join(root, relpath), _FILE_FLAGS)
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def _link_target(root: str, relpath: str) -> str | None:
    """The real path (relative to the real root) of the file a symlink at `relpath` points to, when that is inside
    the root; None otherwise."""
    real_root = os.path.realpath(root)
    try:
        target = os.path.realpath(os.path.join(real_root, relpath), strict=True)
    except OSError:
        return None
    if not target.startswith(real_root.rstrip(os.sep) + os.sep):
        return None
    return os.path.relpath(target, real_root).replace(os.sep, "/")


def _open_inside(root: str, relpath: str, follow: bool) -> tuple[int, bool]:
    """(descriptor, whether a final symlink was followed) of a file inside `root`, opened by `open_beneath`. With
    `follow`, a path that is itself a symlink to a file inside the root (discover indexes some at the link's path:
    ``tool.py`` -> ``bin/tool``; a named file is read as it is) is opened at its target, again by `open_beneath`.
    Raises OSError, or `_Unsafe` with the reason: a symlink not followed (out of the root, or `follow` False), or a
    folder on the path that is a symlink now."""
    try:
        return open_beneath(root, relpath), False
    except OSError as e:
        if e.errno == errno.ENOTDIR:
            raise _Unsafe(FOLDER_SWAPPED) from None
        if e.errno not in _FINAL_LINK:
            raise
    target = _link_target(root, relpath) if follow else None
    if target is None:
        raise _Unsafe(SYMLINK_SWAPPED)
    try:
        return open_beneath(os.path.realpath(root), target), True
    except OSError as e:
        if e.errno in (errno.ENOTDIR, *_FINAL_LINK):
            raise _Unsafe(SYMLINK_SWAPPED) from None
        raise


def _read_bytes(
    root: str, relpath: str, options: DiscoverOptions, expected: os.stat_result | None, follow: bool
) -> tuple[bytes, int] | str:
    """(up to the size limit + 1 bytes, size on disk) of a regular file inside `root`, or why it cannot be read.
    With `expected` (the walk's stat of the path), the file opened must be that one (device and inode)."""
    try:
        fd, followed = _open_inside(root, relpath, follow)
    except _Unsafe as e:
        return str(e)
    except FileNotFoundError:
        return "vanished while being read"
    except PermissionError:
        return "unreadable: permission denied"
    except OSError as e:
        try:
            mode = os.lstat(os.path.join(root, relpath)).st_mode  # a socket refuses open(): say what it is
        except OSError:
            mode = stat.S_IFREG
        return f"unreadable: {e.strerror}" if stat.S_ISREG(mode) else not_regular(mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return not_regular(st.st_mode)
        if expected is not None and (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
            return SYMLINK_SWAPPED if followed else REPLACED
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(options.max_file_bytes + 1), st.st_size  # the file may have grown since discovery
    except OSError as e:
        return f"unreadable: {e.strerror}"
    finally:
        os.close(fd)


def read_source(
    root: Path,
    relpath: str,
    options: DiscoverOptions | None = None,
    expected: os.stat_result | None = None,
    *,
    follow: bool = True,
) -> SourceFile | Skip:
    """Read and decode one discovered file. Never raises for the file's problems: returns a Skip with the reason.
    The text is kept exactly as decoded (no newline conversion), less a leading BOM.

    The file is opened below `root` without following a symlink (`_open_inside`): a file or folder swapped for a
    symlink since the walk is skipped, never read through the link. `expected`, the walk's stat of the path (its
    ``lstat``; a kept symlink's target's ``stat``), must name the file opened (device and inode). `follow` False
    refuses a path that is itself a symlink, even to a file inside the root (reads served to users:
    ``Folder.inside`` refuses those at its check too)."""
    opts = options if options is not None else _default_options()
    language = language_for(relpath)
    if language is None:
        return Skip(relpath, "unsupported file type")
    read = _read_bytes(str(root), relpath, opts, expected, follow)
    if isinstance(read, str):
        return Skip(relpath, read)
    data, size = read
    if len(data) > opts.max_file_bytes:
        return Skip(relpath, too_big(max(len(data), size), opts))
    decoded = decode(data)
    if isinstance(decoded, str):
        return Skip(relpath, decoded)
    text, replaced = decoded
    if not text or text.isspace():
        return Skip(relpath, "empty file" if not text else "empty file (whitespace only)")
    problem = check_text(text, opts)
    if problem is not None:
        return Skip(relpath, problem)
    return SourceFile(path=relpath, language=language, text=text, size=len(data), replaced=replaced)


def _default_options() -> DiscoverOptions:
    from indexer.discover import DiscoverOptions  # a late import: discover.py imports this module

    return DiscoverOptions()
