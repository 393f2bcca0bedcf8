"""Query vectors for a server of many clients: the vectors of recent queries, so a repeated query (agents ask the
same ones again, and each page of an answer repeats its query) is encoded once (``QueryVectors``: ``Engine.
query_vector`` keys them by the encoder that made them), and queries that arrive together encoded in one batch
(``QueryBatcher``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class QueryVectors:
    """The vectors of the last ``size`` queries (least recently used out first), shared by every thread."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._vectors: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> np.ndarray | None:
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
            return vector

    def put(self, key: tuple[str, str, str], vector: np.ndarray) -> None:
        vector.setflags(write=False)  # handed to every caller of this query: nobody may change it
        with self._lock:
            self._vectors[key] = vector
            self._vectors.move_to_end(key)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)


class QueryBatcher:
    """Queries that arrive together are encoded together: one forward pass for all of them instead of one each.

    A caller whose query finds no encoding under way encodes every query waiting at that moment (its own among
    them) in one batch; the queries that arrive meanwhile wait and go in the next batch, led by one of them. So
    one thread encodes at a time (no threads contending for the cores inside the model), and under load a batch
    holds the queries that arrived during the previous one. `encode_many` maps a list of texts to their vectors, in
    order; an error in it is raised in every caller of that batch."""

    def __init__(
        self, encode_many: Callable[[list[str]], Sequence[np.ndarray] | np.ndarray], max_batch: int = 64
    ) -> None:
        self._encode_many = encode_many
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Query] = []
        self._leading = False
        self.batches = 0  # batches encoded, and the queries in them (for tests and benchmarks)
        self.queries = 0

    def encode(self, text: str) -> np.ndarray:
        mine = _Query(text)
        with self._cond:
            self._waiting.append(mine)
            while self._leading and not mine.done:
                self._cond.wait()
            if mine.done:
                return mine.result()
            self._leading = True
            others = [q for q in self._waiting if q is not mine]
            batch, self._waiting = [mine, *others[: self.max_batch - 1]], others[self.max_batch - 1 :]
        try:
            vectors: Sequence[np.ndarray] | np.ndarray | None = self._encode_many([q.text for q in batch])
            error: BaseException | None = None
        except BaseException as e:  # (every caller of the batch raises it)
            vectors, error = None, e
        with self._cond:
            for i, q in enumerate(batch):  # (a copy each: a cached vector must not keep the whole batch alive)
                q.finish(None if vectors is None else vectors[i].copy(), error)
            self.batches += 1
            self.queries += len(batch)
            self._leading = False
            self._cond.notify_all()
        return mine.result()


class _Query:
    __slots__ = ("done", "error", "text", "vector")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False

    def finish(self, vector: np.ndarray | None, error: BaseException | None) -> None:
        self.vector, self.error, self.done = vector, error, True

    def result(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.vector is not None
        return self.vector
