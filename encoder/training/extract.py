"""Documented definitions of a source file, in every language the training data and the dev sets use.

A definition is what the retrieval benchmark asks for: the first sentence of its doc comment is the question, and
its code with the doc removed is the answer. Three kinds:

- ``function``: a function or method (and, in JS/TS, a ``const`` bound to an arrow function or function
  expression); its own doc comment is the one right above it.
- ``class``: a class, struct, enum, interface, trait or Go type, the whole of it, with the doc comments of its
  members removed as well (they would give the answer away).
- ``file``: the whole file when it opens with a file doc (Python module docstring, Go package comment, Rust ``//!``,
  a JSDoc ``@file``/``@fileoverview``/``@module`` block), with every doc comment removed.

Python is read with ``ast`` (docstrings); every other language with tree-sitter (tree-sitter-language-pack), where
a doc comment is the run of comments that ends on the line above the definition (decorators, attributes and
``export`` may stand between): ``/** ... */`` in JS/TS/Java/C/C++, ``///`` in Rust and C++, and any comment in Go
and C (their conventions use plain comments).

``first_sentence`` turns a doc into a query: markup removed (JSDoc/Javadoc tags, ``{@link X}``, HTML, Markdown,
reST roles), the first paragraph only, cut at the first sentence end, at least ``min_words`` words; ``query_of``
also drops a leading copy of the definition's name (Go's "NewProduction builds ..." becomes "Builds ...").
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

Node = Any  # tree_sitter.Node

LANGUAGES = ("python", "typescript", "javascript", "go", "rust", "java", "c", "cpp")
_GRAMMAR = {"typescript": "typescript", "tsx": "tsx"}

_FUNCTIONS = {
    "function_declaration", "generator_function_declaration", "method_definition", "function_item",
    "method_declaration", "constructor_declaration", "function_definition",
}  # fmt: skip
_CLASSES = {
    "class_declaration", "abstract_class_declaration", "interface_declaration", "enum_declaration",
    "record_declaration", "struct_item", "enum_item", "trait_item", "union_item", "class_specifier",
    "struct_specifier", "type_spec",
}  # fmt: skip
# nodes whose children are searched for more definitions (class bodies, impl blocks, namespaces, exports)
_DESCEND = {
    "program", "source_file", "translation_unit", "class_body", "declaration_list", "field_declaration_list",
    "interface_body", "enum_body", "export_statement", "impl_item", "trait_item", "namespace_definition",
    "class_specifier", "struct_specifier", "class_declaration", "abstract_class_declaration", "interface_declaration",
    "enum_declaration", "record_declaration", "mod_item", "internal_module", "statement_block", "module",
    "type_declaration", "linkage_specification", "template_declaration", "ambient_declaration", "class",
    "preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "enum_body_declarations",
}  # fmt: skip
# nodes that may stand between a doc comment and its definition
_BETWEEN = {"attribute_item", "decorator", "annotation", "marker_annotation"}

_TAG = re.compile(
    r"^\s*(@\w+|#{1,6}\s|```|:param|:type|:return|:rtype|:raises|:arg|:keyword|>>>|\.\.\s|<pre>|<h\d|Example:|"
    r"(Args|Arguments|Parameters|Returns?|Yields?|Raises|Examples?|Notes?|Attributes|See Also|Safety|Panics|Errors)"
    r"\s*:?\s*$|-{3,}|={3,})"
)
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_INLINE: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\{@\w+\s+([^}|]*?)(?:\|[^}]*)?\}"), r"\1"),  # {@link Foo} {@code x} -> Foo, x
    (re.compile(r":[\w:.+-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`"), r"\1"),  # :func:`foo` -> foo
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url) -> text
    (re.compile(r"\[`?([^\]`]+)`?\](?!\()"), r"\1"),  # rustdoc [`Foo`] -> Foo
    (re.compile(r"(?<!\w)<\w+[^>]*>|</\w+>"), ""),  # HTML tags (not generics: List<String>)
    (re.compile(r"&(lt|gt|amp|quot);"), lambda m: _ENTITIES[m.group(1)]),
    (re.compile(r"\*\*|__|`+"), ""),
]
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"])|(?<=[.!?])$")
_FILE_TAG = re.compile(r"@(file|fileoverview|module|overview|packageDocumentation)\b")


@dataclass
class Definition:
    language: str
    kind: str  # "function" | "class" | "file"
    symbol: str  # qualified name ("Class.method"; the path for a file)
    path: str
    start_line: int  # 1-based, inclusive
    end_line: int
    doc: str  # the doc comment's text, markers removed
    code: str  # the definition without its doc comment(s), dedented


def first_sentence(doc: str, min_words: int = 4) -> str | None:
    """The first sentence of a doc's first paragraph, markup removed; None when shorter than ``min_words``."""
    lines = []
    for line in doc.strip().splitlines():
        if not line.strip() or _TAG.match(line):
            break
        lines.append(line.strip())
    text = " ".join(lines)
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    text = re.sub(r"\s+", " ", text).strip()
    m = _SENT_END.search(text)
    if m:
        text = text[: m.start()].strip()
    return text if len(text.split()) >= min_words else None


