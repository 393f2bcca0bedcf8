"""The ``semcode`` console entry point.

Commands: ``demo``, ``encode``, ``chunks``, ``index``, ``search``, ``related``, ``status``, ``watch``, ``lsp`` (the
language server over stdio) and ``mcp`` (the MCP server). Each is a few lines over the core, ``semcode``; ``lsp`` and
``mcp`` launch the other front doors through their entry points only. The model: ``--model`` -> ``$SEMCODE_MODEL``
-> ``model`` in the config file -> the model shipped with semcode (``semcode.settings.configured_model``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.index import IndexReport, Progress
    from indexer.store import Hit
    from semcode import Engine, Folder, Settings

MODEL_HELP = (
    "checkpoint folder or hub id (default: $SEMCODE_MODEL, then `model` in ~/.config/semcode/config.toml, "
    "then the model shipped with semcode)"
)
DEMO_TEXTS = [
    "def add(a, b):\n    return a + b",
    "def sum_two(x, y):\n    return x + y",
    "class LRUCache:\n    def get(self, key):\n        return self.data.get(key)",
    "SELECT name FROM users WHERE id = 1",
]


def _encoder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if available)")
    p.add_argument(
        "--dtype",
        default=None,
        choices=["fp32", "bf16", "fp16"],
        help="default: bf16 on CUDA or CPUs with native bf16, else fp32",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--max-tokens", type=int, default=None, help="truncate longer texts (counted and reported)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcode", description="Local semantic code search.")
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
            "skipped file with the reason. Lines are 1-based in the text output and 0-based in --json. "
            "Folders are walked honouring .gitignore, .git/info/exclude and .semcodeignore."
        ),
    )
    ch.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    ch.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per line: {"path", "language", "start_line", "end_line", "symbol", "kind", '
        '"tokens"} per chunk (0-based lines), {"path", "skipped"} per skipped file',
    )
    ch.add_argument("--model", default=None, help="checkpoint whose tokenizer counts tokens; " + MODEL_HELP)
    ch.add_argument("--max-tokens", type=int, default=8192, help="token budget of one chunk (default 8192)")
    ch.add_argument("--max-file-size", type=float, default=2.0, help="skip files over this many MB (default 2)")
    ch.add_argument("--include-secrets", action="store_true", help="also chunk .env, *.pem, *.key, id_rsa, ...")
    ch.add_argument("--no-header", action="store_true", help="embed code without the path/symbol header line")
    ch.add_argument("--show-text", action="store_true", help="also print each chunk's text (text output only)")

    ix = sub.add_parser(
        "index",
        help="index repositories (incremental: only changed files are re-chunked, only new chunks re-encoded)",
        description="Walks each PATH (a repository), chunks changed files, embeds new chunks, writes LanceDB.",
    )
    ix.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    _index_options(ix)
    ix.add_argument("--rebuild", action="store_true", help="delete the index first and build it anew")
    ix.add_argument("--max-file-size", type=float, default=2.0, help="skip files over this many MB (default 2)")
    ix.add_argument("--include-secrets", action="store_true", help="also index .env, *.pem, *.key, id_rsa, ...")
    ix.add_argument("--json", action="store_true", help="print the run's report as one JSON object")
    _encoder_options(ix)

    se = sub.add_parser("search", help="search the index", description="Semantic, lexical or hybrid search.")
    se.add_argument("query")
    _index_options(se)
    se.add_argument("--mode", choices=["hybrid", "semantic", "lexical"], default="hybrid")
    se.add_argument("--path", default=None, help="only paths matching this glob, e.g. 'src/**/*.py'")
    se.add_argument("--lang", action="append", default=None, help="only this language (repeatable)")
    se.add_argument("--repo", type=Path, default=None, help="only this repository (default: all in the index)")
    se.add_argument("--limit", type=int, default=10)
    se.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per hit: {"path", "repo", "start_line", "end_line", "symbol", "kind", "language", '
        '"score", "reasons"} (0-based lines)',
    )
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
    _encoder_options(wa)

    rel = sub.add_parser(
        "related",
        help="code like the chunk at FILE:LINE[:COL] (the chunk itself and overlapping spans are not results)",
    )
    rel.add_argument("location", metavar="FILE:LINE[:COL]", help="1-based line (and column)")
    _index_options(rel)
    rel.add_argument("--path", default=None, help="only paths matching this glob")
    rel.add_argument("--lang", action="append", default=None, help="only this language (repeatable)")
    rel.add_argument("--limit", type=int, default=10)
    rel.add_argument("--json", action="store_true", help="same objects as search --json")

    st = sub.add_parser("status", help="what the index holds, and which files were skipped and why")
    _index_options(st)
    st.add_argument("--repo", type=Path, default=None, help="repository (default: the one holding the cwd)")
    st.add_argument("--json", action="store_true")

    sub.add_parser(
        "lsp",
        help="run the language server over stdio (settings come from the client's initializationOptions)",
    )

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
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (e.g. 127.0.0.1:8765)",
    )
    mc.add_argument(
        "--read-only",
        action="store_true",
        help="serve an index other processes maintain: no indexing, no watching, no reindex tool",
    )
    mc.add_argument(
        "--token",
        default=None,
        help="bearer token HTTP clients must send (default: $SEMCODE_MCP_TOKEN; required off loopback)",
    )
    mc.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser


def _index_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index-dir",
        default=None,
        help="LanceDB folder or URI (default: the user cache dir, keyed by the repository root)",
    )
    p.add_argument("--model", default=None, help=MODEL_HELP)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="semcode: %(message)s")
    from encoder import CheckpointError
    from indexer.store import StoreError

    try:
        return COMMANDS[args.command](args)
    except (CheckpointError, StoreError, ValueError) as e:
        print(f"semcode: error: {e}", file=sys.stderr)
        return 2


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The core's settings from whichever of its flags this command has."""
    from semcode import Settings

    fields = ("model", "index_dir", "device", "dtype", "threads", "max_tokens", "include_secrets")
    given = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    if getattr(args, "max_file_size", None) is not None:
        given["max_file_mb"] = args.max_file_size
    if getattr(args, "debounce", None) is not None:
        given["debounce_s"] = args.debounce
    return Settings(**(given | overrides))


