"""The ``semcode`` command line: every command, its flags and their defaults (argparse, only here and in
``cli.py``). ``--help`` of each command shows each default."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from semcode.limits import MAX_GLOB_CHARS, MAX_LANGUAGES, MAX_LIMIT, MAX_QUERY_CHARS

from .daemon_client import IDLE_S, INDEX_IDLE_S

MODEL_HELP = (
    "checkpoint folder or hub id (default: $SEMCODE_MODEL, then `model` in ~/.config/semcode/config.toml, "
    "then the model shipped with semcode)"
)
# the limits are semcode.limits' (the core enforces them; README "Limits")
GLOB_NOTE = f"(at most {MAX_GLOB_CHARS} characters)"
LANG_HELP = f"only this language, e.g. python (repeatable, at most {MAX_LANGUAGES} times)"
LIMIT_HELP = f"how many hits (default 10) from 1 to {MAX_LIMIT}"
LINES_NOTE = (
    'Lines are 1-based in the text output and 0-based in --json (every JSON object says so: "lines": "0-based").'
)
HITS_JSON = (
    'one JSON object per hit: {"path", "repo", "start_line", "end_line", "symbol", "kind", "language", "score", '
    '"relevance", "reasons", "lines"} (0-based lines, end inclusive; score: the raw figure of the mode: hybrid '
    "ranking score, cosine similarity, or BM25; relevance: the 0-1 figure the text output shows; reasons: the "
    "signals that placed the hit)"
)


def _encoder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if available)")
    p.add_argument(
        "--dtype",
        default=None,
        choices=["fp32", "bf16", "fp16", "int8"],
        help="int8: CPU only, int8 linear layers; default: int8 on x86 CPUs with VNNI, else bf16 on CUDA or CPUs "
        "with native bf16, else fp32 (fp32 or bf16 turns int8 off)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--max-tokens", type=int, default=None, help="truncate longer texts (counted and reported)")


def _columns() -> int:
    """The width argparse wraps help at, as it computes it (``shutil.get_terminal_size``), without importing
    shutil: argparse builds a formatter for every argument it adds, and shutil (with bz2 and lzma) costs the CLI's
    warm path 3 ms."""
    with contextlib.suppress(ValueError):
        if int(os.environ.get("COLUMNS", "0")) > 0:
            return int(os.environ["COLUMNS"])
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class _RawDescription(argparse.RawDescriptionHelpFormatter, _Formatter):
    pass


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help formatter (and its subcommands') needs no shutil (see ``_columns``), and whose
    errors lead somewhere: ``parse`` reports an unknown option with the usage of the command it was given to, and
    an unknown option or choice (a command, a --mode) with the nearest known one ("did you mean --limit?")."""

    def __init__(self, **kwargs: Any) -> None:
        self.option_names: list[str] = []  # every option string of this (sub)command, for "did you mean"
        self.subcommands: Any = None  # the action of ``add_subparsers``: its ``dest`` and ``choices`` (name -> parser)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(**kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.option_names += action.option_strings
        return action

    def add_subparsers(self, **kwargs: Any) -> Any:
        self.subcommands = super().add_subparsers(**kwargs)
        return self.subcommands

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """``parse_args``, except that what no parser knows is reported by the innermost command given (its usage
        line, a "did you mean"), not by the top level. Exits 2 on an error, as argparse does."""
        args, extras = self.parse_known_args(argv)
        if extras:
            chosen = self.chosen(args)
            chosen.error(f"unrecognized arguments: {' '.join(extras)}{near(extras, chosen.option_names)}")
        return args

    def chosen(self, args: argparse.Namespace) -> Parser:
        """The innermost (sub)command parser that `args` selected (``semcode daemon serve`` -> serve's)."""
        parser = self
        while parser.subcommands is not None:
            inner = parser.subcommands.choices.get(getattr(args, parser.subcommands.dest, None) or "")
            if not isinstance(inner, Parser):
                break
            parser = inner
        return parser

    def error(self, message: str) -> NoReturn:
        found = INVALID_CHOICE.search(message)
        if found is not None:  # "argument COMMAND: invalid choice: 'serch' (choose from 'demo', ...)"
            choices = [c.strip().strip("'\"") for c in found.group(2).split(",")]
            message += near([found.group(1)], choices)
        super().error(message)


INVALID_CHOICE = re.compile(r"invalid choice: '?([^' ]*)'? \(choose from (.*)\)")


def near(given: Sequence[str], known: Sequence[str]) -> str:
    """ "; did you mean --limit?" for the known names closest to the given ones (``difflib``), or ""."""
    import difflib

    close = [difflib.get_close_matches(g.split("=", 1)[0], known, n=1) for g in given]
    found = list(dict.fromkeys(m[0] for m in close if m))
    return f"; did you mean {' or '.join(found)}?" if found else ""


