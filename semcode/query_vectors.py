"""The vectors of recent queries, so a repeated query (agents ask the same ones again, and each page of an answer
repeats its query) is encoded once: ``Engine.query_vector`` keys them by the encoder that made them."""

from __future__ import annotations

import threading
from collections import OrderedDict
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