def _engine(args: argparse.Namespace, roots: Sequence[Path], **overrides: Any) -> Engine:
    from semcode import Engine

    return Engine(_settings(args, **overrides), roots)


def _demo(args: argparse.Namespace) -> int:
    from encoder.tiny import write_tiny_checkpoint

    with tempfile.TemporaryDirectory(prefix="semcode-demo-") as tmp:
        model = None
        if args.tiny:
            model = str(write_tiny_checkpoint(Path(tmp) / "tiny-modernbert"))
            print("model: tiny ModernBERT with random weights (4 layers, 64 wide): similarities carry no meaning")
        enc = _engine(args, [], **({"model": model} if model else {})).load_encoder()
        print(f"model: {enc.name}")
        vectors = enc.encode(DEMO_TEXTS)
    print(
        f"encoder: dim={enc.dim} max_tokens={enc.max_tokens} device={enc.device} dtype={enc.dtype} "
        f"attention={enc.backend} pooling={enc.pooling}"
    )
    for i, text in enumerate(DEMO_TEXTS):
        print(f"  [{i}] {text.splitlines()[0]}")
    sims = vectors @ vectors.T
    print("cosine similarity:")
    print("       " + "  ".join(f"[{j}]  " for j in range(len(DEMO_TEXTS))))
    for i, row in enumerate(sims):
        print(f"  [{i}] " + "  ".join(f"{v:+.3f}" for v in row))
    return 0


def _encode(args: argparse.Namespace) -> int:
    enc = _engine(args, []).load_encoder()
    vectors = enc.encode(args.texts, kind=args.kind)
    for text, vec in zip(args.texts, vectors, strict=True):
        if args.json:
            print(json.dumps({"text": text, "vector": [round(float(x), 6) for x in vec]}))
        else:
            head = " ".join(f"{x:+.4f}" for x in vec[:8])
            print(f"{text[:40]!r}: dim={len(vec)} [{head} ...]")
    return 0