def query_of(d: Definition, min_words: int = 4) -> str | None:
    """The query a definition's doc gives: its first sentence (``first_sentence``) without a leading copy of the
    definition's own name. Go's convention ("NewProduction builds a logger") and many Javadoc and C comments start
    with the name, which hands the answer to lexical matching; the query keeps what the doc says it does ("Builds a
    logger"). None when too short after that."""
    text = first_sentence(d.doc, 1)
    if text is None:
        return None
    name = re.split(r"\.|::|#", d.symbol)[-1] if d.kind != "file" else ""
    first, _, rest = text.partition(" ")
    if name and rest and first.rstrip("(),:") in (name, f"{name}()"):
        text = rest[0].upper() + rest[1:]
    return text if len(text.split()) >= min_words else None


def definitions(language: str, path: str, text: str, undocumented: bool = False) -> Iterator[Definition]:
    """Every documented definition of one file (``language`` one of ``LANGUAGES``; with ``undocumented`` the others
    too, with ``doc == ""``: a retrieval corpus holds every function); broken files give nothing."""
    defs = _python(path, text) if language == "python" else _tree_sitter(language, path, text)
    yield from (d for d in defs if undocumented or d.doc)


# --- Python (ast) ------------------------------------------------------------------------------------------------


def _python(path: str, text: str) -> Iterator[Definition]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return
    lines = text.splitlines()
    doc_lines = _docstring_lines(tree, lines)  # once per file: a definition drops those inside its lines
    mod_doc = ast.get_docstring(tree)
    if mod_doc:
        code = _drop_lines(lines, 1, len(lines), doc_lines)
        yield Definition("python", "file", path, path, 1, len(lines), mod_doc, code)
    for node, qualname in _py_defs(tree, ""):
        doc = ast.get_docstring(node) or ""
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        end = node.end_lineno or node.lineno
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        yield Definition("python", kind, qualname, path, start, end, doc, _drop_lines(lines, start, end, doc_lines))


def _py_defs(node: ast.AST, prefix: str) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, str]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield child, prefix + child.name
            yield from _py_defs(child, prefix + child.name + ".")


def _docstring_lines(node: ast.AST, lines: list[str]) -> set[int]:
    """Lines of every docstring in ``node``, except one that shares its line with code (``def f(): "doc"``)."""
    out: set[int] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            first = n.body[0] if n.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
                and not lines[first.lineno - 1][: first.col_offset].strip()
            ):
                out.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return out


def _drop_lines(lines: list[str], start: int, end: int, drop: set[int]) -> str:
    """Lines start..end (1-based) without those in ``drop``, dedented by the first line's indent."""
    body = [ln for i, ln in enumerate(lines[start - 1 : end], start) if i not in drop]
    first = lines[start - 1]
    indent = len(first) - len(first.lstrip())
    return "\n".join(ln[indent:] if ln[:indent].isspace() else ln for ln in body).strip("\n")


# --- tree-sitter languages ----------------------------------------------------------------------------------------


@cache
def _parser(language: str) -> Any:
    from tree_sitter_language_pack import get_parser

    return get_parser(_GRAMMAR.get(language, language))  # type: ignore[arg-type]


def _tree_sitter(language: str, path: str, text: str) -> Iterator[Definition]:
    grammar = "tsx" if path.endswith(".tsx") else language
    data = text.encode("utf-8", "surrogatepass")
    try:
        root = _parser(grammar).parse(data).root_node
    except (ValueError, RecursionError):
        return
    lines = text.splitlines()
    src = _Source(language, path, data, lines)
    file_doc = src.file_doc(root)
    if file_doc is not None:
        doc, doc_lines = file_doc
        drop = doc_lines | src.member_doc_lines(root)
        yield Definition(language, "file", path, path, 1, len(lines), doc, _drop_lines(lines, 1, len(lines), drop))
    try:
        yield from src.walk(root, "")
    except RecursionError:
        return  # nesting deeper than Python's stack: what was found so far stands


