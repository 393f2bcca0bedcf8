"""What the CLI prints: hits, progress (a bar on a terminal, a line every few seconds otherwise, nothing with
``--quiet``), ``watch`` events (text with timestamps, or JSON lines) and the one line that names an I/O fault (a full
disk, a read-only or vanished index folder) and what to do about it."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

    from indexer.index import IndexReport, Progress
    from semcode.relevance import Mode

    from .daemon import HitRow

PROGRESS_EVERY_S = 5.0  # without a terminal: one progress line this often
ETA_AFTER_S = 5.0  # no ETA before this many seconds of a phase ...
ETA_AFTER_SHARE = 0.02  # ... and this share of its work are done
OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how LanceDB (Rust) names the OS error under its own
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # EFBIG: a file size limit (ulimit -f) acts like a full disk
NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def print_hits(hits: Sequence[HitRow], as_json: bool, mode: Mode) -> None:
    """Text: one line per hit with its relevance (0-1, ``semcode.relevance``) and 1-based lines; JSON: one object
    per hit, the raw score beside the relevance, 0-based lines (and ``"lines": "0-based"`` in each object)."""
    from semcode.relevance import relevance

    for h in hits:
        share = relevance(mode, h["score"])
        if as_json:
            print(json.dumps({**h, "relevance": round(share, 4), "lines": "0-based"}))
            continue
        print(
            f"{h['path']}:{h['start_line'] + 1}-{h['end_line'] + 1}  {h['kind']} {h['symbol'] or '-'}  "
            f"relevance {share:.2f}  [{'+'.join(h['reasons'])}]"
        )
    if not hits and not as_json:
        print("no results", file=sys.stderr)


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def eta(done: float, total: float, elapsed: float) -> str | None:
    """The time left, `2m10s`, at the average pace of the whole phase so far (`done` of `total` units of work in
    `elapsed` seconds): steadier than a recent pace, which swings with each batch. None until ``ETA_AFTER_S``
    seconds and ``ETA_AFTER_SHARE`` of the work are behind (the first batches' pace says little), and once done.
    Rounded to 5 s under a minute, 10 s under ten minutes, else whole minutes, so it does not flicker."""
    if total <= 0 or not 0 < done < total or elapsed < ETA_AFTER_S or done / total < ETA_AFTER_SHARE:
        return None
    left = elapsed / done * (total - done)
    step = 5 if left < 60 else 10 if left < 600 else 60
    return _duration(max(step, step * round(left / step)))


def progress_text(p: Progress) -> str:
    """Phase 1: `120/800 files, 3400 chunks, ETA 10s` (the ETA from the files' pace so far); phase 2:
    `searchable by text; embedding 4300/12000 chunks (36%), 5100 tok/s, ETA 2m10s` (from the tokens' pace)."""
    if p.phase == "vectors":
        rate = p.tokens_encoded / max(p.phase_seconds, 1e-9)  # (a full run encodes nothing in phase 1)
        share = int(100 * p.chunks_embedded / p.chunks_to_embed) if p.chunks_to_embed else 100  # 100: all done
        left = eta(p.tokens_encoded, p.tokens_to_embed, p.phase_seconds)
        pace = (f", {rate:.0f} tok/s" + (f", ETA {left}" if left else "")) if p.tokens_encoded else ""
        return f"searchable by text; embedding {p.chunks_embedded}/{p.chunks_to_embed} chunks ({share}%){pace}"
    left = eta(p.files_done, p.files_total, p.phase_seconds)
    return f"{p.files_done}/{p.files_total} files, {p.chunks_written} chunks" + (f", ETA {left}" if left else "")


class ProgressDisplay:
    """Progress of index runs, one per root: tqdm bars on a terminal, else a line on stderr every
    ``PROGRESS_EVERY_S`` seconds and one at the end; nothing when quiet. Remembers each root's last progress."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.bars: dict[tuple[Path, str], Any] = {}
        self.last: dict[Path, Progress] = {}
        self.printed: dict[Path, float] = {}
        self.ended: dict[Path, str] = {}  # the phase whose end was printed last

    def update(self, root: Path, p: Progress) -> None:
        last = self.last.get(root)
        self.last[root] = p
        if self.quiet:
            return
        if self.tty:
            self._bar(root, p)
            return
        ended = p.files_done == p.files_total if p.phase == "rows" else p.chunks_embedded == p.chunks_to_embed
        began = last is None or last.phase != p.phase
        if began or ended or time.monotonic() - self.printed.get(root, 0.0) >= PROGRESS_EVERY_S:
            if ended and self.ended.get(root) == p.phase:
                return  # (the same end, reported again: once is enough)
            self.printed[root] = time.monotonic()
            if ended:
                self.ended[root] = p.phase
            print(f"semcode: indexing {root.name}: {progress_text(p)}", file=sys.stderr, flush=True)

    def _bar(self, root: Path, p: Progress) -> None:
        """One bar per root and phase: files while rows are written, then chunks while they are embedded."""
        from tqdm import tqdm

        key = (root, p.phase)
        if key not in self.bars:
            for (other, phase), bar in list(self.bars.items()):
                if other == root and phase != p.phase:
                    bar.close()
            desc = root.name if p.phase == "rows" else f"{root.name}: embedding"
            self.bars[key] = tqdm(total=0, unit="file" if p.phase == "rows" else "chunk", desc=desc, leave=True)
        bar = self.bars[key]
        if p.phase == "rows":
            bar.total, bar.n = p.files_total, p.files_done
            bar.set_postfix(chunks=p.chunks_written)
        else:
            bar.total, bar.n = p.chunks_to_embed, p.chunks_embedded
            bar.set_postfix(tok_s=f"{p.tokens_encoded / max(p.phase_seconds, 1e-9):.0f}")
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def report_json(r: IndexReport) -> dict[str, Any]:
    return {k: v for k, v in vars(r).items() if k not in ("skipped", "problems")} | {
        "skipped": [vars(s) for s in r.skipped]
    }


def print_report(root: Path, index_dir: str, r: IndexReport, wall: float | None = None) -> None:
    """One repository's run. `wall`: the seconds the whole command took (start-up, loading the model, closing
    included; the run's own time, ``r.seconds``, leaves them out: a run with nothing to do takes 0.0 s of a command
    of several); None: no time on this line (several repositories, or a Ray job: a last line gives it)."""
    took = ""
    if wall is not None:
        took = f" in {wall:.1f} s"
        if r.searchable_seconds is not None and (r.files_changed or r.files_deleted):  # as the command's time
            took += f" (searchable by text after {max(wall - r.seconds, 0.0) + r.searchable_seconds:.1f} s)"
    print(
        f"{root}: {r.files_seen} files ({r.files_changed} changed, {r.files_unchanged} unchanged, "
        f"{r.files_deleted} deleted), {r.chunks_written} chunks written, {r.chunks_encoded} encoded "
        f"({r.tokens_encoded} tokens){took}; index: {index_dir}"
    )
    if r.chunks_pending:
        print(f"  {r.chunks_pending} chunks not embedded yet: searchable by text; `semcode index` embeds them")
    reasons: dict[str, int] = {}
    for skip in r.skipped:
        key = skip.reason.split(" (")[0].split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  skipped {n}: {reason}")
    kinds: dict[str, int] = {}
    for why in r.text_only.values():
        kind = why.split(" (")[0].split(" of ")[0]  # "generated code (its header says ...)" -> "generated code"
        kinds[kind] = kinds.get(kind, 0) + 1
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  searched by text only, not embedded {n}: {kind}")


def readable_size(n: float) -> str:
    """Bytes as a person reads them: `512 B`, `45.3 KB`, `12.0 MB`, `1.2 GB` (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def status_lines(stats: Mapping[str, Any], model: str) -> list[str]:
    """``Store.stats`` (counts, versions per table, bytes) as lines a person reads; a figure of no known kind is
    shown as it is (`name: value`)."""
    left = dict(stats)
    if left.get("model_id") == model:
        del left["model_id"]  # (the `model:` line says it)
    lines = [line for fmt in STATUS_LINES if (line := fmt(left)) is not None]
    return lines + [f"{k}: {v}" for k, v in left.items()]


def _files_line(s: dict[str, Any]) -> str | None:
    return f"files: {s.pop('files')} indexed, {s.pop('skipped', 0)} skipped" if "files" in s else None


def _chunks_line(s: dict[str, Any]) -> str | None:
    if "rows" not in s:
        return None
    wait, text_only = s.pop("rows_pending", 0), s.pop("rows_text_only", 0)
    return (
        f"chunks: {s.pop('rows')}, {s.pop('embedded', '?')} embedded ({wait} waiting for a vector, {text_only} "
        "searched by text only)"
    )


def _vectors_line(s: dict[str, Any]) -> str | None:
    if "vectors" not in s:
        return None
    dim = f", {s.pop('dim')} dimensions" if "dim" in s else ""
    return f"vectors: {s.pop('vectors')} cached by chunk content{dim}"


def _size_line(s: dict[str, Any]) -> str | None:
    return f"size on disk: {readable_size(s.pop('bytes'))} (the whole index folder)" if "bytes" in s else None


def _versions_line(s: dict[str, Any]) -> str | None:
    """{"chunks_<model>": 7, ...} -> `table versions kept: chunks 7, files 2, vectors 2`."""
    if not isinstance(s.get("versions"), dict):
        return None
    kept = ", ".join(f"{name.split('_', 1)[0]} {n}" for name, n in sorted(s.pop("versions").items()))
    return f"table versions kept: {kept}"


def _unindexed_line(s: dict[str, Any]) -> str | None:
    n = s.pop("unindexed_text_rows", None)
    return None if n is None else f"rows not in the full-text index yet: {n} (searched without it until then)"


STATUS_LINES = (_files_line, _chunks_line, _vectors_line, _size_line, _versions_line, _unindexed_line)


class WatchEvents:
    """``semcode watch`` output: `HH:MM:SS message` lines, or one JSON object per event with ``--json``."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, event: str, message: str, **fields: Any) -> None:
        if self.as_json:
            print(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields}), flush=True)
        else:
            print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    def update(self, r: IndexReport) -> None:
        skipped = [{"path": s.path, "reason": s.reason} for s in r.skipped]
        fields = {"changed": r.files_changed, "deleted": r.files_deleted, "chunks_encoded": r.chunks_encoded}
        if not (r.files_changed or r.files_deleted or r.skipped):
            self.emit("update", f"checked {r.files_seen} files: unchanged", **fields, skipped=skipped)
            return
        line = (
            f"updated {r.files_changed + r.files_deleted} files: {r.files_changed} changed, {r.files_deleted} "
            f"deleted, {r.chunks_encoded} chunks encoded"
        )
        if r.skipped:
            line += f", {len(r.skipped)} skipped ({'; '.join(f'{s.path}: {s.reason}' for s in r.skipped[:3])})"
        self.emit("update", line, **fields, skipped=skipped)


# -- faults ------------------------------------------------------------------------------------------------------------


def fault_errno(e: BaseException) -> int | None:
    """The OS error behind `e`: an ``OSError``'s errno, or the ``(os error N)`` of a LanceDB error (its "Not found"
    is ENOENT); None when `e` is no I/O fault."""
    if isinstance(e, OSError) and e.errno is not None:
        return e.errno
    text = str(e)
    if (m := OS_ERROR.search(text)) is not None:
        return int(m.group(1))
    return errno.ENOENT if "lance error: Not found" in text else None


def fault_message(e: BaseException, index_dirs: Mapping[str, Path], gone: Sequence[str] = ()) -> str | None:
    """What went wrong and what to do, in one line, for an I/O fault while the command used `index_dirs` (index
    folder -> its repository root), of which `gone` vanished meanwhile; None for anything else."""
    code = fault_errno(e)
    if code is None:
        return None
    if gone:
        index_dir, root = gone[0], index_dirs[gone[0]]
        return f"the index folder {index_dir} vanished while semcode used it; build it again: semcode index {root}"
    filename = getattr(e, "filename", None)
    inside = [d for d in index_dirs if filename and Path(str(filename)).is_relative_to(d)]
    where = inside[0] if inside else str(filename) if filename else next(iter(index_dirs), "the index folder")
    reason = os.strerror(code)
    if code in NO_ROOM:
        return (
            f"no room to write {where} ({reason}); free some disk space (or choose another folder with --index-dir) "
            f"and run the command again: what was written before is kept"
        )
    if code in NOT_WRITABLE:
        return f"cannot write {where} ({reason}); make it writable, or choose another folder with --index-dir"
    return f"{where}: {reason}"


def configure_logging(verbose: bool) -> None:
    """``semcode: message`` lines on stderr (debug ones with -v), a fault's without its traceback (``faults_one_line``).
    Called once a command has work to do here: a query the daemon answers never imports logging (4 ms)."""
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="semcode: %(message)s")
    for handler in logging.getLogger().handlers:
        if faults_one_line not in handler.filters:
            handler.addFilter(faults_one_line)


def faults_one_line(record: logging.LogRecord) -> bool:
    """A log filter: a record carrying an I/O fault loses its traceback; the command ends with the fault's one-line
    error."""
    error = record.exc_info[1] if record.exc_info else None
    if error is not None and fault_errno(error) is not None:
        record.msg, record.args, record.exc_info = f"{record.getMessage()}: {error}", (), None
    return True