def _chunks(args: argparse.Namespace) -> int:
    from encoder import load_tokenizer
    from indexer.chunk_paths import chunk_paths
    from indexer.types import Skip

    settings = _settings(args, max_tokens=None)
    options = settings.index_options(args.max_tokens).discover
    count = load_tokenizer(settings.resolved_model()).count
    files = chunks = skipped = 0
    for _root, result in chunk_paths(
        args.paths, count, options=options, max_tokens=args.max_tokens, with_header=not args.no_header
    ):
        if isinstance(result, Skip):
            skipped += 1
            print(json.dumps({"path": result.path, "skipped": result.reason}) if args.json else
                  f"{result.path}: skipped: {result.reason}")  # fmt: skip
            continue
        files += 1
        for problem in result.problems:
            if not args.json:
                print(f"{result.path}: note: {problem}")
        for c in result.chunks:
            chunks += 1
            if args.json:
                row = {"path": c.path, "language": c.language, "start_line": c.start_line, "end_line": c.end_line}
                print(json.dumps(row | {"symbol": c.qualified_name, "kind": c.kind, "tokens": c.tokens}))
                continue
            print(
                f"{c.path}:{c.start_line + 1}-{c.end_line + 1}  {c.language}  {c.kind}  "
                f"{c.qualified_name or '-'}  {c.tokens} tokens"
            )
            if args.show_text:
                print("    " + c.text.replace("\n", "\n    "))
    if not args.json:
        print(f"{files} files, {chunks} chunks, {skipped} skipped", file=sys.stderr)
    return 0


def _index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from semcode.workspace import index_root

    engine = _engine(args, [index_root(p) for p in args.paths])
    bars: dict[Path, Any] = {}

    def update(folder: Folder, p: Progress) -> None:
        if folder.root not in bars:
            quiet = args.json or not sys.stderr.isatty()
            bars[folder.root] = tqdm(total=0, unit="file", desc=folder.root.name, disable=quiet, leave=True)
        bar = bars[folder.root]
        bar.total, bar.n = p.files_total, p.files_done
        bar.set_postfix(chunks=p.chunks_written, tok_s=f"{p.tokens_encoded / max(p.seconds, 1e-9):.0f}")
        bar.refresh()

    try:
        reports = engine.update(update, rebuild=args.rebuild)
    finally:
        for bar in bars.values():
            bar.close()
        engine.close_now()
    if args.json:
        out = {str(root): _report_json(r) for root, r in reports.items()}
        print(json.dumps(out))
        return 0
    for folder in engine.folders:
        r = reports[folder.root]
        print(
            f"{folder.root}: {r.files_seen} files ({r.files_changed} changed, {r.files_unchanged} unchanged, "
            f"{r.files_deleted} deleted), {r.chunks_written} chunks written, {r.chunks_encoded} encoded "
            f"({r.tokens_encoded} tokens) in {r.seconds:.1f} s; index: {folder.index_dir}"
        )
        reasons: dict[str, int] = {}
        for skip in r.skipped:
            key = skip.reason.split(" (")[0].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"  skipped {n}: {reason}")
    return 0


def _report_json(r: IndexReport) -> dict[str, Any]:
    return {k: v for k, v in vars(r).items() if k not in ("skipped", "problems")} | {
        "skipped": [vars(s) for s in r.skipped]
    }


def _search(args: argparse.Namespace) -> int:
    from semcode import SearchQuery
    from semcode.workspace import find_root, repo_id

    engine = _engine(args, [find_root(args.repo or Path.cwd())])
    query = SearchQuery(args.query, args.limit, args.mode, [args.path] if args.path else None, args.lang)
    repo = repo_id(args.repo) if args.repo else None
    _print_hits(engine.search(query, repo=repo, everywhere=repo is None), args.json)
    return 0


def _print_hits(hits: list[Hit], as_json: bool) -> None:
    for h in hits:
        c = h.chunk
        if as_json:
            row = {"path": c.path, "repo": c.repo, "start_line": c.start_line, "end_line": c.end_line}
            row |= {"symbol": c.qualified_name, "kind": c.kind, "language": c.language}
            print(json.dumps(row | {"score": round(h.score, 6), "reasons": list(h.reasons)}))
        else:
            print(
                f"{h.score:.4f}  {c.path}:{c.start_line + 1}-{c.end_line + 1}  {c.kind} {c.qualified_name or '-'}  "
                f"[{'+'.join(h.reasons)}]"
            )
    if not hits and not as_json:
        print("no results", file=sys.stderr)


