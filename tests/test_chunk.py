"""indexer.chunk: one realistic source per language through `check`, splitting, bad input, and invariants."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.chunk import chunk_header, chunk_source
from indexer.types import Chunk, FileChunks, SourceFile

EXT = {"python": "py", "javascript": "js", "typescript": "ts", "tsx": "tsx", "go": "go", "rust": "rs"}


@pytest.fixture(scope="module")
def count():
    from encoder.tiny import build_tokenizer, default_corpus

    tok = build_tokenizer(default_corpus())
    return lambda texts: [len(e.ids) for e in tok.encode_batch(texts)]


_TOK = None


def _count(texts: list[str]) -> list[int]:
    """The same BPE counter for hypothesis tests (fixtures do not mix with @given)."""
    global _TOK
    if _TOK is None:
        from encoder.tiny import build_tokenizer, default_corpus

        _TOK = build_tokenizer(default_corpus())
    return [len(e.ids) for e in _TOK.encode_batch(texts)]


def run(language: str, source: str, count=_count, **kw) -> FileChunks:
    src = SourceFile(f"src/x.{EXT.get(language, language)}", language, source, len(source.encode()))
    result = chunk_source(src, count, **kw)
    assert_invariants(src, result, count, kw.get("max_tokens", 8192))
    return result


def assert_invariants(src: SourceFile, result: FileChunks, count, max_tokens: int) -> None:
    chunks = result.chunks
    lines = src.text.split("\n")
    covered = [False] * len(lines)
    for c in chunks:
        for i in range(c.start_line, c.end_line + 1):
            covered[i] = True
    missing = [i for i, line in enumerate(lines) if line.strip() and not covered[i]]
    assert not missing, f"lines not covered: {missing[:10]}"
    assert all(c.tokens <= max_tokens for c in chunks), [c.tokens for c in chunks]
    keys = [(c.start_line, c.start_col) for c in chunks]
    assert keys == sorted(keys)
    if chunks:
        assert [c.tokens for c in chunks] == count([c.text for c in chunks])
    data = src.text.encode()
    for c in chunks:
        span = data[c.start_byte : c.end_byte].decode()
        assert span.encode().strip() == span.encode() and span
        start = sum(len(line) + 1 for line in lines[: c.start_line]) + c.start_col
        end = sum(len(line) + 1 for line in lines[: c.end_line]) + c.end_col
        assert src.text[start:end] == span  # character columns agree with UTF-8 byte offsets


def check(language: str, source: str, expected: list[tuple[str, str | None, int, int]], **kw) -> FileChunks:
    result = run(language, source, **kw)
    got = [(c.kind, c.qualified_name, c.start_line, c.end_line) for c in result.chunks]
    assert got == expected
    assert result.problems == []
    return result


# --- one realistic source per language ---------------------------------------------------------------------------


def test_python():
    source = '''"""Tiny cache."""
import os
from typing import Any


@functools.cache
def load(path: str) -> str:
    """Read a file."""
    def inner():
        return 1
    return open(path).read()


class LRU(Base):
    """A cache."""

    size: int = 3

    def get(self, key):
        return self.d[key]

    @property
    def full(self) -> bool:
        return len(self.d) >= self.size

    class Entry:
        def touch(self):
            pass


if __name__ == "__main__":
    load(os.sys.argv[1])
'''
    result = check(
        "python",
        source,
        [
            ("block", '"""Tiny cache."""', 0, 2),
            ("function", "load", 5, 10),
            ("class", "LRU", 13, 27),
            ("method", "LRU.get", 18, 19),
            ("method", "LRU.full", 21, 23),
            ("class", "LRU.Entry", 25, 27),
            ("method", "LRU.Entry.touch", 26, 27),
            ("block", 'if __name__ == "__main__":', 30, 31),
        ],
    )
    summary = result.chunks[2].text
    assert summary.startswith(chunk_header("LRU") + "\nclass LRU(Base):")
    assert "def get(self, key): ..." in summary and "return self.d[key]" not in summary
    assert '"""A cache."""' in summary and "size: int = 3" in summary
    assert result.chunks[1].text == "# load\n" + "\n".join(source.split("\n")[5:11])
    assert result.chunks[3].parent == "LRU" and result.chunks[6].parent == "LRU.Entry"


def test_javascript():
    check(
        "javascript",
        """import x from "y";