def build_parser() -> Parser:
    parser = Parser(prog="semcode", description="Local semantic code search.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="encode a few code snippets and print their cosine similarities",
        description=(
            "Encodes a few snippets with the model (default: the one shipped with semcode) and prints the "
            "similarity matrix. --tiny uses a tiny ModernBERT with RANDOM weights instead (a smoke test of loading)."
        ),
    )
    demo.add_argument("--model", default=None, help=MODEL_HELP)
    demo.add_argument("--tiny", action="store_true", help="a tiny random model (similarities carry no meaning)")
    _encoder_options(demo)

    enc = sub.add_parser("encode", help="print the embedding of each TEXT (one JSON line per text with --json)")
    enc.add_argument("texts", nargs="+", metavar="TEXT")
    enc.add_argument("--model", default=None, help=MODEL_HELP)
    enc.add_argument("--kind", choices=["document", "query"], default="document")
    enc.add_argument("--json", action="store_true", help="one JSON object per line: {text, vector}")
    _encoder_options(enc)

    ch = sub.add_parser(
        "chunks",
        help="print the chunks of files or folders, and every skipped file with its reason",
        description=(
            "Shows what semcode would index: each chunk (path:lines, language, kind, symbol, tokens) and each "
            "skipped file with the reason. " + LINES_NOTE + " Folders are walked honouring .gitignore, "
            ".git/info/exclude and .semcodeignore."
        ),
    )
    ch.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    ch.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per line: {"path", "language", "start_line", "end_line", "symbol", "kind", '
        '"tokens", "lines"} per chunk (0-based lines), {"path", "skipped"} per skipped file',
    )
    ch.add_argument("--model", default=None, help="checkpoint whose tokenizer counts tokens; " + MODEL_HELP)
    ch.add_argument("--max-tokens", type=int, default=8192, help="token budget of one chunk (default 8192)")
    ch.add_argument("--max-file-size", type=float, default=2.0, help="skip files over this many MB (default 2)")
    ch.add_argument("--include-secrets", action="store_true", help="also chunk .env, *.pem, *.key, id_rsa, ...")
    ch.add_argument(
        "--no-header", action="store_true", help="embed code without its '# Class.method' header line (never a path)"
    )
    ch.add_argument("--show-text", action="store_true", help="also print each chunk's text (text output only)")

    ix = sub.add_parser(
        "index",
        help="index repositories (incremental: only changed files are re-chunked, only new chunks re-encoded)",
        description="Walks each PATH (a repository), chunks changed files, embeds new chunks, writes LanceDB. "
        "With --ray, the repositories go into one index (--index-dir) on a Ray cluster: chunking in Ray tasks, "
        "encoding in an actor pool (one GPU per actor where there are GPUs), one committer; the same index as "
        "without --ray.",
    )
    ix.add_argument("paths", nargs="*", metavar="PATH", type=Path, help="repository roots (at least one, or --repos)")
    _index_options(ix)
    ix.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="index on Ray (the `ray` extra). Without ADDRESS: $RAY_ADDRESS if set, else a Ray started on this "
        "machine for the run; `auto` or HOST:PORT: a running cluster (write --ray=ADDRESS before the repositories)",
    )
    ix.add_argument(
        "--repos",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --ray: also index the repositories listed in FILE (one folder per line, relative to FILE's "
        "folder; blank lines and # comments ignored; git URLs are reported, not cloned)",
    )
    ix.add_argument("--rebuild", action="store_true", help="delete the index first and build it anew")
    ix.add_argument("--max-file-size", type=float, default=2.0, help="skip files over this many MB (default 2)")
    ix.add_argument("--include-secrets", action="store_true", help="also index .env, *.pem, *.key, id_rsa, ...")
    _embed_tokens(ix)
    ix.add_argument("--json", action="store_true", help="print the run's report as one JSON object")
    _quiet(ix)
    _encoder_options(ix)

    se = sub.add_parser(
        "search",
        help="search the index",
        description="Semantic, lexical or hybrid search. Each hit shows its relevance from 0 to 1 (higher is "
        "better; comparable within one answer, not across modes). " + LINES_NOTE,
    )
    se.add_argument("query", help=f"what the code does, in words or code (cut to {MAX_QUERY_CHARS:,} characters)")
    _index_options(se)
    se.add_argument(
        "--mode", choices=["hybrid", "semantic", "lexical"], default="hybrid", help="default: hybrid (both, fused)"
    )
    se.add_argument(
        "--path",
        action="append",
        default=None,
        help=f"only paths matching this glob, e.g. 'src/**/*.py'; '!tests/**' leaves paths out; repeatable {GLOB_NOTE}",
    )
    se.add_argument("--files", action="store_true", help="one hit per file (its best chunk)")
    se.add_argument("--lang", action="append", default=None, help=LANG_HELP)
    se.add_argument("--repo", type=Path, default=None, help="only this repository (default: all in the index)")
    se.add_argument("--limit", type=int, default=10, help=LIMIT_HELP)
    se.add_argument("--json", action="store_true", help=HITS_JSON)
    _no_daemon(se)
    _encoder_options(se)

    wa = sub.add_parser(
        "watch",
        help="index a repository, then keep the index current as files change (until Ctrl-C)",
        description="Runs `semcode index PATH`, then re-indexes changed files as they are saved (debounced per file).",
    )
    wa.add_argument("path", metavar="PATH", type=Path)
    _index_options(wa)
    wa.add_argument(
        "--debounce", type=float, default=0.3, help="seconds a file must be quiet before it is re-indexed (default 0.3)"
    )
    wa.add_argument("--max-file-size", type=float, default=2.0, help="skip files over this many MB (default 2)")
    wa.add_argument("--include-secrets", action="store_true", help="also index .env, *.pem, *.key, id_rsa, ...")
    _embed_tokens(wa)
    wa.add_argument(
        "--json", action="store_true", help='one JSON event per line: {"time", "event", ...} (started, update, stopped)'
    )
    _quiet(wa)
    _encoder_options(wa)

    rel = sub.add_parser(
        "related",
        help="code like the chunk at FILE:LINE[:COL] (the chunk itself and overlapping spans are not results)",
        description="Code like the chunk at FILE:LINE[:COL], by the chunks' vectors; relevance (0-1) is their "
        "cosine similarity. The chunk itself and spans overlapping it are not results. " + LINES_NOTE,
    )
    rel.add_argument("location", metavar="FILE:LINE[:COL]", help="1-based line (and column)")
    _index_options(rel)
    rel.add_argument("--repo", type=Path, default=None, help="repository root (default: the indexed root holding FILE)")
    rel.add_argument("--path", default=None, help=f"only paths matching this glob ('!glob': none matching) {GLOB_NOTE}")
    rel.add_argument("--lang", action="append", default=None, help=LANG_HELP)
    rel.add_argument("--limit", type=int, default=10, help=LIMIT_HELP)
    rel.add_argument("--json", action="store_true", help="same objects as search --json (0-based lines)")
    _no_daemon(rel)

    st = sub.add_parser(
        "status",
        help="what the index holds, and which files were skipped and why",
        description="What the index of a repository holds: files, chunks, how many are embedded, its size on "
        "disk and the table versions it keeps, then each skipped file and why. --json gives the raw counts and "
        "bytes.",
    )
    _index_options(st)
    st.add_argument("--repo", type=Path, default=None, help="repository (default: the one holding the cwd)")
    st.add_argument("--json", action="store_true", help="one JSON object (raw counts, bytes, versions per table)")
    _no_daemon(st)

    sub.add_parser(
        "lsp",
        help="run the language server over stdio (settings come from the client's initializationOptions)",
        description="The language server over stdio; editors start it. " + LSP_OPTIONS,
        formatter_class=_RawDescription,
    )

    ls = sub.add_parser(
        "indexes",
        help="list every index folder in the cache: repositories, model, size, last update",
        description="Lists the indexes in the user's cache folder (where `semcode index` keeps them unless told "
        "--index-dir), and those named with --index-dir.",
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per index folder")
    ls.add_argument("--index-dir", action="append", default=None, help="also (or only) these index folders")

    fg = sub.add_parser(
        "forget",
        help="delete the index of REPO (or every index with --all); only folders semcode made are deleted; in an "
        "index shared by several repositories, only REPO's rows are removed",
    )
    fg.add_argument("repos", nargs="*", metavar="REPO", type=Path, help="repository roots whose index to delete")
    fg.add_argument("--all", action="store_true", help="delete every index folder in the cache")
    fg.add_argument("--index-dir", default=None, help="the index folder (default: the one of each REPO)")

    _daemon_parser(sub)

    mc = sub.add_parser(
        "mcp",
        help="run the MCP server for code chatbots and agents (stdio, or streamable HTTP with --http)",
        description=(
            "Serves search_code, related_code, read_code, index_status and reindex over MCP. The roots are indexed "
            "in the background and watched (unless --read-only); searches answer meanwhile."
        ),
    )
    mc.add_argument(
        "roots", nargs="*", metavar="ROOT", type=Path, help="repository roots (default: the current folder)"
    )
    _index_options(mc)
    mc.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=None,
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (e.g. 127.0.0.1:8765: every local user "
        "can reach it, unless --token is set), or on a Unix socket with unix:PATH (mode 0600; PATH's folder must be "
        "yours alone, mode 700, and is made so when missing)",
    )
    mc.add_argument(
        "--read-only",
        action="store_true",
        help="serve an index other processes maintain: no indexing, no watching, no reindex tool",
    )
    mc.add_argument(
        "--token",
        default=None,
        help="bearer token HTTP clients must send, also on loopback (default: $SEMCODE_MCP_TOKEN; required off "
        "loopback)",
    )
    mc.add_argument(
        "--allowed-host",
        metavar="NAME[:PORT]",
        action="append",
        default=[],
        help="a Host header to accept besides this machine's own names and addresses (off loopback; e.g. the name "
        "a reverse proxy forwards); repeatable",
    )
    mc.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: 1 with --read-only, else torch's choice)"
    )
    mc.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        default=None,
        help="every tool answer's budget in tokens, estimated as UTF-8 bytes / 3, from 1,000 to 100,000 (default "
        "8,000; a tool call may set its own with max_tokens); a cut answer says how to get the rest",
    )
    mc.add_argument(
        "--print-config",
        metavar="CLIENT",
        choices=["claude-code", "codex", "cursor", "vscode", "continue"],
        default=None,
        help="print the snippet that makes CLIENT (claude-code, codex, cursor, vscode or continue) start this "
        "installation's semcode mcp with these ROOTs and options, and exit (stdout: the snippet; stderr: where it "
        "goes)",
    )
    return parser


