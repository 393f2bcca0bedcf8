"""What the CLI says, end to end (real `semcode` subprocesses, a real LanceDB in tmp_path, the tiny random model), and
the pure pieces behind it checked on tables: a mistyped option or command, no index yet, a no-op re-index's time,
the progress line and its ETA, one relevance scale, a readable `status`, and which lines are 1-based or 0-based."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from indexer.index import IndexReport
from lsp_server.cli_output import eta, print_report, readable_size, status_lines
from semcode.relevance import MODES, Mode, relevance
from tests.test_cli_first_minute import Indexed, cli, env_with, write_repo


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Indexed:
    """A repository called `semcode` (the progress line once read `semcode: semcode: ...`), 4 files, indexed once."""
    base = tmp_path_factory.mktemp("messages")
    done = Indexed(write_repo(base / "semcode", 4), base / "index", str(model))
    out = cli("index", str(done.root), *done.flags())
    assert out.returncode == 0, out.stderr
    base.joinpath("first-index.log").write_text(out.stderr)  # (for the progress test)
    return done


# -- 1. a mistyped option or command -----------------------------------------------------------------------------------

MISTAKES = [  # the command line, the usage line it shows, the hint
    (["search", "--limt", "5"], "usage: semcode search ", "did you mean --limit?"),
    (["search", "value", "--limt=5", "--jsn"], "usage: semcode search ", "did you mean --limit or --json?"),
    (["daemon", "serve", "--idel", "3"], "usage: semcode daemon serve ", "did you mean --idle?"),
    (["indx", "."], "usage: semcode ", "did you mean index?"),
    (["search", "value", "--mode", "hybird"], "usage: semcode search ", "did you mean hybrid?"),
]


@pytest.mark.parametrize(("argv", "usage", "hint"), MISTAKES, ids=[" ".join(m[0]) for m in MISTAKES])
def test_a_mistyped_option_or_command_shows_its_usage_and_the_nearest_name(argv: list[str], usage: str, hint: str):
    out = cli(*argv)
    assert out.returncode == 2 and out.stdout == "", out
    assert out.stderr.startswith(usage) and out.stderr.rstrip().endswith(hint), out.stderr
    assert "Traceback" not in out.stderr


def test_an_option_like_nothing_known_gets_no_hint() -> None:
    out = cli("search", "value", "--zzzzzz")
    assert out.returncode == 2 and out.stderr.startswith("usage: semcode search ")
    assert out.stderr.rstrip().endswith("semcode search: error: unrecognized arguments: --zzzzzz"), out.stderr


# -- 2. no index yet ---------------------------------------------------------------------------------------------------


def test_indexes_with_none_says_so_and_where_they_are_kept(tmp_path: Path) -> None:
    env = env_with(XDG_CACHE_HOME=str(tmp_path / "cache"))
    kept = tmp_path / "cache" / "semcode" / "indexes"
    out = cli("indexes", env=env)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == f"no indexes yet in {kept}, where semcode keeps them; make one with: semcode index PATH\n"
    named = cli("indexes", "--index-dir", str(tmp_path / "elsewhere"), env=env)
    assert named.returncode == 0 and named.stdout.startswith(f"no index in {tmp_path / 'elsewhere'}, nor in {kept}")
    as_json = cli("indexes", "--json", env=env)  # no object on stdout; the line on stderr
    assert (as_json.returncode, as_json.stdout) == (0, "") and str(kept) in as_json.stderr


# -- 3. a no-op re-index reports the command's time --------------------------------------------------------------------


def test_the_report_gives_the_commands_time_not_the_runs(capsys: pytest.CaptureFixture[str]) -> None:
    unchanged = IndexReport(files_seen=3, files_unchanged=3, seconds=0.01, searchable_seconds=0.0)
    print_report(Path("/r"), "/i", unchanged, 4.83)
    assert capsys.readouterr().out.startswith("/r: 3 files (0 changed, 3 unchanged, 0 deleted), 0 chunks written, "
                                              "0 encoded (0 tokens) in 4.8 s; index: /i")  # fmt: skip
    changed = IndexReport(files_seen=3, files_changed=3, seconds=2.0, searchable_seconds=0.5)
    print_report(Path("/r"), "/i", changed, 5.0)  # phase 1 ended 0.5 s into a run that began 3 s into the command
    assert " in 5.0 s (searchable by text after 3.5 s); " in capsys.readouterr().out
    print_report(Path("/r"), "/i", changed)  # one of several repositories: no time on its line
    assert " in " not in capsys.readouterr().out


def test_a_no_op_reindex_reports_the_wall_time(indexed: Indexed) -> None:
    again = cli("index", str(indexed.root), *indexed.flags(), "--json")
    assert again.returncode == 0, again.stderr
    run = json.loads(again.stdout)[str(indexed.root)]
    assert run["files_changed"] == 0 and run["wall_seconds"] >= run["seconds"]  # the run is part of the command
    text = cli("index", str(indexed.root), *indexed.flags(), "--quiet")
    assert text.returncode == 0 and re.search(r"\(0 tokens\) in \d+\.\d s; index: ", text.stdout), text.stdout


# -- 4. the progress line and its ETA ----------------------------------------------------------------------------------


def test_the_progress_line_names_the_repository_once(indexed: Indexed) -> None:
    said = indexed.root.parent.joinpath("first-index.log").read_text().splitlines()
    assert "semcode: indexing semcode: 4/4 files, 8 chunks" in said, said
    assert not [line for line in said if line.startswith("semcode: semcode:")], said


ETAS = [  # done, total, seconds so far -> the ETA shown (None: none yet)
    (0, 100, 10.0, None),  # nothing done: no pace yet
    (50, 100, 4.9, None),  # under ETA_AFTER_S: the first batches' pace says little
    (1, 100, 60.0, None),  # under ETA_AFTER_SHARE of the work
    (100, 100, 60.0, None),  # done
    (10, 100, 6.0, "55s"),  # 54 s left, to 5 s
    (50, 100, 5.0, "5s"),
    (99, 100, 10.0, "5s"),  # never "0s" while work is left
    (25, 100, 30.0, "1m30s"),  # 90 s, to 10 s
    (20, 100, 17.3, "1m10s"),  # 69.2 s, to 10 s
    (10, 100, 120.0, "18m00s"),  # 1080 s, to whole minutes
    (2, 100, 100.0, "1h22m"),  # 4900 s
]


@pytest.mark.parametrize(("done", "total", "elapsed", "expected"), ETAS)
def test_eta(done: int, total: int, elapsed: float, expected: str | None) -> None:
    assert eta(done, total, elapsed) == expected


def test_eta_keeps_steady_at_a_steady_pace() -> None:
    """At a constant pace, with the phase's first seconds slower (a model loading), the ETA shown only falls."""
    shown, done = [], 0.0
    for second in range(1, 120):
        done += 0.2 if second < 10 else 1.0
        left = eta(done, 120, float(second))
        if left is not None:
            minutes, _, seconds = left.rstrip("s").partition("m")
            shown.append(int(minutes) * 60 + int(seconds) if seconds else int(minutes))
    assert shown and shown == sorted(shown, reverse=True), shown


