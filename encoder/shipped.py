"""Where the model shipped inside the package lives, in a module of its own: resolving the default model (every
front door does, to name its index's daemon or to show the model) imports nothing of the model's code."""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
DEFAULT_MODEL_NAME = "semcode-code-minilm"


def default_model() -> Path:
    """The checkpoint folder of the model shipped inside the package (``encoder/default_model``)."""
    if not (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
        raise CheckpointError(
            f"{DEFAULT_MODEL_DIR}: semcode's default model is missing from this installation; reinstall semcode "
            "or pass a checkpoint folder or hub id explicitly"
        )
    return DEFAULT_MODEL_DIR
