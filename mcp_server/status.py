"""``index_status``'s answer: one state, the repositories' own read with it (the overall state is theirs, so "index:
new" never stands above "ready, 63 files"), and their skipped files from an offset, as many as fit the budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .budget import most_that_fit
from .models import IndexProgress, RepositoryState, SkippedFile, StatusResult
from .render import fits, index_note

if TYPE_CHECKING:
    from semcode.api import RepositoryStatus, Status


def status_answer(status: Status, index: IndexProgress, offset: int, max_tokens: int) -> tuple[StatusResult, str]:
    """The answer for `status` (its repositories' figures) and `index` (the notes and progress read just before):
    the skipped files of every repository in turn, from `offset` on, as many as fit `max_tokens`."""
    repos = status.repositories
    index = index.model_copy(update={
        "state": status.state, "files": sum(r.files for r in repos), "chunks": sum(r.chunks for r in repos),
        "pending": sum(r.pending for r in repos), "complete": index.complete if status.state == "indexing" else 1.0,
    })  # fmt: skip
    skipped = [(n, SkippedFile(path=p, reason=why)) for n, r in enumerate(repos) for p, why in r.skipped]

    def build(page: Sequence[tuple[int, SkippedFile]]) -> tuple[StatusResult, str]:
        more = offset + len(page) if offset + len(page) < len(skipped) else None
        states = [_state(r, [s for n2, s in page if n2 == n]) for n, r in enumerate(repos)]
        answer = StatusResult(model=status.model, read_only=status.read_only, index=index, repositories=states,
                              next_offset=more)  # fmt: skip
        return answer, _text(answer, offset, len(skipped), more)

    n = most_that_fit(skipped[offset:], lambda page: fits(*build(page), max_tokens))
    return build(skipped[offset : offset + n])


def _state(r: RepositoryStatus, skipped: list[SkippedFile]) -> RepositoryState:
    return RepositoryState(
        root=r.root, index_dir=r.index_dir, state=r.state, files=r.files, chunks=r.chunks, pending=r.pending,
        skipped=skipped, skipped_total=len(r.skipped), last_error=r.last_error, embedded=int(r.embedded * 1000) / 1000,
    )  # fmt: skip


def _text(answer: StatusResult, offset: int, total: int, more: int | None) -> str:
    index = answer.index
    lines = [f"model: {answer.model}{' (read-only)' if answer.read_only else ''}; index: {index.state}"]
    if (note := index_note(index)) is not None:
        lines.append(note)
    for r in answer.repositories:
        share = f"{int(r.embedded * 100)}% embedded"
        lines.append(f"{r.root}: {r.state}, {r.files} files, {r.chunks} chunks ({share}), {r.pending} pending, "
                     f"{r.skipped_total} skipped; index folder {r.index_dir}")  # fmt: skip
        lines.extend(f"  skipped {s.path}: {s.reason}" for s in r.skipped)
        if r.last_error:
            lines.append(f"  error: {r.last_error}")
    if more is not None:
        lines.append(f"(skipped files {offset + 1}-{more} of {total} listed; the rest did not fit in the answer's "
                     f"max_tokens: call index_status again with offset={more})")  # fmt: skip
    return "\n".join(lines)
