"""What tree-sitter nodes mean to the chunker: which statements are definitions (and of what kind), their names,
bodies and members, across every parsed language. Plain functions over nodes, none of them recursive.

The tables map grammar node types to chunk kinds: ``FUNCTIONS`` (a chunk each), ``CONTAINERS`` (a summary chunk plus
one per member), ``LEAVES`` (type-like definitions kept whole), ``WRAPPERS`` (decorators, ``export``, templates:
looked through). ``definition`` is the one entry point the chunker asks "is this node a definition?"; the naming
rules live in ``node_name``, ``declared_name`` (what a plain statement declares: a block's name) and
``assigned_definition`` (JavaScript ``exports.f = function``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

Node = Any  # tree_sitter.Node


class Source(Protocol):
    """The file a node belongs to, as the naming rules need it."""

    language: str

    def text(self, start: int, end: int) -> str: ...


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
BODYLESS_OK = {"method", "singleton_method", "macro_definition"}

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
    "delegate_declaration": "delegate",  # csharp
}
WRAPPERS = {"decorated_definition", "export_statement", "template_declaration", "ambient_declaration"}
FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function", "class"}
BODY_TYPES = {
    "block", "class_body", "function_body", "body_statement", "declaration_list", "field_declaration_list",
    "template_body", "statement_block", "compound_statement", "protocol_body", "interface_body", "enum_body",
    "enum_class_body", "enum_variant_list", "enumerator_list", "object_type",
}  # fmt: skip
NAME_TYPES = {
    "identifier", "type_identifier", "simple_identifier", "constant", "name", "word", "property_identifier",
    "field_identifier", "namespace_identifier", "qualified_identifier", "scoped_identifier", "user_type",
    "destructor_name", "operator_name", "scoped_type_identifier",
}  # fmt: skip
TRANSPARENT = {
    "ERROR", "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef",
    "linkage_specification", "enum_body_declarations",
}  # fmt: skip
ATTACHED = {"decorator", "attribute_item", "annotation", "marker_annotation", "attribute_list", "attribute"}
SCOPES = {"namespace", "module"}  # functions directly inside these stay "function"
VALUE_WRAPPERS = {"parenthesized_expression", "as_expression", "satisfies_expression", "non_null_expression"}
SIGNATURES = {"function_signature", "method_signature", "abstract_method_signature"}  # typescript overloads
DECLARATIONS = {
    "lexical_declaration", "variable_declaration", "declaration", "preproc_def", "preproc_function_def",
    "function_signature", "type_definition", "const_declaration", "var_declaration", "const_item", "static_item",
    "let_declaration", "property_declaration", "val_definition", "var_definition", "variable_assignment",
    "field_declaration", "global_statement", "namespace_use_declaration",
}  # fmt: skip
DECLARATORS = {"variable_declarator", "var_spec", "const_spec", "init_declarator"}
ASSIGNMENTS = {"assignment", "assignment_expression"}
JS = {"javascript", "typescript", "tsx"}
C_WRAPPER_NAME = re.compile(r"__[A-Z][A-Z0-9_]*")  # __NTH, __REDIRECT: a macro, never a function's name
SHORT = 40  # characters of a block's first line kept as its name
WORD = re.compile(rb"\w")
DIRECTIVES = {"preproc_def", "preproc_function_def", "preproc_include", "preproc_call"}
CONDITIONAL = re.compile(rb"[ \t]*#[ \t]*(?:if|ifdef|ifndef|elif|else|endif)\b")


@dataclass(frozen=True)
class Definition:
    node: Node  # the definition proper (inside any wrapper)
    symbol: str | None
    kind: str
    container: bool
    parent: str | None = None  # javascript `Foo.prototype.bar = function` -> Foo


def flatten(nodes: Iterable[Node]) -> list[Node]:
    """Children with error-recovery and preprocessor wrappers opened up, in source order, without recursion."""
    out: list[Node] = []
    stack = [iter(nodes)]
    while stack:
        for node in stack[-1]:
            if node.type in TRANSPARENT or (
                node.type == "declaration_list" and node.parent is not None and node.parent.type in TRANSPARENT
            ):
                stack.append(iter(node.children))
                break
            out.append(node)
        else:
            stack.pop()
    return out


def error_lines(root: Node, most: int) -> list[int]:
    """1-based lines of ERROR and MISSING nodes, in order, following only subtrees that hold an error."""
    lines: list[int] = []
    stack = [root]
    while stack and len(lines) <= most:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line = node.start_point[0] + 1
            if not lines or lines[-1] != line:
                lines.append(line)
            if node.type == "ERROR" and not any(c.has_error for c in node.children):
                continue
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return sorted(set(lines))


def body_of(node: Node) -> Node | None:
    if node.type == "object":  # a javascript object literal of methods (``object_of_methods``) is its own body
        return node
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    for child in reversed(node.named_children):
        if child.type in BODY_TYPES:
            return child
    return None


def body_start(body: Node) -> int:
    """Where a definition's signature ends: the first item inside its body (the body's end when it is empty)."""
    named = body.named_children
    return int(named[0].start_byte if named else body.end_byte)


def items_of(node: Node) -> list[Node]:
    """The pieces a too-large node splits into: its body's items, else its own named children."""
    body = body_of(node)
    if body is not None and body.named_child_count:
        return flatten(body.named_children)
    return list(node.named_children)


