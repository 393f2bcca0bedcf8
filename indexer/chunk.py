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
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from .c_macros import mask_macros
from .languages import is_parsed, parser_for
from .types import Chunk, FileChunks, SourceFile

CountTokens = Callable[[list[str]], list[int]]
Node = Any  # tree_sitter.Node

TEXT_TARGET = 512  # token target of the paragraph fallback (capped by max_tokens)
MAX_PROBLEM_LINES = 10  # syntax error lines listed in a problem message
_GUESS = 0.4  # tokens per byte assumed before anything is counted (conservative for code)
_PRESPLIT_BYTES = 8  # a piece over budget * this many bytes is split on the estimate before counting
_FILL = 0.85  # pack to this share of the budget, leaving room for the estimate's error
_CTX_LINES = 4  # at most this many lines of one enclosing signature are repeated as context
_CTX_CHARS = 240


def chunk_header(qualified_name: str | None) -> str:
    """The first line of a chunk's text (with_header=True), or "" for a chunk without a symbol. The one place that
    defines its format.

    The path is deliberately not part of the embedded text: a moved or renamed file must not need new vectors
    (paths are searchable through the lexical index instead). Measured on ../shared/eval with all-MiniLM-L6-v2, a
    "# path :: symbol" header changed MRR@10 by -0.003 on average (noise); with BM25 it gained +0.016, which the
    lexical index gets from its names/path columns without touching vectors.
    """
    return f"# {qualified_name}" if qualified_name else ""


# --- language tables -------------------------------------------------------------------------------------------

_FUNCTIONS: dict[str, str] = {
    "function_definition": "function",  # python, c, cpp, php, bash, scala
    "function_declaration": "function",  # javascript, typescript, go, kotlin, swift
    "generator_function_declaration": "function",
    "function_item": "function",  # rust
    "method_declaration": "method",  # go, java, csharp, php
    "method_definition": "method",  # javascript, typescript
    "method": "method",  # ruby
    "singleton_method": "method",
    "constructor_declaration": "method",
    "compact_constructor_declaration": "method",
    "destructor_declaration": "method",
    "operator_declaration": "method",
    "conversion_operator_declaration": "method",
    "init_declaration": "method",  # swift
    "deinit_declaration": "method",
    "secondary_constructor": "method",  # kotlin
    "anonymous_initializer": "method",
    "macro_definition": "macro",  # rust macro_rules!
}
_BODYLESS_OK = {"method", "singleton_method", "macro_definition"}

