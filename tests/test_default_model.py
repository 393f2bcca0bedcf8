"""The model shipped with semcode: loaded with no argument, named by its weights, and it ranks code by meaning.
Also the model resolution order every front door uses: explicit -> $SEMCODE_MODEL -> config file -> default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encoder import CheckpointError, load_encoder
from encoder.load import DEFAULT_MODEL_DIR, default_model, model_id, resolve
from semcode.config import MODEL_ENV, configured_model

CODE = {
    "read_config": "# read_config\ndef read_config(path):\n    parser = ConfigParser()\n    parser.read(path)\n"
    "    return {s: dict(parser[s]) for s in parser.sections()}",
    "http_get": "# fetch\ndef fetch(url, timeout=10):\n    with urllib.request.urlopen(url, timeout=timeout) as r:\n"
    "        return r.read().decode()",
    "sort_users": "# by_age\ndef by_age(people):\n    return sorted(people, key=lambda p: p.age, reverse=True)",
    "checksum": "# digest\ndef digest(path):\n    h = hashlib.sha256()\n    with open(path, 'rb') as f:\n"
    "        for block in iter(lambda: f.read(65536), b''):\n            h.update(block)\n    return h.hexdigest()",
    "retry": "# retry\ndef retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n"
    "            return fn()\n        except OSError:\n            time.sleep(2 ** i)\n"
    "    raise RuntimeError('gave up')",
}
QUERIES = {
    "read_config": "load settings from an ini file",
    "http_get": "download the body of a web page",
    "sort_users": "order persons from oldest to youngest",
    "checksum": "compute the SHA-256 hash of a file",
    "retry": "call a function again with exponential backoff when it fails",
}


@pytest.fixture(scope="module")
def default_enc():
    return load_encoder()


def test_the_default_model_ships_in_the_package_and_loads_with_no_argument(default_enc):
    assert default_model() == DEFAULT_MODEL_DIR
    weights = DEFAULT_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size <= 60 * 2**20
    assert (DEFAULT_MODEL_DIR / "MODEL_CARD.md").is_file()
    assert default_enc.dim == 384 and default_enc.pooling == "mean"
    assert default_enc.max_tokens == 8192
    # named by its weights, not by where the package is installed
    assert default_enc.name == model_id(DEFAULT_MODEL_DIR) == model_id(str(DEFAULT_MODEL_DIR) + "/")
    assert default_enc.name.startswith("semcode-code-minilm@") and len(default_enc.name.split("@")[1]) == 12


def test_the_default_model_finds_code_by_meaning(default_enc):
    names = list(CODE)
    docs = default_enc.encode([CODE[n] for n in names], kind="document")
    queries = default_enc.encode([QUERIES[n] for n in names], kind="query")
    best = [names[i] for i in np.argmax(queries @ docs.T, axis=1)]
    assert best == names


def test_long_chunks_are_embedded_whole(default_enc):
    body = "\n".join(f"    total += values[{i}] * weights[{i}]" for i in range(400))
    long = f"def weighted_sum(values, weights):\n    total = 0\n{body}\n    return total"
    assert default_enc.tokenizer.count([long])[0] > 2000
    before = default_enc.stats.truncated
    vec = default_enc.encode([long])
    assert default_enc.stats.truncated == before
    assert np.isclose(np.linalg.norm(vec), 1.0)


def test_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert configured_model(None) == str(DEFAULT_MODEL_DIR)
    cfg = tmp_path / "config" / "semcode" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('model = "/models/from-config"\n')
    assert configured_model(None) == "/models/from-config"
    monkeypatch.setenv(MODEL_ENV, "org/from-env")
    assert configured_model(None) == "org/from-env"
    assert configured_model("/explicit") == "/explicit"
    monkeypatch.delenv(MODEL_ENV)
    cfg.write_text("model = [1, 2]\n")
    with pytest.raises(ValueError, match="must be a non-empty string"):
        configured_model(None)
    cfg.write_text("model = \n")
    with pytest.raises(ValueError, match="cannot read the semcode config file"):
        configured_model(None)


def test_an_unreachable_hub_id_names_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(CheckpointError, match="built-in default model"):
        resolve("semcode-tests/does-not-exist")


def test_the_cli_uses_the_default_model_without_model_flag(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "lsp_server.cli", "encode", "--json", "open a file"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent, check=True)
    row = json.loads(out.stdout.splitlines()[0])
    assert len(row["vector"]) == 384
