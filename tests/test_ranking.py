"""The ranking stage: query analysis, kinds of text and ``semcode.ranking.rank`` through one ``check`` helper each,
then the ranked search end to end on a real index (the Python API and the CLI), negative path globs and a filter
that matches nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import semcode
from indexer.store import Hit, StoredChunk
from indexer.text_kinds import text_kind
from semcode.query_terms import analyze
from semcode.ranking import Candidates, rank

# ------------------------------------------------------------------------------------------------- query analysis


def check_terms(query: str, **expected: object) -> None:
    terms = analyze(query)
    for name, value in expected.items():
        got = getattr(terms, name)
        assert got == value, f"{query!r}: {name} = {got!r}, expected {value!r}"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("APIRouter", {"identifiers": ("APIRouter",), "identifier_query": True, "definitions": ((None, "APIRouter"),)}),
        ("JsonReader.peek", {"identifier_query": True, "definitions": (("JsonReader", "peek"),)}),
        ("Sinatra::Base", {"identifier_query": True, "definitions": (("Sinatra", "Base"),)}),
        ("Session#send", {"identifier_query": True, "definitions": (("Session", "send"),)}),
        ("`parse_qs`", {"identifiers": ("parse_qs",), "identifier_query": True}),
        ("render", {"identifier_query": True, "definitions": ((None, "render"),)}),
        (
            "how does include_router copy routes from an APIRouter",
            {"identifiers": ("include_router", "APIRouter"), "identifier_query": False},
        ),
        ("where are failed uploads retried", {"identifiers": (), "identifier_query": False, "intents": frozenset()}),
        ("where are the tests for redirect handling", {"intents": frozenset({"test"})}),
        ("docs on writing middleware", {"intents": frozenset({"docs"})}),
        ('find "connection reset" in the client', {"quoted": ("connection reset",)}),
        ("what does src/router/index.ts export", {"path_hints": ("src/router/index.ts",)}),
        ("cJSON_Parse", {"identifier_query": True, "words": ("cjson_parse", "json", "parse")}),
        ("получить_данные", {"identifiers": ("получить_данные",), "identifier_query": True}),
    ],
)
def test_query_analysis(query: str, expected: dict[str, object]) -> None:
    check_terms(query, **expected)


@pytest.mark.parametrize(
    "query",
    ["", "   ", "?!.,;:", ".*+?()[]{}|^$\\", "(((((", "::", "->#.", "\x00\x01", "a" * 4000, "def f(x):\n" * 400],
)
def test_any_text_is_analysed_and_ranked_without_an_error(query: str) -> None:
    terms = analyze(query)
    found = Candidates([_hit("a.py", "f", 0.5)], [_hit("b.py", "g", 3.0)], [])
    assert len(rank(terms, found, 10)) == 2


# -------------------------------------------------------------------------------------------------- kinds of text


@pytest.mark.parametrize(
    ("path", "language", "kind"),
    [
        ("src/client.py", "python", "code"),
        ("tests/test_client.py", "python", "test"),
        ("pkg/client_test.go", "go", "test"),
        ("src/app.spec.ts", "typescript", "test"),
        ("src/test/java/org/x/ParserTest.java", "java", "test"),
        ("ParserTests.cs", "csharp", "test"),
        ("Latest.java", "java", "code"),
        ("spec/router_spec.rb", "ruby", "test"),
        ("docs/guide.md", "markdown", "docs"),
        ("README.md", "markdown", "docs"),
        ("examples/server.rs", "rust", "example"),
        ("benches/parse.rs", "rust", "benchmark"),
        ("vendor/github.com/x/y.go", "go", "vendored"),
        ("third_party/zlib/inflate.c", "c", "vendored"),
        ("dist/bundle.js", "javascript", "generated"),
        ("web/app.min.js", "javascript", "generated"),
        ("api/service.pb.go", "go", "generated"),
        ("package-lock.json", "json", "generated"),
        ("config/settings.yaml", "yaml", "config"),
    ],
)
def test_text_kind(path: str, language: str, kind: str) -> None:
    assert text_kind(path, language) == kind


# ---------------------------------------------------------------------------------------------------- rank(...)


def _chunk(
    path: str, symbol: str | None, *, parent: str | None = None, line: int = 0, kind: str = "function"
) -> StoredChunk:
    language = {"py": "python", "md": "markdown", "go": "go"}.get(path.rsplit(".", 1)[-1], "python")
    return StoredChunk(
        repo="/r", path=path, language=language, kind=kind, symbol=symbol, parent=parent, start_line=line,
        start_col=0, end_line=line + 5, end_col=0, start_byte=line * 10, end_byte=line * 10 + 50, tokens=20,
        text=f"def {symbol}(): pass", content_hash=f"{path}:{line}",
    )  # fmt: skip


def _hit(path: str, symbol: str | None, score: float, **kw: object) -> Hit:
    return Hit(_chunk(path, symbol, **kw), score, ())  # type: ignore[arg-type]


def check_rank(
    query: str,
    semantic: list[Hit],
    lexical: list[Hit],
    expected: list[str],
    names: list[Hit] | None = None,
    **options: object,
) -> list[Hit]:
    """Rank the lists; ``expected``: the hits' "path:symbol", best first."""
    hits = rank(analyze(query), Candidates(semantic, lexical, names or []), 10, **options)  # type: ignore[arg-type]
    got = [f"{h.chunk.path}:{h.chunk.symbol}" for h in hits]
    assert got == expected, got
    return hits


