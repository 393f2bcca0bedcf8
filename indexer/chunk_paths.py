"""Files and folders -> chunks: discover, read, chunk. A plain generator that front doors (CLI, LSP, indexer runs,
distributed workers) all call; every per-file problem arrives as data (``Skip`` or ``FileChunks.problems``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from .chunk import chunk_source
from .discover import DiscoverOptions, discover_paths, read_source
from .identity import find_root
from .types import FileChunks, Skip

CountTokens = Callable[[list[str]], list[int]]


def chunk_paths(
    paths: list[Path],
    count_tokens: CountTokens,
    *,
    root: Path | None = None,
    options: DiscoverOptions | None = None,
    max_tokens: int = 8192,
    with_header: bool = True,
) -> Iterator[tuple[Path, FileChunks | Skip]]:
    """(repository root, result) for every file under ``paths``: ``FileChunks`` or ``Skip`` with its reason.

    Paths in results are relative to their repository root (POSIX separators): ``root`` when given, else each
    path's own (``find_root``).
    """
    opts = options or DiscoverOptions()
    by_root: dict[Path, list[Path]] = {}
    for p in paths:
        by_root.setdefault(root.resolve() if root else find_root(p), []).append(p)
    for root, group in by_root.items():
        for item in discover_paths(group, root, opts):
            if isinstance(item, Skip):
                yield root, item
                continue
            src = read_source(root, item, opts)
            if isinstance(src, Skip):
                yield root, src
                continue
            yield root, chunk_source(src, count_tokens, max_tokens=max_tokens, with_header=with_header)
