"""ModernBERT configuration: a plain dataclass parsed from a Hugging Face ``config.json``.

Both key styles seen on the hub are understood:

* transformers 4.x: ``global_attn_every_n_layers``, ``global_rope_theta``, ``local_rope_theta``;
* transformers 5.x: ``layer_types`` (``"full_attention"`` / ``"sliding_attention"``) and
  ``rope_parameters`` (``{"full_attention": {"rope_theta": ...}, "sliding_attention": {...}}``).

Reference: transformers ``models/modernbert/configuration_modernbert.py``; arXiv 2412.13663.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GLOBAL = "full_attention"
LOCAL = "sliding_attention"


class ConfigError(ValueError):
    """A config.json that semcode cannot use; the message names the file and the problem."""


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int = 50368
    hidden_size: int = 768
    intermediate_size: int = 1152
    num_hidden_layers: int = 22
    num_attention_heads: int = 12
    hidden_activation: str = "gelu"
    max_position_embeddings: int = 8192
    norm_eps: float = 1e-5
    norm_bias: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    local_attention: int = 128
    layer_types: tuple[str, ...] = field(default_factory=tuple)
    global_rope_theta: float = 160_000.0
    local_rope_theta: float = 10_000.0
    pad_token_id: int = 50283
    cls_token_id: int = 50281
    sep_token_id: int = 50282

    def __post_init__(self) -> None:
        if not self.layer_types:
            object.__setattr__(self, "layer_types", layer_types_every_n(self.num_hidden_layers, 3))
        if len(self.layer_types) != self.num_hidden_layers:
            raise ConfigError(f"layer_types has {len(self.layer_types)} entries for {self.num_hidden_layers} layers")
        bad = sorted({t for t in self.layer_types if t not in (GLOBAL, LOCAL)})
        if bad:
            raise ConfigError(f"unknown layer types {bad}; expected {GLOBAL!r} or {LOCAL!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def window_half(self) -> int:
        """Local layers attend to keys with |i - j| <= window_half (64 for local_attention=128)."""
        return self.local_attention // 2

    def is_global(self, layer: int) -> bool:
        return self.layer_types[layer] == GLOBAL

    @classmethod
    def from_hf_dict(cls, raw: dict[str, Any], source: str = "config.json") -> EncoderConfig:
        """Parse a Hugging Face ModernBERT config dict (4.x or 5.x keys)."""
        model_type = raw.get("model_type")
        architectures = raw.get("architectures") or []
        if model_type != "modernbert" and not any("ModernBert" in a for a in architectures):
            raise ConfigError(
                f"{source}: unsupported architecture (model_type={model_type!r}, "
                f"architectures={architectures!r}); semcode's encoder implements ModernBERT only"
            )
        try:
            n_layers = int(raw.get("num_hidden_layers", 22))
            layer_types = raw.get("layer_types")
            if layer_types is None:
                every = int(raw.get("global_attn_every_n_layers", 3))
                layer_types = layer_types_every_n(n_layers, every)
            rope = raw.get("rope_parameters") or {}
            global_theta = _theta(rope, GLOBAL, raw.get("global_rope_theta", 160_000.0))
            local_theta = _theta(rope, LOCAL, raw.get("local_rope_theta", 10_000.0))
            for part in (rope.get(GLOBAL) or {}, rope.get(LOCAL) or {}):
                kind = part.get("rope_type", "default")
                if kind != "default":
                    raise ConfigError(f"{source}: rope_type {kind!r} is not supported (only 'default')")
            if raw.get("rope_scaling"):
                raise ConfigError(f"{source}: rope_scaling is not supported")
            act = raw.get("hidden_activation", "gelu")
            if act not in ACTIVATIONS:
                raise ConfigError(f"{source}: hidden_activation {act!r} not in {sorted(ACTIVATIONS)}")
            return cls(
                vocab_size=int(raw.get("vocab_size", 50368)),
                hidden_size=int(raw.get("hidden_size", 768)),
                intermediate_size=int(raw.get("intermediate_size", 1152)),
                num_hidden_layers=n_layers,
                num_attention_heads=int(raw.get("num_attention_heads", 12)),
                hidden_activation=act,
                max_position_embeddings=int(raw.get("max_position_embeddings", 8192)),
                norm_eps=float(raw.get("norm_eps", 1e-5)),
                norm_bias=bool(raw.get("norm_bias", False)),
                attention_bias=bool(raw.get("attention_bias", False)),
                mlp_bias=bool(raw.get("mlp_bias", False)),
                local_attention=int(raw.get("local_attention", 128)),
                layer_types=tuple(layer_types),
                global_rope_theta=global_theta,
                local_rope_theta=local_theta,
                pad_token_id=_int_or(raw.get("pad_token_id"), 50283),
                cls_token_id=_int_or(raw.get("cls_token_id"), 50281),
                sep_token_id=_int_or(raw.get("sep_token_id"), 50282),
            )
        except ConfigError as e:
            if str(e).startswith(source):
                raise
            raise ConfigError(f"{source}: {e}") from e
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: invalid value: {e}") from e

    def to_hf_dict(self) -> dict[str, Any]:
        """The transformers 5.x form of this config (what ``save_pretrained`` would write)."""
        return {
            "architectures": ["ModernBertModel"],
            "model_type": "modernbert",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "hidden_activation": self.hidden_activation,
            "max_position_embeddings": self.max_position_embeddings,
            "norm_eps": self.norm_eps,
            "norm_bias": self.norm_bias,
            "attention_bias": self.attention_bias,
            "mlp_bias": self.mlp_bias,
            "local_attention": self.local_attention,
            "layer_types": list(self.layer_types),
            "rope_parameters": {
                GLOBAL: {"rope_type": "default", "rope_theta": self.global_rope_theta},
                LOCAL: {"rope_type": "default", "rope_theta": self.local_rope_theta},
            },
            "pad_token_id": self.pad_token_id,
            "cls_token_id": self.cls_token_id,
            "bos_token_id": self.cls_token_id,
            "sep_token_id": self.sep_token_id,
            "eos_token_id": self.sep_token_id,
        }


ACTIVATIONS = {"gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu"}


def layer_types_every_n(n_layers: int, every: int) -> tuple[str, ...]:
    """4.x rule: layer i is global when i % every == 0 (layers 0, 3, 6, ... for every=3)."""
    if every < 1:
        raise ConfigError(f"global_attn_every_n_layers must be >= 1, got {every}")
    return tuple(GLOBAL if i % every == 0 else LOCAL for i in range(n_layers))


def _theta(rope: dict[str, Any], kind: str, fallback: Any) -> float:
    part = rope.get(kind) or {}
    return float(part.get("rope_theta", fallback))


def _int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)
