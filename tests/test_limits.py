"""The limits on a request's size (``semcode/limits.py``), through every front door: the Python API (a table of
cases through one ``check`` helper), the CLI and MCP in-process, and one LSP session over stdio. A real index on
disk of a small repository, the tiny random model; lexical search for exact assertions.

The issue's cases failed before the limits: a 10 MB query ran for minutes and then asked LanceDB for 28 GB; 1,000
globs or a 100,000-character language name held the query thread for minutes; line 10**20 and a 100,000-character
glob were internal errors (one quoting the SQL filter); ``[^]].py`` was refused as a broken regex.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcp import Client
from pygls.exceptions import JsonRpcInvalidParams

import semcode
from indexer.sql import glob_to_regex
from lsp_server.cli import main as cli_main
from mcp_server.tools import build_server
from semcode.api import Hit
from semcode.limits import (
    MAX_GLOB_CHARS,
    MAX_LANGUAGES,
    MAX_LIMIT,
    MAX_LINES,
    MAX_PATH_GLOBS,
    MAX_QUERY_CHARS,
    MAX_QUERY_TOKENS,
    LimitWarning,
    SearchTimeout,
    model_text,
)
from semcode.query import EmptyFilter, SearchQuery
from tests.test_lsp import request, session, wait_until_settled

pytestmark = pytest.mark.timeout(180)

BIG_QUERY = "zebra " * 1_747_626  # 10 MB, the query
HUGE = "p" * 100_000
SQL_WORDS = ("regexp_like", "start_line <=", "repo =", "language IN", "Float64")  # never in a message
ZOO = "def feed_zebra(zebra):\n    return zebra.eat('grass')\n\n\ndef groom_zebra(zebra):\n    zebra.brush()\n"
FILES = {
    "src/zoo.py": ZOO,
    "src/a.py": "def zebra_a():\n    return 'zebra'\n",
    "src/].py": "def zebra_bracket():\n    return 'zebra'\n",
    "src/ab.py": "def zebra_ab():\n    return 'zebra'\n",
    "docs/zebra.md": "# Zebra\n\nStripes of a zebra.\n",
}
LANGUAGES = [
    "python", "markdown", "go", "rust", "java", "c", "cpp", "typescript", "tsx", "javascript",
    "ruby", "php", "kotlin", "swift", "scala", "bash", "csharp", "json", "yaml", "toml",
]  # fmt: skip
# the worst search found within every limit: hybrid, the longest query of the most-repeated common word, the
# most globs of the longest length with the most wildcards, the most languages, the largest limit
WORST = SearchQuery(
    ("zebra " * MAX_QUERY_CHARS)[:MAX_QUERY_CHARS],
    MAX_LIMIT,
    "hybrid",
    [(f"**/{i}" + "*a?" * MAX_GLOB_CHARS)[:MAX_GLOB_CHARS] for i in range(MAX_PATH_GLOBS)],
    LANGUAGES,
)


def make_repo(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("limits") / "repo")


@pytest.fixture(scope="module")
def index(repo: Path, model: Path) -> Iterator[semcode.Index]:
    with semcode.open(repo, repo.parent / "index", model=str(model)) as index:
        index.update()
        yield index


# -- the Python API: one table, one helper -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[semcode.Index], Any]
    error: str | None = None  # a part of the ValueError's message (and no SQL in it)
    paths: set[str] | None = None  # the hits' paths
    warning: str | None = None  # a part of the LimitWarning's message


def search(**kw: Any) -> Callable[[semcode.Index], Any]:
    return lambda index: index.search(**{"query": "zebra", "mode": "lexical", "limit": 50} | kw)


def related(line: int, limit: int = 10, **kw: Any) -> Callable[[semcode.Index], Any]:
    """``Engine.related`` (the Python API's ``related`` has no globs or languages), its hits as the API's."""

    def call(index: semcode.Index) -> Any:
        folder, rel = index.engine.locate("src/zoo.py")
        return [Hit.from_store(h) for h in index.engine.related(folder, rel, line, limit, **kw)[1]]

    return call


CASES = [
    Case("query 10 MB is cut", search(query=BIG_QUERY), paths=set(FILES),
         warning="cut from 10,485,756 to 4,000 characters"),
    Case("globs: 1,000", search(paths=["*.py"] * 1000), error=f"at most {MAX_PATH_GLOBS} globs"),
    Case("globs: the most", search(paths=[f"src/{c}*.py" for c in "abcdefghijklmnopqrstuvwxyz"][:MAX_PATH_GLOBS]),
         paths={"src/a.py", "src/ab.py"}),
    Case("glob: 100,000 characters", search(paths=["a" * 100_000]), error=f"longer than {MAX_GLOB_CHARS} characters"),
    Case("glob: the longest", search(paths=["src/" + "*" * (MAX_GLOB_CHARS - 7) + ".py"]),
         paths={"src/a.py", "src/ab.py", "src/].py", "src/zoo.py"}),
    Case("glob [^]].py", search(paths=["[^]].py"]), paths={"src/a.py"}),
    Case("glob [!]].py", search(paths=["[!]].py"]), paths={"src/a.py"}),
    Case("glob []].py", search(paths=["[]].py"]), paths={"src/].py"}),
    Case("glob [z-a].py", search(paths=["[z-a].py"]), error="matches nothing"),
    Case("languages: 100,000 characters", search(languages=[HUGE]), error="unknown language"),
    Case("languages: too many", search(languages=["python"] * (MAX_LANGUAGES + 1)),
         error=f"at most {MAX_LANGUAGES} names"),
    Case("languages: any case", search(languages=["Markdown"]), paths={"docs/zebra.md"}),
    Case("limit 0", search(limit=0), error=f"from 1 to {MAX_LIMIT}"),
    Case("limit past the most", search(limit=MAX_LIMIT + 1), error=f"from 1 to {MAX_LIMIT}"),
    Case("related: line 10**20", related(10**20), error=f"from 0 to {MAX_LINES - 1:,}"),
    Case("related (API): line 10**20", lambda index: index.related("src/zoo.py", 10**20), error="line must be"),
    Case("related: line -1", related(-1), error="line must be an integer"),
    Case("related: limit 10**6", related(0, 10**6), error=f"from 1 to {MAX_LIMIT}"),
    Case("related: glob 100,000 characters", related(0, path_glob="a" * 100_000), error="longer than"),
    Case("related: glob [^]].py", related(0, path_glob="[^]].py"), paths={"src/a.py"}),
    Case("related: languages", related(0, languages=[HUGE]), error="unknown language"),
    Case("read: line 10**20", lambda index: index.read("src/zoo.py", 10**20), error="start_line must be"),
]  # fmt: skip


def check(index: semcode.Index, case: Case) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if case.error is not None:
            with pytest.raises(ValueError) as raised:
                case.call(index)
            message = str(raised.value)
            assert case.error in message and not any(w in message for w in SQL_WORDS), message
            assert len(message) < 1000, message  # a huge input is not echoed
            return
        result = case.call(index)
    cut = [str(w.message) for w in caught if issubclass(w.category, LimitWarning)]
    assert len(cut) == (case.warning is not None) and all(case.warning in w for w in cut), cut
    if case.paths is not None:
        assert {h.path for h in result} == case.paths


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_python_api(index: semcode.Index, case: Case) -> None:
    check(index, case)


def test_the_query_is_cut_for_the_model_and_the_lexical_search_alike() -> None:
    q = SearchQuery(BIG_QUERY, mode="hybrid")
    assert len(q.query) == MAX_QUERY_CHARS and q.query == BIG_QUERY[:MAX_QUERY_CHARS] and len(q.warnings) == 1
    assert SearchQuery("zebra " * 100).warnings == ()
    assert SearchQuery("q", paths=["*.py", "*.py", "*.go"], languages=["Go", "go"]).paths == ("*.py", "*.go")


def test_the_model_reads_the_first_tokens_of_a_long_query(index: semcode.Index) -> None:
    encoder = index.engine.query_encoder()
    long = ("a, b " * MAX_QUERY_CHARS)[:MAX_QUERY_CHARS]
    text = model_text(long, encoder.tokenizer.count)
    assert encoder.tokenizer.count([text])[0] <= MAX_QUERY_TOKENS < encoder.tokenizer.count([long[: len(text) + 1]])[0]
    np.testing.assert_allclose(index.engine.query_vector(long), encoder.encode([text], kind="query")[0], atol=1e-6)


def test_the_worst_search_within_the_limits_answers(index: semcode.Index) -> None:
    """No figure is asserted (benchmarks print them); the module's timeout catches a search that runs away."""
    assert WORST.warnings == ()
    assert (len(WORST.paths or ()), len(WORST.languages or ())) == (MAX_PATH_GLOBS, MAX_LANGUAGES)
    # no path matches: every sub-search scans every row, and the answer says that the filters match no file (it was
    # an empty list, which looked like "nothing relevant"); the message names three globs, cut, and counts the rest
    with pytest.raises(EmptyFilter, match=r"no indexed file matches the filter \(path '\*\*/0\*a.*and 34 more\)") as e:
        index.engine.search(WORST)
    assert len(str(e.value)) < 600
    hits = index.engine.search(SearchQuery(WORST.query, MAX_LIMIT, "hybrid", [], WORST.languages))
    assert {h.chunk.path for h in hits} == set(FILES)


def test_a_search_past_its_deadline_is_an_error(index: semcode.Index) -> None:
    with pytest.raises(SearchTimeout, match=r"deadline of 0 s.*after 0 of 2 searches"):
        index.engine.search(SearchQuery("zebra", paths=["*.py", "*.md"]), deadline_s=0)
    assert index.engine.search(SearchQuery("zebra", mode="lexical"))  # the next one answers


@pytest.mark.parametrize(
    ("glob", "regex"),
    [
        ("[^]].py", r"^(?:.*/)?[^/\]]\.py$"),
        ("[!]]x", r"^(?:.*/)?[^/\]]x$"),
        ("[]]", r"^(?:.*/)?[\]]$"),
        ("[]a-c-]", r"^(?:.*/)?[\]a-c\-]$"),
        ("[a&&b~~c]", r"^(?:.*/)?[a\&\&b\~\~c]$"),  # Rust would read set operations
        ("a[b", r"^(?:.*/)?a\[b$"),
        ("***/x", r"^(?:.*/)?x$"),
        ("a****b", r"^(?:.*/)?a.*b$"),
        ("[c-a]x", None),  # a class that matches nothing: refused
    ],
)
def test_glob_classes_as_fnmatch_reads_them(glob: str, regex: str | None) -> None:
    if regex is None:
        with pytest.raises(ValueError, match="matches nothing"):
            glob_to_regex(glob)
    else:
        assert glob_to_regex(glob) == regex


# -- the CLI, in-process -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "out", "err"),
    [
        (["search", BIG_QUERY, "--mode", "lexical"], 0, "src/zoo.py", "warning: the query was cut"),
        (["search", "zebra", "--lang", HUGE], 2, "", "unknown language"),
        (["search", "zebra", "--path", "a" * 100_000], 2, "", f"longer than {MAX_GLOB_CHARS} characters"),
        (["search", "zebra", "--path", "[^]].py", "--mode", "lexical"], 0, "src/a.py", ""),
        (["search", "zebra", "--limit", str(MAX_LIMIT + 1)], 2, "", f"from 1 to {MAX_LIMIT}"),
        (["related", "{repo}/src/zoo.py:100000000000000000000"], 2, "", "line must be an integer"),
    ],
    ids=["query-10MB", "languages", "glob-length", "glob-class", "limit", "related-line"],
)
def test_cli(
    index: semcode.Index, repo: Path, model: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int,
    out: str, err: str,
) -> None:  # fmt: skip
    flags = ["--model", str(model), "--index-dir", str(repo.parent / "index"), "--no-daemon"]
    assert cli_main([a.replace("{repo}", str(repo)) for a in args] + flags) == code
    captured = capsys.readouterr()
    assert out in captured.out and err in captured.err, captured.err[:2000]
    assert not any(w in captured.err for w in SQL_WORDS) and len(captured.err) < 2000


