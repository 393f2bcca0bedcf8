"""The public encoder API: ``load_encoder(...)`` -> ``Encoder``; ``Encoder.encode(texts, kind)`` -> unit vectors.

Texts are tokenised, sorted by length, and packed into batches by a token budget; each batch runs through the model
as one unpadded stream, is pooled per sequence, L2-normalised, and written back in input order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .attention import Backend, Packing, choose_backend
from .config import EncoderConfig
from .device import choose_device, choose_dtype, int8_by_default, keep_freed_memory
from .load import default_model, model_id, read_checkpoint, token_limit
from .model import ModernBertModel, normalize, pool
from .tokenize import TextTokenizer
from .tokenize import load_tokenizer as load_tokenizer  # (its home: no torch import for a tokenizer alone)

log = logging.getLogger(__name__)

Kind = Literal["document", "query"]
DEFAULT_BATCH_TOKENS = 2048  # measured on a 2-core CPU with the default model: 2k fastest, 4k 3-7% and 8k 17% slower


@dataclass
class EncodeStats:
    """Running totals since the encoder was loaded (for progress bars and status)."""

    texts: int = 0
    tokens: int = 0
    truncated: int = 0
    batches: int = 0
    seconds: float = 0.0


@dataclass
class Encoder:
    model: ModernBertModel
    tokenizer: TextTokenizer
    pooling: str
    device: torch.device
    dtype: torch.dtype
    name: str = "modernbert"
    prompts: dict[str, str] = field(default_factory=dict)
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    backend: Backend = "blocked"
    stats: EncodeStats = field(default_factory=EncodeStats)

    @property
    def config(self) -> EncoderConfig:
        return self.model.config

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    @property
    def max_tokens(self) -> int:
        return self.tokenizer.max_tokens

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        progress: Callable[[int, int], None] | None = None,
        max_tokens: int | None = None,
    ) -> np.ndarray:
        """Unit vectors ``(len(texts), dim)`` float32, in input order.

        ``kind`` picks the checkpoint's prompt prefix (e.g. ``search_query: ``), if it has one.
        ``progress(done_texts, total_texts)`` is called after every batch. ``max_tokens``: read at most this many
        tokens of each text (special tokens included; below the encoder's own ``max_tokens`` only), a text's first
        tokens as the tokenizer truncates. Texts cut by it are not counted as truncated: the caller chose it.
        """
        if kind not in ("document", "query"):
            raise ValueError(f"kind must be 'document' or 'query', got {kind!r}")
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single str")
        prefix = self.prompts.get(kind, "")
        tokenizer = self.tokenizer if max_tokens is None else self.tokenizer.limited(max_tokens)
        tokenized = tokenizer([prefix + t for t in texts])
        if tokenized.truncated and tokenizer is self.tokenizer:  # (a limit the caller chose is no surprise)
            log.warning(
                "%d of %d texts were longer than max_tokens=%d and were truncated",
                tokenized.truncated,
                len(texts),
                self.max_tokens,
            )
        self.stats.truncated += tokenized.truncated
        return self.encode_ids(tokenized.ids, progress=progress)

    def encode_ids(
        self, ids: Sequence[Sequence[int]], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """Like ``encode`` for texts already tokenised (with special tokens)."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        done = 0
        for batch in plan_batches([len(x) for x in ids], self.batch_tokens):
            t0 = time.perf_counter()
            out[batch] = self._forward([ids[i] for i in batch])
            self.stats.seconds += time.perf_counter() - t0
            self.stats.batches += 1
            self.stats.texts += len(batch)
            self.stats.tokens += sum(len(ids[i]) for i in batch)
            done += len(batch)
            if progress is not None:
                progress(done, len(ids))
        return out

    @torch.inference_mode()
    def _forward(self, batch: list[Sequence[int]]) -> np.ndarray:
        packing = Packing.from_seqlens([len(x) for x in batch], self.device)
        flat = torch.tensor([t for seq in batch for t in seq], dtype=torch.long, device=self.device)
        hidden = self.model(flat, packing, self.backend)  # (total_tokens, hidden)
        vectors = normalize(pool(hidden, packing, self.pooling))  # (n, hidden) fp32
        return vectors.cpu().numpy()


def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indices grouped into batches of at most ``batch_tokens`` real tokens, longest texts first.

    Sorting by length keeps each batch's attention work even; a text longer than the budget goes alone.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        if current and used + lengths[i] > batch_tokens:
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += lengths[i]
    if current:
        batches.append(current)
    return batches


def load_encoder(
    path_or_id: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    max_tokens: int | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    threads: int | None = None,
    backend: Backend | None = None,
    tune_allocator: bool = True,
) -> Encoder:
    """Load a ModernBERT checkpoint (local folder or hub id; default: the model shipped with semcode) to encode.

    device: ``"cpu"``, ``"cuda"``, ... (default: CUDA if available). dtype: ``"fp32"``, ``"bf16"``, ``"fp16"``,
    ``"int8"`` (CPU only: int8 linear layers, the rest fp32; ``encoder/quantize.py``) or a torch dtype. Default:
    int8 on x86 CPUs with VNNI when the checkpoint passes the int8 check at load (min cosine to fp32 >= 0.995 on
    calibration code), else bf16 on CUDA and on CPUs with native bf16, else fp32; naming ``"fp32"`` or ``"bf16"``
    turns int8 off. max_tokens: truncation limit (default: the checkpoint's ``max_seq_length`` or
    ``max_position_embeddings``). batch_tokens: token budget of one packed batch. threads: torch intra-op threads
    (process-wide; default: torch's choice). tune_allocator: on CPU, let glibc reuse freed activation memory
    (``device.keep_freed_memory``; process-wide).
    """
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    if path_or_id is None or str(path_or_id) == "":
        path_or_id = default_model()
    ckpt = read_checkpoint(path_or_id)
    dev = choose_device(device)
    dt = choose_dtype(dtype, dev)
    if dt == torch.int8 and dev.type != "cpu":
        raise ValueError(f"dtype int8 runs on CPU only, not on {dev}")
    if dev.type == "cpu" and tune_allocator:
        keep_freed_memory()
    limit = token_limit(ckpt.config, ckpt.max_seq_length, max_tokens)
    tokenizer = TextTokenizer.from_file(ckpt.tokenizer_path, limit, ckpt.config.cls_token_id)
    model = ModernBertModel(ckpt.config)
    _load_weights(model, ckpt.state_dict, ckpt.folder)
    if dt == torch.int8 or (dtype is None and int8_by_default(dev)):
        if _to_int8(model, tokenizer, ckpt.pooling, asked=dt == torch.int8):
            dt = torch.int8
        else:  # the default, and this checkpoint failed the int8 check: the float default, from the weights again
            model = ModernBertModel(ckpt.config)
            _load_weights(model, ckpt.state_dict, ckpt.folder)
    if dt != torch.int8:
        model.to(device=dev, dtype=dt)
    model.eval()
    # rotary inverse frequencies stay fp32 (the reference computes cos/sin in fp32)
    model.rope_global.inv_freq = model.rope_global.inv_freq.float()
    model.rope_local.inv_freq = model.rope_local.inv_freq.float()
    return Encoder(
        model=model,
        tokenizer=tokenizer,
        pooling=ckpt.pooling,
        device=dev,
        dtype=dt,
        name=model_id(path_or_id),
        prompts=ckpt.prompts,
        batch_tokens=batch_tokens,
        backend=backend or choose_backend(dev),
    )


def _to_int8(model: ModernBertModel, tokenizer: TextTokenizer, pooling: str, *, asked: bool) -> bool:
    """Quantize the fp32 CPU ``model`` in place (``quantize.quantize``); False, the model then spoilt, when int8
    was not asked for by name and the model fails the int8 check (its vectors against fp32 on calibration code)."""
    from .quantize import calibration_ids, quantize

    model.to(device="cpu", dtype=torch.float32).eval()
    check = quantize(model, calibration_ids(lambda texts: tokenizer(texts).ids), pooling)
    if check.ok:
        log.info("%s", check)
        return True
    if asked:
        log.warning("%s: below the parity bound; kept, since dtype int8 was asked for", check)
        return True
    log.info("%s: below the parity bound, so the default dtype instead", check)
    return False


def _load_weights(model: ModernBertModel, state: dict[str, torch.Tensor], folder: Path) -> None:
    from .load import CheckpointError

    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{folder / 'model.safetensors'}: weights do not match the config "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if bad:
        k = bad[0]
        raise CheckpointError(
            f"{folder / 'model.safetensors'}: {k} has shape {tuple(state[k].shape)}, config implies "
            f"{tuple(expected[k].shape)}"
        )
    model.load_state_dict(state, strict=True)
