"""The wire types of semcode's MCP tools: their arguments (typed, with the limits an agent sees in the input schema)
and their answers (pydantic models: the structured content and the output schemas). Declared once, here.

Line numbers are 1-based, as in editors, grep and agents' file tools (the Python API's are 0-based).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from semcode.hit_ids import FORM
from semcode.limits import MAX_GLOB_CHARS, MAX_LANGUAGES, MAX_LINES, MAX_PATH_GLOBS, MAX_QUERY_CHARS, MCP_MAX_LIMIT

from .budget import MAX_MAX_TOKENS, MIN_MAX_TOKENS

SNIPPET_LINES = 12  # lines of code shown per hit
SNIPPET_CHARS = 1200

# -- arguments (the numbers are semcode.limits': the core enforces them too; the schema tells an agent before it asks)

Limit = Annotated[int, Field(ge=1, le=MCP_MAX_LIMIT, description=f"how many results in all (1-{MCP_MAX_LIMIT})")]
Offset = Annotated[
    int,
    Field(
        ge=0,
        lt=MCP_MAX_LIMIT,
        description="the first result to show (0-based), for the next page of a cut answer: its next_offset",
    ),
]
MaxTokens = Annotated[
    int | None,
    Field(
        ge=MIN_MAX_TOKENS,
        le=MAX_MAX_TOKENS,
        description="the answer's budget in tokens (estimated: UTF-8 bytes / 3); default: the server's",
    ),
]
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
OptFilePath = Annotated[
    str | None, Field(description="path relative to the repository root (as in hits), or absolute; or give id")
]
HitIdArg = Annotated[str | None, Field(max_length=5_000, description=f"a hit's id ({FORM}) instead of path")]
ExpandArg = Annotated[
    Literal["definition", "parent", "hit"],
    Field(
        description='with id: "definition" (the whole function or class the hit is part of), "parent" (the class '
        'or function around it), "hit" (the hit\'s own lines)'
    ),
]

# -- answers ---------------------------------------------------------------------------------------------------------


class CodeHit(BaseModel):
    id: str = Field(description="a stable id of this hit: read_code(id=...) shows its whole definition or its parent")
    path: str = Field(description="path relative to the repository root")
    repo: str = Field(description="the repository root (absolute)")
    start_line: int = Field(description="first line, 1-based")
    end_line: int = Field(description="last line, 1-based, inclusive")
    symbol: str | None = Field(description="qualified name (Class.method), null for a span without one")
    kind: str
    language: str
    relevance: float = Field(description="0-1, higher is better (one scale for every mode; not a probability)")
    score: float = Field(description="the raw score of the mode: hybrid ranking, cosine or BM25 (only comparable "
                         "within one answer)")  # fmt: skip
    reasons: list[str] = Field(
        description='the signals that placed it: "semantic", "lexical" (the retrievers that found it), "definition" '
        '(defines the queried symbol), "member", "path" (file or folder names match the query), "quoted", '
        '"file:N" (N chunks of the file matched), "lower:test|docs|example|..." (ranked below code), "asked:KIND"'
    )
    snippet: str = Field(description=f"the first lines of the chunk (at most {SNIPPET_LINES} lines)")


class IndexProgress(BaseModel):
    state: str = Field(description='"ready", "indexing", "new" (not indexed yet), or "error"')
    complete: float | None = Field(
        description="share of the files the running update has looked at (1.0 when idle; null while it is still "
        "listing them)"
    )
    files: int
    chunks: int
    pending: int = Field(description="files still to look at")
    embedded: float = Field(
        default=1.0,
        description="share of the chunks that have vectors (1.0: all); below 1.0 the index is being embedded: "
        "every file is searchable by its text, names and paths, and semantic matches cover this share",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="why answers may miss files, or what the index is doing, one sentence each; empty when it holds "
        "every file as of its last update",
    )


class Page(BaseModel):
    total: int = Field(description="results in all (of `limit`)")
    offset: int = Field(description="the first result shown, 0-based")
    next_offset: int | None = Field(
        description="null when nothing more; else the answer was cut to its token budget: call again with the same "
        "arguments and offset=next_offset for the rest"
    )


class SearchResult(Page):
    hits: list[CodeHit]
    index: IndexProgress
    warnings: list[str] = Field(default_factory=list, description="what of the request was cut to a limit")


class RelatedResult(Page):
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
    truncated: bool = Field(
        description="true when more lines follow: call again with start_line = end_line + 1 (and the same id and "
        "expand, if given)"
    )
    id: str | None = Field(
        default=None, description="with id: the id of what is shown (for expand='parent', the parent's)"
    )
    symbol: str | None = Field(default=None, description="with id: the qualified name of what is shown")
    kind: str | None = Field(default=None, description="with id: its kind (function, method, class, ...)")
    expand: str | None = Field(default=None, description="with id: how the hit was expanded")
    index: IndexProgress | None = None


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
    skipped: list[SkippedFile] = Field(description="skipped files from `offset` on, as many as fit the budget")
    skipped_total: int = Field(default=0, description="skipped files in all")
    last_error: str | None = None
    embedded: float = Field(default=1.0, description="share of its chunks that have vectors")


class StatusResult(BaseModel):
    model: str
    read_only: bool
    index: IndexProgress
    repositories: list[RepositoryState]
    next_offset: int | None = Field(
        default=None,
        description="null when every skipped file is listed; else call again with offset=next_offset for the rest",
    )


class ReindexResult(BaseModel):
    started: bool
    done: bool
    files_changed: int
    files_deleted: int
    chunks_written: int
    skipped: int
    message: str
