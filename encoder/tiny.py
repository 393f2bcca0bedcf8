"""Write a small ModernBERT checkpoint with random weights, laid out exactly like a hub checkpoint.

Used by the demo, the tests and the benchmarks: no weights can be downloaded on these machines, and a random
model exercises every code path of loading and encoding. Its vectors carry no meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

from .config import EncoderConfig

SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 2000):  # -> tokenizers.Tokenizer
    """A byte-level BPE with ModernBERT's post-processing (``[CLS] text [SEP]``), trained on ``corpus``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return tok


def default_corpus() -> list[str]:
    """Python source of a few standard-library modules: enough to learn code-shaped merges."""
    import inspect
    import json as json_mod
    import logging as logging_mod
    import pathlib
    import textwrap

    return [inspect.getsource(m) for m in (json_mod.decoder, json_mod.encoder, logging_mod, pathlib, textwrap)]


def tiny_config(tokenizer_vocab: int, **overrides: object) -> EncoderConfig:
    fields: dict[str, object] = dict(
        vocab_size=tokenizer_vocab,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        local_attention=16,
        max_position_embeddings=512,
        pad_token_id=SPECIALS.index("[PAD]"),
        cls_token_id=SPECIALS.index("[CLS]"),
        sep_token_id=SPECIALS.index("[SEP]"),
    )
    fields.update(overrides)
    return EncoderConfig(**fields)  # type: ignore[arg-type]


def random_state_dict(config: EncoderConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights drawn like ModernBERT's init (normal, std 0.02); norms near 1 with some noise."""
    from .model import ModernBertModel

    gen = torch.Generator().manual_seed(seed)
    model = ModernBertModel(config)
    state = {}
    for name, param in model.state_dict().items():
        if name.endswith("norm.weight"):
            value = 1.0 + 0.1 * torch.randn(param.shape, generator=gen)
        elif name.endswith("bias"):
            value = 0.02 * torch.randn(param.shape, generator=gen)
        else:
            value = 0.02 * torch.randn(param.shape, generator=gen)
        state[name] = value.contiguous()
    return state


def write_checkpoint(
    folder: Path,
    config: EncoderConfig,
    state: dict[str, torch.Tensor],
    tokenizer,  # tokenizers.Tokenizer
    pooling: str = "mean",
    prompts: dict[str, str] | None = None,
) -> Path:
    """Write config.json, model.safetensors, tokenizer.json and the sentence-transformers files."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config.to_hf_dict(), indent=2))
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(folder / "tokenizer.json"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": config.hidden_size,
                "pooling_mode_cls_token": pooling == "cls",
                "pooling_mode_mean_tokens": pooling == "mean",
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            },
            indent=2,
        )
    )
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": prompts or {}, "default_prompt_name": None}, indent=2)
    )
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": config.max_position_embeddings, "do_lower_case": False})
    )
    return folder


def write_tiny_checkpoint(folder: Path, seed: int = 0, pooling: str = "mean", **overrides: object) -> Path:
    tokenizer = build_tokenizer(default_corpus())
    config = tiny_config(tokenizer.get_vocab_size(), **overrides)
    return write_checkpoint(folder, config, random_state_dict(config, seed), tokenizer, pooling=pooling)
