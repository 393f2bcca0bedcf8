"""What kind of text a file holds, from its path and language: code, or tests, docs, examples, benchmarks,
vendored or generated code, configuration. Ranking places code first unless the query asks for another kind."""

from __future__ import annotations

import re
from functools import lru_cache

KINDS = ("code", "test", "docs", "example", "benchmark", "vendored", "generated", "config")

_VENDORED = frozenset({"vendor", "vendored", "third_party", "third-party", "thirdparty", "node_modules", "external",
                       "extern", "bundled", "deps", "_vendor"})  # fmt: skip
_GENERATED_DIRS = frozenset({"dist", "build", "out", "generated", "__generated__", "gen"})
_GENERATED = re.compile(
    r"(\.min\.(js|css)$|\.pb\.(go|cc|h)$|_pb2(_grpc)?\.pyi?$|\.generated\.|_generated\.|\.g\.(dart|cs)$"
    r"|\.designer\.cs$|(^|/)package-lock\.json$|(^|/)yarn\.lock$|(^|/)pnpm-lock\.yaml$|(^|/)cargo\.lock$"
    r"|(^|/)go\.sum$|(^|/)poetry\.lock$|(^|/)composer\.lock$|(^|/)gemfile\.lock$|\.lock$)"
)
_TEST_DIRS = frozenset({"test", "tests", "__tests__", "spec", "specs", "testing", "testdata", "test_data",
                        "fixtures", "fixture", "__fixtures__", "__mocks__", "mocks", "e2e", "unittests",
                        "integration_tests", "testsuite", "t"})  # fmt: skip
_TEST_FILE = re.compile(
    r"(^test_.*|.*_test\.[a-z]+$|.*\.(test|spec|tests)\.[a-z]+$|.*_spec\.rb$|^conftest\.py$|^tests?\.[ch]p*$)"
)
# JUnit, xUnit, PHPUnit, XCTest names keep their case: `ParserTest.java`, `TestParser.cs`, not `Latest.java`
_TEST_CLASS_FILE = re.compile(
    r"(.*[a-z0-9](Test|Tests|Spec|Specs|IT)|^Test[A-Z0-9_].*)\.(java|kt|scala|cs|php|swift|m|groovy)$"
)
_EXAMPLE_DIRS = frozenset({"example", "examples", "sample", "samples", "demo", "demos", "tutorial", "tutorials"})
_BENCH_DIRS = frozenset({"bench", "benches", "benchmark", "benchmarks", "perf"})
_DOC_DIRS = frozenset({"doc", "docs", "documentation", "man", "website", "site"})
_DOC_LANGUAGES = frozenset({"markdown", "rst", "text"})
_CONFIG_LANGUAGES = frozenset({"json", "yaml", "toml", "ini", "xml", "groovy", "make", "cmake", "dockerfile", "hcl",
                               "starlark"})  # fmt: skip


@lru_cache(maxsize=65536)
def text_kind(path: str, language: str) -> str:
    """One of ``KINDS`` for a repository-relative path (cached: a search asks for each candidate's path)."""
    low = path.lower()
    parts = low.split("/")
    name, dirs = parts[-1], set(parts[:-1])
    if dirs & _VENDORED:
        return "vendored"
    if _GENERATED.search(low) or (dirs & _GENERATED_DIRS and language in ("javascript", "typescript", "css")):
        return "generated"
    if dirs & _TEST_DIRS or _TEST_FILE.match(name) or _TEST_CLASS_FILE.match(path.rsplit("/", 1)[-1]):
        return "test"
    if dirs & _EXAMPLE_DIRS:
        return "example"
    if dirs & _BENCH_DIRS:
        return "benchmark"
    if language in _DOC_LANGUAGES or (dirs & _DOC_DIRS and language not in _CONFIG_LANGUAGES):
        return "docs"
    if language in _CONFIG_LANGUAGES:
        return "config"
    return "code"