@dataclass
class _Source:
    language: str
    path: str
    data: bytes
    lines: list[str]

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def walk(self, parent: Node, prefix: str) -> Iterator[Definition]:
        children = parent.named_children
        for i, child in enumerate(children):
            node = _unwrap(child)
            kind = _kind(self.language, node)
            name = self.name(node) if kind else None
            qual = prefix + name if name else prefix
            if kind and name:
                doc = "\n".join(_comment_text(self.text(c)) for c in self.doc_before(children, i))
                first = i
                while first > 0 and children[first - 1].type in _BETWEEN:
                    first -= 1  # attributes and decorators belong to the definition
                start, end = children[first].start_point[0] + 1, _last_row(child) + 1
                drop = self.member_doc_lines(node) if kind == "class" else set()
                code = _drop_lines(self.lines, start, end, drop)
                yield Definition(self.language, kind, qual, self.path, start, end, doc, code)
            if node.type in _DESCEND or child.type in _DESCEND or kind == "class":
                body = node.child_by_field_name("body") or node
                owner = name if kind else (self.name(node) if node.type == "impl_item" else None)
                if node.type != "expression_statement":
                    yield from self.walk(body, prefix + owner + "." if owner else prefix)

    def name(self, node: Node) -> str | None:
        if node.type == "expression_statement":  # exports.f = ..., Foo.prototype.f = ... -> f, Foo.f
            assign = node.named_children[0]
            left = self.text(assign.child_by_field_name("left"))
            parts = [p for p in left.split(".") if p not in ("prototype", "exports", "module", "this")]
            fn_name = assign.child_by_field_name("right").child_by_field_name("name")
            if not parts and fn_name is not None:  # module.exports = function adjust(...) {...}
                parts = [self.text(fn_name)]
            return ".".join(parts) if parts and all(re.fullmatch(r"[\w$]+", p) for p in parts) else None
        if node.type in ("lexical_declaration", "variable_declaration"):
            decl = node.named_children[0]
            n = decl.child_by_field_name("name")
            return self.text(n) if n is not None else None
        if node.type == "impl_item":
            t = node.child_by_field_name("type")
            if t is not None and t.type == "generic_type":  # impl<T> Stack<T> -> Stack
                t = t.child_by_field_name("type")
            return self.text(t) if t is not None else None
        n = node.child_by_field_name("name")
        if n is None:
            d = node.child_by_field_name("declarator")
            while d is not None and d.child_by_field_name("declarator") is not None:
                d = d.child_by_field_name("declarator")
            n = d
        if n is None:
            return None
        name = self.text(n)
        if self.language == "go" and node.type == "method_declaration":
            recv = node.child_by_field_name("receiver")
            if recv is not None:
                m = re.search(r"\*?\s*(\w+)\s*(?:\[[^\]]*\])?\s*\)\s*$", self.text(recv))
                if m:
                    return f"{m.group(1)}.{name}"
        return name if re.fullmatch(r"[\w$~:<>=!+\-*/%&|^\[\]]+", name) else None

    def doc_before(self, siblings: list[Node], i: int) -> list[Node]:
        """The run of doc comments that ends right above ``siblings[i]`` (attributes may stand between)."""
        j, line = i - 1, siblings[i].start_point[0]
        while j >= 0 and siblings[j].type in _BETWEEN and siblings[j].end_point[0] >= line - 1:
            line = siblings[j].start_point[0]
            j -= 1
        run: list[Node] = []
        while j >= 0 and "comment" in siblings[j].type and siblings[j].end_point[0] >= line - 1:
            if (
                j > 0
                and _last_row(siblings[j - 1]) == siblings[j].start_point[0]
                and "comment" not in siblings[j - 1].type
            ):
                break  # a trailing comment of the previous statement
            run.insert(0, siblings[j])
            line = siblings[j].start_point[0]
            j -= 1
        if not run:
            return []
        if self.language in ("go", "c"):
            return run
        docs = [c for c in run if _is_doc(t := self.text(c)) and not _FILE_TAG.search(t)]
        return docs if docs and docs[-1] is run[-1] else []

    def member_doc_lines(self, node: Node) -> set[int]:
        """Lines of the doc comments inside ``node`` (of members, fields, nested definitions), whole lines only."""
        out: set[int] = set()
        stack = [node]
        while stack:
            n = stack.pop()
            kids = n.named_children
            for k, c in enumerate(kids):
                if "comment" in c.type and k + 1 < len(kids) and "comment" not in kids[k + 1].type:
                    run = self.doc_before(kids, k + 1)
                    for d in run:
                        if self.lines[d.start_point[0]][: d.start_point[1]].strip() == "":
                            out.update(range(d.start_point[0] + 1, _last_row(d) + 2))
                stack.append(c)
        return out

    def file_doc(self, root: Node) -> tuple[str, set[int]] | None:
        """The file's own doc and its lines: Go package comment, Rust ``//!``, a JSDoc ``@file`` block."""
        kids = root.named_children
        if not kids:
            return None
        if self.language == "rust":
            inner = [c for c in kids[:50] if "comment" in c.type and self.text(c).startswith(("//!", "/*!"))]
            if inner:
                return "\n".join(_comment_text(self.text(c)) for c in inner), _lines_of(inner)
            return None
        if self.language == "go":
            pkg = next((k for k, c in enumerate(kids) if c.type == "package_clause"), None)
            run = self.doc_before(kids, pkg) if pkg else []
            return ("\n".join(_comment_text(self.text(c)) for c in run), _lines_of(run)) if run else None
        for c in kids[:3]:
            if "comment" in c.type and _FILE_TAG.search(self.text(c)):
                body = _FILE_TAG.sub("", _comment_text(self.text(c)))
                return body, _lines_of([c])
        return None


