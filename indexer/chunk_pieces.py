"""Candidate chunks before they are counted (``Piece``), the paragraph fallback that makes them for text and for code
that is not parsed, and the packing helpers the chunker splits them with. No tree-sitter here.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

TEXT_TARGET = 512  # token target of the paragraph fallback (capped by max_tokens)
GUESS = 0.4  # tokens per byte assumed before anything is counted (conservative for code)
FILL = 0.85  # pack to this share of the budget, leaving room for the estimate's error


@dataclass
class Piece:
    """A candidate chunk: a byte span of the file (the partition it owns), or synthetic code shown for a span."""

    start: int
    end: int
    symbol: str | None
    kind: str
    parent: str | None
    limit: int  # token budget of this piece
    mode: str = "nodes"  # "nodes" | "spans" | "lines" | "chars"
    parts: tuple[Any, ...] = ()  # nodes ("nodes") or (start, end) byte spans ("spans")
    code: str | None = None  # synthetic code (class summary); None: the file's bytes [start, end), trimmed
    context: tuple[str, ...] = ()  # enclosing signatures, shown only once the piece is a split piece
    split: bool = False
    bare: bool = False  # no header and no context (last resort for tiny budgets)
    inner: bool = False  # parts are items inside the symbol's definition (not the definition itself)
    ratio: float = GUESS  # tokens per byte, from the nearest counted ancestor


def paragraph_pieces(data: bytes, line_starts: list[int], markdown: bool, limit: int) -> list[Piece]:
    """The paragraph fallback: blank-line separated paragraphs (markdown: also sections at headings) packed up to
    ``limit`` tokens by estimate, as pieces that partition the whole text."""
    limit = max(1, limit)
    paras: list[tuple[int, int, str | None]] = []  # (start, end, heading text when it opens a section)
    para_start: int | None = None
    heading: str | None = None
    fence = False
    for i, ls in enumerate(line_starts):
        le = line_starts[i + 1] if i + 1 < len(line_starts) else len(data)
        line = data[ls:le]
        stripped = line.strip()
        is_heading = False
        if markdown:
            if stripped.startswith((b"```", b"~~~")):
                fence = not fence
            elif not fence and re.match(rb" {0,3}#{1,6}(\s|$)", line):
                is_heading = True
        if (is_heading or (not stripped and not fence)) and para_start is not None:
            paras.append((para_start, ls, heading))
            para_start, heading = None, None
        if is_heading:
            heading = stripped.decode("utf-8", "surrogatepass").lstrip("#").strip() or "#"
        if stripped and para_start is None:
            para_start = ls
    if para_start is not None:
        paras.append((para_start, len(data), heading))
    pieces: list[Piece] = []
    section: str | None = None
    group: list[tuple[int, int]] = []
    size = 0.0

    def flush() -> None:
        if group:
            kind = "section" if section is not None else "text"
            pieces.append(
                Piece(group[0][0], group[-1][1], section, kind, None, limit, mode="spans", parts=tuple(group))
            )

    for start, end, head in paras:
        est = (end - start) * GUESS
        if head is not None or (group and size + est > limit * FILL):
            flush()
            group, size = [], 0.0
            if head is not None:
                section = head
        group.append((start, end))
        size += est
    flush()
    # the pieces partition the file so blank-separated stray bytes are never lost
    for a, b in itertools.pairwise(pieces):
        a.end = b.start
    if pieces:
        pieces[0].start = 0
        pieces[-1].end = len(data)
    return pieces


def splittable(p: Piece) -> bool:
    if p.mode != "chars":
        return True
    if p.code is not None:
        return len(p.code) > 1 or not p.bare
    return p.end - p.start > 1 or not p.bare


def pack(sizes: list[int], target: float) -> list[tuple[int, int]]:
    """Consecutive runs (inclusive index pairs) of roughly equal size, each <= target where one item allows, at
    least two runs when there are two or more items."""
    total = sum(sizes)
    n = len(sizes)
    if n <= 1:
        return [(0, n - 1)] if n else []
    goal = total / max(2, math.ceil(total / max(target, 1.0)))
    out: list[tuple[int, int]] = []
    first, acc = 0, 0
    for i, s in enumerate(sizes):
        if i > first and (acc + s > target or acc >= goal):
            out.append((first, i - 1))
            first, acc = i, 0
        acc += s
    out.append((first, n - 1))
    if len(out) == 1:  # the estimate said it fits but the count said no: halve
        half, acc = 0, 0
        while half < n - 1 and acc + sizes[half] <= total / 2:
            acc += sizes[half]
            half += 1
        half = max(1, half)
        out = [(0, half - 1), (half, n - 1)]
    return out


def split_chars(text: str, max_bytes: int) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    size = 0
    for ch in text:
        b = len(ch.encode("utf-8", "surrogatepass"))
        if cur and size + b > max_bytes:
            out.append("".join(cur))
            cur, size = [], 0
        cur.append(ch)
        size += b
    if cur:
        out.append("".join(cur))
    return out


def push_context(context: tuple[str, ...], header: str) -> tuple[str, ...]:
    """Context grows by one signature; only the outermost and the two innermost are kept."""
    out = (*context, header)
    return out if len(out) <= 3 else (out[0], out[-2], out[-1])
