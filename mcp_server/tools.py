"""The MCP tools of semcode: ``search_code``, ``related_code``, ``read_code``, ``index_status`` and ``reindex``.

Each tool is glue over ``semcode.Engine``: it checks its arguments (a bad one is a tool error with a one-line message
an agent can act on, never a crash: ``validation``), calls the engine off the event loop, and answers with structured
content (``models``, which are also the tools' output schemas) plus a compact text rendering for the model to read
(``render``). Every answer stays within a budget of tokens (``budget``): the tool's ``max_tokens``, else the server's;
a cut answer says how to get the rest. Hits carry stable ids (``semcode.hit_ids``) that ``read_code`` expands.

Line numbers are 1-based here, as in editors, grep and agents' file tools (the Python API's are 0-based).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from indexer.discover import secret_pattern
from semcode import hit_ids
from semcode.engine import Engine
from semcode.query import SearchQuery
from semcode.workspace import Folder, PathOutside

from .budget import DEFAULT_MAX_TOKENS
from .models import (
    SNIPPET_LINES,
    CodeHit,
    ExpandArg,
    FilePath,
    GroupBy,
    HitIdArg,
    IndexProgress,
    Languages,
    Limit,
    Line,
    MaxTokens,
    Offset,
    OptFilePath,
    OptLine,
    Paths,
    Query,
    ReadResult,
    ReindexResult,
    RelatedResult,
    Repo,
    SearchResult,
    StatusResult,
)
from .read import READ_CHARS, READ_LINES, fit_read
from .render import Paging, code_hit, fit_page, progress_of, render_hits, result
from .status import status_answer
from .validation import ToolServer

if TYPE_CHECKING:
    from indexer.index import IndexReport, Progress

StatusOffset = Annotated[int, Field(ge=0, le=10_000_000, description="the first skipped file to list (0-based)")]

INSTRUCTIONS = """semcode searches this codebase by meaning (a local embedding model plus BM25, fused).
Use search_code for "where is the code that does X?" when you do not know the names: it finds code by what it does
(e.g. "retry a failed HTTP request with backoff"), across languages and naming styles. Use grep when you know an
exact identifier or string. Use related_code to find code like a given function (duplicates, other implementations,
tests of the same thing). read_code returns the source of a file, or of a hit by its id: its whole definition, or
the class around it. Lines are 1-based. Answers are kept small; a cut one says how to get the rest."""

SEARCH_HELP = """Search the indexed code by meaning and by words (hybrid, the default), by meaning only (semantic),
or by words only (lexical, BM25). Better than grep when you know what the code does but not what it is called;
worse than grep for an exact identifier. The query is natural language or code. Results are chunks (a function,
class, or section of a file), best first, with a 1-based line range, the symbol, a relevance from 0 to 1 (higher
is better; one scale for every mode), a short snippet and an id:
read_code(id=...) shows the whole definition (or expand="parent": the class around it). paths: globs relative to the
repository root (e.g. "src/**/*.py"); languages: e.g. ["python", "go"]; repo: one repository root when several are
served."""


def budget_help(default: int, rest: str) -> str:
    """The sentence every tool description ends with: its budget, and how a cut answer is continued."""
    return f" The answer stays within max_tokens (default {default:,}, estimated as UTF-8 bytes / 3); {rest}."


class Tools:
    """The tools, bound to one engine (the served roots) and a default budget of tokens per answer."""

    def __init__(self, engine: Engine, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.engine = engine
        self.max_tokens = max_tokens

    def budget(self, max_tokens: int | None) -> int:
        return self.max_tokens if max_tokens is None else max_tokens

    def visible(self, path: str) -> bool:
        """Whether a path may be shown: secret-bearing files never are, even if an index holds them."""
        return secret_pattern(path.rsplit("/", 1)[-1]) is None

    def locate(self, path: str, repo: str | None) -> tuple[Folder, str]:
        try:
            folder, rel = self.engine.locate(path, repo)
        except PathOutside as e:
            raise ToolError(str(e)) from None
        if not self.visible(rel):
            raise ToolError(f"{rel}: a secret-bearing file; semcode never serves it")
        return folder, rel

    def locate_repo(self, repo: str) -> Folder:
        for folder in self.engine.folders:
            if repo in (folder.repo, str(folder.root), folder.root.name):
                return folder
        served = ", ".join(str(f.root) for f in self.engine.folders)
        raise ToolError(f"{repo!r} is not a served repository (served: {served})")

    def index(self, repo_id: str | None = None, *, searched: bool = False) -> IndexProgress:
        """The index's state for an answer: a folder whose index is on disk reads as it is there, never "new";
        `searched`: the embedded share of what a search with this scope reads."""
        for folder in self.engine.folders:
            if folder.state == "new" and self.engine.store(folder, create=False) is not None:
                folder.refresh_counts()  # (a worker thread: the SDK runs these tools off the event loop)
        coverage = self.engine.coverage(repo=repo_id) if searched else None
        return progress_of(self.engine.folders, coverage, self.engine.partial_notes(repo=repo_id))

    def search_code(
        self,
        query: Query,
        limit: Limit = 10,
        mode: Literal["hybrid", "semantic", "lexical"] = "hybrid",
        paths: Paths = None,
        languages: Languages = None,
        repo: Repo = None,
        group_by: GroupBy = "chunk",
        offset: Offset = 0,
        max_tokens: MaxTokens = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        if not query.strip():
            raise ToolError("query is empty: describe the code you are looking for, e.g. 'parse a config file'")
        try:
            q = SearchQuery(query, limit, mode, paths, languages, group_by == "file")
            repo_id = None if repo is None else self.locate_repo(repo).repo
            hits = self.engine.search(q, repo=repo_id)
        except ValueError as e:
            raise ToolError(str(e)) from None
        found = [code_hit(h, q.mode) for h in hits if self.visible(h.chunk.path)]
        index = self.index(repo_id, searched=True)
        paging = Paging("search_code", offset, len(found), self.budget(max_tokens))
        head = "".join(f"(note: {w})\n" for w in q.warnings)

        def build(page: Sequence[CodeHit]) -> tuple[SearchResult, str]:
            model = SearchResult(hits=list(page), index=index, warnings=list(q.warnings), total=len(found),
                                 offset=offset, next_offset=paging.next_offset(len(page)))  # fmt: skip
            return model, head + self.render(page, index, offset) + paging.note(len(page))

        return result(*build(fit_page(found[offset:], build, paging.max_tokens)))

    def render(self, page: Sequence[CodeHit], index: IndexProgress, offset: int) -> str:
        return render_hits(page, index, len(self.engine.folders) > 1, offset + 1)

    def related_code(
        self,
        path: FilePath,
        line: Line,
        limit: Limit = 10,
        repo: Repo = None,
        offset: Offset = 0,
        max_tokens: MaxTokens = None,
    ) -> Annotated[CallToolResult, RelatedResult]:
        folder, rel = self.locate(path, repo)
        try:
            chunk, hits = self.engine.related(folder, rel, line - 1, limit)
            if chunk is None:
                raise ValueError(self.engine.why_no_chunk(folder, rel, line - 1))
        except ValueError as e:
            raise ToolError(str(e)) from None
        from indexer.store import Hit

        origin = code_hit(Hit(chunk, 1.0, ()), "related")
        found = [code_hit(h, "related") for h in hits if self.visible(h.chunk.path)]
        index, paging = self.index(), Paging("related_code", offset, len(found), self.budget(max_tokens))
        head = f"code like {origin.path}:{origin.start_line}-{origin.end_line} {origin.symbol or ''} (id={origin.id})\n"

        def build(page: Sequence[CodeHit]) -> tuple[RelatedResult, str]:
            model = RelatedResult(origin=origin, hits=list(page), index=index, total=len(found), offset=offset,
                                  next_offset=paging.next_offset(len(page)))  # fmt: skip
            return model, head + self.render(page, index, offset) + paging.note(len(page))

        return result(*build(fit_page(found[offset:], build, paging.max_tokens)))

    def read_code(
        self,
        path: OptFilePath = None,
        start_line: OptLine = None,
        end_line: OptLine = None,
        repo: Repo = None,
        id: HitIdArg = None,
        expand: ExpandArg = "definition",
        max_tokens: MaxTokens = None,
    ) -> Annotated[CallToolResult, ReadResult]:
        if (path is None) == (id is None):
            raise ToolError("read_code: give path (a file, with start_line/end_line) or id (a hit's id), not both")
        span = None if id is None else self.expand_id(id, expand)
        if span is None:
            folder, rel = self.locate(str(path), repo)
            first = None if start_line is None else start_line - 1
            last = None if end_line is None else end_line - 1
        else:  # lines of the expansion, from start_line on when given (the next page of a cut answer)
            folder, rel = span.folder, span.path
            first = span.start_line if start_line is None else max(span.start_line, start_line - 1)
            last = span.end_line if end_line is None else min(span.end_line, end_line - 1)
            if first > last:
                shown = f"{span.start_line + 1}-{span.end_line + 1}"
                raise ToolError(f"start_line={start_line} is past the end of what {id} expands to: lines {shown}")
        try:
            lines = self.engine.read(folder, rel, first, last, max_lines=READ_LINES, max_chars=READ_CHARS)
        except (FileNotFoundError, PathOutside, ValueError) as e:
            raise ToolError(str(e)) from None
        except OSError as e:
            raise ToolError(f"{rel}: cannot be read ({e.strerror or e})") from None
        return result(*fit_read(folder, lines, span, self.index(), self.budget(max_tokens)))

    def expand_id(self, id: str, expand: hit_ids.Expand) -> hit_ids.Span:
        try:
            folder, chunk = hit_ids.resolve(self.engine, id)
            span = hit_ids.expand(self.engine, folder, chunk, expand)
        except ValueError as e:  # StaleHitId, NoParent, PathOutside, a malformed id
            raise ToolError(str(e)) from None
        if not self.visible(span.path):
            raise ToolError(f"{span.path}: a secret-bearing file; semcode never serves it")
        return span

    def index_status(
        self,
        offset: StatusOffset = 0,
        max_tokens: MaxTokens = None,
    ) -> Annotated[CallToolResult, StatusResult]:
        from semcode.api import Index

        index = self.index()
        status = Index(self.engine).status()  # (refreshes the counts of idle folders)
        return result(*status_answer(status, index, offset, self.budget(max_tokens)))

    async def reindex(
        self,
        ctx: Context,
        path: Annotated[str | None, Field(description="one file to update (default: every repository)")] = None,
        wait: Annotated[bool, Field(description="wait for the update to finish (with progress)")] = True,
        max_tokens: MaxTokens = None,
    ) -> Annotated[CallToolResult, ReindexResult]:
        loop = asyncio.get_running_loop()

        def on_progress(p: Progress) -> None:  # the writer thread
            if p.phase == "vectors":  # every file is searchable by text; the vectors are being filled in
                done, total = p.chunks_embedded, p.chunks_to_embed
                message = f"searchable by text; embedding {done}/{total} chunks"
            else:
                done, total = p.files_done, p.files_total
                message = f"{done}/{total} files, {p.chunks_written} chunks"
            asyncio.run_coroutine_threadsafe(ctx.report_progress(done, total, message), loop)

        if path is None:
            jobs = [self.engine.writer.submit(self.engine.index_folder, f, on_progress) for f in self.engine.folders]
        else:
            folder, rel = self.locate(path, None)
            jobs = [self.engine.writer.urgent(self.engine.update_files, folder, [rel])]
        if not wait:
            answer = ReindexResult(started=True, done=False, files_changed=0, files_deleted=0, chunks_written=0,
                                   skipped=0, message="update started; index_status shows its progress")  # fmt: skip
            return result(answer, answer.message)
        try:
            reports: list[IndexReport] = [await asyncio.wrap_future(job) for job in jobs]
        except Exception as e:
            raise ToolError(f"the update failed: {e}"[: 3 * self.budget(max_tokens)]) from None
        changed, deleted = sum(r.files_changed for r in reports), sum(r.files_deleted for r in reports)
        written, skipped = sum(r.chunks_written for r in reports), sum(len(r.skipped) for r in reports)
        message = f"updated: {changed} files changed, {deleted} deleted, {written} chunks written, {skipped} skipped"
        answer = ReindexResult(started=True, done=True, files_changed=changed, files_deleted=deleted,
                               chunks_written=written, skipped=skipped, message=message)  # fmt: skip
        return result(answer, message)


def build_server(engine: Engine, max_tokens: int = DEFAULT_MAX_TOKENS) -> MCPServer:
    """An MCP server with semcode's tools over `engine` (``reindex`` only when it may write); every answer within
    `max_tokens` unless a call sets its own budget."""
    mcp: MCPServer = ToolServer("semcode", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING")
    tools = Tools(engine, max_tokens)
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    pages = "a cut answer gives next_offset: call again with the same arguments and offset=next_offset for the rest"
    mcp.tool(description=SEARCH_HELP + budget_help(max_tokens, pages), annotations=read)(tools.search_code)
    mcp.tool(
        description="Code like the chunk at path:line (1-based): near-duplicates, other implementations of the "
        "same idea, code to change together. The chunk itself is not a result. path: relative to the repository "
        "root (as in search hits) or absolute; repo: which root, when several are served."
        + budget_help(max_tokens, pages),
        annotations=read,
    )(tools.related_code)
    mcp.tool(
        description="The source of an indexed file: path, lines start_line..end_line (1-based, inclusive; default "
        "the whole file). Or of a search hit: id (a hit's id) with expand='definition' (the whole function or class "
        "it is part of, the default), 'parent' (the class or function around it) or 'hit' (its own lines). Only "
        f"files in the index can be read (not ignored, not secret-bearing, inside the served roots). At most "
        f"{READ_LINES} lines per call."
        + budget_help(
            max_tokens,
            "when 'truncated' is true, call again with start_line = end_line + 1 (with the same id and expand)",
        ),
        annotations=read,
    )(tools.read_code)
    mcp.tool(
        description="What the index holds: its state (ready, indexing with how complete, error), repositories, "
        "files, chunks, pending work, and every skipped file with the reason."
        + budget_help(max_tokens, "skipped files past it: call again with offset=next_offset"),
        annotations=read,
    )(tools.index_status)
    if not engine.read_only:
        mcp.tool(
            description="Bring the index up to date now (incremental: only changed files are re-read), with "
            "progress notifications; path: one file only. wait=false returns at once. The server also "
            "watches the files, so this is rarely needed."
            + budget_help(max_tokens, "the answer is one line of counts"),
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
        )(tools.reindex)
    return mcp


def _version() -> str:
    import semcode

    return semcode.__version__


__all__ = ["READ_LINES", "SNIPPET_LINES", "Tools", "build_server"]