// adds one
function inc(a) {
  return a + 1;
}

const double = (a) => a * 2;

export class Counter extends Base {
  static start = 0;
  tick(n) {
    return n + 1;
  }
}

export default function main() {}
console.log(inc(1));
""",
        [
            ("block", 'import x from "y"', 0, 0),
            ("function", "inc", 2, 5),  # the one-line import joins the function below it
            ("function", "double", 7, 7),
            ("class", "Counter", 9, 14),
            ("method", "Counter.tick", 11, 13),
            ("function", "main", 16, 17),  # the last line joins the function above it
        ],
    )


def test_typescript():
    check(
        "typescript",
        """interface Shape { area(): number }
type Id = string | number;
enum Color { Red, Green }
export const area = (s: Shape): number => {
  return s.area();
};
abstract class Base<T> implements Shape {
  private n = 1;
  area(): number { return this.n; }
}
namespace Geo { export function dist() { return 0; } }
""",
        [
            ("interface", "Shape", 0, 0),
            ("type", "Id", 1, 1),
            ("enum", "Color", 2, 2),
            ("function", "area", 3, 5),
            ("class", "Base", 6, 9),
            ("method", "Base.area", 8, 8),
            ("namespace", "Geo", 10, 10),
            ("function", "Geo.dist", 10, 10),
        ],
    )


def test_tsx():
    check(
        "tsx",
        """import React from "react";
export function App({ name }: { name: string }) {
  return <div className="app">{name}</div>;
}
const Button = () => <button>ok</button>;
""",
        [("block", 'import React from "react"', 0, 0), ("function", "App", 1, 3), ("function", "Button", 4, 4)],
    )


def test_go():
    check(
        "go",
        """package main

import "fmt"

// Stack is a stack.
type Stack struct {
	items []int
}

type Pusher interface{ Push(int) }

func (s *Stack) Push(v int) {
	s.items = append(s.items, v)
}

func main() {
	fmt.Println("hi")
}

var debug = false
""",
        [
            ("block", "package main", 0, 2),
            ("struct", "Stack", 4, 7),
            ("interface", "Pusher", 9, 9),
            ("method", "Stack.Push", 11, 13),
            ("function", "main", 15, 19),
        ],
    )


def test_rust():
    check(
        "rust",
        """use std::fmt;

#[derive(Debug)]
pub struct Point { x: i32 }

trait Shape { fn area(&self) -> f64; }

impl Shape for Point {
    fn area(&self) -> f64 { 0.0 }
}

mod util {
    pub fn clamp(v: i32) -> i32 { v }
}

enum Dir { Up, Down }

fn main() {
    println!("{}", 1);
}
""",
        [
            ("block", "use std::fmt", 0, 0),
            ("struct", "Point", 2, 3),
            ("trait", "Shape", 5, 5),
            ("impl", "Point", 7, 9),
            ("method", "Point.area", 8, 8),
            ("module", "util", 11, 13),
            ("function", "util.clamp", 12, 12),
            ("enum", "Dir", 15, 15),
            ("function", "main", 17, 19),
        ],
    )


def test_java():
    check(
        "java",
        """package demo;

import java.util.List;

/** A greeter. */
@Component
public class Greeter implements Hello {
    private final String name;

    public Greeter(String name) { this.name = name; }

    @Override
    public String greet() {
        return "hi " + name;
    }

    enum Mode { LOUD, QUIET }
}
""",
        [
            ("block", "package demo", 0, 2),
            ("class", "Greeter", 4, 17),
            ("method", "Greeter.Greeter", 9, 9),
            ("method", "Greeter.greet", 11, 14),
            ("enum", "Greeter.Mode", 16, 16),
        ],
    )


def test_c():
    check(
        "c",
        """#include <stdio.h>

struct point { int x; int y; };

typedef enum { RED, GREEN } color;

static int add(int a, int b) {
    return a + b;
}

int *find(int *xs, int n) { return xs; }