def unwrap(node: Node) -> Node | None:
    for field in ("definition", "declaration"):
        inner = node.child_by_field_name(field)
        if inner is not None:
            return inner
    named = node.named_children
    return named[-1] if named else None


def main_node(nodes: list[Node], d: Definition) -> Node:
    """The node of a group that holds its definition (with its wrapper: decorators, export, template), not the
    comments, overloads or merged one-line blocks around it."""
    for node in reversed(nodes):
        if node.start_byte <= d.node.start_byte and node.end_byte >= d.node.end_byte:
            return node
    return d.node


def is_overload(node: Node, d: Definition, ck: Source) -> bool:
    """A TypeScript overload signature of ``d`` (``export function f(a: string): string;`` before ``f``'s body)."""
    if not node.is_named or d.symbol is None:
        return False
    while node is not None and node.type in WRAPPERS:
        node = unwrap(node)
    return node is not None and node.type in SIGNATURES and node_name(node, ck) == d.symbol


def declared_name(node: Node, ck: Source) -> str | None:
    """The name a plain statement declares (``const x = 1``, ``x = 1``, ``int x;``, ``#define X``), or None."""
    while node.type in WRAPPERS or (node.type == "expression_statement" and node.named_child_count):
        inner = unwrap(node) if node.type in WRAPPERS else node.named_children[0]
        if inner is None:
            return None
        node = inner
    if node.type in ASSIGNMENTS:
        left = node.child_by_field_name("left")
        ok = left is not None and left.type in (*NAME_TYPES, "member_expression", "attribute")
        return node_text(left, ck) if ok else None
    if node.type not in DECLARATIONS or include_guard(node, ck):
        return None
    declarator = next((c for c in node.named_children if c.type in DECLARATORS), node)
    name = node_name(declarator, ck)
    return None if name is None or (ck.language in ("c", "cpp") and C_WRAPPER_NAME.fullmatch(name)) else name


def include_guard(node: Node, ck: Source) -> bool:
    """``#define X`` right inside ``#ifndef X``."""
    parent = node.parent
    if node.type != "preproc_def" or parent is None or parent.type != "preproc_ifdef":
        return False
    guard, name = parent.child_by_field_name("name"), node.child_by_field_name("name")
    return guard is not None and name is not None and node_text(guard, ck) == node_text(name, ck)


def short_form(line: str) -> str | None:
    """A line of code as a name: whitespace collapsed, a trailing ``{`` or ``;`` dropped, at most ``SHORT``
    characters."""
    text = " ".join(line.split()).removesuffix("{").removesuffix(";").rstrip()
    if len(text) > SHORT:
        text = text[: SHORT - 4].rstrip() + " ..."
    return text or None


def attachable(node: Node) -> bool:
    return "comment" in node.type or node.type in ATTACHED


