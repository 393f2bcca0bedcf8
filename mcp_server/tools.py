"""The MCP tools of semcode: ``search_code``, ``related_code``, ``read_code``, ``index_status`` and ``reindex``.

Each tool is glue over ``semcode.Engine``: it checks its arguments (a bad one is a tool error with a message an
agent can act on, never a crash), calls the engine off the event loop, and answers with structured content (the
models below, which are also the tools' output schemas) plus a compact text rendering for the model to read.

Line numbers are 1-based here, as in editors, grep and agents' file tools (the Python API's are 0-based).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from indexer.chunk import chunk_header
from indexer.coverage import Coverage
from indexer.discover import secret_pattern
from semcode.engine import Engine
from semcode.limits import MAX_GLOB_CHARS, MAX_LANGUAGES, MAX_LINES, MAX_PATH_GLOBS, MAX_QUERY_CHARS, MCP_MAX_LIMIT
from semcode.query import SearchQuery
from semcode.workspace import Folder, PathOutside

if TYPE_CHECKING:
    from indexer.index import IndexReport, Progress
    from indexer.store import Hit, StoredChunk

SNIPPET_LINES = 12  # lines of code shown per hit
SNIPPET_CHARS = 1200
READ_LINES = 400  # lines read_code returns at most per call
READ_CHARS = 40_000

# the numbers are semcode.limits' (the core enforces them too; the schema tells an agent before it asks)
Limit = Annotated[int, Field(ge=1, le=MCP_MAX_LIMIT, description=f"how many results (1-{MCP_MAX_LIMIT})")]
Query = Annotated[
    str, Field(description=f"what the code does, in words or code (cut to {MAX_QUERY_CHARS:,} characters)")
]
Glob = Annotated[str, Field(max_length=MAX_GLOB_CHARS)]
Paths = Annotated[
    list[Glob] | None,
    Field(
        max_length=MAX_PATH_GLOBS,
        description=f'globs relative to the repository root, e.g. ["src/**/*.py"]; "!tests/**" leaves paths out '
        f"(at most {MAX_PATH_GLOBS})",
    ),
]
Languages = Annotated[list[str] | None, Field(max_length=MAX_LANGUAGES, description='e.g. ["python", "typescript"]')]
GroupBy = Annotated[
    Literal["chunk", "file"], Field(description='"file": one hit per file (its best chunk); "chunk": every place')
]
Repo = Annotated[str | None, Field(description="a served repository root (path or folder name) when several are")]
Line = Annotated[int, Field(ge=1, le=MAX_LINES, description="1-based line number")]
OptLine = Annotated[int | None, Field(ge=1, le=MAX_LINES, description="1-based line number")]
FilePath = Annotated[str, Field(description="path relative to the repository root (as in hits), or absolute")]

INSTRUCTIONS = """semcode searches this codebase by meaning (a local embedding model plus BM25, fused).
Use search_code for "where is the code that does X?" when you do not know the names: it finds code by what it does
(e.g. "retry a failed HTTP request with backoff"), across languages and naming styles. Use grep when you know an
exact identifier or string. Use related_code to find code like a given function (duplicates, other implementations,
tests of the same thing). read_code returns the source of a hit. Lines are 1-based."""

SEARCH_HELP = """Search the indexed code by meaning and by words (hybrid, the default), by meaning only (semantic),
or by words only (lexical, BM25). Better than grep when you know what the code does but not what it is called;
worse than grep for an exact identifier. The query is natural language or code. Results are chunks (a function,
class, or section of a file), best first, with a 1-based line range, the symbol, a relevance score (higher is
better; hybrid scores are rank-fusion values, only comparable within one answer) and a short snippet; read_code
shows more. paths: globs relative to the repository root (e.g. "src/**/*.py"); languages: e.g. ["python", "go"];
repo: one repository root when several are served."""


class CodeHit(BaseModel):
    path: str = Field(description="path relative to the repository root")
    repo: str = Field(description="the repository root (absolute)")
    start_line: int = Field(description="first line, 1-based")
    end_line: int = Field(description="last line, 1-based, inclusive")
    symbol: str | None = Field(description="qualified name (Class.method), null for a span without one")
    kind: str
    language: str
    score: float
    reasons: list[str] = Field(
        description='the signals that placed it: "semantic", "lexical" (the retrievers that found it), "definition" '
        '(defines the queried symbol), "member", "path" (file or folder names match the query), "quoted", '
        '"file:N" (N chunks of the file matched), "lower:test|docs|example|..." (ranked below code), "asked:KIND"'
    )
    snippet: str = Field(description=f"the first lines of the chunk (at most {SNIPPET_LINES} lines)")


class IndexProgress(BaseModel):
    state: str = Field(description='"ready", "indexing", "new" (not indexed yet), or "error"')
    complete: float = Field(description="share of the files the running update has looked at (1.0 when idle)")
    files: int
    chunks: int
    pending: int = Field(description="files still to look at")
    embedded: float = Field(
        default=1.0,
        description="share of the chunks that have vectors (1.0: all); below 1.0 the index is being embedded: "
        "every file is searchable by its text, names and paths, and semantic matches cover this share",
    )


class SearchResult(BaseModel):
    hits: list[CodeHit]
    index: IndexProgress
    warnings: list[str] = Field(default_factory=list, description="what of the request was cut to a limit")


class RelatedResult(BaseModel):
    origin: CodeHit | None = Field(description="the chunk at the given line")
    hits: list[CodeHit]
    index: IndexProgress


class ReadResult(BaseModel):
    path: str
    repo: str
    start_line: int
    end_line: int
    total_lines: int
    text: str
    truncated: bool = Field(description="true when more lines follow: call again with start_line = end_line + 1")


class SkippedFile(BaseModel):
    path: str
    reason: str


class RepositoryState(BaseModel):
    root: str
    index_dir: str
    state: str
    files: int
    chunks: int
    pending: int
    skipped: list[SkippedFile]
    last_error: str | None = None
    embedded: float = Field(default=1.0, description="share of its chunks that have vectors")


class StatusResult(BaseModel):
    model: str
    read_only: bool
    index: IndexProgress
    repositories: list[RepositoryState]


class ReindexResult(BaseModel):
    started: bool
    done: bool
    files_changed: int
    files_deleted: int
    chunks_written: int
    skipped: int
    message: str


def _result(model: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=model.model_dump())


def progress_of(folders: list[Folder], coverage: Coverage | None = None) -> IndexProgress:
    """The index's state for an answer; `coverage`: of what the answer searched (default: the folders' own)."""
    states = {f.state for f in folders} or {"new"}
    state = next((s for s in ("error", "indexing", "new") if s in states), "ready")
    files, pending, total = (sum(getattr(f, k) for f in folders) for k in ("files", "pending", "total"))
    complete = 1.0 if state != "indexing" else (total - pending) / total if total else 0.0
    if coverage is None:
        coverage = sum((f.coverage for f in folders), Coverage())
    return IndexProgress(
        state=state, complete=round(complete, 3), files=files, chunks=sum(f.chunks for f in folders), pending=pending,
        embedded=int(coverage.share * 1000) / 1000,
    )  # fmt: skip


def _snippet(c: StoredChunk) -> str:
    lines = c.text.splitlines()
    if lines and lines[0] == chunk_header(c.qualified_name):
        lines = lines[1:]
    return "\n".join(lines[:SNIPPET_LINES])[:SNIPPET_CHARS]


def code_hit(h: Hit) -> CodeHit:
    c = h.chunk
    return CodeHit(
        path=c.path, repo=c.repo, start_line=c.start_line + 1, end_line=c.end_line + 1, symbol=c.qualified_name,
        kind=c.kind, language=c.language, score=round(h.score, 6), reasons=list(h.reasons), snippet=_snippet(c),
    )  # fmt: skip


def render_hits(hits: list[CodeHit], index: IndexProgress, several_repos: bool) -> str:
    lines = [] if index.state == "ready" and index.embedded >= 1.0 else [_index_note(index)]
    if not hits:
        lines.append("no results")
    for n, h in enumerate(hits, 1):
        where = f"{h.repo}/{h.path}" if several_repos else h.path
        lines.append(f"{n}. {where}:{h.start_line}-{h.end_line}  {h.kind} {h.symbol or '-'}  ({h.score:.3f}, "
                     f"{'+'.join(h.reasons)})")  # fmt: skip
        lines.extend("   " + line for line in h.snippet.splitlines())
    return "\n".join(lines)


def _index_note(index: IndexProgress) -> str:
    if index.embedded < 1.0 and index.pending == 0:
        return (
            f"({int(index.embedded * 100)}% embedded: every file is searchable by its text, names and paths; "
            "semantic matches cover the embedded share so far)"
        )
    if index.state == "indexing":
        return (
            f"(the index is being built: {index.complete:.0%} of files looked at, {index.chunks} chunks so far; "
            "results may be incomplete)"
        )
    return f"(index state: {index.state})"


class Tools:
    """The tools, bound to one engine (the served roots)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    def search_code(
        self,
        query: Query,
        limit: Limit = 10,
        mode: Literal["hybrid", "semantic", "lexical"] = "hybrid",
        paths: Paths = None,
        languages: Languages = None,
        repo: Repo = None,
        group_by: GroupBy = "chunk",
    ) -> Annotated[CallToolResult, SearchResult]:
        if not query.strip():
            raise ToolError("query is empty: describe the code you are looking for, e.g. 'parse a config file'")
        try:
            q = SearchQuery(query, limit, mode, paths, languages, group_by == "file")
            repo_id = None if repo is None else self.locate_repo(repo).repo
            hits = self.engine.search(q, repo=repo_id)
        except ValueError as e:
            raise ToolError(str(e)) from None
        out = [code_hit(h) for h in hits if self.visible(h.chunk.path)]
        index = progress_of(self.engine.folders, self.engine.coverage(repo=repo_id))
        text = "".join(f"(note: {w})\n" for w in q.warnings) + render_hits(out, index, len(self.engine.folders) > 1)
        return _result(SearchResult(hits=out, index=index, warnings=list(q.warnings)), text)

    def locate_repo(self, repo: str) -> Folder:
        for folder in self.engine.folders:
            if repo in (folder.repo, str(folder.root), folder.root.name):
                return folder
        served = ", ".join(str(f.root) for f in self.engine.folders)
        raise ToolError(f"{repo!r} is not a served repository (served: {served})")

    def related_code(
        self, path: FilePath, line: Line, limit: Limit = 10, repo: Repo = None
    ) -> Annotated[CallToolResult, RelatedResult]:
        folder, rel = self.locate(path, repo)
        try:
            chunk, hits = self.engine.related(folder, rel, line - 1, limit)
        except ValueError as e:
            raise ToolError(str(e)) from None
        if chunk is None:
            raise ToolError(f"{rel}:{line}: no indexed chunk covers this line (is the file indexed? see index_status)")
        from indexer.store import Hit

        origin = code_hit(Hit(chunk, 1.0, ()))
        out = [code_hit(h) for h in hits if self.visible(h.chunk.path)]
        index = progress_of(self.engine.folders)
        text = f"code like {origin.path}:{origin.start_line}-{origin.end_line} {origin.symbol or ''}\n"
        result = RelatedResult(origin=origin, hits=out, index=index)
        return _result(result, text + render_hits(out, index, len(self.engine.folders) > 1))

    def read_code(
        self, path: FilePath, start_line: OptLine = None, end_line: OptLine = None, repo: Repo = None
    ) -> Annotated[CallToolResult, ReadResult]:
        folder, rel = self.locate(path, repo)
        start = None if start_line is None else start_line - 1
        end = None if end_line is None else end_line - 1
        try:
            lines = self.engine.read(folder, rel, start, end, max_lines=READ_LINES, max_chars=READ_CHARS)
        except (FileNotFoundError, PathOutside, ValueError) as e:
            raise ToolError(str(e)) from None
        except OSError as e:
            raise ToolError(f"{rel}: cannot be read ({e.strerror or e})") from None
        first, last = lines.start_line + 1, lines.end_line + 1
        result = ReadResult(
            path=rel, repo=folder.repo, start_line=first, end_line=last, total_lines=lines.total_lines,
            text=lines.text, truncated=lines.truncated,
        )  # fmt: skip
        numbered = "\n".join(f"{n:>6}  {t}" for n, t in enumerate(lines.text.splitlines(), first))
        head = f"{rel}: lines {first}-{last} of {lines.total_lines}"
        if lines.truncated:
            head += f" (cut at {READ_LINES} lines / {READ_CHARS} characters: read_code(path, start_line={last + 1}))"
        return _result(result, head + "\n" + numbered)

    def index_status(self) -> Annotated[CallToolResult, StatusResult]:
        from semcode.api import Index

        # the overall state first: a run that ends between the two reads then shows as "indexing" overall (ask
        # again), never as "ready" over repository counts read while it ran
        index = progress_of(self.engine.folders)
        status = Index(self.engine).status()
        repos = [
            RepositoryState(
                root=r.root, index_dir=r.index_dir, state=r.state, files=r.files, chunks=r.chunks, pending=r.pending,
                skipped=[SkippedFile(path=p, reason=why) for p, why in r.skipped], last_error=r.last_error,
                embedded=int(r.embedded * 1000) / 1000,
            )
            for r in status.repositories
        ]  # fmt: skip
        result = StatusResult(model=status.model, read_only=status.read_only, index=index, repositories=repos)
        lines = [f"model: {status.model}{' (read-only)' if status.read_only else ''}; index: {index.state}"]
        for r in repos:
            share = f"{int(r.embedded * 100)}% embedded"
            lines.append(f"{r.root}: {r.state}, {r.files} files, {r.chunks} chunks ({share}), {r.pending} pending, "
                         f"{len(r.skipped)} skipped; index folder {r.index_dir}")  # fmt: skip
            lines.extend(f"  skipped {s.path}: {s.reason}" for s in r.skipped[:20])
            if r.last_error:
                lines.append(f"  error: {r.last_error}")
        return _result(result, "\n".join(lines))

    async def reindex(
        self,
        ctx: Context,
        path: Annotated[str | None, Field(description="one file to update (default: every repository)")] = None,
        wait: Annotated[bool, Field(description="wait for the update to finish (with progress)")] = True,
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
            result = ReindexResult(started=True, done=False, files_changed=0, files_deleted=0, chunks_written=0,
                                   skipped=0, message="update started; index_status shows its progress")  # fmt: skip
            return _result(result, result.message)
        try:
            reports: list[IndexReport] = [await asyncio.wrap_future(job) for job in jobs]
        except Exception as e:
            raise ToolError(f"the update failed: {e}") from None
        changed, deleted = sum(r.files_changed for r in reports), sum(r.files_deleted for r in reports)
        written, skipped = sum(r.chunks_written for r in reports), sum(len(r.skipped) for r in reports)
        message = f"updated: {changed} files changed, {deleted} deleted, {written} chunks written, {skipped} skipped"
        result = ReindexResult(started=True, done=True, files_changed=changed, files_deleted=deleted,
                               chunks_written=written, skipped=skipped, message=message)  # fmt: skip
        return _result(result, message)


def build_server(engine: Engine) -> MCPServer:
    """An MCPServer with semcode's tools over `engine` (``reindex`` only when it may write)."""
    mcp: MCPServer = MCPServer("semcode", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING")
    tools = Tools(engine)
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    mcp.tool(description=SEARCH_HELP, annotations=read)(tools.search_code)
    mcp.tool(
        description="Code like the chunk at path:line (1-based): near-duplicates, other implementations of the "
        "same idea, code to change together. The chunk itself is not a result. path: relative to the repository "
        "root (as in search hits) or absolute; repo: which root, when several are served.",
        annotations=read,
    )(tools.related_code)
    mcp.tool(
        description=f"The source of an indexed file, lines start_line..end_line (1-based, inclusive; default the "
        f"whole file), at most {READ_LINES} lines per call: when 'truncated' is true, call again from end_line + 1. "
        "Only files in the index can be read (not ignored, not secret-bearing, inside the served roots).",
        annotations=read,
    )(tools.read_code)
    mcp.tool(
        description="What the index holds: its state (ready, indexing with how complete, error), repositories, "
        "files, chunks, pending work, and every skipped file with the reason.",
        annotations=read,
    )(tools.index_status)
    if not engine.read_only:
        mcp.tool(
            description="Bring the index up to date now (incremental: only changed files are re-read), with "
            "progress notifications; path: one file only. wait=false returns at once. The server also "
            "watches the files, so this is rarely needed.",
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
        )(tools.reindex)
    return mcp


def _version() -> str:
    import semcode

    return semcode.__version__


__all__ = ["Tools", "build_server"]
