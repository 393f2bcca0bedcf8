"""encoder.training.extract: a source per language through `check`, definitions' code, first_sentence, bad input."""

from __future__ import annotations

import pytest

from encoder.training.extract import LANGUAGES, Definition, definitions, first_sentence, query_of

EXT = {"python": "py", "typescript": "ts", "javascript": "js", "go": "go", "rust": "rs", "java": "java", "c": "h"}


def run(language: str, source: str, **kw) -> list[Definition]:
    path = f"src/x.{EXT.get(language, language)}"
    out = list(definitions(language, path, source, **kw))
    lines = source.splitlines()
    for d in out:
        assert (d.language, d.path) == (language, path)
        assert 1 <= d.start_line <= d.end_line <= len(lines)
        if d.kind == "file":
            assert (d.symbol, d.start_line, d.end_line) == (path, 1, len(lines))
        else:  # the span opens on the definition (or its decorator), and so does its code
            assert d.code and lines[d.start_line - 1].strip().startswith(d.code.splitlines()[0].strip())
    return out


def check(language: str, source: str, expected: list[tuple[str, str, int, int, str | None]], **kw) -> list[Definition]:
    got = run(language, source, **kw)
    assert [(d.kind, d.symbol, d.start_line, d.end_line, first_sentence(d.doc, 1)) for d in got] == expected
    return got