def qualify(parent: str | None, symbol: str | None) -> str | None:
    if symbol is None:
        return parent
    return f"{parent}.{symbol}" if parent else symbol


def node_text(node: Node, ck: Source) -> str:
    text = " ".join(ck.text(node.start_byte, node.end_byte).split())
    return text if len(text) <= 120 else text[:117] + "..."


def node_name(node: Node, ck: Source) -> str | None:
    name = node.child_by_field_name("name")
    if name is not None:
        return node_text(name, ck)
    if node.type == "companion_object":
        named = [c for c in node.named_children if c.type == "type_identifier"]
        return node_text(named[0], ck) if named else "Companion"
    if node.type == "impl_item":
        ty = node.child_by_field_name("type")
        return node_text(ty, ck) if ty is not None else None
    declarator = node.child_by_field_name("declarator")
    for _ in range(16):  # c/cpp: int *(*f)(void) -> follow declarators to the identifier
        if declarator is None:
            break
        if declarator.type in NAME_TYPES:
            return node_text(declarator, ck)
        nxt = declarator.child_by_field_name("declarator")
        if nxt is None:
            nxt = next((c for c in declarator.named_children if c.type in NAME_TYPES or "declarator" in c.type), None)
        declarator = nxt
    for child in node.named_children:
        if child.type in ("type_spec", "type_alias"):
            return node_name(child, ck)
        if child.type in NAME_TYPES:
            return node_text(child, ck)
    return None


def definition(node: Node, ck: Source) -> Definition | None:
    """The definition a statement-level node introduces, or None for a plain statement."""
    default = False  # `export default` of an anonymous function or class: named "default"
    for _ in range(4):  # unwrap decorators / export / template / declare / TS namespaces
        if node.type in WRAPPERS:
            default = default or (node.type == "export_statement" and any(c.type == "default" for c in node.children))
            inner = unwrap(node)
            if inner is None:
                return None
            node = inner
        elif node.type == "expression_statement" and node.named_child_count == 1:
            inner = node.named_children[0]
            if inner.type == "assignment_expression" and ck.language in JS:
                return assigned_definition(inner, ck)
            if inner.type not in ("internal_module", "module"):
                return None
            node = inner
        else:
            break
    t = node.type
    if t == "pair" and ck.language in JS:  # `name: function () {...}` in an object of methods
        value = function_value(node.child_by_field_name("value"))
        key = node.child_by_field_name("key")
        if value is None or key is None:
            return None
        kind = "class" if value.type == "class" else "function"
        return Definition(value, node_text(key, ck).strip("'\"`"), kind, False)
    if t in _FUNCTIONS:
        if body_of(node) is None and t not in BODYLESS_OK:
            return None
        name = node_name(node, ck)
        if ck.language in ("c", "cpp") and name is not None and C_WRAPPER_NAME.fullmatch(name):
            name = None
        return Definition(node, name, _FUNCTIONS[t], False)
    if t in _CONTAINERS:
        if t == "module" and ck.language not in ("ruby", "typescript", "tsx"):
            return None
        kind = _CONTAINERS[t]
        if t == "class_declaration":
            kind = keyword_kind(node) or kind
        body = body_of(node)
        return Definition(node, node_name(node, ck), kind, body is not None and body.named_child_count > 0)
    if t in _LEAVES:
        return leaf_definition(node, ck)
    if t in ("lexical_declaration", "variable_declaration"):
        declarators = [c for c in node.named_children if c.type == "variable_declarator"]
        if len(declarators) == 1:
            raw = declarators[0].child_by_field_name("value")
            value = function_value(raw)
            if value is not None:
                kind = "class" if value.type == "class" else "function"
                return Definition(value, node_name(declarators[0], ck), kind, False)
            methods = object_of_methods(raw, ck)
            if methods is not None:
                return Definition(methods, node_name(declarators[0], ck), "object", True)
    if default and t in FUNCTION_VALUES:
        return Definition(node, node_name(node, ck) or "default", "class" if t == "class" else "function", False)
    return None


