"""Split one source file into token-budgeted chunks that a person would call "a piece of code".

Parsed languages (tree-sitter): definitions are the units. A function that fits the budget is one chunk (nested
functions stay inside it). A class-like container (class, struct, interface, impl, module, namespace, object, ...)
gives one summary chunk (its own lines, each member definition reduced to its signature) plus one chunk per member.
A variable bound to a function or class (``const f = () => ...``, ``memo(() => ...)``, JavaScript
``module.exports.f = function``) is that function or class, with the variable's name; TypeScript overload
signatures join their implementation's chunk. Statements between top-level definitions are grouped into "block"
chunks; a block of one line joins a neighbouring chunk (when the estimate says both fit the budget). A block is
named by the first name it declares, else by its first line shortened (``import { x } from "y"``); that name is
not added to its text. Anything over the budget is split at its children's boundaries (recursively, through an
explicit work list, never the Python stack; preferring boundaries at the start of a line), then by lines, then by
characters; pieces after the first carry the enclosing signatures as context. Nothing is dropped.

C/C++ is parsed with the macros tree-sitter cannot read blanked out (``c_macros.py``: ``__BEGIN_DECLS``,
``__THROW``, ``__NTH (f (x))``); offsets are unchanged, and chunks show the file's own text.

Other languages (markdown, yaml, json, ...): paragraphs (markdown: also sections at headings) packed up to
``min(max_tokens, 512)`` tokens; oversized paragraphs split by lines, then characters.

Token counting is the expensive part, so ``count_tokens`` is called once per round with every text of the file
that needs a count: round one holds the candidate chunks; later rounds hold only the pieces of what was too large.
Pieces far larger than the budget are split on an estimate before they are ever counted. Every emitted chunk's
``tokens`` is the exact count of its ``text``.

Positions: lines are split at "\\n" only; columns count str characters; byte offsets index ``text.encode()``.
Invariants: every non-blank line lies within some chunk's [start_line, end_line]; every chunk.tokens <= max_tokens
(for any budget >= 3); chunks are sorted by (start_line, start_col); no exception escapes ``chunk_source``.
"""

from __future__ import annotations

import bisect
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import replace

from .c_macros import mask_macros
from .chunk_pieces import FILL, GUESS, TEXT_TARGET, Piece, pack, paragraph_pieces, push_context, split_chars, splittable
from .languages import is_parsed, parser_for
from .syntax import (
    CONDITIONAL,
    DIRECTIVES,
    SCOPES,
    WORD,
    Definition,
    Node,
    attachable,
    body_of,
    body_start,
    declared_name,
    definition,
    error_lines,
    flatten,
    go_receiver,
    is_overload,
    items_of,
    main_node,
    qualify,
    short_form,
)
from .types import Chunk, FileChunks, SourceFile

CountTokens = Callable[[list[str]], list[int]]
Group = tuple[list[Node], Definition | None]  # nodes that chunk together, and the definition they hold (if any)

MAX_PROBLEM_LINES = 10  # syntax error lines listed in a problem message
_PRESPLIT_BYTES = 8  # a piece over budget * this many bytes is split on the estimate before counting
_CTX_LINES = 4  # at most this many lines of one enclosing signature are repeated as context
_CTX_CHARS = 240
PROBE_BYTES = 256 * 1024  # a larger file's parse is first tried on this much of it ...
MIN_PARSE_BYTES_PER_S = 1024 * 1024  # ... and chunked as text when it parses slower (ordinary code: ~9 MB/s)


def chunk_header(qualified_name: str | None) -> str:
    """The first line of a chunk's text (with_header=True), or "" for a chunk without a symbol. The one place that
    defines its format.

    The path is deliberately not part of the embedded text: a moved or renamed file must not need new vectors
    (paths are searchable through the lexical index instead). Measured on ../shared/eval with all-MiniLM-L6-v2, a
    "# path :: symbol" header changed MRR@10 by -0.003 on average (noise); with BM25 it gained +0.016, which the
    lexical index gets from its names/path columns without touching vectors.
    """
    return f"# {qualified_name}" if qualified_name else ""


class SlowParse(Exception):
    """A file tree-sitter parses too slowly to be worth it (see ``_Chunker.parse``)."""


# --- public API --------------------------------------------------------------------------------------------------


