"""A training state -> a checkpoint folder ``load_encoder`` reads (fp16 safetensors, config, tokenizer, pooling)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import EncoderConfig
from ..tiny import write_checkpoint
from .convert import student_config, teacher_path


def export(state_path: Path, out: Path, teacher_folder: Path | None = None) -> Path:
    """Write ``out`` (config.json, model.safetensors in fp16, tokenizer.json, sentence-transformers files)."""
    from tokenizers import Tokenizer

    from ..load import _read_json

    if not state_path.is_file():
        raise SystemExit(f"{state_path}: no training state (run `python -m encoder.training train` first)")
    run = state_path.parent
    saved = torch.load(state_path, weights_only=False, map_location="cpu")
    if "config" in saved and (run / "tokenizer.json").is_file():  # written by train(): any stage
        config = EncoderConfig.from_hf_dict(saved["config"], str(state_path))
        tokenizer_file = run / "tokenizer.json"
    else:  # a stage-1 state from before train() wrote them: the student is shaped like its BERT teacher
        tpath = teacher_folder or teacher_path()
        config = student_config(_read_json(tpath / "config.json"))
        tokenizer_file = tpath / "tokenizer.json"
    state = {k: v.to(torch.float16).contiguous() for k, v in saved["model"].items()}
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return write_checkpoint(out, config, state, tokenizer, pooling="mean")
