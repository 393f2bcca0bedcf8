"""Attention over packed (unpadded) sequences: three backends with one signature.

Every backend takes ``q, k, v`` of shape ``(total_tokens, heads, head_dim)`` for all sequences of a batch packed
end to end (``cu_seqlens`` marks the boundaries) and returns the same shape. ``window`` is ``None`` for a global
layer, or the half-window ``w`` of a local layer, where token i sees token j iff |i - j| <= w (ModernBERT:
``local_attention // 2``; flash-attn ``window_size=(w, w)``).

* ``flash``: ``flash_attn_varlen_func`` on CUDA when flash-attn is installed.
* ``blocked`` (CPU and any device without flash-attn): global layers run SDPA per sequence (no padding, no n x n
  mask); local layers cut the packed stream into blocks of ``w`` tokens, and each block attends to itself and its two
  neighbours under a (same sequence and |i - j| <= w) mask, so the cost is O(total_tokens * 3w), not O(n^2).
* ``plain``: per sequence, an explicit n x n score matrix and mask. Slow and obvious; the fast paths are tested
  against it.

Flash-attn is never chosen for CPU tensors (the reference does, transformers #35388).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

Backend = Literal["flash", "blocked", "plain"]


@dataclass
class Packing:
    """Where each sequence sits in the packed stream, plus caches shared by all layers of one forward."""

    cu_seqlens: torch.Tensor  # (n_seqs + 1,) int32, on the model's device
    seqlens: list[int]
    position_ids: torch.Tensor  # (total_tokens,) int64, restarting at 0 for each sequence
    _local_masks: dict[int, tuple[torch.Tensor, int]] = field(default_factory=dict)

    @classmethod
    def from_seqlens(cls, seqlens: list[int], device: torch.device) -> Packing:
        lens = torch.tensor(seqlens, dtype=torch.int32)
        cu = torch.zeros(len(seqlens) + 1, dtype=torch.int32)
        cu[1:] = torch.cumsum(lens, 0)
        total = int(cu[-1])
        starts = torch.repeat_interleave(cu[:-1].long(), lens.long())  # (total_tokens,)
        positions = torch.arange(total, dtype=torch.long) - starts
        return cls(cu.to(device), list(seqlens), positions.to(device))

    @property
    def total(self) -> int:
        return int(self.position_ids.shape[0])

    @property
    def max_seqlen(self) -> int:
        return max(self.seqlens)

    def local_mask(self, window: int) -> tuple[torch.Tensor, int]:
        """Block mask for the ``blocked`` local path: ``(n_blocks, 1, block, 3 * block)`` bool and the block size."""
        if window not in self._local_masks:
            self._local_masks[window] = _build_local_mask(self, window)
        return self._local_masks[window]


def flash_available(device: torch.device) -> bool:
    return device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None


def choose_backend(device: torch.device) -> Backend:
    return "flash" if flash_available(device) else "blocked"


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int | None, backend: Backend
) -> torch.Tensor:
    if backend == "flash":
        return _flash(q, k, v, packing, window)
    if backend == "blocked":
        if window is None or window + 1 >= packing.max_seqlen:
            # a window that spans every sequence is global attention
            return _per_sequence_sdpa(q, k, v, packing)
        return _blocked_local(q, k, v, packing, window)
    if backend == "plain":
        return _plain(q, k, v, packing, window)
    raise ValueError(f"unknown attention backend {backend!r}")


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int | None) -> torch.Tensor:
    from flash_attn import flash_attn_varlen_func

    w = (-1, -1) if window is None else (window, window)
    out: torch.Tensor = flash_attn_varlen_func(
        q,
        k,
        v,
        packing.cu_seqlens,
        packing.cu_seqlens,
        packing.max_seqlen,
        packing.max_seqlen,
        dropout_p=0.0,
        causal=False,
        window_size=w,
    )
    return out


def _per_sequence_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing) -> torch.Tensor:
    # heads-major copies, so each sequence's slice is a dense (heads, n, head_dim) block (the CPU kernel runs
    # 5-10% faster on it than on the strided view of the fused qkv projection)
    qh, kh, vh = (t.transpose(0, 1).contiguous() for t in (q, k, v))  # (heads, total, head_dim)
    heads, _, head_dim = qh.shape
    out = torch.empty_like(qh)
    start, i, seqlens = 0, 0, packing.seqlens
    while i < len(seqlens):
        # consecutive sequences of one length (the encoder sorts by length) go as one batch: no padding, and one
        # kernel call instead of many (4,000 calls of ~10 tokens cost 17 s of a 2,000-file index of tiny files)
        n, j = seqlens[i], i + 1
        while j < len(seqlens) and seqlens[j] == n:
            j += 1
        b, end = j - i, start + (j - i) * n
        qs, ks, vs = (t[:, start:end].reshape(heads, b, n, head_dim).transpose(0, 1) for t in (qh, kh, vh))
        o = F.scaled_dot_product_attention(qs, ks, vs)  # (b, heads, n, head_dim)
        out[:, start:end] = o.transpose(0, 1).reshape(heads, end - start, head_dim)
        start, i = end, j
    return out.transpose(0, 1)  # (total, heads, head_dim)


def _build_local_mask(packing: Packing, window: int) -> tuple[torch.Tensor, int]:
    block = window
    total = packing.total
    n_blocks = -(-total // block)
    padded = n_blocks * block
    device = packing.position_ids.device
    seq_id = torch.repeat_interleave(
        torch.arange(len(packing.seqlens), device=device),
        torch.tensor(packing.seqlens, device=device),
    )
    # pad the stream to whole blocks plus one block each side; padding gets sequence id -1
    sid = torch.full((padded + 2 * block,), -1, dtype=torch.long, device=device)
    sid[block : block + total] = seq_id
    idx = torch.arange(padded + 2 * block, device=device)
    q_sid = sid[block : block + padded].view(n_blocks, block)  # (n_blocks, block)
    q_idx = idx[block : block + padded].view(n_blocks, block)
    k_sid = sid.unfold(0, 3 * block, block)[:n_blocks]  # (n_blocks, 3 * block)
    k_idx = idx.unfold(0, 3 * block, block)[:n_blocks]
    same = q_sid[:, :, None] == k_sid[:, None, :]  # (n_blocks, block, 3 * block)
    near = (q_idx[:, :, None] - k_idx[:, None, :]).abs() <= window
    mask = same & near
    # padding queries see only themselves (avoids all-masked rows); their output is discarded
    mask |= (q_sid[:, :, None] < 0) & (q_idx[:, :, None] == k_idx[:, None, :])
    return mask.unsqueeze(1), block  # (n_blocks, 1, block, 3 * block)


def _blocked_local(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int) -> torch.Tensor:
    mask, block = packing.local_mask(window)
    n_blocks = mask.shape[0]
    total, heads, head_dim = q.shape
    padded = n_blocks * block

    def blocks(t: torch.Tensor, pad_left: int, pad_right: int) -> torch.Tensor:
        # (total, heads, head_dim) -> (heads, pad_left + total + pad_right, head_dim)
        return F.pad(t.transpose(0, 1), (0, 0, pad_left, pad_right))

    qb = blocks(q, 0, padded - total).view(heads, n_blocks, block, head_dim).transpose(0, 1)
    # keys/values with one extra block each side, then overlapping windows of 3 blocks
    kp = blocks(k, block, padded - total + block)  # (heads, padded + 2 * block, head_dim)
    vp = blocks(v, block, padded - total + block)
    kb = kp.unfold(1, 3 * block, block).permute(1, 0, 3, 2)  # (n_blocks, heads, 3 * block, head_dim)
    vb = vp.unfold(1, 3 * block, block).permute(1, 0, 3, 2)
    o = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask)  # (n_blocks, heads, block, head_dim)
    return o.transpose(0, 1).reshape(heads, padded, head_dim)[:, :total].transpose(0, 1)


def _plain(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, window: int | None) -> torch.Tensor:
    out = torch.empty_like(q)
    scale = q.shape[-1] ** -0.5
    start = 0
    for n in packing.seqlens:
        end = start + n
        qs, ks, vs = (t[start:end].transpose(0, 1).float() for t in (q, k, v))  # (heads, n, head_dim)
        scores = qs @ ks.transpose(1, 2) * scale  # (heads, n, n)
        if window is not None:
            pos = torch.arange(n, device=q.device)
            allowed = (pos[:, None] - pos[None, :]).abs() <= window
            scores = scores.masked_fill(~allowed, float("-inf"))
        out[start:end] = (scores.softmax(-1) @ vs).transpose(0, 1).to(q.dtype)
        start = end
    return out
