"""Check the chunker's coverage invariant on every header of a folder (default: this system's /usr/include).

    python benchmarks/chunk_coverage.py [--root /usr/include] [--glob '*.h'] [--max-tokens 8192] [--tokenizer ws]

Every file matching ``--glob`` under ``--root`` (recursively) is read (UTF-8, invalid bytes replaced), chunked with
``indexer.chunk.chunk_source`` in the language its name maps to, and checked: every non-blank line lies in some
chunk, and chunking did not raise (no chunk over the budget is checked too). Prints files, chunks, files with
parse problems and each violation; exits 1 on any violation.

Token counting: ``--tokenizer ws`` (default) counts whitespace-separated words plus two, cheap enough for
thousands of files in a minute or two; ``--tokenizer model`` uses the default model's tokenizer (slower, exact).
Coverage does not depend on the counter: only where chunks are split does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.chunk import CountTokens, chunk_source
from indexer.languages import language_for
from indexer.types import FileChunks, SourceFile


def whitespace_count(texts: list[str]) -> list[int]:
    return [len(t.split()) + 2 for t in texts]


def model_count() -> CountTokens:
    from encoder import load_tokenizer

    return load_tokenizer().count


def uncovered(text: str, result: FileChunks) -> list[int]:
    """0-based non-blank lines of ``text`` that lie in no chunk."""
    lines = text.split("\n")
    covered = [False] * len(lines)
    for c in result.chunks:
        for i in range(c.start_line, min(c.end_line, len(lines) - 1) + 1):
            covered[i] = True
    return [i for i, line in enumerate(lines) if line.strip() and not covered[i]]


def check_file(path: Path, root: Path, count: CountTokens, max_tokens: int) -> tuple[str | None, int, bool]:
    """(violation message or None, chunks, had problems) for one file."""
    rel = path.relative_to(root).as_posix()
    language = language_for(rel) or "c"
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None, 0, False  # unreadable (a dangling link): not the chunker's business
    src = SourceFile(rel, language, text, len(text.encode("utf-8", "surrogatepass")))
    try:
        result = chunk_source(src, count, max_tokens=max_tokens)
    except Exception as exc:  # the invariant says this never happens
        return f"{rel}: raised {type(exc).__name__}: {exc}", 0, False
    missing = uncovered(text, result)
    over = [c for c in result.chunks if c.tokens > max_tokens]
    message = None
    if missing:
        shown = ", ".join(str(i + 1) for i in missing[:10])
        message = f"{rel}: {len(missing)} non-blank lines in no chunk (1-based: {shown})"
    elif over:
        message = f"{rel}: {len(over)} chunks over the budget (first at line {over[0].start_line + 1})"
    return message, len(result.chunks), bool(result.problems)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=Path("/usr/include"))
    p.add_argument("--glob", default="*.h")
    p.add_argument("--max-tokens", type=int, default=8192)
    p.add_argument("--tokenizer", choices=("ws", "model"), default="ws")
    args = p.parse_args()
    count = whitespace_count if args.tokenizer == "ws" else model_count()
    files = chunks = problems = 0
    violations: list[str] = []
    t0 = time.perf_counter()
    for path in sorted(args.root.rglob(args.glob)):
        if not path.is_file():
            continue
        message, n, had_problems = check_file(path, args.root, count, args.max_tokens)
        files += 1
        chunks += n
        problems += had_problems
        if message:
            violations.append(message)
            print(message, flush=True)
    seconds = time.perf_counter() - t0
    print(f"files {files}  chunks {chunks}  files with parse problems {problems}  violations {len(violations)}")
    print(f"({seconds:.0f}s, tokenizer {args.tokenizer}, max_tokens {args.max_tokens})")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