#define MAX 10
""",
        [
            ("block", "#include <stdio.h>", 0, 0),
            ("struct", "point", 2, 2),
            ("type", "color", 4, 4),
            ("function", "add", 6, 8),
            ("function", "find", 10, 12),
        ],
    )


def test_cpp():
    check(
        "cpp",
        """#include <vector>

namespace geo {
class Shape {
 public:
  virtual ~Shape() {}
  double area() const { return 0; }
  int sides;
};

template <typename T>
T twice(T x) { return x + x; }
}  // namespace geo

void geo::helper() {}
""",
        [
            ("block", "#include <vector>", 0, 0),
            ("namespace", "geo", 2, 12),
            ("class", "geo.Shape", 3, 8),
            ("method", "geo.Shape.~Shape", 5, 5),
            ("method", "geo.Shape.area", 6, 6),
            ("function", "geo.twice", 10, 11),
            ("function", "geo::helper", 14, 14),
        ],
    )


def test_csharp():
    check(
        "csharp",
        """using System;

namespace Shop
{
    public class Cart : Base
    {
        public int Count { get; set; }

        public Cart() { }

        public void Add(int item)
        {
            Count++;
        }
    }

    interface IStore { void Save(); }
}
""",
        [
            ("block", "using System", 0, 0),
            ("namespace", "Shop", 2, 17),
            ("class", "Shop.Cart", 4, 14),
            ("method", "Shop.Cart.Cart", 8, 8),
            ("method", "Shop.Cart.Add", 10, 13),
            ("interface", "Shop.IStore", 16, 16),
        ],
    )


def test_ruby():
    check(
        "ruby",
        """require "json"

module Shop
  class Cart < Base
    attr_reader :items

    def add(item)
      @items << item
    end

    def self.build; new; end
  end
end

def helper(x)
  x * 2
end
""",
        [
            ("block", 'require "json"', 0, 0),
            ("module", "Shop", 2, 12),
            ("class", "Shop.Cart", 3, 11),
            ("method", "Shop.Cart.add", 6, 8),
            ("method", "Shop.Cart.build", 10, 10),
            ("method", "helper", 14, 16),
        ],
    )


def test_php():
    check(
        "php",
        """<?php
namespace App;

use Foo\\Bar;

function helper($a) {
    return $a;
}

class Cart extends Base {
    private $items = [];

    public function add($item) {
        $this->items[] = $item;
    }
}

interface Store { public function save(); }
""",
        [
            ("block", "<?php", 0, 0),
            ("namespace", "App", 1, 3),
            ("function", "helper", 5, 7),
            ("class", "Cart", 9, 15),
            ("method", "Cart.add", 12, 14),
            ("interface", "Store", 17, 17),
        ],
    )


def test_kotlin():
    check(
        "kotlin",
        """package shop

import kotlin.math.max

class Cart(val owner: String) : Base() {
    private val items = mutableListOf<Int>()

    fun add(item: Int) {
        items.add(item)
    }

    companion object {
        fun empty() = Cart("")
    }
}

object Registry { fun all() = listOf<Cart>() }

fun main() {
    println(max(1, 2))
}
""",
        [
            ("block", "package shop", 0, 2),
            ("class", "Cart", 4, 14),
            ("method", "Cart.add", 7, 9),
            ("object", "Cart.Companion", 11, 13),
            ("method", "Cart.Companion.empty", 12, 12),
            ("object", "Registry", 16, 16),
            ("method", "Registry.all", 16, 16),
            ("function", "main", 18, 20),
        ],
    )


def test_swift():
    check(
        "swift",
        """import Foundation

class Cart: Base {
    var items: [Int] = []

    init() {}

    func add(_ item: Int) {
        items.append(item)
    }
}

struct Point { var x = 0 }

protocol Store { func save() }

extension Cart {
    func clear() { items = [] }
}

func main() {
    print("hi")
}
""",
        [
            ("block", "import Foundation", 0, 0),
            ("class", "Cart", 2, 10),
            ("method", "Cart.init", 5, 5),
            ("method", "Cart.add", 7, 9),
            ("struct", "Point", 12, 12),
            ("protocol", "Store", 14, 14),
            ("extension", "Cart", 16, 18),
            ("method", "Cart.clear", 17, 17),
            ("function", "main", 20, 22),
        ],
    )


def test_scala():
    check(
        "scala",
        """package shop