# name -> (source, expected (kind, symbol, start_line, end_line, first sentence)); the language is the name up to "-"
# fmt: off
CASES = {
    "typescript": ("""\
/**
 * @fileoverview Helpers for the parser.
 */
import x from "y";
/** Adds two numbers. */
function add(a: number, b: number) {
  return a + b;
}
/** Multiplies two values. */
export function mul(a: number, b: number) { return a * b; }
/** Doubles a number. */
export const double = (n: number) => n * 2;
// Plain comment, no doc in TypeScript.
function plain() {}
/** A counter of ticks. */
export class Counter {
  /** Advances the counter. */
  @log
  tick(): void {
    // keep me
    this.n++;
  }
}
let z = 1; /** Trailing comment of the statement. */
function trailing() {}
""", [
        ("file", "src/x.ts", 1, 25, "Helpers for the parser."),
        ("function", "add", 6, 8, "Adds two numbers."),
        ("function", "mul", 10, 10, "Multiplies two values."),
        ("function", "double", 12, 12, "Doubles a number."),
        ("class", "Counter", 16, 23, "A counter of ticks."),
        ("function", "Counter.tick", 18, 22, "Advances the counter."),
    ]),
    # a file doc is no part of the doc of the definition right below it
    "typescript-filedoc-adjacent": ("/** @fileoverview Helpers for things. */\n/** Adds two numbers. */\nexport function add() {}\n", [("file", "src/x.ts", 1, 3, "Helpers for things."), ("function", "add", 3, 3, "Adds two numbers.")]),  # noqa: E501
    "typescript-module-only": ("/** @module helpers */\nexport function f() {}\n", [("file", "src/x.ts", 1, 2, "helpers")]),  # noqa: E501
    "javascript": ("""\
/** Yields the numbers upward. */
function* gen() {
  yield 1;
}
/** Adds one to the value. */
const inc = function (a) { return a + 1; };
// not a doc
function plain() {}
/** A queue of jobs. */
class Queue {
  /** Pushes a job. */
  push(job) {}
}
""", [
        ("function", "gen", 2, 4, "Yields the numbers upward."),
        ("function", "inc", 6, 6, "Adds one to the value."),
        ("class", "Queue", 10, 13, "A queue of jobs."),
        ("function", "Queue.push", 12, 12, "Pushes a job."),
    ]),
    "go": ("""\
// Package util provides small helpers.
package util

// Add returns the sum of two ints.
func Add(a, b int) int { return a + b }
// Inc increments the counter.
func (c *Counter) Inc() {
\tc.n++ // bump
}
// Counter counts the things seen.
type Counter struct {
\t// n is the count.
\tn int
}
// Detached comment, a blank line below.

func Lonely() {}
// Push adds an item on top.
func (s *Stack[T]) Push(t T) {}
""", [
        ("file", "src/x.go", 1, 19, "Package util provides small helpers."),
        ("function", "Add", 5, 5, "Add returns the sum of two ints."),
        ("function", "Counter.Inc", 7, 9, "Inc increments the counter."),
        ("class", "Counter", 11, 14, "Counter counts the things seen."),
        ("function", "Stack.Push", 19, 19, "Push adds an item on top."),
    ]),
    "rust": ("""\
//! Utilities for points.
use std::fmt;
/// Adds two numbers.
fn add(a: i32, b: i32) -> i32 { a + b }
/// A point in the plane.
#[derive(Debug, Clone)]
struct Point {
    /// The x coordinate.
    x: i32,
}
impl Point {
    /// Creates a point at the origin.
    fn new() -> Self {
        // origin
        Point { x: 0 }
    }
}
""", [
        ("file", "src/x.rs", 1, 17, "Utilities for points."),
        ("function", "add", 4, 4, "Adds two numbers."),
        ("class", "Point", 6, 10, "A point in the plane."),
        ("function", "Point.new", 13, 16, "Creates a point at the origin."),
    ]),
    "rust-generic-impl": ("/// A generic stack.\nstruct Stack<T> { v: Vec<T> }\nimpl<T> Stack<T> {\n    /// Pushes an item.\n    fn push(&mut self, t: T) {}\n}\n", [("class", "Stack", 2, 2, "A generic stack."), ("function", "Stack.push", 5, 5, "Pushes an item.")]),  # noqa: E501
    "java": ("""\
/** A greeter of people. */
public class Greeter {
    /** Creates a greeter. */
    public Greeter() {}
    /** Returns the greeting. */
    @Override
    public String toString() {
        return "hi";
    }
}
""", [
        ("class", "Greeter", 2, 10, "A greeter of people."),
        ("function", "Greeter.Greeter", 4, 4, "Creates a greeter."),
        ("function", "Greeter.toString", 6, 9, "Returns the greeting."),
    ]),
    "java-enum": ('/** Colors of the rainbow. */\nenum Color {\n    RED;\n    /** Returns the hex code. */\n    String hex() { return ""; }\n}\n', [("class", "Color", 2, 6, "Colors of the rainbow."), ("function", "Color.hex", 5, 5, "Returns the hex code.")]),  # noqa: E501
    "c": ("""\
/* Opens the device for reading. */
int open_dev(const char *name);
/* A buffer of bytes. */
struct buf {
    int len; /* bytes used */
};
/* Forward declaration, no body. */
struct fwd;
int x; /* trailing note */
int close_dev(int fd);
""", [("function", "open_dev", 2, 2, "Opens the device for reading."), ("class", "buf", 4, 6, "A buffer of bytes.")]),
    "c-include-guard": ("#ifndef X_H\n#define X_H\n\n/* Opens the device. */\nint open_dev(const char *name);\n\n#endif\n", [("function", "open_dev", 5, 5, "Opens the device.")]),  # noqa: E501
    "c-include-above": ("#include <stdio.h>\n/* Opens the device. */\nint open_dev(const char *name);\n", [("function", "open_dev", 3, 3, "Opens the device.")]),  # noqa: E501
    "c-pointer-prototype": ("/* Duplicates a string. */\nchar *dup(const char *s);\n", [("function", "dup", 2, 2, "Duplicates a string.")]),  # noqa: E501
    "cpp": ("""\
// plain comment, no doc in C++
int f() { return 1; }
/// Computes the area of a circle.
double area(double r) { return r * r; }
/// A shape with sides.
class Shape {
  public:
    /// Number of sides.
    int sides() { return 3; }
};
""", [
        ("function", "area", 4, 4, "Computes the area of a circle."),
        ("class", "Shape", 6, 10, "A shape with sides."),
        ("function", "Shape.sides", 9, 9, "Number of sides."),
    ]),
    "python": ('''\
"""Helpers for the module."""
import os
def outer():
    """Runs the outer step."""
    def inner():
        """Runs the inner step."""
        return 1  # one
    return inner
@dec
class K:
    """Holds values."""

    def m(self):
        """Does nothing."""
        pass
''', [
        ("file", "src/x.py", 1, 15, "Helpers for the module."),
        ("function", "outer", 3, 8, "Runs the outer step."),
        ("function", "outer.inner", 5, 7, "Runs the inner step."),
        ("class", "K", 9, 15, "Holds values."),
        ("function", "K.m", 13, 15, "Does nothing."),
    ]),
    "python-one-liner": ('def f(): "Returns one."\n', [("function", "f", 1, 1, "Returns one.")]),
}
# fmt: on