LSP_OPTIONS = """initializationOptions (all optional):
  model       checkpoint folder or hub id (default: $SEMCODE_MODEL, then the config file, then the shipped model)
  indexDir    LanceDB folder (default: the user cache dir, keyed by the workspace root)
  maxFileSize skip files over this many MB (default 2)
  include     gitignore-style lines that re-include paths (default none)
  exclude     gitignore-style lines that exclude paths (default none)
  device      cpu, cuda, ... (default: CUDA if available)
  threads     torch threads for encoding (default 1)
  debounceMs  quiet time before a changed file is re-indexed (default 300)"""


def _daemon_parser(sub: Any) -> None:
    """`semcode daemon status|stop|serve`: the user's one warm daemon (``lsp_server.daemon_client``)."""
    dm = sub.add_parser(
        "daemon",
        help="show or stop the warm daemon that answers search, related and status (the CLI starts it)",
        description="One daemon per user keeps the indexes in use and their models loaded (one copy of each model) "
        "and answers `semcode search`, `related` and `status` over a Unix socket. The first query starts it; it "
        "closes an index unused for 10 minutes and exits after 10 minutes without a request. --no-daemon or "
        "$SEMCODE_NO_DAEMON=1 keeps the CLI cold.",
    )
    actions = dm.add_subparsers(dest="action", required=True, metavar="ACTION")
    st = actions.add_parser("status", help="whether it runs: pid, uptime, memory, the models and indexes it holds")
    st.add_argument("--json", action="store_true", help='one JSON object ({"running": false} when none runs)')
    actions.add_parser("stop", help="stop it, once the answers in progress are done (a later query starts another)")
    sv = actions.add_parser(
        "serve",
        help="run the daemon in the foreground (the CLI starts it this way, in the background, on first use)",
        description="Serves every index and model until idle. With --root and --index-dir, opens that index at "
        "start. Exits at once if a daemon already runs.",
    )
    sv.add_argument(
        "--idle", type=float, default=IDLE_S, help=f"exit after this many idle seconds (default {IDLE_S:g})"
    )
    sv.add_argument(
        "--index-idle",
        type=float,
        default=INDEX_IDLE_S,
        help=f"close an index, and drop a model, unused this many seconds (default {INDEX_IDLE_S:g})",
    )
    sv.add_argument("--root", type=Path, default=None, help="open the index of this repository at start")
    sv.add_argument("--index-dir", default=None, help="the index folder to open at start (with --root)")
    sv.add_argument("--model", default=None, help="the model of that index; " + MODEL_HELP)
    _encoder_options(sv)  # (--threads: the daemon's torch threads, process-wide; default 1)


def _embed_tokens(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--embed-tokens",
        type=int,
        default=None,
        metavar="N",
        help="how many tokens of a chunk its vector reads, its first ones (default 512; chunks stay whole for text "
        "search and answers)",
    )


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress (default: a bar on a terminal, else a line every 5 s)"
    )


def _no_daemon(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="answer in this process only: neither use nor start the warm daemon (also $SEMCODE_NO_DAEMON=1)",
    )


def _index_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index-dir",
        default=None,
        help="LanceDB folder or URI (default: the user cache dir, keyed by the repository root)",
    )
    p.add_argument("--model", default=None, help=MODEL_HELP)
