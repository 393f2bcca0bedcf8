"""How much of an index has vectors, alone in a module without imports: the CLI's warm path (``semcode.workspace``)
reads it, and must stay cheap to start."""

from __future__ import annotations


class Coverage:
    """How many chunk rows have vectors: ``embedded`` rows, ``pending`` rows (phase 2 will embed them) and
    ``text_only`` rows (files of ``embed_policy.lexical_only``: never embedded). Immutable."""

    __slots__ = ("embedded", "pending", "text_only")

    def __init__(self, embedded: int = 0, pending: int = 0, text_only: int = 0) -> None:
        object.__setattr__(self, "embedded", embedded)
        object.__setattr__(self, "pending", pending)
        object.__setattr__(self, "text_only", text_only)

    embedded: int
    pending: int
    text_only: int

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Coverage is immutable")

    @property
    def share(self) -> float:
        """The embedded share of the rows that are to be embedded (1.0 when none are)."""
        wanted = self.embedded + self.pending
        return self.embedded / wanted if wanted else 1.0

    @property
    def percent(self) -> str:
        """ "82%", rounded down: "100%" only once every row to embed has its vector."""
        return f"{int(self.share * 100)}%"

    def __add__(self, other: Coverage) -> Coverage:
        return Coverage(self.embedded + other.embedded, self.pending + other.pending, self.text_only + other.text_only)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Coverage):
            return NotImplemented
        return (self.embedded, self.pending, self.text_only) == (other.embedded, other.pending, other.text_only)

    def __hash__(self) -> int:
        return hash((self.embedded, self.pending, self.text_only))

    def __repr__(self) -> str:
        return f"Coverage(embedded={self.embedded}, pending={self.pending}, text_only={self.text_only})"
