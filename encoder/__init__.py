"""semcode's ModernBERT encoder: text -> L2-normalised vectors.

    from encoder import load_encoder
    enc = load_encoder("path/or/org-name")
    vectors = enc.encode(["def add(a, b): return a + b"], kind="document")  # (1, enc.dim) float32

The encoder knows nothing of files, indexes or LSP.
"""

from .config import ConfigError, EncoderConfig
from .encode import Encoder, EncodeStats, load_encoder, load_tokenizer, plan_batches
from .load import CheckpointError
from .tokenize import TextTokenizer

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