# -- 5. one relevance scale --------------------------------------------------------------------------------------------

RELEVANCE: list[tuple[Mode, float, float]] = [  # mode, raw score -> relevance (to 2 places)
    ("hybrid", 0.0, 0.0),
    ("hybrid", -0.1, 0.0),
    ("hybrid", 0.5, 0.5),
    ("hybrid", 1.1, 0.69),  # the best hit of both retrievers
    ("hybrid", 2.1, 0.81),  # ... that also defines the queried symbol
    ("semantic", 0.62, 0.62),  # cosine similarity: itself
    ("semantic", -0.3, 0.0),
    ("semantic", 1.0, 1.0),
    ("related", 0.84, 0.84),
    ("lexical", 0.0, 0.0),
    ("lexical", 6.0, 0.5),
    ("lexical", 11.0, 0.65),
    ("lexical", 60.0, 0.91),
]


@pytest.mark.parametrize(("mode", "score", "expected"), RELEVANCE)
def test_relevance(mode: Mode, score: float, expected: float) -> None:
    assert round(relevance(mode, score), 2) == expected


@pytest.mark.parametrize("mode", MODES)
def test_relevance_is_monotone_and_within_0_1(mode: Mode) -> None:
    scores = [-1.0, 0.0, 0.01, 0.1, 0.3, 0.5, 0.9, 1.0, 1.5, 3.0, 10.0, 30.0, 1000.0]
    values = [relevance(mode, s) for s in scores]
    assert values == sorted(values) and all(0.0 <= v <= 1.0 for v in values), values


def test_relevance_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown search mode 'rrf'"):
        relevance("rrf", 0.03)  # type: ignore[arg-type]