_CONTAINERS: dict[str, str] = {
    "class_definition": "class",  # python, scala
    "class_declaration": "class",  # js, ts, java, csharp, php, kotlin, swift (struct/enum/extension too)
    "abstract_class_declaration": "class",
    "class": "class",  # ruby; js class expressions never reach here (not statements)
    "singleton_class": "class",
    "module": "module",  # ruby, typescript `declare module`
    "interface_declaration": "interface",
    "enum_declaration": "enum",
    "record_declaration": "record",
    "struct_declaration": "struct",
    "record_struct_declaration": "struct",
    "trait_declaration": "trait",
    "impl_item": "impl",
    "trait_item": "trait",
    "mod_item": "module",
    "class_specifier": "class",
    "struct_specifier": "struct",
    "union_specifier": "union",
    "namespace_definition": "namespace",
    "namespace_declaration": "namespace",
    "file_scoped_namespace_declaration": "namespace",
    "internal_module": "namespace",
    "object_declaration": "object",
    "companion_object": "object",
    "object_definition": "object",
    "trait_definition": "trait",
    "enum_definition": "enum",
    "protocol_declaration": "protocol",
    "annotation_type_declaration": "interface",
}
_LEAVES: dict[str, str] = {
    "struct_item": "struct",
    "enum_item": "enum",
    "union_item": "union",
    "type_alias_declaration": "type",
    "enum_specifier": "enum",
    "type_declaration": "type",  # go; refined from the type_spec
    "type_definition": "type",  # c typedef with a body
}
_WRAPPERS = {"decorated_definition", "export_statement", "template_declaration", "ambient_declaration"}
_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function", "class"}
_BODY_TYPES = {
    "block", "class_body", "function_body", "body_statement", "declaration_list", "field_declaration_list",
    "template_body", "statement_block", "compound_statement", "protocol_body", "interface_body", "enum_body",
    "enum_class_body", "enum_variant_list", "enumerator_list", "object_type",
}  # fmt: skip
_NAME_TYPES = {
    "identifier", "type_identifier", "simple_identifier", "constant", "name", "word", "property_identifier",
    "field_identifier", "namespace_identifier", "qualified_identifier", "scoped_identifier", "user_type",
    "destructor_name", "operator_name", "scoped_type_identifier",
}  # fmt: skip
_TRANSPARENT = {
    "ERROR", "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef",
    "linkage_specification", "enum_body_declarations",
}  # fmt: skip
_ATTACHED = {"decorator", "attribute_item", "annotation", "marker_annotation", "attribute_list", "attribute"}
_SCOPES = {"namespace", "module"}  # functions directly inside these stay "function"
_VALUE_WRAPPERS = {"parenthesized_expression", "as_expression", "satisfies_expression", "non_null_expression"}
_SIGNATURES = {"function_signature", "method_signature", "abstract_method_signature"}  # typescript overloads
_DECLARATIONS = {
    "lexical_declaration", "variable_declaration", "declaration", "preproc_def", "preproc_function_def",
    "function_signature", "type_definition", "const_declaration", "var_declaration", "const_item", "static_item",
    "let_declaration", "property_declaration", "val_definition", "var_definition", "variable_assignment",
    "field_declaration", "global_statement", "namespace_use_declaration",
}  # fmt: skip
_DECLARATORS = {"variable_declarator", "var_spec", "const_spec", "init_declarator"}
_ASSIGNMENTS = {"assignment", "assignment_expression"}
_JS = {"javascript", "typescript", "tsx"}
_C_WRAPPER_NAME = re.compile(r"__[A-Z][A-Z0-9_]*")  # __NTH, __REDIRECT: a macro, never a function's name
_SHORT = 40  # characters of a block's first line kept as its name
_WORD = re.compile(rb"\w")
_DIRECTIVES = {"preproc_def", "preproc_function_def", "preproc_include", "preproc_call"}
_CONDITIONAL = re.compile(rb"[ \t]*#[ \t]*(?:if|ifdef|ifndef|elif|else|endif)\b")


@dataclass(frozen=True)
class _Def:
    node: Node  # the definition proper (inside any wrapper)
    symbol: str | None
    kind: str
    container: bool
    parent: str | None = None  # javascript `Foo.prototype.bar = function` -> Foo