def _unwrap(node: Node) -> Node:
    if node.type in ("export_statement", "template_declaration", "ambient_declaration"):
        for c in node.named_children:
            if c.type not in ("decorator", "comment", "template_parameter_list"):
                return _unwrap(c)
    if node.type == "type_declaration":  # go: `type X struct {...}` -> its (single) type_spec
        specs = [c for c in node.named_children if c.type == "type_spec"]
        if len(specs) == 1:
            return specs[0]
    return node


def _kind(language: str, node: Node) -> str | None:
    t = node.type
    if t in _FUNCTIONS:
        if t == "function_definition" and language not in ("c", "cpp"):
            return None
        return "function"
    first = node.named_children[0] if node.named_children else None
    if t in ("lexical_declaration", "variable_declaration") and first is not None and len(node.named_children) == 1:
        # const f = () => ...; var f = curry(function f(...) {...})
        return "function" if _is_function_value(first.child_by_field_name("value")) else None
    if t == "expression_statement" and first is not None and first.type == "assignment_expression":
        # exports.f = function (...) {...}; Foo.prototype.f = function (...) {...}
        return "function" if _is_function_value(first.child_by_field_name("right")) else None
    if t == "declaration" and language in ("c", "cpp"):  # a prototype (headers document these)
        d = node.child_by_field_name("declarator")
        while d is not None and d.type != "function_declarator":  # `char *f(...)`: pointer_declarator first
            d = d.child_by_field_name("declarator")
        return "function" if d is not None else None
    if t in _CLASSES:
        if t in ("struct_specifier", "class_specifier") and node.child_by_field_name("body") is None:
            return None
        return "class"
    return None


def _is_function_value(value: Node | None) -> bool:
    """A function, or a call that wraps one (``curry(function (a, b) {...})``, ``memo(() => ...)``)."""
    if value is None:
        return False
    if value.type in ("arrow_function", "function_expression", "function"):
        return True
    args = value.child_by_field_name("arguments") if value.type == "call_expression" else None
    return args is not None and any(_is_function_value(a) for a in args.named_children)


def _is_doc(comment: str) -> bool:
    return comment.startswith(("/**", "///", "//!", "/*!")) and not comment.startswith(("/***", "////"))


def _comment_text(comment: str) -> str:
    """A comment's text without its markers (``/** */``, leading ``*``, ``///``, ``//``)."""
    c = comment.strip()
    if c.startswith("/*"):
        c = re.sub(r"^/\*+!?", "", c)
        c = re.sub(r"\*+/$", "", c)
        lines = [re.sub(r"^\s*\*(?!/) ?", "", ln) for ln in c.splitlines()]
        return textwrap.dedent("\n".join(lines)).strip()
    lines = [re.sub(r"^\s*//[/!]? ?", "", ln) for ln in c.splitlines()]
    return "\n".join(lines).strip()


def _lines_of(nodes: list[Node]) -> set[int]:
    return {ln for c in nodes for ln in range(c.start_point[0] + 1, _last_row(c) + 2)}


def _last_row(node: Node) -> int:
    """The 0-based row of a node's last character (Rust line comments end at column 0 of the next row)."""
    end_row, end_col = node.end_point
    return end_row - 1 if end_col == 0 and end_row > node.start_point[0] else end_row
