"""Shared fixtures: a tiny random ModernBERT checkpoint (written once per session) and an encoder on it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from encoder import load_encoder
from encoder.tiny import write_tiny_checkpoint

# CLI subprocesses of the suite answer in their own process: a warm daemon per test index would outlive the test.
# tests/test_daemon.py turns it back on where it tests the daemon itself.
os.environ.setdefault("SEMCODE_NO_DAEMON", "1")
# read-only opens of an object-store index copy it into the user's cache unless told not to; the read cache's own
# tests turn it on where they test it (tests/test_read_cache.py)
os.environ.setdefault("SEMCODE_READ_CACHE_GB", "0")


@pytest.fixture(scope="session")
def model(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def enc(model):
    return load_encoder(model, device="cpu", dtype="fp32")