# -- MCP, in-process ---------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_mcp(index: semcode.Index) -> None:
    async with Client(build_server(index.engine)) as client:

        async def call(tool: str, args: dict[str, Any]) -> tuple[bool, Any, str]:
            result = await asyncio.wait_for(client.call_tool(tool, args), 60)
            text = "".join(getattr(c, "text", "") for c in result.content)
            return result.is_error, result.structured_content, text

        failed, found, text = await call("search_code", {"query": BIG_QUERY, "mode": "lexical"})
        assert not failed and found["hits"] and "cut from 10,485,756" in found["warnings"][0], text[:500]
        assert text.startswith("(note: the query was cut")
        tools = {t.name: t.input_schema for t in (await client.list_tools()).tools}
        paths = tools["search_code"]["properties"]["paths"]["anyOf"][0]
        assert (paths["maxItems"], paths["items"]["maxLength"]) == (MAX_PATH_GLOBS, MAX_GLOB_CHARS)
        refused = [
            ("search_code", {"query": "zebra", "paths": ["*.py"] * 1000}),
            ("search_code", {"query": "zebra", "paths": ["a" * 100_000]}),
            ("search_code", {"query": "zebra", "languages": [HUGE]}),
            ("related_code", {"path": "src/zoo.py", "line": 10**20}),
        ]
        for tool, args in refused:
            failed, _, text = await call(tool, args)
            assert failed and not any(w in text for w in SQL_WORDS), text[:500]
        failed, found, text = await call("search_code", {"query": "zebra", "mode": "lexical", "paths": ["[^]].py"]})
        assert not failed and {h["path"] for h in found["hits"]} == {"src/a.py"}, text


# -- the LSP server over stdio: one session ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_lsp(tmp_path: Path, model: Path) -> None:
    root = make_repo(tmp_path / "repo")
    async with session(root, {"indexDir": str(tmp_path / "index"), "model": str(model)}) as client:
        await wait_until_settled(client)
        answer = await request(client, "semcode/search", {"query": BIG_QUERY, "mode": "lexical"})
        assert answer.results and "cut from 10,485,756" in answer.warnings[0]
        uri = (root / "src/zoo.py").as_uri()
        params = {"textDocument": {"uri": uri}, "position": {"line": 10**20, "character": 0}}
        with pytest.raises(JsonRpcInvalidParams, match="line") as raised:
            await request(client, "semcode/related", params)
        assert not any(w in str(raised.value) for w in SQL_WORDS)
        answer = await request(client, "semcode/search", {"query": "zebra", "mode": "lexical", "paths": ["[^]].py"]})
        assert {r.uri.rsplit("/", 1)[-1] for r in answer.results} == {"a.py"}
