"""Answers of semcode's MCP tools as an agent reads them: the index's state (never contradicting itself), hits with
their ids, and pages cut to the answer's token budget (``budget``) that say how to get the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from indexer.chunk import chunk_header
from indexer.coverage import Coverage
from semcode.hit_ids import hit_id
from semcode.relevance import Mode, relevance

from .budget import answer_tokens, most_that_fit
from .models import SNIPPET_CHARS, SNIPPET_LINES, CodeHit, IndexProgress

if TYPE_CHECKING:
    from indexer.store import Hit, StoredChunk
    from semcode.workspace import Folder

STATES = ("error", "indexing", "new")  # the overall state: the first of these any folder is in, else "ready"


def result(model: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=model.model_dump())


def fits(model: BaseModel, text: str, max_tokens: int) -> bool:
    return answer_tokens(model, text) <= max_tokens


# -- the index's state -----------------------------------------------------------------------------------------------


def start_note(folder: Folder) -> str | None:
    """What a folder's run is doing before it has counted the files to look at (``Folder.partial`` says nothing
    then); None at any other time."""
    if folder.state == "error":
        return f"indexing {folder.root} failed: {folder.last_error}"
    if folder.state == "new" and not folder.files:
        return f"{folder.root} is not indexed yet"
    if folder.state != "indexing" or folder.total:
        return None
    if folder.files:
        return (
            f"an update of {folder.root} is starting (listing its files); meanwhile answers come from its index as of "
            f"its last update: {folder.files} files, {folder.chunks} chunks"
        )
    return f"the index of {folder.root} is being built: its files are being listed, none is indexed yet"


def progress_of(
    folders: Sequence[Folder], coverage: Coverage | None = None, notes: Sequence[str] = ()
) -> IndexProgress:
    """The index's state for an answer, from one read of each folder's figures. `coverage`: of what the answer
    searched (default: the folders' own); `notes`: why it may miss files (``Engine.partial_notes``)."""
    states = {f.state for f in folders} or {"new"}
    state = next((s for s in STATES if s in states), "ready")
    files, pending, total = (sum(getattr(f, k) for f in folders) for k in ("files", "pending", "total"))
    complete = 1.0 if state != "indexing" else round((total - pending) / total, 3) if total else None
    if coverage is None:
        coverage = sum((f.coverage for f in folders), Coverage())
    starting = [n for f in folders if (n := start_note(f)) is not None]
    return IndexProgress(
        state=state, complete=complete, files=files, chunks=sum(f.chunks for f in folders), pending=pending,
        embedded=int(coverage.share * 1000) / 1000, notes=[*starting, *notes],
    )  # fmt: skip


def index_note(index: IndexProgress) -> str | None:
    """The line an answer starts with when its index is not whole and settled, or None."""
    parts = list(index.notes)
    if index.embedded < 1.0:
        parts.append(
            f"{int(index.embedded * 100)}% embedded: every file is searchable by its text, names and paths; semantic "
            "matches cover the embedded share so far"
        )
    return "(" + "; ".join(parts) + ")" if parts else None


# -- hits ------------------------------------------------------------------------------------------------------------


def snippet(c: StoredChunk, lines: int = SNIPPET_LINES) -> str:
    text = c.text.splitlines()
    if text and text[0] == chunk_header(c.qualified_name):
        text = text[1:]
    return "\n".join(text[:lines])[:SNIPPET_CHARS]


def code_hit(h: Hit, mode: Mode) -> CodeHit:
    """A hit as tools return it; `mode` ("hybrid", "semantic", "lexical", "related") puts its score on the one
    relevance scale (``semcode.relevance``)."""
    c = h.chunk
    return CodeHit(
        id=hit_id(c), path=c.path, repo=c.repo, start_line=c.start_line + 1, end_line=c.end_line + 1,
        symbol=c.qualified_name, kind=c.kind, language=c.language, relevance=round(relevance(mode, h.score), 4),
        score=round(h.score, 6), reasons=list(h.reasons), snippet=snippet(c),
    )  # fmt: skip


def render_hits(hits: Sequence[CodeHit], index: IndexProgress, several_repos: bool, first: int = 1) -> str:
    note = index_note(index)
    lines = [] if note is None else [note]
    if not hits:
        lines.append("no results")
    for n, h in enumerate(hits, first):
        where = f"{h.repo}/{h.path}" if several_repos else h.path
        lines.append(f"{n}. {where}:{h.start_line}-{h.end_line}  {h.kind} {h.symbol or '-'}  "
                     f"(relevance {h.relevance:.2f}, {'+'.join(h.reasons)})  id={h.id}")  # fmt: skip
        lines.extend("   " + line for line in h.snippet.splitlines())
    return "\n".join(lines)


@dataclass(frozen=True)
class Paging:
    """One page of a tool's results: the first shown (`offset`), how many there are (`total`), the budget."""

    tool: str
    offset: int
    total: int
    max_tokens: int

    def next_offset(self, shown: int) -> int | None:
        """Where the next page starts, or None when `shown` results reach the last."""
        return self.offset + shown if self.offset + shown < self.total else None

    def note(self, shown: int) -> str:
        """The line that ends a page: how to get the rest of a cut answer ("" when nothing is left)."""
        if self.next_offset(shown) is not None:
            return (
                f"\n(results {self.offset + 1}-{self.offset + shown} of {self.total}; the rest did not fit in "
                f"max_tokens={self.max_tokens:,}: call {self.tool} again with the same arguments and "
                f"offset={self.offset + shown})"
            )
        if self.offset and self.offset >= self.total:
            return f"\n(offset={self.offset} is past the last of the {self.total} results)"
        return ""


def fit_page(
    hits: Sequence[CodeHit], build: Callable[[Sequence[CodeHit]], tuple[BaseModel, str]], max_tokens: int
) -> Sequence[CodeHit]:
    """The longest head of `hits` whose answer (``build``) fits `max_tokens`; at least one hit, its snippet
    shortened until it fits (an answer always makes progress)."""
    n = most_that_fit(hits, lambda head: fits(*build(head), max_tokens))
    if n or not hits:
        return hits[:n]
    first = hits[0]
    lines = first.snippet.splitlines()
    keep = most_that_fit(lines, lambda head: fits(*build([first.model_copy(update={"snippet": "\n".join(head)})]),
                                                        max_tokens))  # fmt: skip
    return [first.model_copy(update={"snippet": "\n".join(lines[:keep])})]