def case(name: str) -> tuple[str, str]:
    return name.split("-")[0], CASES[name][0]


@pytest.mark.parametrize("name", CASES)
def test_definitions(name):
    check(*case(name), CASES[name][1])


# the exact code: doc comments gone (members' too, in a class), attributes, decorators, annotations and ordinary
# comments kept, methods dedented
# fmt: off
CODE = [
    ("typescript", "add", "function add(a: number, b: number) {\n  return a + b;\n}"),
    ("typescript", "double", "export const double = (n: number) => n * 2;"),
    ("typescript", "Counter", "export class Counter {\n  @log\n  tick(): void {\n    // keep me\n    this.n++;\n  }\n}"),  # noqa: E501
    ("typescript", "Counter.tick", "@log\ntick(): void {\n  // keep me\n  this.n++;\n}"),
    ("javascript", "gen", "function* gen() {\n  yield 1;\n}"),
    ("go", "Counter.Inc", "func (c *Counter) Inc() {\n\tc.n++ // bump\n}"),
    ("go", "Counter", "type Counter struct {\n\tn int\n}"),
    ("rust", "Point", "#[derive(Debug, Clone)]\nstruct Point {\n    x: i32,\n}"),
    ("rust", "Point.new", "fn new() -> Self {\n    // origin\n    Point { x: 0 }\n}"),
    ("java", "Greeter", 'public class Greeter {\n    public Greeter() {}\n    @Override\n    public String toString() {\n        return "hi";\n    }\n}'),  # noqa: E501
    ("java", "Greeter.toString", '@Override\npublic String toString() {\n    return "hi";\n}'),
    ("c", "buf", "struct buf {\n    int len; /* bytes used */\n};"),
    ("cpp", "Shape", "class Shape {\n  public:\n    int sides() { return 3; }\n};"),
    ("python", "K", "@dec\nclass K:\n\n    def m(self):\n        pass"),
    ("python", "outer.inner", "def inner():\n    return 1  # one"),
]
# fmt: on


@pytest.mark.parametrize(("name", "symbol", "code"), CODE)
def test_code(name, symbol, code):
    assert {d.symbol: d.code for d in run(*case(name))}[symbol] == code


@pytest.mark.parametrize(
    ("name", "kept", "dropped"),
    [
        ("typescript", ["import x", "// Plain", "let z = 1; /** Trailing"], ["@fileoverview", "Adds two", "Advances"]),
        ("go", ["package util", "// Detached comment"], ["// Package util", "// Add returns", "// n is the count"]),
        ("rust", ["use std::fmt;", "#[derive", "// origin"], ["//!", "/// "]),
        ("python", ["import os", "# one", "@dec"], ['"""']),
    ],
)
def test_file_code(name, kept, dropped):
    (file,) = [d for d in run(*case(name)) if d.kind == "file"]
    assert all(k in file.code for k in kept) and not any(d in file.code for d in dropped)


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        ("python", "def f(): pass\nclass K:\n    def m(self): pass\n", [("f", 1, 1), ("K", 2, 3), ("K.m", 3, 3)]),
        ("go", "package p\n\nfunc F() {}\n\n// G does it.\nfunc G() {}\n", [("F", 3, 3), ("G", 6, 6)]),
        ("typescript", "function f() {}\nclass A { m() {} }\n", [("f", 1, 1), ("A", 2, 2), ("A.m", 2, 2)]),
        ("rust", "struct S;\nimpl S { fn m(&self) {} }\n", [("S", 1, 1), ("S.m", 2, 2)]),
    ],
)
def test_undocumented(language, source, expected):
    every = run(language, source, undocumented=True)
    assert [(d.symbol, d.start_line, d.end_line) for d in every] == expected
    documented = run(language, source)
    assert [d for d in every if d.doc] == documented
    assert all(d.doc == "" for d in every if d not in documented)