def leaf_definition(node: Node, ck: Source) -> Definition | None:
    """A type-like definition kept whole (struct, enum, type alias, typedef with a body), or None."""
    t = node.type
    kind = _LEAVES[t]
    if t == "type_declaration":
        spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
        ty = spec.child_by_field_name("type") if spec is not None else None
        if ty is not None and ty.type in ("struct_type", "interface_type"):
            kind = ty.type.removesuffix("_type")
    elif t in ("enum_specifier", "type_definition") and body_of(node) is None:
        inner = node.child_by_field_name("type")
        if t == "enum_specifier" or inner is None or body_of(inner) is None:
            return None
    name = node_name(node, ck)
    body = body_of(node) if name is None and t == "enum_specifier" else None
    if body is not None and body.named_child_count:  # `enum { RED, GREEN };`: named by its first enumerator
        name = node_name(body.named_children[0], ck)
    return Definition(node, name, kind, False)


def function_value(value: Node | None) -> Node | None:
    """The function or class a variable is bound to: the value itself, inside parentheses or a type assertion
    (``(async () => x) as F``), or the function passed to a call (``memo(() => ...)``); None for other values."""
    for _ in range(4):
        if value is None or value.type in FUNCTION_VALUES:
            return value
        if value.type in VALUE_WRAPPERS and value.named_child_count:
            value = value.named_children[0]
        elif value.type == "call_expression":
            args = value.child_by_field_name("arguments")
            found = args.named_children if args is not None else []
            value = next((a for a in found if a.type in FUNCTION_VALUES), None)
        else:
            return None
    return None


def assigned_definition(expr: Node, ck: Source) -> Definition | None:
    """JavaScript ``module.exports.x = function``, ``exports.x = ...``, ``Foo.prototype.bar = function``: a
    function or class named after the assigned property (a prototype's: a method of Foo)."""
    right = expr.child_by_field_name("right")
    value = function_value(right)
    methods = object_of_methods(right, ck) if value is None else None
    left = expr.child_by_field_name("left")
    if (value is None and methods is None) or left is None or left.type not in ("member_expression", "identifier"):
        return None
    parts = ck.text(left.start_byte, left.end_byte).replace(" ", "").split(".")
    if not all(re.fullmatch(r"[\w$]+", part) for part in parts):
        return None
    if parts[:2] == ["module", "exports"] or parts[:1] in (["exports"], ["this"]):
        parts = parts[2:] if parts[0] == "module" else parts[1:]
    if methods is not None:  # `module.exports = { get() {...}, ... }`, `Foo.prototype = { ... }`
        parts = [p for p in parts if p != "prototype"]
        return Definition(methods, parts[-1] if parts else "exports", "object", True, ".".join(parts[:-1]) or None)
    assert value is not None
    kind = "class" if value.type == "class" else "function"
    if "prototype" in parts:
        kind = "method" if kind == "function" else kind
        parts = [p for p in parts if p != "prototype"]
    own = value.child_by_field_name("name")
    symbol = parts[-1] if parts else (node_text(own, ck) if own is not None else "exports")
    return Definition(value, symbol, kind, False, ".".join(parts[:-1]) or None)


def object_of_methods(value: Node | None, ck: Source) -> Node | None:
    """A javascript object literal that holds at least one method (``{ get() {...} }``, ``{ run: function () {} }``),
    chunked as a container of them, or None."""
    if value is None or value.type != "object" or ck.language not in JS:
        return None
    for member in value.named_children:
        if member.type == "method_definition":
            return value
        if member.type == "pair" and function_value(member.child_by_field_name("value")) is not None:
            return value
    return None


def keyword_kind(node: Node) -> str | None:
    """swift/kotlin spell struct, enum, extension, interface... as class_declaration with a keyword child."""
    for child in node.children:
        if child.is_named and child.type not in ("modifiers",):
            break
        if child.type in ("struct", "enum", "extension", "actor", "interface", "protocol"):
            return str(child.type)
    return None


def go_receiver(node: Node, ck: Source) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    text = node_text(receiver, ck).strip("()").split()
    if not text:
        return None
    return text[-1].lstrip("*").split("[")[0] or None
