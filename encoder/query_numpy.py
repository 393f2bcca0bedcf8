"""A query encoder in NumPy: the forward pass of ``model.py`` for a few short texts, without torch.

Why: a cold ``semcode search`` encodes about ten tokens, and importing torch costs seconds (2-4 s on two busy
cores) while the arithmetic costs milliseconds. This path reads the same safetensors weights (fp32), runs the same
layers (embedding norm, NeoX RoPE with the global/local thetas, sliding-window masks on local layers, GeGLU, final
norm) and the same pooling, so its vectors match ``encoder.load_encoder(...).encode(texts, kind)`` to float
rounding (``tests/test_query_numpy.py`` checks it on random checkpoints and on the shipped model). Attention is a
plain (n x n) softmax per text: meant for queries, not for embedding 8,192-token chunks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import EncoderConfig
from .load import model_id, read_checkpoint, read_numpy_weights, token_limit
from .tokenize import TextTokenizer

_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, vectorised (Abramowitz & Stegun 7.1.26: absolute error < 1.5e-7, below float32's resolution of the
    result); a per-element ``math.erf`` cost 0.36 s per 64-token query with the shipped model."""
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + _ERF_P * z)
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return (np.sign(x) * (1.0 - poly * np.exp(-z * z))).astype(np.float32)


def _act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "gelu":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    raise ValueError(f"unknown activation {name!r}")


class NumpyQueryEncoder:
    """``encode(texts, kind)`` as ``encoder.Encoder`` has it, in NumPy (fp32)."""

    def __init__(
        self,
        config: EncoderConfig,
        weights: dict[str, np.ndarray],
        tokenizer: TextTokenizer,
        pooling: str,
        prompts: dict[str, str],
        name: str,
    ) -> None:
        self.config, self.w, self.tokenizer = config, weights, tokenizer
        self.pooling, self.prompts, self.name = pooling, prompts, name

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    def encode(self, texts: Sequence[str], kind: str = "query") -> np.ndarray:
        """Unit vectors ``(len(texts), dim)`` float32."""
        prefix = self.prompts.get(kind, "")
        ids = self.tokenizer([prefix + t for t in texts]).ids
        out = np.stack([self._pool(h) for h in self._forward([np.asarray(seq) for seq in ids])]).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        y = (x - mean) / np.sqrt(var + self.config.norm_eps) * self.w[f"{name}.weight"]
        return y + self.w[f"{name}.bias"] if self.config.norm_bias else y

    def _linear(self, x: np.ndarray, name: str, bias: bool) -> np.ndarray:
        y = x @ self.w[f"{name}.weight"].T
        return y + self.w[f"{name}.bias"] if bias else y

    def _rope(self, pos: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
        d = self.config.head_dim
        inv = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float32) / d))
        freqs = pos.astype(np.float32)[:, None] * inv[None, :]  # (n, d / 2)
        emb = np.concatenate([freqs, freqs], axis=-1)[:, None, :]  # (n, 1, d)
        return np.cos(emb), np.sin(emb)

    def _attention(self, x: np.ndarray, layer: int, pos: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Attention of the texts packed in `x` (their tokens one after another: text i is rows bounds[i] to
        bounds[i + 1], at positions `pos` within it): the projections run on every token at once, the attention
        itself within each text."""
        c, n = self.config, x.shape[0]
        heads, d = c.num_attention_heads, c.head_dim
        qkv = self._linear(x, f"layers.{layer}.attn.Wqkv", c.attention_bias).reshape(n, 3, heads, d)
        glob = c.is_global(layer)
        cos, sin = self._rope(pos, c.global_rope_theta if glob else c.local_rope_theta)

        def rotate(t: np.ndarray) -> np.ndarray:  # (n, heads, d)
            half = d // 2
            return t * cos + np.concatenate([-t[..., half:], t[..., :half]], axis=-1) * sin

        q, k, v = rotate(qkv[:, 0]), rotate(qkv[:, 1]), qkv[:, 2]
        out = np.empty((n, heads * d), np.float32)
        for a, b in itertools.pairwise(bounds):
            scores = np.einsum("ihd,jhd->hij", q[a:b], k[a:b]) / math.sqrt(d)  # (heads, m, m)
            if not glob:
                p = pos[a:b]
                scores = np.where(np.abs(p[:, None] - p[None, :]) <= c.window_half, scores, -np.inf)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            out[a:b] = np.einsum("hij,jhd->ihd", probs, v[a:b]).reshape(b - a, heads * d)
        return self._linear(out, f"layers.{layer}.attn.Wo", c.attention_bias)

    def _mlp(self, x: np.ndarray, layer: int) -> np.ndarray:
        c = self.config
        inp, gate = np.split(self._linear(x, f"layers.{layer}.mlp.Wi", c.mlp_bias), 2, axis=-1)
        return self._linear(_act(c.hidden_activation, inp) * gate, f"layers.{layer}.mlp.Wo", c.mlp_bias)

    def _forward(self, seqs: list[np.ndarray]) -> list[np.ndarray]:
        """Token ids of each text -> its final hidden states (n, hidden). The texts are packed one after another
        (no padding): every layer but attention's inner product runs once on all their tokens, so a batch of
        queries costs far less than the queries one by one."""
        lengths = [len(s) for s in seqs]
        bounds = np.cumsum([0, *lengths])
        pos = np.concatenate([np.arange(m) for m in lengths])
        x = self._norm(self.w["embeddings.tok_embeddings.weight"][np.concatenate(seqs)], "embeddings.norm")
        for layer in range(self.config.num_hidden_layers):
            h = x if layer == 0 else self._norm(x, f"layers.{layer}.attn_norm")
            x = x + self._attention(h, layer, pos, bounds)
            x = x + self._mlp(self._norm(x, f"layers.{layer}.mlp_norm"), layer)
        x = self._norm(x, "final_norm")
        return [x[a:b] for a, b in itertools.pairwise(bounds)]

    def _pool(self, hidden: np.ndarray) -> np.ndarray:
        kind, _, arg = self.pooling.partition(":")
        if kind == "cls":
            return hidden[0]
        pos = np.arange(hidden.shape[0])
        if not arg:
            weight = np.ones_like(pos, dtype=np.float32)
        elif kind == "mean":
            weight = (pos < int(arg)).astype(np.float32)
        else:  # decay:N, as encoder.model.pool
            weight = np.minimum(1.0, int(arg) / (pos + 1.0)).astype(np.float32)
        return (hidden * weight[:, None]).sum(0) / weight.sum()


def load_query_encoder(path_or_id: str | Path, max_tokens: int | None = None) -> NumpyQueryEncoder:
    """The query encoder of a checkpoint, without torch (same tokenizer limit as ``load_encoder``)."""
    ckpt = read_checkpoint(path_or_id, weights=False)
    weights = read_numpy_weights(ckpt.folder)
    limit = token_limit(ckpt.config, ckpt.max_seq_length, max_tokens)
    tokenizer = TextTokenizer.from_file(ckpt.tokenizer_path, limit, ckpt.config.cls_token_id)
    return NumpyQueryEncoder(ckpt.config, weights, tokenizer, ckpt.pooling, ckpt.prompts, model_id(path_or_id))