@pytest.mark.parametrize(
    ("doc", "min_words", "expected"),
    [
        ("Returns the {@link Foo} for a bar.", 4, "Returns the Foo for a bar."),
        ("Sets {@code x} to zero now.", 4, "Sets x to zero now."),
        ("Returns a {@code List<String>} of names.", 4, "Returns a List<String> of names."),
        ("<p>Returns the <b>value</b> here.</p>", 4, "Returns the value here."),
        ("Checks that x &lt; y holds.", 4, "Checks that x < y holds."),
        ("Returns the [`Foo`] for a bar.", 4, "Returns the Foo for a bar."),
        ("See [the docs](https://x.io/a) for more.", 4, "See the docs for more."),
        ("Calls :func:`os.path.join` on each part.", 4, "Calls os.path.join on each part."),
        ("Parses the input text\n@param s the text", 4, "Parses the input text"),
        ("Parses the input text\n# Examples\nparse(x)", 4, "Parses the input text"),
        ("Parses the input text\n\nSecond paragraph here.", 4, "Parses the input text"),
        ("Parses the input text\nArgs:\n    s: the text", 4, "Parses the input text"),
        ("Parses the input text. Then more words here.", 4, "Parses the input text."),
        ("Continues over\nthe next line too.", 4, "Continues over the next line too."),
        ("Uses e.g. a cache to go fast.", 4, "Uses e.g. a cache to go fast."),
        ("Too short.", 4, None),
        ("Too short.", 2, "Too short."),
        ("@param x the value", 1, None),
        ("", 1, None),
    ],
)
def test_first_sentence(doc, min_words, expected):
    assert first_sentence(doc, min_words) == expected


@pytest.mark.parametrize(
    ("language", "kind", "symbol", "doc", "expected"),
    [
        (
            "go",
            "function",
            "NewProduction",
            "NewProduction builds a sensible production Logger.",
            "Builds a sensible production Logger.",
        ),
        (
            "go",
            "function",
            "Logger.Sugar",
            "Sugar wraps the Logger to provide a sugared API.",
            "Wraps the Logger to provide a sugared API.",
        ),
        (
            "java",
            "function",
            "Gson.toJson",
            "toJson() serializes the object into its JSON form.",
            "Serializes the object into its JSON form.",
        ),
        (
            "cpp",
            "function",
            "fmt::format",
            "format: formats the arguments into a string now.",
            "Formats the arguments into a string now.",
        ),
        (
            "go",
            "function",
            "Parse",
            "Parses the input text into tokens.",
            "Parses the input text into tokens.",
        ),  # no name
        ("go", "function", "Reset", "Reset clears it all.", None),  # too short without the name
        (
            "python",
            "file",
            "pkg/config.py",
            "config loads the settings file here.",
            "config loads the settings file here.",
        ),
    ],
)
def test_query_of_drops_a_leading_copy_of_the_name(language, kind, symbol, doc, expected):
    d = Definition(language, kind, symbol, "x", 1, 2, doc, "code")
    assert query_of(d, 4) == expected


BROKEN = {
    "syntax": "/** Broken doc here now. */\nfunction ( { class [ fn }}} )\ndef f(:\n  '''x",
    "empty": "",
    "garbage": "\x00\xff\ufffd\x89PNG\r\n\x1a\n" + "".join(chr(i) for i in range(1, 400)) + "\udcff",
    "braces": "{" * 3000 + "}" * 3000,
    "open-braces": "{" * 3000,
    "namespaces": "/** N. */\nnamespace a {" * 1500 + "}" * 1500,
    "python-nesting": "[" * 3000 + "]" * 3000 + "\n" + "".join(" " * i + "def f():\n" for i in range(120)),
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", BROKEN)
def test_broken_input_never_raises(language, kind):
    for undocumented in (False, True):
        assert all(isinstance(d, Definition) for d in run(language, BROKEN[kind], undocumented=undocumented))