import scala.util.Try

class Cart(owner: String) extends Base {
  val limit = 3
  def add(item: Int): Unit = {
    println(item)
  }
}

object Cart { def empty(): Cart = new Cart("") }

trait Store { def save(): Unit }

case class Item(id: Int)
""",
        [
            ("block", "package shop", 0, 2),
            ("class", "Cart", 4, 9),
            ("method", "Cart.add", 6, 8),
            ("object", "Cart", 11, 11),
            ("method", "Cart.empty", 11, 11),
            ("trait", "Store", 13, 13),
            ("class", "Item", 15, 15),
        ],
    )


def test_bash():
    check(
        "bash",
        """#!/bin/bash
set -euo pipefail
NAME=world

greet() {
  echo "hello $NAME"
}

function cleanup {
  rm -f /tmp/x
}

greet
cleanup
""",
        [
            ("block", "NAME", 0, 2),  # the first name a block declares
            ("function", "greet", 4, 6),
            ("function", "cleanup", 8, 10),
            ("block", "greet", 12, 13),  # else its first line
        ],
    )


def test_typescript_names_bound_functions_and_overloads():
    result = check(
        "typescript",
        """import { z } from "zod";

/** Parses a value. */
export function parse(v: string): number;
export function parse(v: number): number;
export function parse(v: unknown): number {
  return Number(v);
}

export const safeParse = (v: unknown) => {
  return parse(v as string);
};

export const parseAsync = async function (v: unknown) {
  return parse(v as string);
};

const Schema = class {
  check() {}
};

export const memoParse = memo((v: string) => parse(v));
export const parseAll = ((vs: string[]) => vs.map(parse)) as Fn;

export type Parsed = number;
export const version = "1.0";
export default () => 1;
""",
        [
            ("block", 'import { z } from "zod"', 0, 0),
            ("function", "parse", 2, 7),  # overloads + implementation: one chunk
            ("function", "safeParse", 9, 11),
            ("function", "parseAsync", 13, 15),
            ("class", "Schema", 17, 19),
            ("function", "memoParse", 21, 21),
            ("function", "parseAll", 22, 22),
            ("type", "Parsed", 24, 25),  # kept as its own chunk (the one-line `version` joins it)
            ("function", "default", 26, 26),
        ],
    )
    assert result.chunks[1].text.count("export function parse(") == 3


def test_typescript_method_overloads_join_the_method():
    check(
        "typescript",
        """class Box {
  get(i: number): string;
  get(i: string): string;
  get(i: any) {
    return String(i);
  }
}
""",
        [("class", "Box", 0, 6), ("method", "Box.get", 1, 5)],
    )


def test_javascript_exports_and_prototype_assignments():
    check(
        "javascript",
        """const util = require("util");

module.exports.parse = function (text) {
  return JSON.parse(text);
};

exports.stringify = (value) => JSON.stringify(value);

Parser.prototype.feed = function feed(chunk) {
  this.buffer += chunk;
};

module.exports = function createParser() {
  return new Parser();
};
""",
        [
            ("block", "util", 0, 0),
            ("function", "parse", 2, 4),
            ("function", "stringify", 6, 6),
            ("method", "Parser.feed", 8, 10),
            ("function", "createParser", 12, 14),
        ],
    )


def test_javascript_objects_of_methods_are_containers():
    # koa's lib/response.js is `module.exports = { ... }` of 40 methods: one 620-line block could not be found by
    # its members; each method is now a chunk of its own under the object's summary
    check(
        "javascript",
        """module.exports = {
  get status() {
    return this.res.statusCode;
  },

  append(field, val) {
    this.set(field, val);
  },

  vary: function (field) {
    vary(this.res, field);
  },

  limit: 10
};

const router = {
  get: (path) => route("GET", path),
  name: "router"
};