def chunk_source(
    src: SourceFile,
    count_tokens: CountTokens,
    max_tokens: int = 8192,
    with_header: bool = True,
) -> FileChunks:
    """Chunk one decoded file. Never raises for any text: parse trouble becomes a problem on the result.

    Consecutive top-level statements between definitions (imports, constants, script code) form one block chunk
    (split only where it exceeds the budget), so small neighbours are already merged.
    """
    result = FileChunks(path=src.path, language=src.language)
    try:
        data = src.text.encode("utf-8", "surrogatepass")
    except Exception:  # pragma: no cover - str.encode with surrogatepass does not fail on str
        data = src.text.encode("utf-8", "replace")
    if not data.strip():
        return result
    max_tokens = max(1, int(max_tokens))
    chunker = _Chunker(src.path, src.language, data, count_tokens, max_tokens, with_header)
    try:
        pieces = chunker.parsed_pieces(result.problems) if is_parsed(src.language) else chunker.text_pieces()
        result.chunks = chunker.finish(pieces)
    except SlowParse as exc:
        result.problems.append(str(exc))
        result.chunks = chunker.finish(chunker.text_pieces())
    except Exception as exc:  # broken input is data: fall back to paragraphs and say so
        result.problems.append(f"chunker fell back to paragraphs after {type(exc).__name__}: {exc}")
        result.chunks = chunker.finish(chunker.text_pieces())
    return result


# --- the chunker -------------------------------------------------------------------------------------------------