@dataclass
class _Piece:
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
    ratio: float = _GUESS  # tokens per byte, from the nearest counted ancestor


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
        """The syntax tree's root (C/C++: of a copy with the macros tree-sitter trips on blanked, same offsets)."""
        self.parsed = mask_macros(self.data) if self.language in ("c", "cpp") else self.data
        root = parser_for(self.language).parse(self.parsed).root_node
        if root.has_error:
            lines = _error_lines(root)
            if lines:
                shown = ", ".join(str(n) for n in lines[:MAX_PROBLEM_LINES])
                more = ", ..." if len(lines) > MAX_PROBLEM_LINES else ""
                problems.append(f"syntax errors recovered at lines {shown}{more}")
        return root

    def parsed_pieces(self, problems: list[str]) -> list[_Piece]:
        root = self.parse(problems)
        limit = self.max_tokens
        pieces: list[_Piece] = []
        groups = self.merge_one_liners(self.group(_flatten(root.children), in_scope=None))
        # top-level groups partition the whole file, so stray bytes always land in some chunk
        if not groups:  # e.g. a file of control characters: tree-sitter saw nothing, the bytes are still there
            return [_Piece(0, len(self.data), None, "block", None, limit, mode="lines")]
        starts = [self.line_head(g[0][0].start_byte) for g in groups]
        stack: list[tuple[_Def, int, int, str | None, int]] = []
        for i, (nodes, d) in enumerate(groups):
            start = 0 if i == 0 else starts[i]
            end = len(self.data) if i + 1 == len(groups) else starts[i + 1]
            if d is None:
                pieces.append(_Piece(start, end, None, "block", None, limit, parts=tuple(nodes)))
            elif d.container:
                stack.append((d, start, end, None, _main(nodes, d).start_byte))
            else:
                pieces.append(self.def_piece(d, start, end, None, nodes))
        self.container_pieces(stack, pieces)
        return pieces

    def container_pieces(self, stack: list[tuple[_Def, int, int, str | None, int]], pieces: list[_Piece]) -> None:
        """A summary piece per container on ``stack`` and a piece per member, outermost first; member containers
        are pushed, never recursed into."""
        limit = self.max_tokens
        while stack:
            d, start, end, parent, head = stack.pop()
            qual = _qualify(parent, d.symbol)
            body = _body(d.node)
            members = self.group(_flatten(body.children), in_scope=d.kind) if body is not None else []
            member_defs = [(nodes, m) for nodes, m in members if m is not None]
            if not member_defs:
                pieces.append(_Piece(start, end, d.symbol, d.kind, parent, limit, parts=(d.node,)))
                continue
            summary: list[str] = []
            cursor = self.trim(start, end)[0]
            for nodes, m in member_defs:
                outer = _main(nodes, m)
                summary.append(self.text(cursor, outer.start_byte))
                summary.append(self.signature(outer, m))
                cursor = outer.end_byte
            summary.append(self.text(cursor, end))
            code = "".join(summary).strip()
            context = (self.header_of(head, _body_start(body)),)
            pieces.append(_Piece(start, end, d.symbol, d.kind, parent, limit, mode="lines", code=code, context=context))
            for nodes, m in member_defs:
                m_start, m_end = self.line_head(nodes[0].start_byte), nodes[-1].end_byte
                if m.container:
                    stack.append((m, m_start, m_end, qual, _main(nodes, m).start_byte))
                else:
                    kind = "method" if m.kind == "function" and d.kind not in _SCOPES else m.kind
                    piece = self.def_piece(replace(m, kind=kind), m_start, m_end, qual, nodes)
                    piece.context = context
                    pieces.append(piece)

    def def_piece(self, d: _Def, start: int, end: int, parent: str | None, nodes: list[Node]) -> _Piece:
        parent = parent if d.parent is None else _qualify(parent, d.parent)
        if d.node.type == "method_declaration" and parent is None and self.language == "go":
            parent = _go_receiver(d.node, self)
        return _Piece(start, end, d.symbol, d.kind, parent, self.max_tokens, parts=tuple(nodes))

    def signature(self, outer: Node, d: _Def) -> str:
        """A member as shown in its container's summary: its lines up to the body, then an elision."""
        body = _body(d.node)
        if body is None:
            return self.text(outer.start_byte, outer.end_byte)
        sig = self.text(outer.start_byte, _body_start(body)).rstrip()
        if sig.endswith("{"):
            return sig + " ... }"
        return sig + " ..."

    def group(self, nodes: list[Node], in_scope: str | None) -> list[tuple[list[Node], _Def | None]]:
        """Consecutive nodes as (definition, with the comments/attributes right above it) or (run of statements)."""
        out: list[tuple[list[Node], _Def | None]] = []
        run: list[Node] = []
        for node in nodes:
            d = _definition(node, self) if node.is_named else None
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

    def lead_start(self, run: list[Node], node: Node, d: _Def) -> int:
        """Where the nodes at the end of ``run`` that belong to definition ``d`` (at ``node``) begin: comments,
        attributes and C conditionals (``#ifdef X``) right above it, and its TypeScript overload signatures (blank
        lines between allowed)."""
        k, nxt = len(run), node
        while k:
            prev = run[k - 1]
            above = (_attachable(prev) or self.conditional(prev)) and not self.blank_between(prev, nxt)
            if prev.type == ";" and k >= 2 and _overload(run[k - 2], d, self):
                k -= 1
            elif above or _overload(prev, d, self):
                k, nxt = k - 1, prev
            else:
                break
        return k

    def conditional(self, node: Node) -> bool:
        """Part of a C conditional directive's line (``#ifdef``, its name, ``#if``, its condition)."""
        line_start = self.line_starts[bisect.bisect_right(self.line_starts, node.start_byte) - 1]
        return node.type not in _DIRECTIVES and bool(_CONDITIONAL.match(self.parsed, line_start))

    def merge_one_liners(self, groups: list[tuple[list[Node], _Def | None]]) -> list[tuple[list[Node], _Def | None]]:
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
            conditional = all(_CONDITIONAL.match(line) for line in text.split(b"\n") if line.strip())
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

    def merge_target(self, groups: list[tuple[list[Node], _Def | None]], i: int, conditional: bool) -> int | None:
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
            if size * _GUESS <= self.max_tokens * _FILL or (d is not None and d.container):  # a summary: one more line
                return j
        return None

    # -- the paragraph fallback

    def text_pieces(self) -> list[_Piece]:
        limit = max(1, min(self.max_tokens, TEXT_TARGET))
        markdown = self.language == "markdown"
        paras: list[tuple[int, int, str | None]] = []  # (start, end, heading text when it opens a section)
        para_start: int | None = None
        heading: str | None = None
        fence = False
        for i, ls in enumerate(self.line_starts):
            le = self.line_starts[i + 1] if i + 1 < len(self.line_starts) else len(self.data)
            line = self.data[ls:le]
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
            paras.append((para_start, len(self.data), heading))
        pieces: list[_Piece] = []
        section: str | None = None
        group: list[tuple[int, int]] = []
        size = 0.0

        def flush() -> None:
            if group:
                kind = "section" if section is not None else "text"
                pieces.append(
                    _Piece(group[0][0], group[-1][1], section, kind, None, limit, mode="spans", parts=tuple(group))
                )

        for start, end, head in paras:
            est = (end - start) * _GUESS
            if head is not None or (group and size + est > limit * _FILL):
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
            pieces[-1].end = len(self.data)
        return pieces

    # -- counting, splitting and emitting

    def render(self, p: _Piece) -> str:
        code = p.code if p.code is not None else self.text(*self.trim(p.start, p.end))
        if p.bare:
            return code
        head: list[str] = []
        header = chunk_header(_qualify(p.parent, p.symbol)) if self.with_header else ""
        if header:
            head.append(header)
        if p.split and p.context:
            head.extend(c for c in p.context if c)
        return "\n".join([*head, code]) if head else code

    def size(self, p: _Piece) -> int:
        return len(p.code.encode("utf-8", "surrogatepass")) if p.code is not None else p.end - p.start

    def finish(self, pieces: list[_Piece]) -> list[Chunk]:
        # split what is surely too large before paying for a count
        pending: list[_Piece] = []
        work = list(pieces)
        while work:
            p = work.pop()
            if self.size(p) > p.limit * _PRESPLIT_BYTES and _splittable(p):
                work.extend(self.split(p, p.ratio))
            else:
                pending.append(p)
        done: list[tuple[_Piece, str, int]] = []
        rounds = 0
        while pending:
            rounds += 1
            texts = [self.render(p) for p in pending]
            counts = self.count(texts)
            later: list[_Piece] = []
            for p, text, n in zip(pending, texts, counts, strict=True):
                if n <= p.limit or not _splittable(p) or rounds > 100:  # 100: only a counter gone wrong
                    done.append((p, text, n))
                    continue
                ratio = n / max(1, len(text.encode("utf-8", "surrogatepass")))
                work = self.split(p, ratio)
                while work:
                    q = work.pop()
                    if self.size(q) * q.ratio > q.limit and _splittable(q):
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

    def split(self, p: _Piece, ratio: float) -> list[_Piece]:
        """Two or more smaller pieces covering p (or p one level down). Each piece's context grows by the signature
        it no longer shows."""
        p = replace(p, ratio=ratio)
        fixed = self.prefix_bytes(p) + 8
        target = max(1.0, (p.limit * _FILL - fixed * ratio) / max(ratio, 1e-6))  # bytes per piece
        if p.mode == "nodes":
            nodes = list(p.parts)
            context = p.context
            inner = p.inner
            if not inner and p.symbol is not None:  # a definition with what was merged into it: split the definition
                nodes = [n for n in nodes if n.is_named and _definition(n, self) is not None][-1:] or nodes[-1:]
            level = self.descend(nodes, context)
            if level is None:
                return self.split(replace(p, mode="lines", parts=()), ratio)
            inner = inner or level[0] is not nodes
            nodes, context = level
            bounds = [p.start] + [n.start_byte for n in nodes[1:]] + [p.end]
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
            out = []
            for i, j in _pack(sizes, target):
                sub = replace(
                    p,
                    start=bounds[i],
                    end=bounds[j + 1],
                    parts=tuple(nodes[i : j + 1]),
                    context=p.context if i == 0 else context,
                    split=True,
                    inner=inner,
                )
                d = _definition(nodes[i], self) if inner and i == j and i > 0 and nodes[i].is_named else None
                if d is not None and d.symbol:  # a nested definition that now stands alone
                    sub.symbol, sub.kind, sub.parent = d.symbol, d.kind, _qualify(p.parent, p.symbol)
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
                for i, j in _pack(sizes, target)
            ]
        if p.mode == "lines":
            if p.code is not None:
                lines = p.code.splitlines(keepends=True)
                if len(lines) <= 1:
                    return self.split(replace(p, mode="chars"), ratio)
                sizes = [len(ln.encode("utf-8", "surrogatepass")) for ln in lines]
                return [replace(p, code="".join(lines[i : j + 1]).strip(), split=True) for i, j in _pack(sizes, target)]
            start, end = self.trim(p.start, p.end)
            cuts = [m.end() + start for m in re.finditer(b"\n", self.data[start:end])]
            if not cuts:
                return self.split(replace(p, mode="chars"), ratio)
            bounds = [p.start, *cuts, p.end]
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
            return [replace(p, start=bounds[i], end=bounds[j + 1], split=True) for i, j in _pack(sizes, target)]
        # chars: the last resort; once an estimate failed here, use a size that surely fits (a token holds a byte)
        text = p.code if p.code is not None else self.text(*self.trim(p.start, p.end))
        bare = p.bare
        if p.mode == "chars":
            fixed = self.prefix_bytes(p) + 3
            bare = bare or p.limit - 2 - fixed < p.limit // 2 or len(text) <= 1
            target = max(1, p.limit - 2 - (0 if bare else fixed))
        texts = _split_chars(text, int(target))
        if len(texts) <= 1 and bare == p.bare:
            texts = _split_chars(text, max(1, len(text.encode("utf-8", "surrogatepass")) // 2))
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

    def block_name(self, p: _Piece, start: int, end: int) -> str | None:
        """A block's name (not part of its text): the first name it declares, else the start of its first line of
        code, e.g. ``import { x } from "y"`` or ``describe('parse', () =>``."""
        if p.mode == "nodes" and p.parts and not self.parsed[start : p.parts[0].start_byte].strip():
            code = [
                n
                for n in p.parts
                if "comment" not in n.type and _WORD.search(self.data, max(start, n.start_byte), n.end_byte)
            ]
            for n in code:
                name = _declared_name(n, self) if n.is_named else None
                if name:
                    return name
            if code:
                start = max(start, code[0].start_byte)
        line_end = self.data.find(b"\n", start, end)
        return _short_form(self.text(start, end if line_end == -1 else line_end))

    def descend(self, nodes: list[Node], context: tuple[str, ...]) -> tuple[list[Node], tuple[str, ...]] | None:
        """The nodes to cut a too-large piece between, and its context: ``nodes`` when one of them after the first
        starts a line (or none spans lines), else the items of the one node (or the largest), further down as
        needed, with the signatures passed on the way in the context. None: no items below (split by lines)."""
        head: int | None = None  # where the statement began whose items are cut mid-line: part of the next signature
        while not (len(nodes) > 1 and self.cuttable(nodes)):
            node = nodes[0] if len(nodes) == 1 else max(nodes, key=lambda n: n.end_byte - n.start_byte)
            d = _definition(node, self) if node.is_named else None
            items = _items(d.node if d is not None else node)
            if not items:
                return None
            if len(nodes) > 1:  # `describe('x', () => {...})`: the signature runs on into the largest item
                head = nodes[0].start_byte if head is None else head
            else:
                start = node.start_byte if head is None else head
                if self.data[start : items[0].start_byte].strip():
                    context = _push(context, self.header_of(start, items[0].start_byte))
                head = None
            nodes = items
        if head is not None and self.data[head : nodes[0].start_byte].strip():
            context = _push(context, self.header_of(head, nodes[0].start_byte))
        return nodes, context

    def cuttable(self, nodes: list[Node]) -> bool:
        """Cut between these nodes: one after the first starts a line, or the nodes share one line anyway."""
        if any(self.starts_line(n.start_byte) for n in nodes[1:]):
            return True
        return not any(self.data.count(b"\n", n.start_byte, n.end_byte) for n in nodes)

    def prefix_bytes(self, p: _Piece) -> int:
        if p.bare:
            return 0
        header = chunk_header(_qualify(p.parent, p.symbol)) if self.with_header else ""
        n = len(header) + 1 if header else 0
        return n + sum(len(c) + 1 for c in p.context)


# --- tree helpers (none of them recurse) -----------------------------------------------------------------------


def _splittable(p: _Piece) -> bool:
    if p.mode != "chars":
        return True
    if p.code is not None:
        return len(p.code) > 1 or not p.bare
    return p.end - p.start > 1 or not p.bare


def _pack(sizes: list[int], target: float) -> list[tuple[int, int]]:
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


def _split_chars(text: str, max_bytes: int) -> list[str]:
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


def _flatten(nodes: Iterable[Node]) -> list[Node]:
    """Children with error-recovery and preprocessor wrappers opened up, in source order, without recursion."""
    out: list[Node] = []
    stack = [iter(nodes)]
    while stack:
        for node in stack[-1]:
            if node.type in _TRANSPARENT or (
                node.type == "declaration_list" and node.parent is not None and node.parent.type in _TRANSPARENT
            ):
                stack.append(iter(node.children))
                break
            out.append(node)
        else:
            stack.pop()
    return out


def _error_lines(root: Node) -> list[int]:
    """1-based lines of ERROR and MISSING nodes, in order, following only subtrees that hold an error."""
    lines: list[int] = []
    stack = [root]
    while stack and len(lines) <= MAX_PROBLEM_LINES:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line = node.start_point[0] + 1
            if not lines or lines[-1] != line:
                lines.append(line)
            if node.type == "ERROR" and not any(c.has_error for c in node.children):
                continue
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return sorted(set(lines))


def _body(node: Node) -> Node | None:
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    for child in reversed(node.named_children):
        if child.type in _BODY_TYPES:
            return child
    return None


def _body_start(body: Node) -> int:
    """Where a definition's signature ends: the first item inside its body (the body's end when it is empty)."""
    named = body.named_children
    return int(named[0].start_byte if named else body.end_byte)


def _items(node: Node) -> list[Node]:
    """The pieces a too-large node splits into: its body's items, else its own named children."""
    body = _body(node)
    if body is not None and body.named_child_count:
        return _flatten(body.named_children)
    return list(node.named_children)


def _push(context: tuple[str, ...], header: str) -> tuple[str, ...]:
    """Context grows by one signature; only the outermost and the two innermost are kept."""
    out = (*context, header)
    return out if len(out) <= 3 else (out[0], out[-2], out[-1])


def _unwrap(node: Node) -> Node | None:
    for field in ("definition", "declaration"):
        inner = node.child_by_field_name(field)
        if inner is not None:
            return inner
    named = node.named_children
    return named[-1] if named else None


def _main(nodes: list[Node], d: _Def) -> Node:
    """The node of a group that holds its definition (with its wrapper: decorators, export, template), not the
    comments, overloads or merged one-line blocks around it."""
    for node in reversed(nodes):
        if node.start_byte <= d.node.start_byte and node.end_byte >= d.node.end_byte:
            return node
    return d.node


def _overload(node: Node, d: _Def, ck: _Chunker) -> bool:
    """A TypeScript overload signature of ``d`` (``export function f(a: string): string;`` before ``f``'s body)."""
    if not node.is_named or d.symbol is None:
        return False
    while node is not None and node.type in _WRAPPERS:
        node = _unwrap(node)
    return node is not None and node.type in _SIGNATURES and _name(node, ck) == d.symbol


def _declared_name(node: Node, ck: _Chunker) -> str | None:
    """The name a plain statement declares (``const x = 1``, ``x = 1``, ``int x;``, ``#define X``), or None."""
    while node.type in _WRAPPERS or (node.type == "expression_statement" and node.named_child_count):
        inner = _unwrap(node) if node.type in _WRAPPERS else node.named_children[0]
        if inner is None:
            return None
        node = inner
    if node.type in _ASSIGNMENTS:
        left = node.child_by_field_name("left")
        ok = left is not None and left.type in (*_NAME_TYPES, "member_expression", "attribute")
        return _node_text(left, ck) if ok else None
    if node.type not in _DECLARATIONS or _include_guard(node, ck):
        return None
    declarator = next((c for c in node.named_children if c.type in _DECLARATORS), node)
    name = _name(declarator, ck)
    return None if name is None or (ck.language in ("c", "cpp") and _C_WRAPPER_NAME.fullmatch(name)) else name


def _include_guard(node: Node, ck: _Chunker) -> bool:
    """``#define X`` right inside ``#ifndef X``."""
    parent = node.parent
    if node.type != "preproc_def" or parent is None or parent.type != "preproc_ifdef":
        return False
    guard, name = parent.child_by_field_name("name"), node.child_by_field_name("name")
    return guard is not None and name is not None and _node_text(guard, ck) == _node_text(name, ck)


def _short_form(line: str) -> str | None:
    """A line of code as a name: whitespace collapsed, a trailing ``{`` or ``;`` dropped, at most ``_SHORT``
    characters."""
    text = " ".join(line.split()).removesuffix("{").removesuffix(";").rstrip()
    if len(text) > _SHORT:
        text = text[: _SHORT - 4].rstrip() + " ..."
    return text or None


def _attachable(node: Node) -> bool:
    return "comment" in node.type or node.type in _ATTACHED


def _qualify(parent: str | None, symbol: str | None) -> str | None:
    if symbol is None:
        return parent
    return f"{parent}.{symbol}" if parent else symbol


def _node_text(node: Node, ck: _Chunker) -> str:
    text = " ".join(ck.text(node.start_byte, node.end_byte).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _name(node: Node, ck: _Chunker) -> str | None:
    name = node.child_by_field_name("name")
    if name is not None:
        return _node_text(name, ck)
    if node.type == "companion_object":
        named = [c for c in node.named_children if c.type == "type_identifier"]
        return _node_text(named[0], ck) if named else "Companion"
    if node.type == "impl_item":
        ty = node.child_by_field_name("type")
        return _node_text(ty, ck) if ty is not None else None
    declarator = node.child_by_field_name("declarator")
    for _ in range(16):  # c/cpp: int *(*f)(void) -> follow declarators to the identifier
        if declarator is None:
            break
        if declarator.type in _NAME_TYPES:
            return _node_text(declarator, ck)
        nxt = declarator.child_by_field_name("declarator")
        if nxt is None:
            nxt = next((c for c in declarator.named_children if c.type in _NAME_TYPES or "declarator" in c.type), None)
        declarator = nxt
    for child in node.named_children:
        if child.type in ("type_spec", "type_alias"):
            return _name(child, ck)
        if child.type in _NAME_TYPES:
            return _node_text(child, ck)
    return None


def _definition(node: Node, ck: _Chunker) -> _Def | None:
    """The definition a statement-level node introduces, or None for a plain statement."""
    default = False  # `export default` of an anonymous function or class: named "default"
    for _ in range(4):  # unwrap decorators / export / template / declare / TS namespaces
        if node.type in _WRAPPERS:
            default = default or (node.type == "export_statement" and any(c.type == "default" for c in node.children))
            inner = _unwrap(node)
            if inner is None:
                return None
            node = inner
        elif node.type == "expression_statement" and node.named_child_count == 1:
            inner = node.named_children[0]
            if inner.type == "assignment_expression" and ck.language in _JS:
                return _assigned(inner, ck)
            if inner.type not in ("internal_module", "module"):
                return None
            node = inner
        else:
            break
    t = node.type
    if t in _FUNCTIONS:
        if _body(node) is None and t not in _BODYLESS_OK:
            return None
        name = _name(node, ck)
        if ck.language in ("c", "cpp") and name is not None and _C_WRAPPER_NAME.fullmatch(name):
            name = None
        return _Def(node, name, _FUNCTIONS[t], False)
    if t in _CONTAINERS:
        if t == "module" and ck.language not in ("ruby", "typescript", "tsx"):
            return None
        kind = _CONTAINERS[t]
        if t == "class_declaration":
            kind = _keyword_kind(node) or kind
        body = _body(node)
        return _Def(node, _name(node, ck), kind, body is not None and body.named_child_count > 0)
    if t in _LEAVES:
        return _leaf(node, ck)
    if t in ("lexical_declaration", "variable_declaration"):
        declarators = [c for c in node.named_children if c.type == "variable_declarator"]
        if len(declarators) == 1:
            value = _function_value(declarators[0].child_by_field_name("value"))
            if value is not None:
                kind = "class" if value.type == "class" else "function"
                return _Def(value, _name(declarators[0], ck), kind, False)
    if default and t in _FUNCTION_VALUES:
        return _Def(node, _name(node, ck) or "default", "class" if t == "class" else "function", False)
    return None


def _leaf(node: Node, ck: _Chunker) -> _Def | None:
    """A type-like definition kept whole (struct, enum, type alias, typedef with a body), or None."""
    t = node.type
    kind = _LEAVES[t]
    if t == "type_declaration":
        spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
        ty = spec.child_by_field_name("type") if spec is not None else None
        if ty is not None and ty.type in ("struct_type", "interface_type"):
            kind = ty.type.removesuffix("_type")
    elif t in ("enum_specifier", "type_definition") and _body(node) is None:
        inner = node.child_by_field_name("type")
        if t == "enum_specifier" or inner is None or _body(inner) is None:
            return None
    name = _name(node, ck)
    body = _body(node) if name is None and t == "enum_specifier" else None
    if body is not None and body.named_child_count:  # `enum { RED, GREEN };`: named by its first enumerator
        name = _name(body.named_children[0], ck)
    return _Def(node, name, kind, False)


def _function_value(value: Node | None) -> Node | None:
    """The function or class a variable is bound to: the value itself, inside parentheses or a type assertion
    (``(async () => x) as F``), or the function passed to a call (``memo(() => ...)``); None for other values."""
    for _ in range(4):
        if value is None or value.type in _FUNCTION_VALUES:
            return value
        if value.type in _VALUE_WRAPPERS and value.named_child_count:
            value = value.named_children[0]
        elif value.type == "call_expression":
            args = value.child_by_field_name("arguments")
            found = args.named_children if args is not None else []
            value = next((a for a in found if a.type in _FUNCTION_VALUES), None)
        else:
            return None
    return None


def _assigned(expr: Node, ck: _Chunker) -> _Def | None:
    """JavaScript ``module.exports.x = function``, ``exports.x = ...``, ``Foo.prototype.bar = function``: a
    function or class named after the assigned property (a prototype's: a method of Foo)."""
    value = _function_value(expr.child_by_field_name("right"))
    left = expr.child_by_field_name("left")
    if value is None or left is None or left.type not in ("member_expression", "identifier"):
        return None
    parts = ck.text(left.start_byte, left.end_byte).replace(" ", "").split(".")
    if not all(re.fullmatch(r"[\w$]+", part) for part in parts):
        return None
    if parts[:2] == ["module", "exports"] or parts[:1] in (["exports"], ["this"]):
        parts = parts[2:] if parts[0] == "module" else parts[1:]
    kind = "class" if value.type == "class" else "function"
    if "prototype" in parts:
        kind = "method" if kind == "function" else kind
        parts = [p for p in parts if p != "prototype"]
    own = value.child_by_field_name("name")
    symbol = parts[-1] if parts else (_node_text(own, ck) if own is not None else "exports")
    return _Def(value, symbol, kind, False, ".".join(parts[:-1]) or None)


def _keyword_kind(node: Node) -> str | None:
    """swift/kotlin spell struct, enum, extension, interface... as class_declaration with a keyword child."""
    for child in node.children:
        if child.is_named and child.type not in ("modifiers",):
            break
        if child.type in ("struct", "enum", "extension", "actor", "interface", "protocol"):
            return str(child.type)
    return None


def _go_receiver(node: Node, ck: _Chunker) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    text = _node_text(receiver, ck).strip("()").split()
    if not text:
        return None
    return text[-1].lstrip("*").split("[")[0] or None