HIT = re.compile(r"^pkg/mod_\d+\.py:\d+-\d+  function \w+  relevance [01]\.\d\d  \[[\w:+]+\]$")


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "lexical"])
def test_search_shows_relevance_and_json_keeps_the_raw_score(indexed: Indexed, mode: str) -> None:
    text = cli("search", "scale value", "--mode", mode, *indexed.flags(), cwd=indexed.root)
    assert text.returncode == 0 and text.stdout, text.stderr
    assert all(HIT.match(line) for line in text.stdout.splitlines()), text.stdout
    as_json = cli("search", "scale value", "--mode", mode, "--json", *indexed.flags(), cwd=indexed.root)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert rows and all(round(relevance(mode, r["score"]), 4) == r["relevance"] for r in rows)  # type: ignore[arg-type]
    shown = [float(line.split("relevance ")[1][:4]) for line in text.stdout.splitlines()]
    assert shown == [round(r["relevance"], 2) for r in rows]


def test_related_shows_relevance(indexed: Indexed) -> None:
    out = cli("related", f"{indexed.root}/pkg/mod_1.py:1", *indexed.flags())
    assert out.returncode == 0, out.stderr
    first, *hits = out.stdout.splitlines()
    assert first.startswith("related to pkg/mod_1.py:1-") and hits and all(HIT.match(h) for h in hits), out.stdout


# -- 6. status a person can read ---------------------------------------------------------------------------------------

STATS = {
    "model_id": "m", "dim": 64, "rows": 1660, "embedded": "82%", "rows_pending": 300, "rows_text_only": 2,
    "files": 63, "skipped": 4, "vectors": 1400, "unindexed_text_rows": 0, "bytes": 12_345_678,
    "versions": {"chunks_m_ab12": 12, "vectors_m_ab12": 3, "files_m_ab12": 5}, "shards": 2,
}  # fmt: skip


def test_status_lines() -> None:
    assert status_lines(STATS, "m") == [
        "files: 63 indexed, 4 skipped",
        "chunks: 1660, 82% embedded (300 waiting for a vector, 2 searched by text only)",
        "vectors: 1400 cached by chunk content, 64 dimensions",
        "size on disk: 12.3 MB (the whole index folder)",
        "table versions kept: chunks 12, files 5, vectors 3",
        "rows not in the full-text index yet: 0 (searched without it until then)",
        "shards: 2",  # a figure of no known kind: as it is
    ]
    assert status_lines({}, "m") == []
    assert status_lines({"model_id": "other"}, "m") == ["model_id: other"]


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (999, "999 B"), (46_432, "46.4 KB"), (3e9, "3.0 GB")])
def test_readable_size(size: float, text: str) -> None:
    assert readable_size(size) == text


def test_status_prints_readable_lines_and_json_keeps_the_raw_figures(indexed: Indexed) -> None:
    text = cli("status", "--repo", str(indexed.root), *indexed.flags())
    assert text.returncode == 0, text.stderr
    assert "  files: 4 indexed, 0 skipped\n" in text.stdout and "  table versions kept: chunks " in text.stdout
    assert re.search(r"^  size on disk: \d+\.\d [KM]B ", text.stdout, re.MULTILINE), text.stdout
    assert "{" not in text.stdout and "bytes" not in text.stdout, text.stdout
    raw = json.loads(cli("status", "--json", "--repo", str(indexed.root), *indexed.flags()).stdout)
    assert isinstance(raw["bytes"], int) and raw["bytes"] > 0 and raw["files"] == 4
    assert {name.split("_")[0] for name in raw["versions"]} == {"chunks", "files", "vectors"}


# -- 7. 1-based text, 0-based JSON: said in the helps and in the JSON --------------------------------------------------


@pytest.mark.parametrize("command", ["search", "related", "chunks"])
def test_helps_say_which_lines_are_1_based_and_which_0_based(command: str) -> None:
    out = cli(command, "--help")
    text = " ".join(out.stdout.split())
    assert out.returncode == 0 and "1-based in the text output and 0-based in --json" in text, text
    assert '"lines": "0-based"' in text, text


def test_every_json_hit_says_its_lines_are_0_based(indexed: Indexed) -> None:
    found = cli("search", "scale", "--json", "--mode", "lexical", *indexed.flags(), cwd=indexed.root)
    related = cli("related", f"{indexed.root}/pkg/mod_1.py:1", "--json", *indexed.flags())
    for out in (found, related):
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert rows and all(r["lines"] == "0-based" for r in rows), out.stdout + out.stderr
    query = ["search", "shift_2", "--mode", "lexical", "--limit", "1", *indexed.flags()]
    text = cli(*query, cwd=indexed.root).stdout
    out = cli(*query, "--json", cwd=indexed.root)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 1, (out.returncode, out.stdout, out.stderr)  # (once empty, under heavy load: say why)
    (row,) = rows
    assert text.startswith(f"pkg/mod_2.py:{row['start_line'] + 1}-{row['end_line'] + 1}  "), (text, row)