def test_the_definition_of_the_queried_symbol_comes_first() -> None:
    # the peer's example: `APIRouter` ranked 5th behind `APIRoute` by both retrievers
    others = [_hit(f"app/m{i}.py", f"use_{i}", 0.9 - i / 20) for i in range(4)]
    route = _hit("app/routing.py", "APIRoute", 0.95, kind="class", line=10)
    router = _hit("app/routing.py", "APIRouter", 0.6, kind="class", line=200)
    # APIRoute is the best match of both retrievers: second, after the definition, as its file's later chunk
    expected = ["app/routing.py:APIRouter", "app/routing.py:APIRoute"] + [f"app/m{i}.py:use_{i}" for i in range(4)]
    hits = check_rank("APIRouter", [route, *others, router], [route, router], expected, names=[router, route])
    assert "definition" in hits[0].reasons and "file:2" in hits[0].reasons


def test_a_qualified_query_wants_the_parent_too() -> None:
    peek_a = _hit("a/other.py", "peek", 0.9, parent="Lexer")
    peek_b = _hit("a/reader.py", "peek", 0.5, parent="JsonReader")
    check_rank("JsonReader.peek", [peek_a, peek_b], [peek_a, peek_b], ["a/reader.py:peek", "a/other.py:peek"])


def test_a_chunk_both_sides_found_never_falls_below_one_side_alone() -> None:
    both = _hit("a.py", "both", 0.8)
    sem_only = _hit("b.py", "sem_only", 0.8)
    lex_only = _hit("c.py", "lex_only", 5.0)
    check_rank(
        "streaming reader of tokens",
        [sem_only, both, _hit("z.py", "floor", 0.1)],
        [lex_only, both],
        ["a.py:both", "b.py:sem_only", "c.py:lex_only", "z.py:floor"],
    )


def test_tests_docs_and_examples_rank_below_code_unless_asked() -> None:
    test = _hit("tests/test_retry.py", "test_retry", 0.9)
    doc = _hit("docs/retry.md", None, 0.88)
    code = _hit("src/transport.py", "send", 0.8)
    floor = _hit("src/other.py", "other", 0.3)
    lists = [test, doc, code, floor]
    code_first = ["src/transport.py:send", "docs/retry.md:None", "tests/test_retry.py:test_retry", "src/other.py:other"]
    check_rank("where are requests retried", lists, [], code_first)
    tests_first = [
        "tests/test_retry.py:test_retry",
        "src/transport.py:send",
        "docs/retry.md:None",
        "src/other.py:other",
    ]
    hits = check_rank("where are the tests for retries", lists, [], tests_first)
    assert "asked:test" in hits[0].reasons and "lower:docs" in hits[2].reasons
    # a path filter that selected the tests: no kind is ranked lower
    check_rank("where are requests retried", lists, [], [
        "tests/test_retry.py:test_retry", "docs/retry.md:None", "src/transport.py:send", "src/other.py:other"],
        filtered=True)  # fmt: skip


def test_file_names_that_match_query_words_count() -> None:
    a = _hit("src/util.py", "helper", 0.8)
    b = _hit("src/inference.py", "extract", 0.75)
    floor = _hit("src/other.py", "other", 0.3)
    hits = check_rank("how does type inference extract input types", [a, b, floor], [], [
        "src/inference.py:extract", "src/util.py:helper", "src/other.py:other"])  # fmt: skip
    assert "path" in hits[0].reasons


