"""Plain data passed between the indexer's stages (and to front doors, which convert them to their protocols)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .coverage import Coverage as Coverage  # re-exported: its home is indexer.coverage
from .errors import StoreError as StoreError  # re-exported: its home is indexer.errors


@dataclass(frozen=True)
class Chunk:
    """One searchable span of one file. Lines and columns are 0-based; columns count Python str characters (code
    points); the LSP front door converts them to UTF-16 units where a line needs it."""

    path: str  # repository-relative, POSIX separators
    language: str  # "python", "typescript", ..., or "text" for the line/paragraph fallback
    start_line: int
    start_col: int
    end_line: int  # inclusive: the last line that holds text of this chunk
    end_col: int  # exclusive, on end_line
    start_byte: int  # byte offsets into the text as UTF-8 (the file's own bytes unless it is UTF-16/32 with a BOM)
    end_byte: int
    symbol: str | None  # "parse_args", "LRUCache", None for a block of statements
    kind: str  # "function", "method", "class", "interface", "struct", "enum", "impl", "module", "block", "text", ...
    parent: str | None  # qualified parent, e.g. "LRUCache" for a method, "outer.inner" when nested
    tokens: int  # tokens of `text` under the model's tokenizer (special tokens included)
    text: str  # the text to embed (may carry a context header; see chunk.py)

    @property
    def qualified_name(self) -> str | None:
        if self.symbol is None:
            return None
        return f"{self.parent}.{self.symbol}" if self.parent else self.symbol

    @property
    def content_hash(self) -> str:
        return hashlib.blake2b(self.text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Skip:
    """A file that is not chunked, and why (shown by `semcode chunks` and the status)."""

    path: str  # valid UTF-8: a name that is not is escaped (`indexer.discover.escape_path`)
    reason: str  # never holds a secret's value


@dataclass
class SourceFile:
    """A file read and decoded, ready to chunk."""

    path: str  # repository-relative, POSIX
    language: str
    text: str
    size: int  # bytes on disk
    replaced: int = 0  # invalid sequences (or lone surrogates in a buffer) replaced with U+FFFD


@dataclass
class FileChunks:
    """The chunker's result for one file: chunks plus problems it recovered from (never an exception)."""

    path: str
    language: str
    chunks: list[Chunk] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. "syntax errors recovered at lines 3, 17"


@dataclass(frozen=True)
class StoredChunk:
    """A chunk row as stored (the vector travels separately)."""

    repo: str  # repository id (e.g. the absolute root path)
    path: str  # repository-relative, POSIX separators
    language: str
    kind: str
    symbol: str | None
    parent: str | None
    start_line: int  # 0-based, as in indexer.types.Chunk
    start_col: int
    end_line: int  # inclusive
    end_col: int
    start_byte: int
    end_byte: int
    tokens: int
    text: str
    content_hash: str  # hash of `text`: the key of the vector cache

    @property
    def qualified_name(self) -> str | None:
        if self.symbol is None:
            return None
        return f"{self.parent}.{self.symbol}" if self.parent else self.symbol

    @classmethod
    def from_chunk(cls, repo: str, chunk: Chunk) -> StoredChunk:
        return cls(
            repo=repo,
            path=chunk.path,
            language=chunk.language,
            kind=chunk.kind,
            symbol=chunk.symbol,
            parent=chunk.parent,
            start_line=chunk.start_line,
            start_col=chunk.start_col,
            end_line=chunk.end_line,
            end_col=chunk.end_col,
            start_byte=chunk.start_byte,
            end_byte=chunk.end_byte,
            tokens=chunk.tokens,
            text=chunk.text,
            content_hash=chunk.content_hash,
        )


@dataclass(frozen=True)
class Hit:
    chunk: StoredChunk
    score: float  # semantic: 1 - cosine distance; lexical: BM25; hybrid: reciprocal rank fusion
    reasons: tuple[str, ...]  # ("semantic",), ("lexical",) or ("semantic", "lexical")
