"""ModernBERT over packed sequences, in PyTorch, readable in one sitting.

Parameter names match the Hugging Face ``ModernBertModel`` checkpoint (``embeddings.tok_embeddings.weight``,
``layers.3.attn.Wqkv.weight``, ``final_norm.weight``, ...), so loading is a plain ``load_state_dict``.

The batch is unpadded once, before the embeddings: ``input_ids`` is ``(total_tokens,)`` with every sequence of
the batch end to end, and ``Packing`` says where each one starts. No layer ever sees a pad token.

References: transformers ``models/modernbert/modeling_modernbert.py``; Warner et al., "Smarter, Better, Faster,
Longer: A Modern Bidirectional Encoder" (arXiv 2412.13663); RoPE (Su et al., arXiv 2104.09864), NeoX layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Backend, Packing, attend, choose_backend
from .config import EncoderConfig


def activation(name: str) -> nn.Module:
    return {
        "gelu": nn.GELU(),
        "gelu_new": nn.GELU(approximate="tanh"),
        "gelu_pytorch_tanh": nn.GELU(approximate="tanh"),
        "relu": nn.ReLU(),
        "silu": nn.SiLU(),
    }[name]


class Rotary(nn.Module):
    """cos/sin tables for one theta, gathered per token by its position in its own sequence."""

    inv_freq: torch.Tensor

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[:, None].float() * self.inv_freq.float()[None, :]  # (total, head_dim / 2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (total, head_dim)
        return emb.cos()[:, None, :], emb.sin()[:, None, :]  # (total, 1, head_dim), fp32


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """NeoX ``rotate_half`` RoPE in fp32: ``x * cos + rotate_half(x) * sin``.

    x is ``(total, ..., head_dim)`` (q and k may come together as ``(total, 2, heads, head_dim)``); cos and sin
    are ``(total, 1, head_dim)`` and broadcast over the middle axes. Written half by half into one output so no
    rotated copy of x is ever materialised.
    """
    xf = x.float()
    half = xf.shape[-1] // 2
    if torch.is_grad_enabled() and xf.requires_grad:  # training: out= writes are not differentiable
        full = (xf.shape[0],) + (1,) * (xf.dim() - 2) + (xf.shape[-1],)
        x1, x2 = xf[..., :half], xf[..., half:]
        return (xf * cos.reshape(full) + torch.cat((-x2, x1), dim=-1) * sin.reshape(full)).to(x.dtype)
    shape = (xf.shape[0],) + (1,) * (xf.dim() - 2) + (half,)
    c, s = cos[..., :half].reshape(shape), sin[..., :half].reshape(shape)  # the two halves of cos/sin are equal
    x1, x2 = xf[..., :half], xf[..., half:]
    out = torch.empty_like(xf)
    torch.mul(x1, c, out=out[..., :half]).addcmul_(x2, s, value=-1.0)  # x1 cos - x2 sin
    torch.mul(x2, c, out=out[..., half:]).addcmul_(x1, s)  # x2 cos + x1 sin
    return out.to(x.dtype)


class ModernBertEmbeddings(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.tok_embeddings(input_ids))  # (total, hidden)


class ModernBertAttention(nn.Module):
    def __init__(self, config: EncoderConfig, layer: int):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.window = None if config.is_global(layer) else config.window_half
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], packing: Packing, backend: Backend
    ) -> torch.Tensor:
        total = x.shape[0]
        qkv = self.Wqkv(x).view(total, 3, self.heads, self.head_dim)  # (total, 3, heads, head_dim)
        cos, sin = rope
        qk = apply_rotary(qkv[:, :2], cos, sin)  # (total, 2, heads, head_dim)
        q, k = qk.unbind(dim=1)  # each (total, heads, head_dim)
        v = qkv[:, 2]
        out = attend(q, k, v, packing, self.window, backend)  # (total, heads, head_dim)
        return self.Wo(out.reshape(total, self.heads * self.head_dim))


class ModernBertMLP(nn.Module):
    """GeGLU: ``input, gate = Wi(x).chunk(2)``; ``Wo(act(input) * gate)``."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.mlp_bias)
        self.act = activation(config.hidden_activation)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp, gate = self.Wi(x).chunk(2, dim=-1)  # each (total, intermediate)
        if torch.is_grad_enabled() and x.requires_grad:  # training: no in-place product
            return self.Wo(self.act(inp) * gate)
        return self.Wo(self.act(inp).mul_(gate))


class ModernBertEncoderLayer(nn.Module):
    def __init__(self, config: EncoderConfig, layer: int):
        super().__init__()
        # layer 0 has no attn_norm: the embedding norm already normalised its input
        self.attn_norm: nn.Module = (
            nn.Identity()
            if layer == 0
            else nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        )
        self.attn = ModernBertAttention(config, layer)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = ModernBertMLP(config)
        self.is_global = config.is_global(layer)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], packing: Packing, backend: Backend
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rope, packing, backend)
        return x + self.mlp(self.mlp_norm(x))


class ModernBertModel(nn.Module):
    """Token ids of packed sequences -> final hidden states ``(total_tokens, hidden)``."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.ModuleList(ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.rope_global = Rotary(config.head_dim, config.global_rope_theta)
        self.rope_local = Rotary(config.head_dim, config.local_rope_theta)

    def forward(self, input_ids: torch.Tensor, packing: Packing, backend: Backend | None = None) -> torch.Tensor:
        backend = backend or choose_backend(input_ids.device)
        x = self.embeddings(input_ids)  # (total, hidden)
        rope_g = self.rope_global(packing.position_ids)
        rope_l = self.rope_local(packing.position_ids)
        for layer in self.layers:
            x = layer(x, rope_g if layer.is_global else rope_l, packing, backend)
        return self.final_norm(x)


def pool(hidden: torch.Tensor, packing: Packing, mode: str) -> torch.Tensor:
    """(total, hidden) -> (n_seqs, hidden): the first token of each sequence (``cls``), the mean of its tokens
    (``mean``), the mean of its first N tokens (``mean:N``; they have attended to the whole sequence), or a
    weighted mean whose weights fall as N/position after the first N tokens (``decay:N``: the head counts most,
    the tail still counts)."""
    if mode == "cls":
        return hidden[packing.cu_seqlens[:-1].long()]
    kind, _, arg = mode.partition(":")
    if kind not in ("mean", "decay") or (kind == "decay" and not arg):
        raise ValueError(f"unknown pooling mode {mode!r}")
    n = len(packing.seqlens)
    lens = torch.tensor(packing.seqlens, device=hidden.device)
    seg = torch.repeat_interleave(torch.arange(n, device=hidden.device), lens)  # (total,) sequence of each token
    pos = torch.arange(hidden.shape[0], device=hidden.device) - packing.cu_seqlens[:-1].long()[seg]
    if not arg:
        weight = torch.ones(hidden.shape[0], device=hidden.device)
    elif kind == "mean":
        weight = (pos < int(arg)).float()
    else:
        weight = (int(arg) / (pos + 1).float()).clamp(max=1.0)
    sums = torch.zeros(n, hidden.shape[1], dtype=torch.float32, device=hidden.device)
    sums.index_add_(0, seg, hidden.float() * weight[:, None])
    totals = torch.zeros(n, dtype=torch.float32, device=hidden.device).index_add_(0, seg, weight)
    return sums / totals[:, None]


def normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), p=2.0, dim=-1)
