"""Loading checkpoints: folders, hub ids and the hub cache, sentence-transformers files, and every broken input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encoder import CheckpointError, load_encoder
from encoder.tiny import write_tiny_checkpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


def copy_checkpoint(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_loads_folder_and_reports_shape(tiny):
    enc = load_encoder(tiny, device="cpu", dtype="fp32")
    assert enc.dim == 64
    assert enc.max_tokens == 512
    v = enc.encode(["def f(): pass", "x = 1"])
    assert v.dtype == np.float32 and v.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)


def test_max_tokens_lower_than_checkpoint_and_truncation_is_counted(tiny, caplog):
    enc = load_encoder(tiny, device="cpu", dtype="fp32", max_tokens=32)
    assert enc.max_tokens == 32
    with caplog.at_level("WARNING", logger="encoder.encode"):
        v = enc.encode(["short", "word " * 100, "word " * 200])
    assert "2 of 3 texts were longer than max_tokens=32" in caplog.text
    assert enc.stats.truncated == 2
    # truncated texts are the same as their first 32 tokens: "word " * 100 and * 200 agree
    np.testing.assert_allclose(v[1], v[2], atol=1e-6)


@pytest.mark.parametrize("text", ["", " ", "\n\t  \n", "\x00"])
def test_empty_and_whitespace_texts_get_a_defined_vector(tiny, text):
    enc = load_encoder(tiny, device="cpu", dtype="fp32")
    v = enc.encode([text])
    assert np.isfinite(v).all()
    assert abs(np.linalg.norm(v[0]) - 1.0) < 1e-5


def test_empty_input_list(tiny):
    enc = load_encoder(tiny, device="cpu", dtype="fp32")
    assert enc.encode([]).shape == (0, 64)


def test_single_string_is_rejected(tiny):
    enc = load_encoder(tiny, device="cpu", dtype="fp32")
    with pytest.raises(TypeError, match="not a single str"):
        enc.encode("def f(): pass")  # type: ignore[arg-type]


def test_query_and_document_prompts(tiny, tmp_path):
    folder = copy_checkpoint(tiny, tmp_path / "prompted")
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"search_query": "search_query: ", "search_document": "search_document: "}})
    )
    enc = load_encoder(folder, device="cpu", dtype="fp32")
    assert enc.prompts == {"query": "search_query: ", "document": "search_document: "}
    q = enc.encode(["sort a list"], kind="query")[0]
    d = enc.encode(["sort a list"], kind="document")[0]
    plain = load_encoder(tiny, device="cpu", dtype="fp32")
    np.testing.assert_allclose(q, plain.encode(["search_query: sort a list"])[0], atol=1e-6)
    np.testing.assert_allclose(d, plain.encode(["search_document: sort a list"])[0], atol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        enc.encode(["x"], kind="code")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [({"pooling_mode_cls_token": True}, "cls"), ({"pooling_mode_mean_tokens": True}, "mean")],
)
def test_pooling_config(tiny, tmp_path, mode, expected):
    folder = copy_checkpoint(tiny, tmp_path / "pool")
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(mode))
    assert load_encoder(folder, device="cpu", dtype="fp32").pooling == expected


def test_bare_transformer_folder_defaults_to_mean_pooling(tiny, tmp_path):
    folder = copy_checkpoint(tiny, tmp_path / "bare")
    for name in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
        (folder / name).unlink()
    import shutil

    shutil.rmtree(folder / "1_Pooling")
    enc = load_encoder(folder, device="cpu", dtype="fp32")
    assert enc.pooling == "mean" and enc.prompts == {}


def _break(folder: Path, how: str) -> str:
    """Damage a checkpoint copy; return a regex the error must match."""
    if how == "no-config":
        (folder / "config.json").unlink()
        return r"config\.json: missing"
    if how == "bad-json":
        (folder / "config.json").write_text("{not json")
        return r"config\.json: not valid JSON"
    if how == "other-architecture":
        (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
        return r"config\.json: unsupported architecture.*bert.*ModernBERT only"
    if how == "bad-layer-types":
        cfg = json.loads((folder / "config.json").read_text())
        cfg["layer_types"] = ["full_attention"]
        (folder / "config.json").write_text(json.dumps(cfg))
        return r"config\.json: layer_types has 1 entries for 4 layers"
    if how == "no-weights":
        (folder / "model.safetensors").unlink()
        return r"model\.safetensors: missing"
    if how == "pytorch-bin-only":
        (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
        return r"model\.safetensors: missing \(found pytorch_model\.bin: convert to safetensors\)"
    if how == "corrupt-weights":
        (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!" + b"\x00" * 64)
        return r"model\.safetensors: cannot read safetensors weights"
    if how == "truncated-weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
        return r"model\.safetensors: cannot read safetensors weights"
    if how == "wrong-shape":
        cfg = json.loads((folder / "config.json").read_text())
        cfg["intermediate_size"] = 100
        (folder / "config.json").write_text(json.dumps(cfg))
        return r"model\.safetensors: layers\.0\.mlp\.Wi\.weight has shape \(192, 64\), config implies \(200, 64\)"
    if how == "fewer-layers-in-weights":
        cfg = json.loads((folder / "config.json").read_text())
        cfg["num_hidden_layers"] = 5
        cfg["layer_types"] = [*cfg["layer_types"], "sliding_attention"]
        (folder / "config.json").write_text(json.dumps(cfg))
        return r"model\.safetensors: weights do not match the config \(missing \['layers\.4\."
    if how == "no-tokenizer":
        (folder / "tokenizer.json").unlink()
        return r"tokenizer\.json: missing"
    if how == "max-pooling":
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
        return r"1_Pooling/config\.json: unsupported pooling \['pooling_mode_max_tokens'\]"
    raise AssertionError(how)


BROKEN = [
    "no-config",
    "bad-json",
    "other-architecture",
    "bad-layer-types",
    "no-weights",
    "pytorch-bin-only",
    "corrupt-weights",
    "truncated-weights",
    "wrong-shape",
    "fewer-layers-in-weights",
    "no-tokenizer",
    "max-pooling",
]


@pytest.mark.parametrize("how", BROKEN)
def test_broken_checkpoint_error_names_file_and_problem(tiny, tmp_path, how):
    folder = copy_checkpoint(tiny, tmp_path / how)
    pattern = _break(folder, how)
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_encoder(folder, device="cpu", dtype="fp32")
    assert str(folder) in str(info.value)


def test_path_that_is_a_file_or_missing(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is a file; expected a checkpoint folder"):
        load_encoder(f)
    with pytest.raises(CheckpointError, match="no such folder, and not a hub id"):
        load_encoder(tmp_path / "nope" / "deeper")


def _hub_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


def test_hub_id_offline_without_cache_says_what_is_missing(tmp_path):
    code = "from encoder import load_encoder\nload_encoder('example-org/no-such-model')"
    out = subprocess.run([sys.executable, "-c", code], env=_hub_env(tmp_path), capture_output=True, text=True)
    assert out.returncode != 0
    assert "CheckpointError: example-org/no-such-model: not a local folder" in out.stderr
    assert "Missing: config.json, model.safetensors and tokenizer.json" in out.stderr


def test_hub_id_resolves_from_the_hub_cache_offline(tiny, tmp_path):
    """A folder laid out like huggingface_hub's cache is found by hub id with no network (HF_HUB_OFFLINE=1)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--example-org--tiny-modernbert"
    copy_checkpoint(tiny, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    code = (
        "from encoder import load_encoder\n"
        "enc = load_encoder('example-org/tiny-modernbert', device='cpu', dtype='fp32')\n"
        "print(enc.dim, enc.encode(['def f(): pass']).shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_hub_env(tmp_path), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["64", "(1,", "64)"]


def test_a_weights_hash_is_kept_for_the_next_process_and_redone_when_the_file_changes(tmp_path, monkeypatch):
    """The shipped model's id hashes its weights (50 ms); a file in the user's cache keeps the hash, keyed by path,
    size and mtime: a later process reads it, a changed file is hashed again, a broken file is ignored."""
    import hashlib

    from encoder import load

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights v1")
    known = tmp_path / "cache" / "model-ids.json"

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:12]

    def fresh(path: Path) -> str:
        load._HASHES.clear()  # as a new process
        st = path.stat()
        return load._sha256_prefix(str(path), st.st_size, st.st_mtime_ns, known)

    assert fresh(weights) == digest(b"weights v1") and not known.exists()  # no cache folder: nothing written
    known.parent.mkdir()
    assert fresh(weights) == digest(b"weights v1") and known.stat().st_mode & 0o777 == 0o600
    real, v1 = hashlib.sha256, digest(b"weights v1")
    monkeypatch.setattr(hashlib, "sha256", lambda *a: pytest.fail("hashed again"))
    assert fresh(weights) == v1  # read from the file
    monkeypatch.setattr(hashlib, "sha256", real)
    weights.write_bytes(b"weights v2")  # retrained: another size and mtime
    assert fresh(weights) == digest(b"weights v2")
    assert len(json.loads(known.read_text())) == 2
    known.write_text("{not json")
    assert fresh(weights) == digest(b"weights v2")
    assert list(json.loads(known.read_text()).values()) == [digest(b"weights v2")]
