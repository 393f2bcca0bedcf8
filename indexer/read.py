"""Read one discovered file: bytes -> text, or a `Skip` with the reason (the stage between discover.py's walk and
the chunker). `read_source` never raises for a file's problems.

Decoding: UTF-8, less a leading BOM. A UTF-16 or UTF-32 byte-order mark selects that encoding (Windows tools write
UTF-16 with a BOM; without a BOM such a file's NUL bytes mark it binary). Invalid sequences become U+FFFD and are
counted; a file with too many is skipped as not text.

Content checks, shared with unsaved editor buffers (`check_text`): NUL characters, a line too long for source (a
minified or generated file), and a secret (`indexer.secrets.find_secret`: private keys, cloud credentials, API
tokens) unless ``include_secrets``. A file with no text (empty or whitespace only) is skipped too: it has nothing to
search, and its record says why it has no chunks.
"""

from __future__ import annotations

import codecs
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
# whose text is unchanged keep their vectors). 2: secrets by content; 3: objects of methods, C# delegates
CONTENT_CHECKS = 3
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


def _read_bytes(path: str, limit: int) -> tuple[bytes, int] | str:
    """(up to `limit` + 1 bytes, size on disk) of a regular file, or why it cannot be read."""
    try:
        # O_NONBLOCK: opening a fifo that replaced the file must not hang; it changes nothing for regular files
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return not_regular(st.st_mode)
        with os.fdopen(fd, "rb") as f:
            return f.read(limit + 1), st.st_size  # the file may have grown since discovery
    except FileNotFoundError:
        return "vanished while being read"
    except PermissionError:
        return "unreadable: permission denied"
    except OSError as e:
        try:
            mode = os.stat(path).st_mode  # a socket refuses open(): say what it is
        except OSError:
            mode = stat.S_IFREG
        return f"unreadable: {e.strerror}" if stat.S_ISREG(mode) else not_regular(mode)


def read_source(root: Path, relpath: str, options: DiscoverOptions | None = None) -> SourceFile | Skip:
    """Read and decode one discovered file. Never raises for the file's problems: returns a Skip with the reason.
    The text is kept exactly as decoded (no newline conversion), less a leading BOM."""
    opts = options if options is not None else _default_options()
    language = language_for(relpath)
    if language is None:
        return Skip(relpath, "unsupported file type")
    read = _read_bytes(os.path.join(root, relpath), opts.max_file_bytes)
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
