"""Helpers that build tiny random ModernBERT checkpoints with transformers itself (the reference), for parity tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from encoder.tiny import SPECIALS, build_tokenizer, default_corpus

_TOKENIZER = None


def tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = build_tokenizer(default_corpus(), vocab_size=1000)
    return _TOKENIZER


@dataclass(frozen=True)
class Shape:
    """One tiny config to test; ``every`` is global_attn_every_n_layers."""

    name: str
    hidden: int = 64
    heads: int = 4
    intermediate: int = 96
    layers: int = 4
    every: int = 2
    local_attention: int = 16
    bias: bool = False
    pooling: str = "mean"
    act: str = "gelu"

    def hf_config(self, vocab: int) -> dict[str, Any]:
        return dict(
            vocab_size=vocab,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            local_attention=self.local_attention,
            global_attn_every_n_layers=self.every,
            global_rope_theta=160_000.0,
            local_rope_theta=10_000.0,
            attention_bias=self.bias,
            mlp_bias=self.bias,
            norm_bias=self.bias,
            hidden_activation=self.act,
            max_position_embeddings=1024,
            pad_token_id=SPECIALS.index("[PAD]"),
            cls_token_id=SPECIALS.index("[CLS]"),
            bos_token_id=SPECIALS.index("[CLS]"),
            sep_token_id=SPECIALS.index("[SEP]"),
            eos_token_id=SPECIALS.index("[SEP]"),
        )


SHAPES = [
    Shape("base-like"),
    Shape("biases", bias=True, pooling="cls"),
    Shape("every3-odd-heads", hidden=48, heads=3, intermediate=80, layers=5, every=3, local_attention=8),
    Shape("all-global", every=1, pooling="cls"),
    Shape("all-local-but-0", layers=3, every=100, local_attention=32),
    Shape("tanh-gelu", act="gelu_pytorch_tanh", local_attention=6),
]


def make_hf_model(shape: Shape, seed: int = 0, masked_lm: bool = False, attn: str = "eager"):
    import transformers

    torch.manual_seed(seed)
    config = transformers.ModernBertConfig(**shape.hf_config(tokenizer().get_vocab_size()))
    config._attn_implementation = attn
    cls = transformers.ModernBertForMaskedLM if masked_lm else transformers.ModernBertModel
    model = cls(config).eval()
    with torch.no_grad():
        # random norms and biases, so a swapped or missing norm cannot hide behind ones and zeros
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
    return model


def save_hf_checkpoint(model, shape: Shape, folder: Path, config_style: str = "5.x") -> Path:
    """``save_pretrained`` plus tokenizer and sentence-transformers files; optionally rewrite config as 4.x keys."""
    model.save_pretrained(folder)
    tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": shape.hidden,
                "pooling_mode_cls_token": shape.pooling == "cls",
                "pooling_mode_mean_tokens": shape.pooling == "mean",
            }
        )
    )
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if config_style == "4.x":
        for key in ("layer_types", "rope_parameters"):
            cfg.pop(key, None)
        cfg.update(
            global_attn_every_n_layers=shape.every,
            global_rope_theta=160_000.0,
            local_rope_theta=10_000.0,
        )
    else:
        assert "layer_types" in cfg, "transformers wrote no layer_types: not a 5.x config"
    cfg_path.write_text(json.dumps(cfg))
    return folder


def hf_hidden(model, ids: list[list[int]]) -> list[torch.Tensor]:
    """Reference per-token hidden states, one padded batch with an attention mask, unpadded afterwards."""
    n = max(len(x) for x in ids)
    pad = SPECIALS.index("[PAD]")
    input_ids = torch.full((len(ids), n), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), n), dtype=torch.long)
    for i, seq in enumerate(ids):
        input_ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    base = getattr(model, "model", model)
    with torch.no_grad():
        out = base(input_ids=input_ids, attention_mask=mask).last_hidden_state
    return [out[i, : len(seq)] for i, seq in enumerate(ids)]


def hf_pool(hidden: torch.Tensor, pooling: str) -> torch.Tensor:
    v = hidden[0] if pooling == "cls" else hidden.mean(0)
    return torch.nn.functional.normalize(v, dim=-1)