def _related(args: argparse.Namespace) -> int:
    from semcode.workspace import find_root

    where, line, _col = _parse_location(args.location)
    file = Path(where).resolve()
    engine = _engine(args, [find_root(file)])
    folder = engine.folders[0]
    rel = folder.relative(file) or file.name
    chunk, hits = engine.related(folder, rel, line, args.limit, languages=args.lang, path_glob=args.path)
    if chunk is None:
        raise ValueError(f"{rel}:{line + 1}: no indexed chunk covers this line (run semcode index first?)")
    if not args.json:
        print(f"related to {chunk.path}:{chunk.start_line + 1}-{chunk.end_line + 1} {chunk.qualified_name or ''}")
    _print_hits(hits, args.json)
    return 0


def _parse_location(text: str) -> tuple[str, int, int]:
    """FILE:LINE[:COL] (1-based) -> (file, 0-based line, 0-based column)."""
    parts = text.rsplit(":", 2)
    try:
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            return parts[0], int(parts[1]) - 1, int(parts[2]) - 1
        file, line = text.rsplit(":", 1)
        return file, int(line) - 1, 0
    except ValueError:
        raise ValueError(f"{text!r}: expected FILE:LINE or FILE:LINE:COL (1-based)") from None


def _status(args: argparse.Namespace) -> int:
    from semcode.workspace import find_root

    engine = _engine(args, [find_root(args.repo or Path.cwd())])
    folder, model = engine.folders[0], engine.model_id()
    engine.store(folder)  # validates the model (config and tokenizer) without loading its weights
    stats, skipped = engine.stats(folder), engine.skipped_files(folder)
    if args.json:
        row = {"indexDir": folder.index_dir, "model": model, "repo": folder.repo, **stats}
        row["skippedFiles"] = [{"path": p, "reason": why} for p, why in skipped]
        print(json.dumps(row, default=str))
        return 0
    print(f"index: {folder.index_dir}\nmodel: {model}\nrepository: {folder.repo}")
    for k, v in stats.items():
        print(f"  {k}: {v}")
    for path, why in skipped:
        print(f"  skipped: {path}: {why}")
    return 0


def _watch(args: argparse.Namespace) -> int:
    import time

    from semcode.workspace import index_root

    engine = _engine(args, [index_root(args.path)])
    folder = engine.folders[0]
    try:
        first = engine.update()[folder.root]  # safe to interrupt: the next run completes it
    except KeyboardInterrupt:
        engine.close_now()
        print("interrupted before watching", file=sys.stderr)
        return 130
    print(
        f"{folder.root}: {first.files_seen} files ({first.files_changed} changed, {first.files_deleted} deleted), "
        f"{first.chunks_encoded} chunks encoded in {first.seconds:.1f} s; index: {folder.index_dir}",
        flush=True,
    )
    try:
        engine.watch(folder, on_report=_print_watch_report)
    except OSError as e:
        engine.close_now()
        print(f"semcode: error: cannot watch {folder.root}: {e}", file=sys.stderr)
        return 2
    print(f"watching {folder.root} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        engine.close_now()
    print("stopped", flush=True)
    return 0


def _print_watch_report(r: IndexReport) -> None:
    if not (r.files_changed or r.files_deleted or r.skipped):
        print(f"checked {r.files_seen} files: unchanged", flush=True)
        return
    line = (
        f"updated {r.files_changed + r.files_deleted} files: {r.files_changed} changed, {r.files_deleted} "
        f"deleted, {r.chunks_encoded} chunks encoded"
    )
    if r.skipped:
        line += f", {len(r.skipped)} skipped ({'; '.join(f'{s.path}: {s.reason}' for s in r.skipped[:3])})"
    print(line, flush=True)


def _lsp(args: argparse.Namespace) -> int:
    from . import server  # launching the language server: its entry point, nothing else of it

    server.main()
    return 0


def _mcp(args: argparse.Namespace) -> int:
    from mcp_server.server import serve  # launching the MCP server: its entry point, nothing else of it
    from semcode.workspace import index_root

    roots = [index_root(r) for r in args.roots or [Path.cwd()]]
    return serve(_settings(args), roots, http=args.http, read_only=args.read_only, token=args.token)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo,
    "encode": _encode,
    "chunks": _chunks,
    "index": _index,
    "search": _search,
    "related": _related,
    "status": _status,
    "watch": _watch,
    "lsp": _lsp,
    "mcp": _mcp,
}


if __name__ == "__main__":
    sys.exit(main())
