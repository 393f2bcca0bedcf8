"""semcode's ModernBERT encoder: text -> L2-normalised vectors.

    from encoder import load_encoder
    enc = load_encoder("path/or/org-name")
    vectors = enc.encode(["def add(a, b): return a + b"], kind="document")  # (1, enc.dim) float32

The encoder knows nothing of files, indexes or LSP.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError

if TYPE_CHECKING:
    from .config import ConfigError, EncoderConfig
    from .encode import Encoder, EncodeStats, load_encoder, plan_batches
    from .tokenize import TextTokenizer, load_tokenizer

# torch and tokenizers load on first use of these names (PEP 562): `import encoder` alone stays cheap (the CLI's
# warm path imports it for CheckpointError)
_LAZY = {
    "Encoder": "encode", "EncodeStats": "encode", "load_encoder": "encode", "load_tokenizer": "tokenize",
    "plan_batches": "encode", "TextTokenizer": "tokenize", "ConfigError": "config", "EncoderConfig": "config",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "ConfigError",
    "EncodeStats",
    "Encoder",
    "EncoderConfig",
    "TextTokenizer",
    "load_encoder",
    "load_tokenizer",
    "plan_batches",
]
