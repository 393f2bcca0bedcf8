"""int8 encoding (``encoder/quantize.py``): parity with fp32 on the shipped model and real code, batch independence,
the folding math, dtype names and the default. No timings are asserted (``benchmarks/encoder_throughput.py --cases q``
prints them)."""

from __future__ import annotations

import ast
import logging
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from encoder import load_encoder
from encoder import quantize as q
from encoder.device import choose_dtype, cpu_has_vnni, int8_by_default
from encoder.tiny import write_tiny_checkpoint

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ("json/decoder.py", "textwrap.py", "shlex.py", "fnmatch.py", "base64.py", "bisect.py", "csv.py", "glob.py")
OTHER = [
    "func (s *Server) Close() error {\n\ts.mu.Lock()\n\tdefer s.mu.Unlock()\n\treturn s.ln.Close()\n}",
    "static int parse_int(const char *s, int *out) {\n    char *end;\n    long v = strtol(s, &end, 10);\n"
    "    if (*end) return -1;\n    *out = (int)v;\n    return 0;\n}",
    "export function debounce(fn: () => void, ms: number) {\n  let t: any;\n"
    "  return () => { clearTimeout(t); t = setTimeout(fn, ms); };\n}",
    "fn mean(xs: &[f64]) -> Option<f64> {\n    if xs.is_empty() { return None; }\n"
    "    Some(xs.iter().sum::<f64>() / xs.len() as f64)\n}",
]


def real_code() -> list[str]:
    """Every function of a few standard library modules (real code nobody here wrote), plus a few other languages."""
    out: list[str] = []
    for name in MODULES:
        path = STDLIB / name
        if not path.is_file():
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                out.append("".join(lines[node.lineno - 1 : node.end_lineno]))
    return out[:60] + OTHER


@pytest.fixture(scope="module")
def texts() -> list[str]:
    found = real_code()
    assert len(found) >= 40
    return found


@pytest.fixture(scope="module")
def fp32():
    return load_encoder(device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def int8():
    return load_encoder(device="cpu", dtype="int8")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)  # both unit length


def test_int8_vectors_match_fp32_on_real_code(fp32, int8, texts):
    assert int8.dtype == torch.int8 and fp32.dtype == torch.float32
    assert any(isinstance(m, q.Int8Linear) for m in int8.model.modules())
    cos = cosines(int8.encode(texts), fp32.encode(texts))
    assert cos.min() >= q.PARITY, (cos.min(), texts[int(cos.argmin())][:200])
    # queries too: the torch encoder answers them once it has loaded
    queries = ["parse a json string", "wrap text to a width", "split a shell command line", "read a csv file"]
    assert cosines(int8.encode(queries, kind="query"), fp32.encode(queries, kind="query")).min() >= q.PARITY


def test_seven_bit_weights_keep_parity(fp32, texts):
    """The path of CPUs without VNNI (exact there), measured here on the same texts."""
    enc = load_encoder(device="cpu", dtype="fp32")
    check = q.quantize(enc.model, q.calibration_ids(lambda t: enc.tokenizer(t).ids), enc.pooling, levels=63)
    assert check.ok and check.levels == 63
    assert cosines(enc.encode(texts), fp32.encode(texts)).min() >= q.PARITY


def test_a_texts_vector_does_not_depend_on_its_batch(int8, texts):
    target = texts[3]
    alone = int8.encode([target])[0]
    for others in (texts[:20], texts[20:45], [t * 3 for t in texts[:6]]):
        mixed = int8.encode([*others, target, *others[:3]])
        np.testing.assert_allclose(mixed[len(others)], alone, atol=1e-5)


def test_int8_linear_rows_are_independent_and_close_to_fp32():
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 40)
    x = torch.randn(33, 48)
    x[5] *= 100.0  # an outlier row must not change the other rows' quantization
    for levels in (127, 63):
        layer = q.Int8Linear.from_linear(linear, levels)
        with torch.inference_mode():
            batch = layer(x)
            rows = torch.cat([layer(x[i : i + 1]) for i in range(len(x))])
            ref = linear(x)
        torch.testing.assert_close(batch, rows, rtol=0, atol=1e-6)
        rel = ((batch - ref).norm(dim=1) / ref.norm(dim=1)).max().item()
        assert rel < (0.02 if levels == 127 else 0.04)


def test_folding_the_smoothing_scales_leaves_the_fp32_model_unchanged(tmp_path, texts):
    enc = load_encoder(write_tiny_checkpoint(tmp_path / "tiny"), device="cpu", dtype="fp32")
    ids = enc.tokenizer(texts[:8]).ids
    before = enc.encode_ids(ids)
    maxima, vectors = q.input_maxima(enc.model, ids, enc.pooling)
    np.testing.assert_allclose(vectors, before, atol=1e-6)
    assert len(maxima) == 4 * enc.config.num_hidden_layers
    q.fold_smoothing(enc.model, maxima, alpha=0.6)
    np.testing.assert_allclose(enc.encode_ids(ids), before, atol=2e-5)


def test_dtype_names():
    cpu = torch.device("cpu")
    assert choose_dtype("int8", cpu) == choose_dtype("INT8", cpu) == torch.int8
    with pytest.raises(ValueError, match="'int8'"):  # the message lists it among the names
        choose_dtype("int4", cpu)
    with pytest.raises(ValueError, match="CPU only"):
        load_encoder(device="cuda", dtype="int8")
    from lsp_server.cli_args import build_parser

    assert build_parser().parse_args(["encode", "--dtype", "int8", "x"]).dtype == "int8"


def test_vnni_detection(monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert cpu_has_vnni("flags : fpu avx2 avx512f avx512_vnni")
    assert cpu_has_vnni("flags : fpu avx2 avx_vnni")
    assert not cpu_has_vnni("flags : fpu avx2 fma")
    assert not cpu_has_vnni("flags : fpu avx512f avx512bw")
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert not cpu_has_vnni("Features : fp asimd asimddp")


def test_the_default_is_int8_only_where_it_qualifies(int8):
    cpu = torch.device("cpu")
    default = load_encoder(device="cpu")
    expected = torch.int8 if int8_by_default(cpu) else choose_dtype(None, cpu)
    assert default.dtype == expected
    assert load_encoder(device="cpu", dtype="fp32").dtype == torch.float32  # the setting that turns it off
    assert not int8_by_default(torch.device("cuda"))


def test_a_model_that_fails_the_check_falls_back_unless_int8_was_named(monkeypatch, caplog, texts):
    monkeypatch.setattr(q, "PARITY", 1.01)  # nothing passes
    monkeypatch.setattr("encoder.encode.int8_by_default", lambda device: True)
    cpu = torch.device("cpu")
    fallback = load_encoder(device="cpu")
    assert fallback.dtype == choose_dtype(None, cpu)
    assert not any(isinstance(m, q.Int8Linear) for m in fallback.model.modules())
    reference = load_encoder(device="cpu", dtype=choose_dtype(None, cpu))
    np.testing.assert_allclose(fallback.encode(texts[:4]), reference.encode(texts[:4]), atol=1e-6)
    with caplog.at_level(logging.WARNING, logger="encoder.encode"):
        named = load_encoder(device="cpu", dtype="int8")
    assert named.dtype == torch.int8 and "below the parity bound" in caplog.text