class _Chunker:
    def __init__(
        self,
        path: str,
        language: str,
        data: bytes,
        count: CountTokens,
        max_tokens: int,
        with_header: bool,
    ) -> None:
        self.path = path
        self.language = language
        self.data = data
        self.count = count
        self.max_tokens = max_tokens
        self.with_header = with_header
        self.line_starts = [0] + [m.end() for m in re.finditer(b"\n", data)]
        self.parsed = data  # what tree-sitter saw (C/C++: macros blanked, same offsets)

    # -- helpers on the file's bytes

    def text(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8", "surrogatepass")

    def trim(self, start: int, end: int) -> tuple[int, int]:
        seg = self.data[start:end]
        lead = len(seg) - len(seg.lstrip())
        tail = len(seg.rstrip())
        return (start + lead, start + tail) if tail > lead else (start, start)

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return line, len(self.text(self.line_starts[line], offset))

    def line_head(self, offset: int) -> int:
        """The start of offset's line when only blanks (or blanked macros: ``__extern_inline``) precede it there."""
        line_start = self.line_starts[bisect.bisect_right(self.line_starts, offset) - 1]
        return line_start if not self.parsed[line_start:offset].strip() else offset

    def starts_line(self, offset: int) -> bool:
        line_start = self.line_starts[bisect.bisect_right(self.line_starts, offset) - 1]
        return not self.parsed[line_start:offset].strip()

    def header_of(self, start: int, end: int) -> str:
        """An enclosing signature for context: the text [start, end) stripped, at most a few short lines."""
        lines = [ln.strip() for ln in self.text(start, end).strip().split("\n")]
        lines = [ln if len(ln) <= _CTX_CHARS else ln[:_CTX_CHARS] + " ..." for ln in lines if ln]
        if len(lines) > _CTX_LINES:
            lines = [*lines[: _CTX_LINES - 1], "...", lines[-1]]
        return "\n".join(lines)

    # -- parsed languages

    def parse(self, problems: list[str]) -> Node:
        """The syntax tree's root (C/C++: of a copy with the macros tree-sitter trips on blanked, same offsets).

        Raises ``SlowParse`` for a large file whose first ``PROBE_BYTES`` parse slower than
        ``MIN_PARSE_BYTES_PER_S``: tree-sitter's error recovery on deeply nested broken code costs more than linear
        time and memory (a 1.9 MB file of unclosed brackets: 18 s and 1.1 GB), so such a file is chunked as text."""
        self.parsed = mask_macros(self.data) if self.language in ("c", "cpp") else self.data
        parser = parser_for(self.language)
        if len(self.parsed) > PROBE_BYTES:
            t0 = time.perf_counter()
            parser.parse(self.parsed[:PROBE_BYTES])
            seconds = time.perf_counter() - t0
            if seconds * MIN_PARSE_BYTES_PER_S > PROBE_BYTES:
                raise SlowParse(
                    f"not parsed: its first {PROBE_BYTES // 1024} KB took {seconds:.1f} s to parse (deeply nested or "
                    "broken code); chunked as text"
                )
        root = parser.parse(self.parsed).root_node
        if root.has_error:
            lines = error_lines(root, MAX_PROBLEM_LINES)
            if lines:
                shown = ", ".join(str(n) for n in lines[:MAX_PROBLEM_LINES])
                more = ", ..." if len(lines) > MAX_PROBLEM_LINES else ""
                problems.append(f"syntax errors recovered at lines {shown}{more}")
        return root

    def parsed_pieces(self, problems: list[str]) -> list[Piece]:
        root = self.parse(problems)
        limit = self.max_tokens
        pieces: list[Piece] = []
        groups = self.merge_one_liners(self.group(flatten(root.children), in_scope=None))
        # top-level groups partition the whole file, so stray bytes always land in some chunk
        if not groups:  # e.g. a file of control characters: tree-sitter saw nothing, the bytes are still there
            return [Piece(0, len(self.data), None, "block", None, limit, mode="lines")]
        starts = [self.line_head(g[0][0].start_byte) for g in groups]
        stack: list[tuple[Definition, int, int, str | None, int]] = []
        for i, (nodes, d) in enumerate(groups):
            start = 0 if i == 0 else starts[i]
            end = len(self.data) if i + 1 == len(groups) else starts[i + 1]
            if d is None:
                pieces.append(Piece(start, end, None, "block", None, limit, parts=tuple(nodes)))
            elif d.container:
                stack.append((d, start, end, None, main_node(nodes, d).start_byte))
            else:
                pieces.append(self.def_piece(d, start, end, None, nodes))
        self.container_pieces(stack, pieces)
        return pieces

    def container_pieces(self, stack: list[tuple[Definition, int, int, str | None, int]], pieces: list[Piece]) -> None:
        """A summary piece per container on ``stack`` and a piece per member, outermost first; member containers
        are pushed, never recursed into."""
        limit = self.max_tokens
        while stack:
            d, start, end, parent, head = stack.pop()
            qual = qualify(parent, d.symbol)
            body = body_of(d.node)
            members = self.group(flatten(body.children), in_scope=d.kind) if body is not None else []
            member_defs = [(nodes, m) for nodes, m in members if m is not None]
            if not member_defs:
                pieces.append(Piece(start, end, d.symbol, d.kind, parent, limit, parts=(d.node,)))
                continue
            summary: list[str] = []
            cursor = self.trim(start, end)[0]
            for nodes, m in member_defs:
                outer = main_node(nodes, m)
                summary.append(self.text(cursor, outer.start_byte))
                summary.append(self.signature(outer, m))
                cursor = outer.end_byte
            summary.append(self.text(cursor, end))
            code = "".join(summary).strip()
            context = (self.header_of(head, body_start(body)),)
            pieces.append(Piece(start, end, d.symbol, d.kind, parent, limit, mode="lines", code=code, context=context))
            for nodes, m in member_defs:
                m_start, m_end = self.line_head(nodes[0].start_byte), nodes[-1].end_byte
                if m.container:
                    stack.append((m, m_start, m_end, qual, main_node(nodes, m).start_byte))
                else:
                    kind = "method" if m.kind == "function" and d.kind not in SCOPES else m.kind
                    piece = self.def_piece(replace(m, kind=kind), m_start, m_end, qual, nodes)
                    piece.context = context
                    pieces.append(piece)

    def def_piece(self, d: Definition, start: int, end: int, parent: str | None, nodes: list[Node]) -> Piece:
        parent = parent if d.parent is None else qualify(parent, d.parent)
        if d.node.type == "method_declaration" and parent is None and self.language == "go":
            parent = go_receiver(d.node, self)
        return Piece(start, end, d.symbol, d.kind, parent, self.max_tokens, parts=tuple(nodes))

    def signature(self, outer: Node, d: Definition) -> str:
        """A member as shown in its container's summary: its lines up to the body, then an elision."""
        body = body_of(d.node)
        if body is None:
            return self.text(outer.start_byte, outer.end_byte)
        sig = self.text(outer.start_byte, body_start(body)).rstrip()
        if sig.endswith("{"):
            return sig + " ... }"
        return sig + " ..."

    def group(self, nodes: list[Node], in_scope: str | None) -> list[Group]:
        """Consecutive nodes as (definition, with the comments/attributes right above it) or (run of statements)."""
        out: list[Group] = []
        run: list[Node] = []
        for node in nodes:
            d = definition(node, self) if node.is_named else None
            if d is None:
                if (
                    not run
                    and out
                    and (  # `;` after `struct S {...}`, `}  // namespace x` stay with it
                        node.type in (";", ",")
                        or ("comment" in node.type and node.start_point[0] == out[-1][0][-1].end_point[0])
                    )
                ):
                    out[-1][0].append(node)
                else:
                    run.append(node)
                continue
            k = self.lead_start(run, node, d)
            lead, run = run[k:], run[:k]
            if run:
                out.append((run, None))
                run = []
            out.append(([*lead, node], d))
        if run:
            out.append((run, None))
        return out

    def blank_between(self, a: Node, b: Node) -> bool:
        return self.data.count(b"\n", a.end_byte, b.start_byte) > 1

    def lead_start(self, run: list[Node], node: Node, d: Definition) -> int:
        """Where the nodes at the end of ``run`` that belong to definition ``d`` (at ``node``) begin: comments,
        attributes and C conditionals (``#ifdef X``) right above it, and its TypeScript overload signatures (blank
        lines between allowed)."""
        k, nxt = len(run), node
        while k:
            prev = run[k - 1]
            above = (attachable(prev) or self.conditional(prev)) and not self.blank_between(prev, nxt)
            if prev.type == ";" and k >= 2 and is_overload(run[k - 2], d, self):
                k -= 1
            elif above or is_overload(prev, d, self):
                k, nxt = k - 1, prev
            else:
                break
        return k

    def conditional(self, node: Node) -> bool:
        """Part of a C conditional directive's line (``#ifdef``, its name, ``#if``, its condition)."""
        line_start = self.line_starts[bisect.bisect_right(self.line_starts, node.start_byte) - 1]
        return node.type not in DIRECTIVES and bool(CONDITIONAL.match(self.parsed, line_start))

    def merge_one_liners(self, groups: list[Group]) -> list[Group]:
        """A block of one line (or of C conditionals only: ``#endif``) joins a neighbouring group, the one with
        fewer line breaks between (the following one on a tie) that the estimate says still fits the budget with
        it; it stays alone only when none does. A one-line block never joins the definition that follows it (a hit
        on that definition would start at, and preview, an ``import`` line); C conditionals do (``#ifdef X`` above
        a function belongs to it)."""
        out = list(groups)
        i = 0
        while i < len(out):
            nodes, d = out[i]
            text = self.data[slice(*self.trim(nodes[0].start_byte, nodes[-1].end_byte))]
            conditional = all(CONDITIONAL.match(line) for line in text.split(b"\n") if line.strip())
            target = (
                self.merge_target(out, i, conditional) if d is None and (b"\n" not in text or conditional) else None
            )
            if target is None:
                i += 1
            elif target > i:
                out[i + 1 : i + 2] = [(nodes + out[i + 1][0], out[i + 1][1])]
                del out[i]
            else:
                out[i - 1] = (out[i - 1][0] + nodes, out[i - 1][1])
                del out[i]
        return out

    def merge_target(self, groups: list[Group], i: int, conditional: bool) -> int | None:
        nodes = groups[i][0]
        options = []
        if i + 1 < len(groups) and (conditional or groups[i + 1][1] is None):
            options.append((self.data.count(b"\n", nodes[-1].end_byte, groups[i + 1][0][0].start_byte), 0, i + 1))
        if i > 0:
            options.append((self.data.count(b"\n", groups[i - 1][0][-1].end_byte, nodes[0].start_byte), 1, i - 1))
        for _, _, j in sorted(options):
            first, last = min(i, j), max(i, j)
            size = groups[last][0][-1].end_byte - groups[first][0][0].start_byte
            d = groups[j][1]
            if size * GUESS <= self.max_tokens * FILL or (d is not None and d.container):  # a summary: one more line
                return j
        return None

    def text_pieces(self) -> list[Piece]:
        return paragraph_pieces(
            self.data, self.line_starts, self.language == "markdown", min(self.max_tokens, TEXT_TARGET)
        )

    # -- counting, splitting and emitting

    def render(self, p: Piece) -> str:
        code = p.code if p.code is not None else self.text(*self.trim(p.start, p.end))
        if p.bare:
            return code
        head: list[str] = []
        header = chunk_header(qualify(p.parent, p.symbol)) if self.with_header else ""
        if header:
            head.append(header)
        if p.split and p.context:
            head.extend(c for c in p.context if c)
        return "\n".join([*head, code]) if head else code

    def size(self, p: Piece) -> int:
        return len(p.code.encode("utf-8", "surrogatepass")) if p.code is not None else p.end - p.start

    def finish(self, pieces: list[Piece]) -> list[Chunk]:
        # split what is surely too large before paying for a count
        pending: list[Piece] = []
        work = list(pieces)
        while work:
            p = work.pop()
            if self.size(p) > p.limit * _PRESPLIT_BYTES and splittable(p):
                work.extend(self.split(p, p.ratio))
            else:
                pending.append(p)
        done: list[tuple[Piece, str, int]] = []
        rounds = 0
        while pending:
            rounds += 1
            texts = [self.render(p) for p in pending]
            counts = self.count(texts)
            later: list[Piece] = []
            for p, text, n in zip(pending, texts, counts, strict=True):
                if n <= p.limit or not splittable(p) or rounds > 100:  # 100: only a counter gone wrong
                    done.append((p, text, n))
                    continue
                ratio = n / max(1, len(text.encode("utf-8", "surrogatepass")))
                work = self.split(p, ratio)
                while work:
                    q = work.pop()
                    if self.size(q) * q.ratio > q.limit and splittable(q):
                        work.extend(self.split(q, q.ratio))
                    else:
                        later.append(q)
            pending = later
        chunks: list[Chunk] = []
        for p, text, n in done:
            start, end = self.trim(p.start, p.end)
            if start >= end:
                continue  # whitespace only: nothing a person would look for
            sl, sc = self.position(start)
            el, ec = self.position(end)
            chunks.append(
                Chunk(
                    path=self.path,
                    language=self.language,
                    start_line=sl,
                    start_col=sc,
                    end_line=el,
                    end_col=ec,
                    start_byte=start,
                    end_byte=end,
                    symbol=self.block_name(p, start, end) if p.kind == "block" and p.symbol is None else p.symbol,
                    kind=p.kind,
                    parent=p.parent,
                    tokens=n,
                    text=text,
                )
            )
        chunks.sort(key=lambda c: (c.start_line, c.start_col, -c.end_byte))
        return chunks

    def split(self, p: Piece, ratio: float) -> list[Piece]:
        """Two or more smaller pieces covering p (or p one level down). Each piece's context grows by the signature
        it no longer shows."""
        p = replace(p, ratio=ratio)
        fixed = self.prefix_bytes(p) + 8
        target = max(1.0, (p.limit * FILL - fixed * ratio) / max(ratio, 1e-6))  # bytes per piece
        if p.mode == "nodes":
            nodes = list(p.parts)
            context = p.context
            inner = p.inner
            if not inner and p.symbol is not None:  # a definition with what was merged into it: split the definition
                nodes = [n for n in nodes if n.is_named and definition(n, self) is not None][-1:] or nodes[-1:]
            level = self.descend(nodes, context)
            if level is None:
                return self.split(replace(p, mode="lines", parts=()), ratio)
            inner = inner or level[0] is not nodes
            nodes, context = level
            bounds = [p.start] + [n.start_byte for n in nodes[1:]] + [p.end]
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
            out = []
            for i, j in pack(sizes, target):
                sub = replace(
                    p,
                    start=bounds[i],
                    end=bounds[j + 1],
                    parts=tuple(nodes[i : j + 1]),
                    context=p.context if i == 0 else context,
                    split=True,
                    inner=inner,
                )
                d = definition(nodes[i], self) if inner and i == j and i > 0 and nodes[i].is_named else None
                if d is not None and d.symbol:  # a nested definition that now stands alone
                    sub.symbol, sub.kind, sub.parent = d.symbol, d.kind, qualify(p.parent, p.symbol)
                    sub.inner = False
                out.append(sub)
            return out
        if p.mode == "spans":
            spans = list(p.parts)
            if len(spans) == 1:
                return self.split(replace(p, mode="lines", parts=()), ratio)
            bounds = [p.start] + [s for s, _ in spans[1:]] + [p.end]
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
            return [
                replace(p, start=bounds[i], end=bounds[j + 1], parts=tuple(spans[i : j + 1]), split=True)
                for i, j in pack(sizes, target)
            ]
        if p.mode == "lines":
            if p.code is not None:
                lines = p.code.splitlines(keepends=True)
                if len(lines) <= 1:
                    return self.split(replace(p, mode="chars"), ratio)
                sizes = [len(ln.encode("utf-8", "surrogatepass")) for ln in lines]
                return [replace(p, code="".join(lines[i : j + 1]).strip(), split=True) for i, j in pack(sizes, target)]
            start, end = self.trim(p.start, p.end)
            cuts = [m.end() + start for m in re.finditer(b"\n", self.data[start:end])]
            if not cuts:
                return self.split(replace(p, mode="chars"), ratio)
            bounds = [p.start, *cuts, p.end]
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
            return [replace(p, start=bounds[i], end=bounds[j + 1], split=True) for i, j in pack(sizes, target)]
        # chars: the last resort; once an estimate failed here, use a size that surely fits (a token holds a byte)
        text = p.code if p.code is not None else self.text(*self.trim(p.start, p.end))
        bare = p.bare
        if p.mode == "chars":
            fixed = self.prefix_bytes(p) + 3
            bare = bare or p.limit - 2 - fixed < p.limit // 2 or len(text) <= 1
            target = max(1, p.limit - 2 - (0 if bare else fixed))
        texts = split_chars(text, int(target))
        if len(texts) <= 1 and bare == p.bare:
            texts = split_chars(text, max(1, len(text.encode("utf-8", "surrogatepass")) // 2))
        out = []
        offset = self.trim(p.start, p.end)[0]
        for piece_text in texts:
            n = len(piece_text.encode("utf-8", "surrogatepass"))
            if p.code is not None:
                q = replace(p, mode="chars", code=piece_text, split=True, bare=bare)
            else:
                q = replace(p, mode="chars", start=offset, end=offset + n, split=True, bare=bare)
            offset += n
            out.append(q)
        return out

    def block_name(self, p: Piece, start: int, end: int) -> str | None:
        """A block's name (not part of its text): the first name it declares, else the start of its first line of
        code, e.g. ``import { x } from "y"`` or ``describe('parse', () =>``."""
        if p.mode == "nodes" and p.parts and not self.parsed[start : p.parts[0].start_byte].strip():
            code = [
                n
                for n in p.parts
                if "comment" not in n.type and WORD.search(self.data, max(start, n.start_byte), n.end_byte)
            ]
            for n in code:
                name = declared_name(n, self) if n.is_named else None
                if name:
                    return name
            if code:
                start = max(start, code[0].start_byte)
        line_end = self.data.find(b"\n", start, end)
        return short_form(self.text(start, end if line_end == -1 else line_end))

    def descend(self, nodes: list[Node], context: tuple[str, ...]) -> tuple[list[Node], tuple[str, ...]] | None:
        """The nodes to cut a too-large piece between, and its context: ``nodes`` when one of them after the first
        starts a line (or none spans lines), else the items of the one node (or the largest), further down as
        needed, with the signatures passed on the way in the context. None: no items below (split by lines)."""
        head: int | None = None  # where the statement began whose items are cut mid-line: part of the next signature
        while not (len(nodes) > 1 and self.cuttable(nodes)):
            node = nodes[0] if len(nodes) == 1 else max(nodes, key=lambda n: n.end_byte - n.start_byte)
            d = definition(node, self) if node.is_named else None
            items = items_of(d.node if d is not None else node)
            if not items:
                return None
            if len(nodes) > 1:  # `describe('x', () => {...})`: the signature runs on into the largest item
                head = nodes[0].start_byte if head is None else head
            else:
                start = node.start_byte if head is None else head
                if self.data[start : items[0].start_byte].strip():
                    context = push_context(context, self.header_of(start, items[0].start_byte))
                head = None
            nodes = items
        if head is not None and self.data[head : nodes[0].start_byte].strip():
            context = push_context(context, self.header_of(head, nodes[0].start_byte))
        return nodes, context

    def cuttable(self, nodes: list[Node]) -> bool:
        """Cut between these nodes: one after the first starts a line, or the nodes share one line anyway."""
        if any(self.starts_line(n.start_byte) for n in nodes[1:]):
            return True
        return not any(self.data.count(b"\n", n.start_byte, n.end_byte) for n in nodes)

    def prefix_bytes(self, p: Piece) -> int:
        if p.bare:
            return 0
        header = chunk_header(qualify(p.parent, p.symbol)) if self.with_header else ""
        n = len(header) + 1 if header else 0
        return n + sum(len(c) + 1 for c in p.context)


# --- tree helpers (none of them recurse) -----------------------------------------------------------------------