def test_a_path_in_the_query_counts() -> None:
    a = _hit("src/core/retry.py", "backoff", 0.8)
    b = _hit("src/http/client.py", "send", 0.7)
    floor = _hit("src/other.py", "other", 0.3)
    hits = check_rank("how does send work in http/client.py", [a, b, floor], [], [
        "src/http/client.py:send", "src/core/retry.py:backoff", "src/other.py:other"])  # fmt: skip
    assert "path" in hits[0].reasons


def test_repeated_chunks_of_one_file_decay_and_group_by_file_keeps_one() -> None:
    same = [_hit("big.py", f"f{i}", 0.9 - i / 100, line=i * 10) for i in range(4)]
    other = _hit("other.py", "g", 0.7)
    floor = _hit("z.py", "z", 0.2)
    check_rank("parse the config", [*same, other, floor], [], [
        "big.py:f0", "other.py:g", "big.py:f1", "big.py:f2", "big.py:f3", "z.py:z"])  # fmt: skip
    check_rank("parse the config", [*same, other, floor], [], ["big.py:f0", "other.py:g", "z.py:z"], group_by_file=True)


def test_ties_are_broken_by_path_and_line() -> None:
    a, b, c = _hit("b.py", "x", 0.5, line=3), _hit("a.py", "x", 0.5, line=9), _hit("a.py", "y", 0.5, line=1)
    for order in ([a, b, c], [c, b, a], [b, a, c]):
        check_rank("something", order, [], ["a.py:y", "b.py:x", "a.py:x"])  # a.py:x decays: its file came first


# -------------------------------------------------------------------------------------------------- end to end

ROUTING = '''
class APIRoute:
    """One route: a path, its methods and the endpoint that answers it."""

    def __init__(self, path, endpoint):
        self.path = path
        self.endpoint = endpoint

    def matches(self, scope):
        return scope["path"] == self.path


class APIRouter:
    """A group of routes with a shared prefix; APIRoute objects are added by add_api_route."""

    def __init__(self, prefix=""):
        self.prefix = prefix
        self.routes = []

    def add_api_route(self, path, endpoint):
        self.routes.append(APIRoute(self.prefix + path, endpoint))
'''


