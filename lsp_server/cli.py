"""The ``semcode`` console entry point.

Commands: ``demo``, ``encode``, ``chunks``, ``index``, ``search``, ``related``, ``status``, ``watch``, ``lsp`` (the
language server over stdio) and ``mcp`` (the MCP server). Each is a few lines over the core, ``semcode``; ``lsp`` and
``mcp`` launch the other front doors through their entry points only. The model: ``--model`` -> ``$SEMCODE_MODEL``
-> ``model`` in the config file -> the model shipped with semcode (``semcode.config.configured_model``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semcode.interrupts import raising, take_ctrl_c

# NumPy's BLAS, before anything imports NumPy: semcode's NumPy work is small matrices (the torch-free query encoder,
# vector checks), where a second OpenBLAS thread on a busy 2-core machine costs 30x (17 ms -> 590 ms per query,
# measured). torch has its own thread pool (--threads). Process-wide by nature; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if TYPE_CHECKING:
    from indexer.index import IndexReport
    from indexer.storage import Location
    from semcode import Engine, Settings
    from semcode.workspace import Folder

    from .cli_output import ProgressDisplay, WatchEvents

DEMO_TEXTS = [
    "def add(a, b):\n    return a + b",
    "def sum_two(x, y):\n    return x + y",
    "class LRUCache:\n    def get(self, key):\n        return self.data.get(key)",
    "SELECT name FROM users WHERE id = 1",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0; 2 for what the user can fix, told in one ``semcode: error: ...`` line (bad
    input, a broken model, an I/O fault such as a full disk or a read-only or vanished index folder); 130 when
    interrupted (Ctrl-C) at any moment, without a traceback. Run as the program (`argv` None), Ctrl-C ends the
    process at once except where a command stops cleanly (``semcode.interrupts``)."""
    started = time.monotonic()  # what `index` reports as its time: the whole command's, start-up included
    if argv is None:
        take_ctrl_c()
    try:
        return _main(argv, started)
    except KeyboardInterrupt:  # (called from Python, or a command's clean stop that did not catch it)
        print("semcode: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:  # a server's event loop gives SIGINT back to Python's default when it closes
            take_ctrl_c()


def _main(argv: Sequence[str] | None, started: float) -> int:
    """`argv` parsed and its command run; ``args.started``: `started`, the command's ``time.monotonic()`` start."""
    from .cli_args import build_parser
    from .cli_output import configure_logging, fault_message

    args = build_parser().parse(argv)
    args.started = started
    if args.verbose or args.command not in WARM_COMMANDS:
        configure_logging(args.verbose)  # (a warm command sets it up if it has to answer here: `_answer`)
    from encoder import CheckpointError
    from indexer.errors import StoreError

    index_dirs = _index_dirs(args)
    existed = [d for d in index_dirs if _is_index(d)]
    try:
        code = COMMANDS[args.command](args)
        if not sys.stdout.closed:  # (`lsp` closes it at exit)
            sys.stdout.flush()  # a reader gone before the last write: its BrokenPipeError comes here, not at exit
        return code
    except (CheckpointError, StoreError, ValueError) as e:
        print(f"semcode: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `semcode ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # an I/O fault (full disk, read-only or vanished index folder) is the user's to fix
        message = fault_message(e, index_dirs, [d for d in existed if not _is_index(d)])
        if message is None:
            raise  # a bug: its traceback
        print(f"semcode: error: {message}", file=sys.stderr)
        return 2


def _index_dirs(args: argparse.Namespace) -> dict[str, Path]:
    """The index folders this command works on (-> their repository roots), for fault messages; {} if unknown."""
    from semcode.config import index_dir_for
    from semcode.workspace import find_root, index_root

    roots_of: dict[str, Callable[[], list[Path]]] = {
        "index": lambda: [index_root(p) for p in args.paths],
        "watch": lambda: [index_root(args.path)],
        "search": lambda: [find_root(args.repo or Path.cwd(), args.index_dir)],
        "status": lambda: [find_root(args.repo or Path.cwd(), args.index_dir)],
        "related": lambda: [_related_root(args, Path(_parse_location(args.location)[0]).resolve())],
    }
    try:
        roots = roots_of[args.command]() if args.command in roots_of else []
        return {index_dir_for(getattr(args, "index_dir", None), root): root for root in roots}
    except (OSError, ValueError):
        return {}  # the command itself reports it


def _is_index(index_dir: str) -> bool:
    from indexer.identity import is_index
    from indexer.storage import is_uri

    return not is_uri(index_dir) and is_index(Path(index_dir))  # local folders only: no network before a command


WARM_COMMANDS = {"search", "related", "status"}  # a daemon may answer them (`_answer`)
# what a request names besides the index folder, as daemon_client.target takes them (torch's threads are the
# daemon's own: process-wide, they cannot differ per request)
SETTINGS_OF_DAEMON = ("model", "device", "dtype", "max_tokens")


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The core's settings from whichever of its flags this command has."""
    from semcode import Settings

    fields = ("model", "index_dir", "device", "dtype", "threads", "max_tokens", "embed_tokens", "include_secrets")
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
    import tempfile

    from encoder.tiny import write_tiny_checkpoint

    with raising(), tempfile.TemporaryDirectory(prefix="semcode-demo-") as tmp:  # (Ctrl-C: the folder goes too)
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
    options = settings.discover_options()  # (no indexer.index, LanceDB or torch import: chunking needs none)
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
                row |= {"symbol": c.qualified_name, "kind": c.kind, "tokens": c.tokens, "lines": "0-based"}
                print(json.dumps(row))
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
    from semcode.workspace import index_root

    from .cli_output import ProgressDisplay, print_report, report_json

    if args.ray is not None or args.repos is not None:
        from .cli_ray import index_on_ray

        return index_on_ray(args, _settings(args))
    if not args.paths:
        raise ValueError("name the repositories to index: semcode index PATH ...")
    engine = _engine(args, [index_root(p) for p in args.paths])
    # the model's config and tokenizer, checked before anything is written; the weights load when phase 2 begins
    # (every file is searchable by text before then). Until the run starts, Ctrl-C ends the process at once
    # (`semcode.interrupts`); afterwards the run, on the writer thread, stops at its next file or slice.
    engine.tokenizer()
    display = ProgressDisplay(args.quiet or args.json)
    try:
        with raising():
            reports = engine.update(lambda folder, p: display.update(folder.root, p), rebuild=args.rebuild)
    except KeyboardInterrupt:
        display.close()
        return _interrupted(engine, display)
    finally:
        display.close()
        engine.close_now()
    wall = time.monotonic() - args.started  # the command's time, as the user waited for it
    if args.json:
        print(json.dumps({str(root): report_json(r) | {"wall_seconds": round(wall, 3)} for root, r in reports.items()}))
        _excluded_notes(reports)
        return 0
    one = len(engine.folders) == 1
    for folder in engine.folders:
        print_report(folder.root, folder.index_dir, reports[folder.root], wall if one else None)
    _excluded_notes(reports)
    if not one:
        print(f"{len(engine.folders)} repositories in {wall:.1f} s")
    return 0


def _excluded_notes(reports: dict[Path, IndexReport]) -> None:
    """A tree whose code all sits in folders the built-in excludes leave out (an npm package's ``dist/``) is
    said so at the end, with the way to index it (``IndexReport.excluded_note``)."""
    for root, report in reports.items():
        if (note := report.excluded_note()) is not None:
            print(f"semcode: note: {root}: {note}", file=sys.stderr)


def _interrupted(engine: Engine, display: ProgressDisplay) -> int:
    """Ctrl-C during `index`: let the run stop at its next file (what is written stays), say what was kept and how
    to finish, exit 130. A second Ctrl-C stops waiting."""
    engine.close()
    print("\nsemcode: interrupted; finishing the file in progress (Ctrl-C again to stop at once)", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        engine.writer.join()
    for folder in engine.folders:
        p = display.last.get(folder.root)
        if p is None:
            kept = "nothing"
        elif p.phase == "vectors":  # phase 1 was done: every file is searchable by its text
            kept = f"every file, searchable by text, and {p.chunks_embedded} of {p.chunks_to_embed} chunks embedded"
        else:
            kept = f"{p.files_done} of {p.files_total} files looked at, {p.chunks_written} chunks written"
        print(f"semcode: {folder.root}: kept {kept}; run `semcode index {folder.root}` to finish", file=sys.stderr)
    return 130


def _search(args: argparse.Namespace) -> int:
    from semcode.workspace import find_root, repo_id

    from .cli_output import print_hits

    root = find_root(args.repo or Path.cwd(), args.index_dir)  # an indexed root holding it, else its .git root
    payload = {"root": str(root), "query": args.query, "limit": args.limit, "mode": args.mode}
    payload |= {"paths": args.path, "languages": args.lang, "group_by_file": args.files}
    payload |= {"repo": repo_id(args.repo) if args.repo else None, "everywhere": args.repo is None}
    answer = _answer(args, root, "search", payload)
    for note in answer.get("warnings") or ():
        print(f"semcode: warning: {note}", file=sys.stderr)
    if not answer["hits"] and answer["indexed_files"] == 0:
        raise ValueError(_not_indexed(root, _index_dir(args, root)))
    for note in answer.get("partial") or ():  # a run cut short, or one still walking: answers may miss files
        print(f"semcode: warning: {note}", file=sys.stderr)
    if answer.get("pending"):
        share = int(100 * answer.get("embedded", 1.0))
        print(f"semcode: {share}% embedded: semantic matches cover that share, the rest of the index is searched by"
              f" its text ({answer['pending']} chunks wait for a vector; `semcode index` embeds them)",
              file=sys.stderr)  # fmt: skip
    print_hits(answer["hits"], args.json, args.mode)
    return 0


def _answer(args: argparse.Namespace, root: Path, cmd: str, payload: dict[str, Any]) -> Any:
    """The daemon's answer (starting one for next time when none runs, unless --no-daemon), else the same answer
    computed here. Never creates an index folder.

    The warm path (a daemon answers) imports only light modules: no ``Settings`` (dataclasses cost 10 ms), no model
    code, no LanceDB; ``semcode.config`` resolves the index folder and the model as ``Settings`` would."""
    from indexer.identity import is_index
    from semcode.config import index_location

    from . import daemon_client as daemon

    index_dir = _index_dir(args, root)
    if not is_index(index_location(index_dir)):
        raise ValueError(_not_indexed(root, index_dir))
    sock = None
    if not (args.no_daemon or os.environ.get(daemon.NO_DAEMON_ENV)):
        target = daemon.target(index_dir, *(getattr(args, f, None) for f in SETTINGS_OF_DAEMON))
        try:
            sock = daemon.socket_path()  # one per user: requests name the index and model (`target`)
        except OSError as e:  # e.g. another user made our runtime folder first: never use it
            print(f"semcode: not using a daemon: {e}", file=sys.stderr)
        answer = None if sock is None else daemon.ask(sock, cmd, payload, target)
        if answer is not None and answer["ok"]:
            return answer
        if answer is not None and answer.get("expected"):
            raise ValueError(answer["error"])
        if answer is not None and answer.get("busy"):  # there, but stopped, swamped or stuck: not waited for
            print(f"semcode: {answer['error']}; answering without it", file=sys.stderr)
        if answer is not None:
            sock = None  # a daemon that failed: it is there, not to be started again
        if sock is not None and cmd != "status":  # status alone is not worth loading a model for
            daemon.spawn(sock, target, root)
    from .cli_output import configure_logging

    configure_logging(args.verbose)
    from semcode import Engine

    from .daemon import answer_here

    engine = Engine(_settings(args), [root])
    try:
        return answer_here(engine, cmd, payload)
    finally:
        engine.close_now()


def _index_dir(args: argparse.Namespace, root: Path) -> str:
    """The index folder of `root` for this command (``Settings.index_dir_for``, without building a Settings)."""
    from semcode.config import index_dir_for

    return index_dir_for(getattr(args, "index_dir", None), root)


def _not_indexed(root: Path, index_dir: str) -> str:
    return f"{root} is not indexed yet (no index in {index_dir}); index it with: semcode index {root}"


def _related_root(args: argparse.Namespace, file: Path) -> Path:
    """The root `related` reads: ``--repo``, else the indexed root holding the file, else its ``.git`` root."""
    from semcode.workspace import find_root

    return args.repo.resolve() if args.repo is not None else find_root(file, args.index_dir)


def _related(args: argparse.Namespace) -> int:
    from .cli_output import print_hits

    where, line, _col = _parse_location(args.location)
    file = Path(where).resolve()
    root = _related_root(args, file)
    if not file.is_relative_to(root):
        raise ValueError(f"{where}: not inside the repository {root}")
    rel = file.relative_to(root).as_posix()
    payload = {"root": str(root), "path": rel, "line": line, "limit": args.limit}
    payload |= {"languages": args.lang, "path_glob": args.path}
    answer = _answer(args, root, "related", payload)
    chunk = answer["chunk"]
    if chunk is None:  # what was wrong: no index, no such file, a file not indexed, a line past its end
        raise ValueError(answer.get("why") or f"{rel}:{line + 1}: no indexed chunk covers this line")
    if not args.json:
        print(f"related to {chunk['path']}:{chunk['start_line'] + 1}-{chunk['end_line'] + 1} {chunk['symbol'] or ''}")
    print_hits(answer["hits"], args.json, "related")
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
    from semcode.workspace import find_root, repo_id

    from .cli_output import status_lines

    root = find_root(args.repo or Path.cwd(), args.index_dir)
    answer = _answer(args, root, "status", {"root": str(root)})
    index_dir, model, repo = _index_dir(args, root), answer["model"], repo_id(root)
    stats, skipped, incomplete = answer["stats"], answer["skipped"], answer["incomplete"]
    text_only = answer.get("text_only", [])
    if args.json:
        row = {"indexDir": index_dir, "model": model, "repo": repo, **stats, "incomplete": incomplete}
        row["skippedFiles"] = [{"path": p, "reason": why} for p, why in skipped]
        row["textOnlyFiles"] = [{"path": p, "reason": why} for p, why in text_only]
        print(json.dumps(row, default=str))
        return 0
    print(f"index: {index_dir}\nmodel: {model}\nrepository: {repo}")
    if incomplete:
        print(f"  incomplete: the last run was cut short; run `semcode index {root}` to finish it")
    for line in status_lines(stats, model):
        print(f"  {line}")
    for path, why in skipped:
        print(f"  skipped: {path}: {why}")
    for path, why in text_only:
        print(f"  searched by text only, not embedded: {path}: {why}")
    return 0


def _indexes(args: argparse.Namespace) -> int:
    from semcode.config import indexes_dir
    from semcode.indexes import cached, describe
    from semcode.settings import Settings

    from .cli_output import readable_size

    named = [Settings().index_location(d) for d in args.index_dir or []]  # folders or URIs (s3://...)
    found = 0
    for info in describe([*named, *cached()]):
        found += 1
        if info.warning:  # other users can read it, and it is not ours to make private: one line each
            print(f"semcode: warning: {info.warning}", file=sys.stderr)
        if args.json:
            print(json.dumps({"indexDir": str(info.location), "bytes": info.size, "models": info.models}))
            continue
        print(f"{info.location}  ({readable_size(info.size)})")
        for m in info.models:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["updated"])) if m["updated"] else "never"
            for repo, counts in sorted(m["repos"].items()):
                cut = "  INCOMPLETE" if repo in m["incomplete"] else ""
                print(f"  {repo}: {counts['files']} files, {counts['chunks']} chunks; {m['model']}; {when}{cut}")
    if not found:  # (--json: no object on stdout, the line on stderr)
        none = f"no index in {', '.join(map(str, named))}, nor" if named else "no indexes yet"
        print(f"{none} in {indexes_dir()}, where semcode keeps them; make one with: semcode index PATH",
              file=sys.stderr if args.json else sys.stdout)  # fmt: skip
    return 0


def _forget(args: argparse.Namespace) -> int:
    from semcode.indexes import cached, forget

    if args.all == bool(args.repos):
        raise ValueError("name the repositories whose index to delete, or --all (not both)")
    if args.all:  # the local cache only: a shared index on object storage is deleted by naming it (--index-dir)
        targets: list[tuple[Location, Path | None]] = [(place, None) for place in cached()]
    else:
        settings = _settings(args)
        # a repository deleted since it was indexed still names its index (the folder's name hashes the path)
        repos = [Path(r).resolve() for r in args.repos]
        targets = [(settings.index_location(settings.index_dir_for(r)), r) for r in repos]
    refused = 0
    for place, repo in targets:
        _close_in_daemon(place.uri)
        done = forget(place, repo)
        if done.outcome in ("not-an-index", "missing"):
            why = "not a semcode index (no marker); left alone" if done.outcome == "not-an-index" else "no index there"
            print(f"semcode: {place}: {why}", file=sys.stderr)
            refused += not args.all  # (--all: the cache may hold other things; they are only reported)
        elif done.outcome == "removed":  # an index of many repositories keeps the others
            print(f"removed {repo} from {place} ({done.chunks} chunks)")
        else:
            print(f"deleted {place}")
    return 2 if refused else 0


def _close_in_daemon(index_dir: str) -> None:
    """Before an index is deleted: a running daemon closes it (a daemon that does not answer is only reported)."""
    from .daemon_client import close_index

    why = close_index(index_dir)
    if why is not None:
        print(f"semcode: warning: {why}; it may still hold {index_dir}", file=sys.stderr)


def _daemon(args: argparse.Namespace) -> int:
    """`semcode daemon serve|status|stop`."""
    return DAEMON_ACTIONS[args.action](args)


def _daemon_serve(args: argparse.Namespace) -> int:
    from .daemon import run_daemon
    from .daemon_client import target

    if (args.root is None) != (args.index_dir is None):
        raise ValueError("--root and --index-dir go together (the index to open at start)")
    first = None
    if args.root is not None:
        first = (target(args.index_dir, args.model, args.device, args.dtype, args.max_tokens), str(args.root.resolve()))
    return run_daemon(args.idle, args.index_idle, args.threads, first)


def _daemon_status(args: argparse.Namespace) -> int:
    from .daemon_client import running_daemon, status_lines

    found = running_daemon()
    if args.json:
        state = {"running": False} if found is None else {"running": True, "socket": str(found[0])} | found[1]
        print(json.dumps({k: v for k, v in state.items() if k != "ok"}))
    else:
        print("no daemon is running" if found is None else "\n".join(status_lines(*found)))
    return 0


def _daemon_stop(args: argparse.Namespace) -> int:
    from .daemon_client import stop_running

    pid = stop_running()
    print("no daemon was running" if pid is None else f"stopped the daemon (pid {pid})")
    return 0


DAEMON_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": _daemon_serve, "status": _daemon_status, "stop": _daemon_stop,
}  # fmt: skip