const plain = { a: 1, b: [2, 3] };
""",
        [
            ("object", "exports", 0, 14),
            ("method", "exports.status", 1, 3),
            ("method", "exports.append", 5, 7),
            ("method", "exports.vary", 9, 11),
            ("object", "router", 16, 21),  # the one-line `plain` block joins its neighbour
            ("method", "router.get", 17, 17),
        ],
    )


def test_blocks_are_named_by_their_first_declaration_or_first_line():
    check(
        "typescript",
        """import { a } from "a";
import { b } from "b";

function f() {}

export const limit = 3;
export const parse = makeParser(limit);

function g() {}

describe("parse", () => {
  it("works", () => {});
});
""",
        [
            ("block", 'import { a } from "a"', 0, 1),
            ("function", "f", 3, 3),
            ("block", "limit", 5, 6),
            ("function", "g", 8, 8),
            ("block", 'describe("parse", () =>', 10, 12),
        ],
    )


def test_one_line_block_stays_alone_when_merging_would_pass_the_budget(count):
    body = "\n".join(f"    total = total + compute_value({i}, name='item{i}')" for i in range(60))
    source = f"import os\n\n\ndef accumulate(values):\n    total = 0\n{body}\n    return total\n"
    result = run("python", source, count, max_tokens=64)
    assert (result.chunks[0].kind, result.chunks[0].symbol, result.chunks[0].end_line) == ("block", "import os", 0)
    # a one-line block never joins the definition after it: a hit on `f` starts (and previews) at `def f`
    small = run("python", "import os\n\n\ndef f():\n    return os.sep\n", count)
    assert [(c.kind, c.symbol, c.start_line) for c in small.chunks] == [("block", "import os", 0), ("function", "f", 3)]
    after = run("python", "def f():\n    return 1\n\nMAX = 3\n", count)
    assert [(c.kind, c.symbol, c.start_line, c.end_line) for c in after.chunks] == [("function", "f", 0, 3)]


def test_c_preprocessor_and_glibc_macros():
    check(
        "c",
        """/* Demo header.  */
#ifndef _DEMO_H
#define _DEMO_H 1

#include <features.h>

__BEGIN_DECLS

extern int foo (int __x) __THROW;
#define DEMO_MAX 10
extern char *bar (const char *__s) __THROW __wur __nonnull ((1));

struct demo { int x; };

__extern_inline int
__NTH (baz (int __c))
{
  return __c + DEMO_MAX;
}

extern int __REDIRECT (qux, (int __fd), qux64) __THROW;

__END_DECLS

#endif /* demo.h */
""",
        [
            ("block", "foo", 0, 10),  # the include guard's #define is not a name; __THROW is no declaration
            ("struct", "demo", 12, 12),
            ("function", "baz", 14, 18),  # not __NTH
            ("block", "qux", 20, 24),  # not __REDIRECT; __END_DECLS and the trailing #endif are covered
        ],
    )


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("__BEGIN_DECLS\nint f (void);\n", "             \nint f (void);\n"),
        ("extern int f (int) __THROW __nonnull ((1));", "extern int f (int)" + " " * 24 + ";"),
        ("int __NTH (f (int c)) { }", "int" + " " * 8 + "f (int c)  { }"),
        ("int __REDIRECT (f, (int c), f64) __wur;", "int             f  (int c)            ;"),
        ("__extern_inline int\nf (void);", "                int\nf (void);"),
        ("#define __NTH(fct) fct\nFILE *fopen (void);", "#define __NTH(fct) fct\nFILE *fopen (void);"),
    ],
)
def test_c_macros_are_blanked_for_the_parser_only(source, parsed):
    from indexer.c_macros import mask_macros

    assert mask_macros(source.encode()) == parsed.encode()


def test_c_define_between_functions_and_trailing_endif():
    check(
        "c",
        """#ifndef UTIL_H
#define UTIL_H

static inline int twice(int x) { return 2 * x; }

#define HALF(x) ((x) / 2)
#define LIMIT 100

#ifdef __GNUC__
# if __GNUC__ > 3
static inline int clamp(int x) { return x > LIMIT ? LIMIT : x; }
# endif
#endif

