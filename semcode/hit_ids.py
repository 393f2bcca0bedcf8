"""Stable ids of search hits, and what a hit expands to: its whole definition, or the definition around it.

A hit id names one chunk of an index as ``PATH:FIRST-LAST@DIGEST``: its repository-relative path, its lines (1-based,
inclusive, as editors, grep and agents number them; the id reads as a location) and 8 hex digits of a hash of its
repository, path, lines, kind and qualified name. The same chunk has the same id in every answer of the same index,
whichever front door gives it. Once its file is edited and re-indexed so that no chunk of that name and kind spans
those lines any more, the id is stale (``StaleHitId``) rather than naming other code. (Pieces of one split class
summary share lines, kind and name, and so an id: they show the same lines.)

``expand`` gives the lines to show for a hit:

- ``"hit"``: the chunk's own lines;
- ``"definition"``: the whole definition the chunk belongs to. The chunker splits a definition over its token budget
  into pieces with the same symbol, parent and kind, adjacent but for blank lines; they are joined again here. (Two
  definitions of one name side by side, such as a property's getter and setter, read as one.)
- ``"parent"``: the definition around it (a method's class, a nested function's function): the chunk named by its
  ``parent`` that encloses it, found by walking back over the siblings before it, then read whole. A definition
  whose parent lies elsewhere (a Go method's receiver type) has none here: ``NoParent`` says so.

Every lookup is ``Engine.chunk_at`` (the innermost chunk covering a line, one indexed query each); nothing here knows
a protocol, so every front door can hand out ids and expand them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .workspace import PathOutside

if TYPE_CHECKING:
    from indexer.store import StoredChunk

    from .engine import Engine
    from .workspace import Folder

Expand = Literal["hit", "definition", "parent"]
EXPANSIONS: tuple[Expand, ...] = ("definition", "parent", "hit")
DIGEST_HEX = 8
MAX_GAP = 4  # blank lines a walk steps over between two pieces of one definition
MAX_STEPS = 2_000  # lookups one walk makes at most (a class of 2,000 members; a definition of 2,000 pieces)
_ID = re.compile(rf"^(?P<path>.+):(?P<first>\d{{1,9}})-(?P<last>\d{{1,9}})@(?P<digest>[0-9a-f]{{{DIGEST_HEX}}})$")
FORM = "PATH:FIRST-LAST@HASH, as search hits carry it"


class StaleHitId(ValueError):
    """An id whose chunk is no longer in the index (its file changed and was re-indexed), or never was."""


class NoParent(ValueError):
    """A hit with no enclosing definition in its file (top level, or a parent defined elsewhere)."""


@dataclass(frozen=True)
class HitId:
    path: str
    start_line: int  # 0-based, inclusive
    end_line: int
    digest: str

    def __str__(self) -> str:
        return f"{self.path}:{self.start_line + 1}-{self.end_line + 1}@{self.digest}"


@dataclass(frozen=True)
class Span:
    """What an expanded hit shows: lines `start_line`..`end_line` (0-based, inclusive) of `path`, read from `chunk`
    (the hit's own chunk, or for "parent" the parent's), whose id is `id`."""

    folder: Folder
    path: str
    start_line: int
    end_line: int
    chunk: StoredChunk
    id: str
    expand: Expand


def _digest(repo: str, path: str, start: int, end: int, kind: str, name: str | None) -> str:
    raw = "\x1f".join((repo, path, str(start), str(end), kind, name or ""))
    return hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=DIGEST_HEX // 2).hexdigest()


def hit_id(chunk: StoredChunk) -> str:
    """The stable id of an indexed chunk (see the module docstring)."""
    digest = _digest(chunk.repo, chunk.path, chunk.start_line, chunk.end_line, chunk.kind, chunk.qualified_name)
    return str(HitId(chunk.path, chunk.start_line, chunk.end_line, digest))


def parse(text: str) -> HitId:
    """The parts of a hit id; ValueError for anything else."""
    match = _ID.match(text.strip())
    first, last = (int(match["first"]), int(match["last"])) if match else (0, 0)
    if match is None or not 1 <= first <= last:
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise ValueError(f"{shown!r} is not a hit id (expected {FORM})")
    return HitId(match["path"], first - 1, last - 1, match["digest"])


def resolve(engine: Engine, text: str) -> tuple[Folder, StoredChunk]:
    """The served folder and indexed chunk a hit id names. ``StaleHitId`` when none does (any more); ValueError
    for a malformed id; ``PathOutside`` for a path no served root may hold."""
    wanted = parse(text)
    outside: PathOutside | None = None
    for folder in engine.folders:
        try:
            rel = folder.inside(wanted.path)
        except PathOutside as e:
            outside = e
            continue
        expected = str(HitId(rel, wanted.start_line, wanted.end_line, wanted.digest))
        for line in (wanted.start_line, wanted.end_line):  # the chunk is the innermost at one of its ends
            chunk = engine.chunk_at(folder, rel, line)
            if chunk is not None and hit_id(chunk) == expected:
                return folder, chunk
    if outside is not None and len(engine.folders) == 1:
        raise outside
    raise StaleHitId(
        f"hit id {text.strip()}: no indexed chunk has it (any more): its file changed since that answer, or the id "
        "is from another index; search again for a current id"
    )


def expand(engine: Engine, folder: Folder, chunk: StoredChunk, to: Expand) -> Span:
    """The lines to show for `chunk` expanded `to` "hit", "definition" or "parent" (module docstring). Raises
    ``NoParent`` for "parent" when its file holds no definition around it."""
    if to == "parent":
        chunk = _parent(engine, folder, chunk)
    start, end = (chunk.start_line, chunk.end_line) if to == "hit" else _definition(engine, folder, chunk)
    return Span(folder, chunk.path, start, end, chunk, hit_id(chunk), to)


def _label(c: StoredChunk) -> str:
    return f"{c.path}:{c.start_line + 1}-{c.end_line + 1} ({c.kind} {c.qualified_name or '-'})"


def _same_definition(a: StoredChunk, b: StoredChunk) -> bool:
    return a.symbol is not None and (a.symbol, a.parent, a.kind) == (b.symbol, b.parent, b.kind)


def _encloses(outer: StoredChunk, inner: StoredChunk) -> bool:
    return outer != inner and outer.start_line <= inner.start_line and inner.end_line <= outer.end_line


def _definition(engine: Engine, folder: Folder, chunk: StoredChunk) -> tuple[int, int]:
    """The lines of the whole definition `chunk` is a piece of (its own lines when it has no symbol)."""
    if chunk.symbol is None:
        return chunk.start_line, chunk.end_line
    return _edge(engine, folder, chunk, -1), _edge(engine, folder, chunk, 1)


def _edge(engine: Engine, folder: Folder, chunk: StoredChunk, step: int) -> int:
    """The first (`step` -1) or last (+1) line of the run of pieces `chunk` belongs to, walking from it over
    blank lines (covered by no chunk, or only by a definition around it) and pieces of the same definition."""
    edge = chunk.start_line if step < 0 else chunk.end_line
    line, gap = edge + step, 0
    for _ in range(MAX_STEPS):
        if line < 0:
            break
        found = engine.chunk_at(folder, chunk.path, line)
        if found is not None and _same_definition(found, chunk) and not _encloses(found, chunk):
            edge = found.start_line if step < 0 else found.end_line
            line, gap = edge + step, 0
        elif (found is None or _encloses(found, chunk)) and gap < MAX_GAP:
            line, gap = line + step, gap + 1
        else:
            break
    return edge


def _parent(engine: Engine, folder: Folder, chunk: StoredChunk) -> StoredChunk:
    """The chunk of the definition around `chunk`: the nearest chunk before it (or around it) named `chunk.parent`,
    walking back over its siblings; ``NoParent`` when there is none."""
    if not chunk.parent:
        raise NoParent(f"{_label(chunk)} is top-level: it has no parent; expand='definition' reads it whole")
    line = chunk.start_line - 1
    for _ in range(MAX_STEPS):
        found = None if line < 0 else engine.chunk_at(folder, chunk.path, line)
        if found is None:
            break
        if found.qualified_name == chunk.parent:
            return found
        if _encloses(found, chunk):  # around it, but not its parent: the parent is not in this file's index
            break
        line = min(line, found.start_line) - 1  # over the sibling before
    raise NoParent(
        f"{_label(chunk)}: its parent {chunk.parent} is not a definition around it in {chunk.path} (defined "
        "elsewhere, e.g. a Go method's receiver type): search for it by name"
    )


__all__ = ["EXPANSIONS", "Expand", "HitId", "NoParent", "Span", "StaleHitId", "expand", "hit_id", "parse", "resolve"]
