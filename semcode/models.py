"""Loaded encoders shared by the engines of one process: a process that serves several indexes (the CLI's daemon)
holds each model once, not once per index (a loaded model is hundreds of MB).

An ``Engine`` given a ``ModelCache`` asks it for its encoders (``Engine.load_encoder``, ``Engine.query_encoder``);
the cache loads each one on first need and hands the same object to every engine that asks with the same
``ModelKey``. Loading runs under a lock of that key alone: a second engine waits for the load in progress instead of
loading a second copy, and an engine of another model, or one that asks for the torch-free query encoder, does not
wait. Who owns the cache decides when a model is no longer needed (``drop``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from encoder import Encoder
    from encoder.query_numpy import NumpyQueryEncoder

    from .settings import Settings

T = TypeVar("T")


class ModelKey(NamedTuple):
    """What makes two loaded encoders the same: the resolved model and how its weights are loaded. torch's threads
    are not part of it: they are process-wide, whichever encoder sets them."""

    model: str
    device: str | None
    dtype: str | None
    max_tokens: int | None

    @classmethod
    def of(cls, model: str, settings: Settings) -> ModelKey:
        """The key of `model` (resolved) loaded with `settings`."""
        return cls(model, settings.device, settings.dtype, settings.max_tokens)


class ModelCache:
    """Loaded encoders by ``ModelKey``: the torch encoder and the torch-free query encoder, each loaded once (see
    the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the dicts below, never held while a model loads
        self._encoders: dict[ModelKey, Encoder] = {}
        self._query_encoders: dict[ModelKey, NumpyQueryEncoder] = {}
        self._loading: dict[tuple[str, ModelKey], threading.Lock] = {}  # one lock per (kind, key) being loaded
        self.loaded_at: dict[ModelKey, float] = {}  # when each key's first encoder was loaded (time.time())

    def encoder(self, key: ModelKey, load: Callable[[], Encoder]) -> Encoder:
        """The torch encoder of `key`, loaded by `load` on first need."""
        return self._get("encoder", key, self._encoders, load)

    def query_encoder(self, key: ModelKey, load: Callable[[], NumpyQueryEncoder]) -> NumpyQueryEncoder:
        """The torch-free query encoder of `key`, loaded by `load` on first need (it never waits for a torch
        encoder's load: its lock is its own)."""
        return self._get("query", key, self._query_encoders, load)

    def _get(self, kind: str, key: ModelKey, loaded: dict[ModelKey, T], load: Callable[[], T]) -> T:
        with self._lock:
            if key in loaded:
                return loaded[key]
            loading = self._loading.setdefault((kind, key), threading.Lock())
        with loading:  # a second caller of this key waits here for the first one's load
            with self._lock:
                if key in loaded:
                    return loaded[key]
            value = load()
            with self._lock:
                loaded[key] = value
                self.loaded_at.setdefault(key, time.time())
                self._loading.pop((kind, key), None)
            return value

    def loaded(self) -> list[ModelKey]:
        """Every key with an encoder of either kind loaded."""
        with self._lock:
            return list(dict.fromkeys([*self._encoders, *self._query_encoders]))

    def kinds(self, key: ModelKey) -> list[str]:
        """Which of `key`'s encoders are loaded: "torch", "numpy" (the query encoder), both or none."""
        with self._lock:
            return [kind for kind, held in (("torch", self._encoders), ("numpy", self._query_encoders)) if key in held]

    def drop(self, key: ModelKey) -> bool:
        """Forget `key`'s encoders (their memory goes once no engine holds them either); True if any was held."""
        with self._lock:
            self.loaded_at.pop(key, None)
            held = [self._encoders.pop(key, None), self._query_encoders.pop(key, None)]
        return any(e is not None for e in held)
