"""Shared fixtures: a tiny random ModernBERT checkpoint (written once per session) and an encoder on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoder import load_encoder
from encoder.tiny import write_tiny_checkpoint


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def enc(model):
    return load_encoder(model, device="cpu", dtype="fp32")