@pytest.fixture(scope="module")
def repo(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("ranked") / "app"
    (root / "app").mkdir(parents=True)
    (root / "app" / "routing.py").write_text(ROUTING)
    (root / "app" / "retry.py").write_text("def retry_failed_upload(upload, attempts=3):\n    return upload\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_routing.py").write_text(
        "from app.routing import APIRouter, APIRoute\n\n\ndef test_api_router_adds_api_route():\n"
        "    router = APIRouter('/v1')\n    router.add_api_route('/x', None)\n    assert router.routes\n"
    )
    index_dir = tmp_path_factory.mktemp("ranked-index") / "index"
    with semcode.open([root], index_dir=str(index_dir), model=str(model)) as index:
        index.update()
    return root, str(index_dir)


def test_the_api_ranks_the_definition_first_and_says_why(repo, model) -> None:
    root, index_dir = repo
    with semcode.open([root], index_dir=index_dir, model=str(model), read_only=True) as index:
        hits = index.search("APIRouter", limit=5)
        assert (hits[0].path, hits[0].symbol) == ("app/routing.py", "APIRouter")
        assert "definition" in hits[0].reasons
        files = index.search("APIRouter add_api_route", limit=10, group_by="file")
        assert len({h.path for h in files}) == len(files)
        assert all(not h.path.startswith("tests/") for h in index.search("APIRouter", paths=["!tests/**"]))
        assert all(h.path.startswith("tests/") for h in index.search("APIRouter", paths=["tests/**"]))
        with pytest.raises(semcode.EmptyFilter, match=r"no indexed file matches the filter.*'src/\*\*'"):
            index.search("APIRouter", paths=["src/**"])
        with pytest.raises(ValueError, match="group_by"):
            index.search("APIRouter", group_by="folder")  # type: ignore[arg-type]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, timeout=120)


def test_the_cli_shows_reasons_and_takes_files_and_negative_paths(repo, model) -> None:
    root, index_dir = repo
    common = ("--model", str(model), "--index-dir", index_dir, "--repo", str(root))
    out = _cli("search", "APIRouter", *common, "--json", "--path", "!tests/**", "--files")
    assert out.returncode == 0, out.stderr
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert hits[0]["symbol"] == "APIRouter" and "definition" in hits[0]["reasons"]
    assert all(not h["path"].startswith("tests/") for h in hits)
    assert len({h["path"] for h in hits}) == len(hits)
    text = _cli("search", "APIRouter", *common)
    assert text.returncode == 0 and "definition" in text.stdout
    empty = _cli("search", "APIRouter", *common, "--path", "nothing/**")
    assert empty.returncode == 2 and "no indexed file matches the filter (path 'nothing/**')" in empty.stderr
    assert "Traceback" not in empty.stderr


@pytest.mark.parametrize("mode", ["lexical", "semantic", "hybrid"])
def test_duplicate_chunks_are_ordered_by_path_and_line_in_every_mode(tmp_path, model, mode) -> None:
    """Identical chunks tie; their order is path then line whatever order they were stored in (a resumed index
    stores them in another order than a clean build)."""
    root = tmp_path / "dups"
    root.mkdir()
    body = "def frobnicate_widget(x):\n    return x * 2\n"
    with semcode.open([root], index_dir=str(tmp_path / "index"), model=str(model)) as index:
        for names in (("zeta.py",), ("mid.py", "alpha.py")):  # stored as zeta, alpha, mid
            for name in names:
                (root / name).write_text(body)
            index.update()
        hits = [h for h in index.search("frobnicate_widget", limit=10, mode=mode) if h.symbol == "frobnicate_widget"]
        assert [h.path for h in hits] == ["alpha.py", "mid.py", "zeta.py"]


@pytest.mark.parametrize(
    ("query", "semantic", "expected"),
    [
        ("how does APIRouter include_router work", True, "APIRouter include_router"),  # identifiers: always
        ("how does APIRouter include_router work", False, "APIRouter include_router"),
        ("where are retries scheduled after a timeout", True, ""),  # a sentence beside a semantic list: none
        ("where are retries scheduled after a timeout", False, "retries scheduled after timeout"),  # phase 1 only
    ],
)
def test_names_list_for_identifiers_or_when_there_is_no_semantic_list(query, semantic, expected) -> None:
    from semcode.query_terms import analyze
    from semcode.ranking import names_query

    assert names_query(analyze(query), semantic) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "How does the retry policy decide whether a failed call is safe?",
            "retry policy decide whether failed call safe?",
        ),
        ("which function parses the `Content-Type` header", "parses `Content-Type` header"),
        ("APIRouter.include_router", "APIRouter.include_router"),  # an identifier lookup: as written
        ("parse_qs", "parse_qs"),
        ("how does it work", "how does it work"),  # nothing left: as written
    ],
)
def test_the_lexical_list_searches_the_text_without_stop_words(query: str, expected: str) -> None:
    from semcode.query_terms import analyze

    assert analyze(query).text_query == expected


QUESTION = (
    "how is an argument like -5 treated as a value rather than a short flag, and how is a command-line token "
    "classified as a long option, a Windows /option, a subcommand or a positional?"
)


@pytest.mark.parametrize(
    ("query", "rows", "expected"),
    [
        (QUESTION, 999_999, analyze(QUESTION).text_query),  # below the threshold: every word
        # from it on: the 12 words least common in code, in the query's order ("5", "value", "option", "line" and
        # "flag" are the most common of its 17)
        (
            QUESTION,
            1_000_000,
            "argument like treated rather short command token classified long windows subcommand positional",
        ),
        ("retry policy for failed calls", 5_000_000, "retry policy failed calls"),  # few words: as they are
        ("APIRouter.include_router", 5_000_000, "APIRouter.include_router"),  # an identifier lookup: as written
    ],
)
def test_a_large_tables_lexical_list_reads_the_rarest_words_of_a_long_question(
    query: str, rows: int, expected: str
) -> None:
    from semcode.query_terms import lexical_query

    assert lexical_query(analyze(query), rows) == expected


def test_the_rarest_words_are_the_least_common_in_code_and_unknown_words_count_as_rare() -> None:
    from semcode.common_terms import SHARES
    from semcode.query_terms import rarest_terms

    assert SHARES["return"] > SHARES["option"] > SHARES.get("subcommand", 0.0)
    assert rarest_terms("return option zzqx subcommand", 2) == "zzqx subcommand"
    assert rarest_terms("Return return RETURN value", 2) == "Return return RETURN value"  # two distinct words
    assert rarest_terms("value_type return", 2) == "value type"  # words as the full-text index splits them
