"""int8 linear layers for CPU encoding (``load_encoder(dtype="int8")``, the default on x86 CPUs with VNNI).

The form: SmoothQuant scales folded into the model, then every ``nn.Linear`` of the layers as an
:class:`Int8Linear`: weights int8 with one scale per output channel, activations int8 with one scale per token
(row), an exact int32 product (``torch._int_mm``, oneDNN), rescaled to fp32. Embeddings, norms, attention,
activations and pooling stay fp32.

Measured on the shipped model (each chunk's vector against its fp32 twin; 256 Python stdlib functions, 96 C header
pieces, 96 Rust pieces; ``benchmarks/encoder_throughput.py --cases q`` prints the current figures):

- torch's ``quantize_dynamic`` scales activations per tensor (one scale for a whole packed batch): min cosine
  0.957 with per-tensor weights, 0.967 with per-channel ones. One scale per batch also makes a text's vector depend
  on its batch-mates, which the encoder promises it does not.
- One scale per token instead: min 0.995, mean 0.998. The activations lose it, not the weights (int8 weights alone:
  min 0.9994). Quantized one at a time, the ``Wqkv`` of the middle layers cost most: their inputs have channels 5x
  the median.
- SmoothQuant (Xiao et al., arXiv 2211.10438) moves that spread into the weights: per input channel j,
  ``s_j = max|X_j|^a / max|W_j|^(1 - a)``, X divided by s and W's columns multiplied by it. The division is folded
  into the op before each linear: the ``attn_norm`` before ``Wqkv`` (layer 0 has none: an explicit x / s), the
  ``mlp_norm`` before ``mlp.Wi``, the gate half of ``mlp.Wi`` before ``mlp.Wo`` (GeGLU: the gate scales the
  product), the V rows of ``Wqkv`` before ``attn.Wo`` (attention averages V rows). a = 0.6: min 0.9987-0.9989 per
  language, mean 0.9991-0.9993; a from 0.5 to 0.7 is within 0.0002 of that.
- Speed, the shipped model on 256 stdlib functions, one process, rounds interleaved, on an AVX-512 VNNI + BF16
  CPU: 2 threads int8 1.75x fp32 and 1.12x bf16; 1 thread 1.76x and 1.27x. Attention (fp32 either way) is then
  about half the time: the ceiling. MRR@10 on ../shared/eval/dev, mean of 3 sets: fp32 0.5634, bf16 0.5609,
  int8 0.5605, int8 documents with the NumPy fp32 query encoder 0.5598 (worst set, tkinter: -0.0046 and -0.0053).
- Without VNNI (emulated: ``ONEDNN_MAX_CPU_ISA=AVX2``), 7-bit weights (below): 1.32x fp32 at 1 thread, 1.23x at
  2, min cosine 0.9977: not enough to be the default there.

Calibration (the max |X_j|) is one fp32 pass over about 2k tokens of this package's own source (always installed
with it; calibrating on 300 stdlib functions instead gives the same figures), then one int8 pass over the same texts
checks the result: :class:`Int8Check`. ``load_encoder`` keeps int8 as the default only when that check's minimum
cosine is at least :data:`PARITY` (a checkpoint other than the shipped one may not quantize as well).

Exactness of the int8 product: with VNNI (``avx512_vnni``, ``avx_vnni``, ``amx_int8``) it is exact. Without it,
oneDNN sums u8 x s8 pairs into saturating int16 (``vpmaddubsw``): with 8-bit weights up to 19% of the result was
lost (``ONEDNN_MAX_CPU_ISA=AVX2``). Weights of 7 bits (|q| <= 63) keep every pair sum below 2^15, exact on every
ISA, at some cost (min cosine 0.997 with a = 0.5): :func:`weight_levels` picks 127 or 63.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .device import cpu_has_vnni
from .model import ModernBertEncoderLayer, ModernBertModel, normalize, pool

PARITY = 0.995  # the bound: cosine of each int8 vector to its fp32 twin
CALIBRATION_TOKENS = 2048


def weight_levels() -> int:
    """127 where the CPU multiplies int8 exactly (VNNI), else 63 (no int16 saturation; see the module doc)."""
    return 127 if cpu_has_vnni() else 63


def int8_available() -> bool:
    """Whether this torch build runs ``torch._int_mm`` on CPU (and gets a small product right)."""
    try:
        a = torch.arange(-8, 8, dtype=torch.int8).reshape(1, 16).repeat(17, 1)
        return bool(torch.equal(torch._int_mm(a, a.t().contiguous()), a.int() @ a.int().t()))
    except (AttributeError, RuntimeError):
        return False


class Int8Linear(nn.Module):
    """``y = x @ W.T + b``: W in int8, one scale per output channel; x quantized per row (token).

    Each row is quantized on its own and the int32 product is exact, so a row's output never depends on the other
    rows of the batch.
    """

    qweight: torch.Tensor
    wscale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, levels: int = 127):
        super().__init__()
        w = weight.detach().float()
        self.in_features, self.out_features = int(w.shape[1]), int(w.shape[0])
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / levels  # (out,)
        q = torch.round(w / scale[:, None]).clamp(-levels, levels).to(torch.int8)
        self.register_buffer("qweight", q.t().contiguous())  # (in, out): torch._int_mm's right operand
        self.register_buffer("wscale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, levels: int = 127) -> Int8Linear:
        return cls(linear.weight, linear.bias, levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xf = x.reshape(-1, shape[-1]).float()
        scale = xf.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12).div_(127.0)  # (rows, 1)
        xq = torch.round(xf / scale).to(torch.int8)
        # int32 -> fp32 first, then in-place scaling: measured 3x faster than one mixed-dtype multiply
        out = torch._int_mm(xq, self.qweight).float().mul_(scale).mul_(self.wscale)
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ScaledInput(nn.Module):
    """x / s: layer 0's stand-in for an ``attn_norm``. Its input is the embedding norm's output, which also feeds
    the residual stream, so the division cannot be folded into that norm."""

    inv: torch.Tensor

    def __init__(self, s: torch.Tensor):
        super().__init__()
        self.register_buffer("inv", 1.0 / s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.inv


def _smooth_scales(maxima: torch.Tensor, weight: torch.Tensor, alpha: float) -> torch.Tensor:
    w = weight.detach().float().abs().amax(dim=0).clamp(min=1e-5)  # max |W_j| per input channel
    return (maxima.float().clamp(min=1e-5).pow(alpha) / w.pow(1.0 - alpha)).clamp(min=1e-3, max=1e3)


def _layers(model: ModernBertModel) -> list[ModernBertEncoderLayer]:
    return [layer for layer in model.layers if isinstance(layer, ModernBertEncoderLayer)]


def _divide_norm(norm: nn.Module, s: torch.Tensor) -> None:
    assert isinstance(norm, nn.LayerNorm) and norm.weight is not None
    norm.weight.div_(s)
    if norm.bias is not None:
        norm.bias.div_(s)


@torch.no_grad()
def fold_smoothing(model: ModernBertModel, maxima: dict[str, torch.Tensor], alpha: float) -> None:
    """Divide each linear's input by s and multiply its weight columns by s, the division folded into the op
    before it. In place, on the fp32 model; what the model computes does not change (up to rounding).

    ``maxima``: max |x_j| per input channel, keyed ``"{layer}.attn.Wqkv"``, ... (:func:`input_maxima`).
    """
    hidden, inter = model.config.hidden_size, model.config.intermediate_size
    for i, layer in enumerate(_layers(model)):
        attn, mlp = layer.attn, layer.mlp
        # attn.Wqkv reads attn_norm's output (layer 0: the embedding norm's, shared with the residual stream)
        s = _smooth_scales(maxima[f"{i}.attn.Wqkv"], attn.Wqkv.weight, alpha)
        if isinstance(layer.attn_norm, nn.LayerNorm):
            _divide_norm(layer.attn_norm, s)
        else:
            layer.attn_norm = _ScaledInput(s)
        attn.Wqkv.weight.mul_(s[None, :])
        # attn.Wo reads the attention output, a weighted mean of V rows: divide V's rows of Wqkv
        s = _smooth_scales(maxima[f"{i}.attn.Wo"], attn.Wo.weight, alpha)
        attn.Wqkv.weight[2 * hidden :].div_(s[:, None])
        if attn.Wqkv.bias is not None:
            attn.Wqkv.bias[2 * hidden :].div_(s)
        attn.Wo.weight.mul_(s[None, :])
        # mlp.Wi reads mlp_norm's output
        s = _smooth_scales(maxima[f"{i}.mlp.Wi"], mlp.Wi.weight, alpha)
        _divide_norm(layer.mlp_norm, s)
        mlp.Wi.weight.mul_(s[None, :])
        # mlp.Wo reads act(input) * gate: divide the gate rows of Wi (its second half)
        s = _smooth_scales(maxima[f"{i}.mlp.Wo"], mlp.Wo.weight, alpha)
        mlp.Wi.weight[inter:].div_(s[:, None])
        if mlp.Wi.bias is not None:
            mlp.Wi.bias[inter:].div_(s)
        mlp.Wo.weight.mul_(s[None, :])


def to_int8(model: ModernBertModel, levels: int) -> None:
    """Every ``nn.Linear`` of the layers becomes an :class:`Int8Linear`, in place."""
    for layer in _layers(model):
        for parent in (layer.attn, layer.mlp):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, Int8Linear.from_linear(child, levels))


def _vectors(model: ModernBertModel, ids: Sequence[Sequence[int]], pooling: str) -> np.ndarray:
    """Pooled unit vectors of ``ids`` (packed batches, as ``Encoder`` runs them)."""
    from .attention import Packing, choose_backend
    from .encode import DEFAULT_BATCH_TOKENS, plan_batches

    device = next(model.buffers()).device
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    for batch in plan_batches([len(x) for x in ids], DEFAULT_BATCH_TOKENS):
        packing = Packing.from_seqlens([len(ids[i]) for i in batch], device)
        flat = torch.tensor([t for i in batch for t in ids[i]], dtype=torch.long, device=device)
        hidden = model(flat, packing, choose_backend(device))
        out[batch] = normalize(pool(hidden, packing, pooling)).cpu().numpy()
    return out


def input_maxima(
    model: ModernBertModel, ids: Sequence[Sequence[int]], pooling: str
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """(max |x_j| per input channel of every linear of the layers, the pooled vectors): one pass over ``ids``."""
    maxima: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def record(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0)
            maxima[name] = x if name not in maxima else torch.maximum(maxima[name], x)

        return record

    handles = [
        m.register_forward_hook(hook(name)) for name, m in model.layers.named_modules() if isinstance(m, nn.Linear)
    ]
    try:
        with torch.inference_mode():
            vectors = _vectors(model, ids, pooling)
    finally:
        for h in handles:
            h.remove()
    return maxima, vectors


@dataclass(frozen=True)
class Int8Check:
    """How the int8 model's vectors agree with the fp32 model's on the calibration texts."""

    texts: int
    tokens: int
    min_cosine: float
    mean_cosine: float
    levels: int
    alpha: float
    seconds: float

    @property
    def ok(self) -> bool:
        return self.min_cosine >= PARITY

    def __str__(self) -> str:
        return (
            f"int8 ({self.levels} weight levels, alpha {self.alpha}): cosine to fp32 on {self.texts} calibration "
            f"texts ({self.tokens} tokens) min {self.min_cosine:.4f} mean {self.mean_cosine:.4f}, "
            f"{self.seconds:.2f} s"
        )


def quantize(
    model: ModernBertModel,
    calibration: Sequence[Sequence[int]],
    pooling: str,
    *,
    alpha: float | None = None,
    levels: int | None = None,
) -> Int8Check:
    """Smooth (calibrated on the token ids ``calibration``), make the linears int8, check against fp32.

    In place, on an fp32 CPU model. ``levels``: weight levels (default :func:`weight_levels`); ``alpha``: the
    migration strength (default 0.6 with 127 levels, 0.5 with 63: the best measured for each).
    """
    t0 = time.perf_counter()
    levels = levels or weight_levels()
    alpha = alpha if alpha is not None else (0.6 if levels > 63 else 0.5)
    maxima, reference = input_maxima(model, calibration, pooling)
    fold_smoothing(model, maxima, alpha)
    to_int8(model, levels)
    with torch.inference_mode():
        got = _vectors(model, calibration, pooling)
    cos = (reference * got).sum(axis=1)
    return Int8Check(
        texts=len(calibration),
        tokens=sum(len(x) for x in calibration),
        min_cosine=float(cos.min()),
        mean_cosine=float(cos.mean()),
        levels=levels,
        alpha=alpha,
        seconds=time.perf_counter() - t0,
    )


def calibration_texts() -> list[str]:
    """Real code to calibrate on: this package's own modules (installed with it) in 12-line pieces, file by file."""
    texts: list[str] = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        texts.extend(t for t in ("".join(lines[i : i + 12]) for i in range(0, len(lines), 12)) if t.strip())
    return texts


def calibration_ids(
    tokenize: Callable[[list[str]], list[list[int]]], budget: int = CALIBRATION_TOKENS
) -> list[list[int]]:
    """Token ids of every k-th piece of :func:`calibration_texts`, k chosen so that about ``budget`` tokens remain
    (pieces spread over all the modules: docstrings, imports, classes, loops)."""
    ids = tokenize(calibration_texts())
    total = sum(len(x) for x in ids)
    return [list(x) for x in ids[:: max(1, -(-total // budget))]]
