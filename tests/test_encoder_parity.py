"""Parity with the reference: transformers' ModernBertModel, on tiny random configs written as HF checkpoints.

Per-token hidden states and pooled embeddings must agree within 1e-5 in fp32, for every attention backend that
can run here, across shapes (biases on/off, global/local mixes, windows shorter and longer than the texts, odd
lengths, CLS and mean pooling) and both config.json key styles.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from encoder import load_encoder
from encoder.attention import Packing
from tests.hf_reference import SHAPES, Shape, hf_hidden, hf_pool, make_hf_model, save_hf_checkpoint, tokenizer

# lengths below, at and above every window used in SHAPES (half-windows 3..16), odd and even
LENGTHS = [1, 2, 3, 5, 8, 9, 16, 17, 33, 34, 65, 100, 257]
ATOL = 1e-5


def random_ids(lengths: list[int], vocab: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(5, vocab) for _ in range(n)] for n in lengths]


@pytest.fixture(scope="module", params=SHAPES, ids=[s.name for s in SHAPES])
def checkpoint(request, tmp_path_factory):
    shape: Shape = request.param
    model = make_hf_model(shape)
    folder = save_hf_checkpoint(model, shape, tmp_path_factory.mktemp(shape.name))
    return shape, model, folder


def ours_hidden(folder, ids: list[list[int]], backend: str) -> list[torch.Tensor]:
    enc = load_encoder(folder, device="cpu", dtype="fp32", backend=backend)  # type: ignore[arg-type]
    packing = Packing.from_seqlens([len(x) for x in ids], torch.device("cpu"))
    flat = torch.tensor([t for seq in ids for t in seq])
    with torch.no_grad():
        hidden = enc.model(flat, packing, backend)  # (total, hidden)
    return list(hidden.split(packing.seqlens))


@pytest.mark.parametrize("backend", ["blocked", "plain"])
def test_hidden_states_match_reference(checkpoint, backend):
    shape, model, folder = checkpoint
    ids = random_ids(LENGTHS, tokenizer().get_vocab_size())
    ref = hf_hidden(model, ids)
    ours = ours_hidden(folder, ids, backend)
    for n, r, o in zip(LENGTHS, ref, ours, strict=True):
        err = (r - o).abs().max().item()
        assert err <= ATOL, f"{shape.name}/{backend}: length {n}: max abs error {err:.2e}"


def test_pooled_embeddings_match_reference(checkpoint):
    shape, model, folder = checkpoint
    texts = [
        "def add(a, b):\n    return a + b",
        "class Stack:\n    def push(self, x):\n        self.items.append(x)\n" * 6,
        "x",
        "import os\nprint(os.getcwd())",
    ]
    enc = load_encoder(folder, device="cpu", dtype="fp32")
    assert enc.pooling == shape.pooling
    ours = enc.encode(texts)
    ids = [e.ids for e in tokenizer().encode_batch(texts)]
    ref = torch.stack([hf_pool(h, shape.pooling) for h in hf_hidden(model, ids)]).numpy()
    np.testing.assert_allclose(ours, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2]], ids=["base-like", "every3"])
def test_config_4x_keys_and_masked_lm_names(shape, tmp_path):
    """4.x keys (global_attn_every_n_layers, *_rope_theta) and "model."-prefixed masked-LM weights load alike."""
    mlm = make_hf_model(shape, seed=3, masked_lm=True)
    folder = save_hf_checkpoint(mlm, shape, tmp_path / "mlm", config_style="4.x")
    ids = random_ids([7, 40, 130], tokenizer().get_vocab_size(), seed=1)
    ref = hf_hidden(mlm, ids)
    ours = ours_hidden(folder, ids, "blocked")
    for r, o in zip(ref, ours, strict=True):
        assert (r - o).abs().max().item() <= ATOL


def test_reference_sdpa_agrees_too(tmp_path):
    """The benchmark compares against transformers' sdpa path: check it is the same function as ours."""
    shape = SHAPES[0]
    model = make_hf_model(shape, seed=5, attn="sdpa")
    folder = save_hf_checkpoint(model, shape, tmp_path / "sdpa")
    ids = random_ids([3, 20, 90], tokenizer().get_vocab_size(), seed=2)
    for r, o in zip(hf_hidden(model, ids), ours_hidden(folder, ids, "blocked"), strict=True):
        assert (r - o).abs().max().item() <= ATOL


def test_text_alone_equals_text_in_batch(checkpoint):
    """Packing must not leak between sequences: one text alone and inside a batch give the same vector."""
    _, _, folder = checkpoint
    enc = load_encoder(folder, device="cpu", dtype="fp32", batch_tokens=4096)
    rng = random.Random(7)
    words = ["def", "return", "self", "class", "import", "x", "(", ")", ":", "\n", "    ", "value", "for", "in"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randrange(0, 300))) for _ in range(30)]
    batch = enc.encode(texts)
    for i in (0, 5, 17, 29):
        alone = enc.encode([texts[i]])[0]
        np.testing.assert_allclose(alone, batch[i], atol=1e-6, rtol=0)
