"""C/C++ macros that tree-sitter cannot parse, blanked out of the copy it parses (never out of the chunk texts).

tree-sitter parses C without running the preprocessor, so the macros of system headers throw it off:
``__BEGIN_DECLS`` alone on a line makes the rest of the file one broken function definition, ``__THROW`` after a
prototype is an error, and in ``__NTH (foo (int c)) { ... }`` the function's name looks like ``__NTH``.
``mask_macros`` replaces such macros with spaces of the same length, so every byte offset (and line) of the masked
copy is that of the file: the chunker parses the copy and cuts, names and shows the file's own bytes.

What is masked (a macro is an identifier starting with ``__``, or upper case with an underscore: ``G_BEGIN_DECLS``):

- a macro alone on a line (``__BEGIN_DECLS``, ``__END_DECLS``);
- a lower-case ``__`` macro that starts a line before a type or storage keyword (``__extern_inline int``);
- macros, with their parenthesised arguments, after a declarator's ``)`` and before ``;``, ``{`` or ``,``
  (``__THROW``, ``__wur``, ``__nonnull ((1))``, ``G_GNUC_CONST``);
- a name wrapper ``__NTH (foo (int c))`` -> ``foo (int c)``, and ``__REDIRECT (foo, (int c), foo64)`` ->
  ``foo (int c)`` (only macros of the form ``__UPPER``).
"""

from __future__ import annotations

import re

_MACRO = rb"\b(?:__[A-Za-z]\w*|[A-Z][A-Z0-9]*_[A-Z0-9_]+)\b"
_ARGS = rb"\((?:[^();{}]|\((?:[^();{}]|\([^();{}]*\))*\))*\)"  # a parenthesised group, nested up to three deep
_ALONE = re.compile(rb"^[ \t]*(" + _MACRO + rb")[ \t]*$", re.M)
_TYPES = rb"static|extern|inline|const|volatile|unsigned|signed|int|char|void|long|short|float|double|struct|union|enum"
_LEADING = re.compile(rb"^[ \t]*(__[a-z]\w*)[ \t]+(?=(?:" + _TYPES + rb")\b)", re.M)
_TRAILING = re.compile(rb"\)((?:\s*" + _MACRO + rb"(?:\s*" + _ARGS + rb")?)+)(?=\s*[;{,])")
_WRAPPER = re.compile(rb"\b__[A-Z][A-Z0-9_]*\s*\(\s*[A-Za-z_]\w*\s*([(,])")


def mask_macros(data: bytes) -> bytes:
    """``data`` with the macros above replaced by spaces (newlines kept); same length, same line breaks."""
    out = bytearray(data)
    for pattern in (_ALONE, _LEADING):
        for m in pattern.finditer(data):
            _blank(out, m.start(1), m.end(1))
    for m in _TRAILING.finditer(data):
        _blank(out, m.start(1), m.end(1))
    for m in _WRAPPER.finditer(data):
        _unwrap(data, out, m)
    return bytes(out)


def _blank(out: bytearray, start: int, end: int) -> None:
    for i in range(start, end):
        if out[i] not in b"\r\n":
            out[i] = 0x20


def _unwrap(data: bytes, out: bytearray, m: re.Match[bytes]) -> None:
    """``M (name (args))`` -> ``name (args)``; ``M (name, (args), alias)`` -> ``name (args)``."""
    open_paren = data.index(b"(", m.start())
    close = _matching(data, open_paren)
    if close is None:
        return
    if m.group(1) == b"(":
        _blank(out, m.start(), open_paren + 1)
        _blank(out, close, close + 1)
        return
    args = data.find(b"(", m.end(1))
    args_close = _matching(data, args) if args != -1 and not data[m.end(1) : args].strip() else None
    if args_close is None or args_close > close:
        return
    _blank(out, m.start(), open_paren + 1)
    _blank(out, m.start(1), m.end(1))  # the comma after the name
    _blank(out, args_close + 1, close + 1)


def _matching(data: bytes, open_paren: int, limit: int = 4096) -> int | None:
    """The offset of the ``)`` that closes the ``(`` at ``open_paren``, looking at most ``limit`` bytes ahead."""
    depth = 0
    for i in range(open_paren, min(len(data), open_paren + limit)):
        c = data[i]
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i
    return None