def _watch(args: argparse.Namespace) -> int:
    from semcode.workspace import index_root

    from .cli_output import ProgressDisplay, WatchEvents

    engine = _engine(args, [index_root(args.path)])
    engine.load_encoder()  # (until the run starts, Ctrl-C ends the process at once: `semcode.interrupts`)
    folder, events, display = engine.folders[0], WatchEvents(args.json), ProgressDisplay(args.quiet or args.json)
    try:
        with raising():
            first = engine.update(lambda f, p: display.update(f.root, p))[folder.root]
    except KeyboardInterrupt:
        display.close()
        return _interrupted(engine, display)
    finally:
        display.close()
    try:  # Ctrl-C from here on (also while a line is printed) stops watching, never with a traceback
        with raising():
            return _watching(engine, folder, first, events)
    except KeyboardInterrupt:
        pass
    finally:
        engine.close_now()
    events.emit("stopped", "stopped")
    return 0


def _watching(engine: Engine, folder: Folder, first: IndexReport, events: WatchEvents) -> int:
    """`watch` after its first run: say so, then watch until a fault (exit 2 through `main`) or Ctrl-C."""
    import queue

    from semcode.writer import POLL_S

    from .cli_output import fault_errno

    events.emit(
        "indexed",
        f"{folder.root}: {first.files_seen} files ({first.files_changed} changed, {first.files_deleted} deleted), "
        f"{first.chunks_encoded} chunks encoded in {first.seconds:.1f} s; index: {folder.index_dir}",
        root=str(folder.root), index_dir=folder.index_dir, files=first.files_seen, changed=first.files_changed,
    )  # fmt: skip
    failed: queue.Queue[Exception] = queue.Queue()  # a batch that could not be written (the watcher's thread)
    try:
        engine.watch(folder, on_report=events.update, on_error=failed.put)
    except OSError as e:
        print(f"semcode: error: cannot watch {folder.root}: {e}", file=sys.stderr)
        return 2
    events.emit("watching", f"watching {folder.root} (Ctrl-C to stop)", root=str(folder.root))
    while True:  # woken often: a Ctrl-C the kernel hands to another thread interrupts no blocking wait here
        with contextlib.suppress(queue.Empty):
            if fault_errno(error := failed.get(timeout=POLL_S)) is not None:
                raise error  # a full disk, a vanished index folder: `main` says so and exits 2


def _lsp(args: argparse.Namespace) -> int:
    from . import server  # launching the language server: its entry point, nothing else of it

    server.main()
    return 0


def _mcp(args: argparse.Namespace) -> int:
    from mcp_server.server import serve  # launching the MCP server: its entry point, nothing else of it
    from semcode.workspace import index_root

    roots = [index_root(r) for r in args.roots or [Path.cwd()]]
    if args.print_config:  # a client's configuration for this server: printed, nothing served
        from mcp_server.client_config import ServerArgs, print_config

        given = ServerArgs(roots, args.index_dir, args.model, args.read_only, args.max_tokens)
        return print_config(args.print_config, given)
    # a read-only server only encodes queries: one thread each costs less CPU per call than two (measured)
    threads = {"threads": 1} if args.read_only and args.threads is None else {}
    return serve(
        _settings(args, **threads), roots, http=args.http, read_only=args.read_only, token=args.token,
        allowed_hosts=args.allowed_host or (), max_tokens=args.max_tokens,
    )  # fmt: skip


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
    "indexes": _indexes,
    "forget": _forget,
    "daemon": _daemon,
}


if __name__ == "__main__":
    sys.exit(main())
