"""Parity: the torch-free NumPy query encoder against the torch encoder (the plain path), on random checkpoints of
several shapes and on the shipped model. Texts longer than the local window exercise the sliding-window masks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encoder import load_encoder
from encoder.config import GLOBAL
from encoder.load import default_model
from encoder.query_numpy import load_query_encoder
from encoder.tiny import write_tiny_checkpoint

TEXTS = [
    "parse a config file",
    "x",
    "",
    "def add(a, b):\n    return a + b\n" * 12,  # longer than the tiny models' local window (16 tokens)
]
CASES = [  # (id, write_tiny_checkpoint overrides)
    ("default", {}),
    ("biases", {"norm_bias": True, "attention_bias": True, "mlp_bias": True}),
    ("tanh-gelu, every layer global", {"hidden_activation": "gelu_pytorch_tanh", "layer_types": (GLOBAL,) * 4}),
    ("silu, window 8", {"hidden_activation": "silu", "local_attention": 8}),
    ("cls pooling", {"pooling": "cls"}),
]


@pytest.mark.parametrize("overrides", [c[1] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["query", "document"])
def test_matches_the_torch_encoder(tmp_path: Path, overrides: dict, kind: str) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny", seed=3, **overrides)
    plain = load_encoder(ckpt, device="cpu", dtype="fp32").encode(TEXTS, kind=kind)
    fast = load_query_encoder(ckpt).encode(TEXTS, kind=kind)
    assert fast.shape == plain.shape and fast.dtype == np.float32
    np.testing.assert_allclose(fast, plain, atol=2e-5)


@pytest.mark.parametrize("pooling", ["mean:8", "decay:4", "decay:64"])
def test_pooling_modes_match(tmp_path: Path, pooling: str) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny", seed=5)
    plain, fast = load_encoder(ckpt, device="cpu", dtype="fp32"), load_query_encoder(ckpt)
    plain.pooling = fast.pooling = pooling
    np.testing.assert_allclose(fast.encode(TEXTS), plain.encode(TEXTS, kind="query"), atol=2e-5)


def test_matches_the_shipped_model() -> None:
    texts = ["read a TOML config file", "retry an HTTP request with exponential backoff", "LRU cache eviction"]
    plain = load_encoder(default_model(), device="cpu", dtype="fp32").encode(texts, kind="query")
    fast = load_query_encoder(default_model()).encode(texts, kind="query")
    np.testing.assert_allclose(fast, plain, atol=2e-5)


def test_loads_without_torch() -> None:
    code = (
        "import sys\nfrom encoder.query_numpy import load_query_encoder\nfrom encoder.load import default_model\n"
        "v = load_query_encoder(default_model()).encode(['open a file'])\n"
        "assert v.shape == (1, 384) and 'torch' not in sys.modules, sorted(sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_batch_is_each_text_alone() -> None:
    """Texts are packed one after another in one forward pass (a server batches the queries that arrive together):
    each text's vector is the one it gets alone."""
    encoder = load_query_encoder(default_model())
    texts = ["x", "parse the command line flags of a subcommand", "LRU cache", "open a file " * 40]
    together = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