#endif
""",
        [
            ("block", "#ifndef UTIL_H", 0, 1),  # the guard's #define is not a name
            ("function", "twice", 3, 3),
            ("block", "HALF", 5, 6),
            ("function", "clamp", 8, 14),  # with the conditionals around it and the trailing #endif
        ],
    )


def test_markdown_sections():
    result = check(
        "markdown",
        """Intro line.

# Install

Run this:

```sh

pip install semcode
```

## Use

Search.
""",
        [("text", None, 0, 0), ("section", "Install", 2, 9), ("section", "Use", 11, 13)],
    )
    assert result.chunks[1].text.startswith("# Install\n# Install")


def test_yaml_paragraphs():
    check(
        "yaml",
        """name: ci

on:
  push: {}

jobs:
  test:
    runs-on: ubuntu
""",
        [("text", None, 0, 7)],
    )


# --- headers and splitting ---------------------------------------------------------------------------------------


def test_without_header_text_is_the_code(count):
    source = "def f(x):\n    return x\n"
    result = run("python", source, count, with_header=False)
    assert [c.text for c in result.chunks] == ["def f(x):\n    return x"]


def test_large_function_splits_with_signature_context(count):
    body = "\n".join(f"    total = total + compute_value({i}, name='item{i}')" for i in range(60))
    source = f"import os\n\n\ndef accumulate(values, scale=1):\n    total = 0\n{body}\n    return total\n"
    result = run("python", source, count, max_tokens=64)
    pieces = [c for c in result.chunks if c.symbol == "accumulate"]
    assert len(pieces) > 5
    assert all(c.tokens <= 64 for c in result.chunks)
    for c in pieces:
        assert c.text.startswith("# accumulate\ndef accumulate(values, scale=1):")
        assert c.kind == "function"
    assert pieces[-1].text.endswith("return total")


def test_nested_function_stands_alone_when_outer_is_split(count):
    inner = "\n".join(f"        y = y + {i} * helper_value" for i in range(10))
    outer = "\n".join(f"    x = x + {i} * some_other_value" for i in range(30))
    source = f"def outer(x):\n{outer}\n    def inner(y):\n{inner}\n        return y\n{outer}\n    return inner(x)\n"
    result = run("python", source, count, max_tokens=128)
    names = {c.qualified_name for c in result.chunks}
    assert "outer.inner" in names and "outer" in names


def test_single_long_line_splits_by_characters(count):
    source = "x = '" + "abcdefgh" * 625 + "'\n"  # one 5,000+ character line
    result = run("python", source, count, max_tokens=64)
    assert len(result.chunks) > 10
    assert all(c.tokens <= 64 for c in result.chunks)
    joined = "".join(source.encode()[c.start_byte : c.end_byte].decode() for c in result.chunks)
    assert joined.replace(" ", "") == source.strip().replace(" ", "")  # pieces are trimmed at their edges


def test_block_statements_pack_into_chunks(count):
    source = "\n".join(f"CONSTANT_{i} = {i}" for i in range(200)) + "\n"
    result = run("python", source, count, max_tokens=100)
    assert all(c.kind == "block" for c in result.chunks)
    assert all(c.symbol == c.text.split(" = ")[0] for c in result.chunks)  # each piece: its first name, no header
    assert 5 < len(result.chunks) < 60


def test_long_call_statement_splits_at_line_starts_with_its_head_as_context(count):
    cases = "".join(f"  it('case {i}', () => {{\n    expect(parse({i})).toBe({i});\n  }});\n" for i in range(30))
    source = f"describe('parse', () => {{\n{cases}}});\n"
    result = run("typescript", source, count, max_tokens=64)
    assert len(result.chunks) > 3
    assert all(c.kind == "block" and c.end_line > c.start_line for c in result.chunks)  # never `describe` alone
    assert result.chunks[0].symbol == "describe('parse', () =>"
    for c in result.chunks[1:]:
        assert c.symbol is not None and c.symbol.startswith("it('case ")
        assert c.text.startswith("describe('parse', () => {\nit('case ")


def test_tiny_budget_still_keeps_invariants(count):
    source = "def a_rather_long_function_name(argument_one, argument_two):\n    return argument_one\n"
    run("python", source, count, max_tokens=8)


def test_big_class_summary_splits(count):
    fields = "\n".join(f"    field_{i}: int = {i}" for i in range(80))
    source = f"class Wide:\n{fields}\n\n    def m(self):\n        return 1\n"
    result = run("python", source, count, max_tokens=64)
    assert sum(c.kind == "class" for c in result.chunks) > 3
    assert [c.qualified_name for c in result.chunks if c.kind == "method"] == ["Wide.m"]


# --- bad input ---------------------------------------------------------------------------------------------------


def test_syntax_errors_are_reported_and_chunked(count):
    source = "def ok():\n    return 1\n\ndef broken(:\n    x = = 2\n\nclass C:\n    def m(self):\n        pass\n"
    result = run("python", source, count)
    assert len(result.problems) == 1 and result.problems[0].startswith("syntax errors recovered at lines ")
    assert "4" in result.problems[0]
    assert "ok" in {c.symbol for c in result.chunks}


def test_many_syntax_errors_cap_the_list(count):
    source = "\n".join("x = = 1" for _ in range(50)) + "\n"
    result = run("python", source, count)
    assert result.problems and result.problems[0].endswith(", ...")


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python", "[" * 10000),
        ("python", "(" * 10000 + "1" + ")" * 10000),
        ("python", "".join(" " * i + "if x:\n" for i in range(0, 2000)) + " " * 2000 + "pass\n"),
        ("python", "def f():\n" + "    x = (" * 3000 + "1" + ")" * 3000 + "\n"),
        ("javascript", "function f() {" + "{" * 10000 + "}" * 10000 + "}"),
        ("javascript", "{\n" * 10000),
        ("go", "func f() {" + "{" * 10000),
        ("rust", "fn f() {" + "(" * 10000),
    ],
)
def test_deep_nesting_does_not_recurse(count, language, source):
    run(language, source, count, max_tokens=256)
    run(language, source, count, max_tokens=8192)


def test_empty_and_blank_files(count):
    assert run("python", "", count).chunks == []
    assert run("python", "\n\n   \n\t\n", count).chunks == []
    assert run("markdown", "\n \n", count).chunks == []
    assert run("python", "", count).problems == []


def test_non_ascii_columns_are_characters_and_bytes_are_utf8(count):
    source = (
        'ä = "ünïcödé"\n\ndef grüß(name):\n    return f"Grüß {name} 🎉"\n\n'
        'class Ñandú:\n    def 走(self): return "速い"\n'
    )
    result = run("python", source, count)
    data = source.encode()
    lines = source.split("\n")
    for c in result.chunks:
        span = data[c.start_byte : c.end_byte].decode()
        if c.kind != "class":
            assert c.text.endswith(span)
        assert lines[c.start_line][c.start_col :].startswith(span.split("\n")[0])
    fn = next(c for c in result.chunks if c.symbol == "grüß")
    end_col = len('    return f"Grüß {name} 🎉"')
    assert (fn.start_line, fn.start_col, fn.end_line, fn.end_col) == (2, 0, 3, end_col)
    method = next(c for c in result.chunks if c.symbol == "走")
    assert method.qualified_name == "Ñandú.走" and method.start_col == 4


def test_count_tokens_is_batched(count):
    calls: list[int] = []

    def counting(texts):
        calls.append(len(texts))
        return count(texts)

    source = "\n\n".join(f"def f{i}(x):\n    return x + {i}" for i in range(50))
    result = chunk_source(SourceFile("f.py", "python", source, len(source)), counting)
    assert len(result.chunks) == 50 and calls == [50]


# --- properties --------------------------------------------------------------------------------------------------

_NAMES = st.sampled_from(["alpha", "beta", "gamma", "délta", "x", "load_all", "Ω"])


@st.composite
def python_sources(draw) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["def", "class", "import", "stmt", "blank", "long", "comment"]))
        name = draw(_NAMES)
        n = draw(st.integers(1, 12))
        if kind == "def":
            body = "\n".join(f"    v{i} = {name}({i}) + '{'z' * i}'" for i in range(n))
            parts.append(f"@decorator\ndef {name}(a, b=1):\n{body}\n    return v0\n")
        elif kind == "class":
            methods = "\n".join(f"    def m{i}(self):\n        return self.{name} * {i}\n" for i in range(n))
            parts.append(f"class {name.title()}(object):\n    '''Doc.'''\n    attr = 1\n\n{methods}")
        elif kind == "import":
            parts.append(f"import {name}\nfrom os import path as {name}_path\n")
        elif kind == "stmt":
            parts.append(f"{name} = [{', '.join(str(i) for i in range(n * 5))}]\nprint({name})\n")
        elif kind == "long":
            parts.append(f"{name} = '{'w' * n * 300}'\n")
        elif kind == "comment":
            parts.append(f"# {name} note\n")
        else:
            parts.append("\n" * n)
    return "\n".join(parts)


@st.composite
def go_sources(draw) -> str:
    parts = ["package main\n"]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["func", "type", "var", "method", "blank"]))
        name = draw(st.sampled_from(["alpha", "beta", "Gamma", "délta", "x"]))
        n = draw(st.integers(1, 15))
        if kind == "func":
            body = "\n".join(f"\tv{i} := {name}Value({i})\n\t_ = v{i}" for i in range(n))
            parts.append(f"// {name} doc\nfunc {name}(a int) int {{\n{body}\n\treturn a\n}}\n")
        elif kind == "type":
            fields = "\n".join(f"\tF{i} int" for i in range(n))
            parts.append(f"type {name.title()} struct {{\n{fields}\n}}\n")
        elif kind == "method":
            parts.append(f"func (s *{name.title()}) Run() {{\n\tif s != nil {{\n\t\ts.F0 = {n}\n\t}}\n}}\n")
        elif kind == "var":
            parts.append(f"var {name} = []int{{{', '.join(str(i) for i in range(n * 4))}}}\n")
        else:
            parts.append("\n" * n)
    return "\n".join(parts)


def mutate(source: str, seed: int, edits: int) -> str:
    rng = random.Random(seed)
    chars = list(source)
    for _ in range(edits):
        if chars and rng.random() < 0.5:
            del chars[rng.randrange(len(chars))]
        else:
            chars.insert(rng.randrange(len(chars) + 1), rng.choice("(){}[]:;,'\"\n\t é#/*\\"))
    return "".join(chars)


PROPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(python_sources(), st.integers(16, 256))
def test_python_invariants(source, budget):
    run("python", source, max_tokens=budget)


@PROPS
@given(python_sources(), st.integers(16, 256), st.integers(0, 2**32), st.integers(1, 12))
def test_mutated_python_invariants(source, budget, seed, edits):
    run("python", mutate(source, seed, edits), max_tokens=budget)


@PROPS
@given(go_sources(), st.integers(16, 256), st.integers(0, 2**32), st.integers(0, 12))
def test_go_invariants_and_mutations(source, budget, seed, edits):
    run("go", mutate(source, seed, edits), max_tokens=budget)


@PROPS
@given(st.text(max_size=400), st.sampled_from(["python", "javascript", "rust", "markdown", "yaml"]))
def test_any_text_never_raises(text, language):
    run(language, text, max_tokens=32)


def test_chunk_header_format():
    assert chunk_header(None) == ""
    assert chunk_header("C.m") == "# C.m"
    assert Chunk.__dataclass_fields__  # the header is the only thing chunk.py adds to a chunk's code


def test_deeply_nested_broken_code_is_chunked_as_text_in_linear_time():
    # tree-sitter's error recovery on unclosed brackets costs more than linear time and memory (1.9 MB: 18 s, 1.1 GB)
    unit = "if (a) { b = [c, {d: (e"
    source = (unit + "\n") * (300 * 1024 // (len(unit) + 1))
    result = run("javascript", source)
    assert any(p.startswith("not parsed:") for p in result.problems), result.problems
    assert {c.kind for c in result.chunks} == {"text"}


def test_a_large_ordinary_file_is_still_parsed():
    source = "\n\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(9000))
    assert len(source) > 256 * 1024
    result = run("python", source)
    assert not result.problems
    assert result.chunks[0].kind == "function" and result.chunks[0].symbol == "f0"
