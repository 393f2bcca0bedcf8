"""Lines of an indexed file, for ``Engine.read``: read as indexing reads the file, numbered as the chunker numbers
them, and cut to a range and a size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from indexer.discover import DiscoverOptions


@dataclass(frozen=True)
class Lines:
    """Lines of an indexed file (0-based, end inclusive), as ``Engine.read`` returns them."""

    path: str
    start_line: int
    end_line: int
    total_lines: int
    text: str
    truncated: bool  # the range was cut to the line or character bound


def source_lines(root: Path, rel: str, options: DiscoverOptions) -> list[str]:
    """The file's lines as the chunker numbers them (split at newlines only), read and checked as indexing reads a
    file (encodings with a BOM, and every content check: a file that took a secret since it was indexed is refused
    with FileNotFoundError). Opened as indexing opens a file (``indexer.read.open_beneath``): below `root`, through
    no symlink, and not when the path itself is one, so a file swapped for a symlink after ``Folder.inside`` checked
    its path is refused, not followed (the check resolves symlinks; the open cannot race it)."""
    from indexer.read import FOLDER_SWAPPED, SYMLINK_SWAPPED, read_source
    from indexer.types import Skip

    src = read_source(root, rel, options, follow=False)
    if isinstance(src, Skip):
        why = {
            SYMLINK_SWAPPED: "it is a symlink now (not followed)",
            FOLDER_SWAPPED: "a folder on its path is a symlink now (not followed)",
        }.get(src.reason, src.reason)
        raise FileNotFoundError(f"{rel}: {why}; it cannot be read")
    lines = src.text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the text's final newline ends its last line
    return [line.removesuffix("\r") for line in lines]


def cut_lines(
    rel: str,
    lines: list[str],
    start_line: int | None,
    end_line: int | None,
    *,
    max_lines: int | None = None,
    max_chars: int | None = None,
) -> Lines:
    """`lines[start_line..end_line]` (inclusive; default all), at most `max_lines` lines and about `max_chars`
    characters (a first line longer than that is cut); ValueError for a range past the end."""
    start = max(0, start_line or 0)
    end = len(lines) - 1 if end_line is None else min(end_line, len(lines) - 1)
    if start > end and lines:
        raise ValueError(f"{rel}: no lines in {start}..{end} (the file has {len(lines)} lines)")
    stop = end if max_lines is None else min(end, start + max_lines - 1)
    chosen: list[str] = []
    size = 0
    for line in lines[start : stop + 1]:
        if max_chars is not None and size + len(line) + 1 > max_chars and chosen:
            break
        chosen.append(line if max_chars is None else line[:max_chars])
        size += len(line) + 1
    last = start + len(chosen) - 1
    return Lines(rel, start, last, len(lines), "\n".join(chosen), truncated=last < end)
