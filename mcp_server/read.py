"""``read_code``'s answer: numbered lines of a file or of an expanded hit, cut to the answer's token budget, saying
how to read on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .budget import most_that_fit
from .models import IndexProgress, ReadResult
from .render import fits, index_note

if TYPE_CHECKING:
    from semcode.hit_ids import Span
    from semcode.lines import Lines
    from semcode.workspace import Folder

READ_LINES = 400  # lines read_code returns at most per call
READ_CHARS = 40_000
WHAT = {"hit": "the hit", "definition": "the whole definition", "parent": "the definition around the hit"}


def fit_read(
    folder: Folder, lines: Lines, span: Span | None, index: IndexProgress, max_tokens: int
) -> tuple[ReadResult, str]:
    """The answer for `lines` (of `span` when a hit id was read): as many of them as fit `max_tokens`, at least one
    (cut to fit when it alone does not)."""
    texts = lines.text.split("\n") if lines.end_line >= lines.start_line else []

    def build(head: Sequence[str], line_cut: bool = False) -> tuple[ReadResult, str]:
        first, last = lines.start_line + 1, lines.start_line + len(head)
        more = lines.truncated or len(head) < len(texts) or line_cut
        answer = ReadResult(
            path=lines.path, repo=folder.repo, start_line=first, end_line=last, total_lines=lines.total_lines,
            text="\n".join(head), truncated=more, index=index,
            **({} if span is None else {"id": span.id, "symbol": span.chunk.qualified_name, "kind": span.chunk.kind,
                                        "expand": span.expand}),
        )  # fmt: skip
        top = f"{lines.path}: lines {first}-{last} of {lines.total_lines}"
        if span is not None:
            top += f"; {WHAT[span.expand]}: {span.chunk.kind} {span.chunk.qualified_name or '-'} (id={span.id})"
        if line_cut:
            top += f" (line {first} is cut to {len(head[0]):,} characters)"
        if more:
            top += f" (more follows: read_code({_same_target(lines.path, span)}start_line={last + 1}))"
        numbered = [f"{n:>6}  {t}" for n, t in enumerate(head, first)]
        note = index_note(index)
        return answer, "\n".join([top, *numbered, *([] if note is None else [note])])

    n = most_that_fit(texts, lambda head: fits(*build(head), max_tokens))
    if n or not texts:
        return build(texts[:n])
    keep = most_that_fit(texts[0], lambda head: fits(*build([str(head)], True), max_tokens))
    return build([texts[0][:keep]], True)


def _same_target(path: str, span: Span | None) -> str:
    """The arguments that name what was read again (an expanded parent is its own id's definition)."""
    if span is None:
        return f"path={path!r}, "
    return f"id={span.id!r}, expand={'hit' if span.expand == 'hit' else 'definition'!r}, "
