"""Stage-level checks: attention backends against the plain path, packing, batching, device/dtype choice, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from encoder import load_encoder, plan_batches
from encoder.attention import Packing, attend
from encoder.device import choose_dtype, cpu_has_native_bf16
from encoder.tiny import write_tiny_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def check_attention(seqlens: list[int], window: int | None, heads: int = 3, head_dim: int = 8) -> None:
    """The blocked backend must equal the plain n x n path for these sequence lengths and window."""
    torch.manual_seed(sum(seqlens) + (window or 0))
    total = sum(seqlens)
    q, k, v = (torch.randn(total, heads, head_dim) for _ in range(3))
    packing = Packing.from_seqlens(seqlens, torch.device("cpu"))
    fast = attend(q, k, v, packing, window, "blocked")
    plain = attend(q, k, v, packing, window, "plain")
    assert fast.shape == (total, heads, head_dim)
    torch.testing.assert_close(fast, plain, atol=2e-6, rtol=0)


@pytest.mark.parametrize(
    ("seqlens", "window"),
    [
        ([1], 4),
        ([1, 1, 1], 4),
        ([9], 4),  # exactly 2 * window + 1
        ([10], 4),
        ([300], 4),
        ([300], 64),
        ([129, 130, 1, 64, 65], 64),
        ([7, 300, 2, 150], 16),
        ([1000], 128),
        ([50, 60], None),
        ([1, 500, 3], None),
        ([12, 12, 12, 9, 9, 40, 12], None),  # runs of one length go through one batched kernel call
        ([5, 5, 5, 5], 64),  # a window wider than every sequence: global, batched
    ],
)
def test_blocked_attention_equals_plain(seqlens, window):
    check_attention(seqlens, window)


@settings(max_examples=40, deadline=None)
@given(
    seqlens=st.lists(st.integers(1, 200), min_size=1, max_size=6),
    window=st.one_of(st.none(), st.integers(1, 80)),
)
def test_blocked_attention_equals_plain_property(seqlens, window):
    check_attention(seqlens, window)


def test_packing_positions_restart_per_sequence():
    p = Packing.from_seqlens([3, 1, 2], torch.device("cpu"))
    assert p.position_ids.tolist() == [0, 1, 2, 0, 0, 1]
    assert p.cu_seqlens.tolist() == [0, 3, 4, 6]
    assert p.total == 6 and p.max_seqlen == 3


@pytest.mark.parametrize(
    ("lengths", "budget", "expected"),
    [
        ([], 10, []),
        ([5], 10, [[0]]),
        ([3, 8, 2, 7], 10, [[1], [3, 0], [2]]),  # longest first: 8 | 7 + 3 | 2
        ([20, 1, 1], 10, [[0], [1, 2]]),  # a text over the budget goes alone
        ([4, 4, 4], 12, [[0, 1, 2]]),
    ],
)
def test_plan_batches(lengths, budget, expected):
    batches = plan_batches(lengths, budget)
    assert batches == expected
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or sum(lengths[i] for i in b) <= budget


@pytest.mark.parametrize(
    ("flags", "machine", "native"),
    [
        ("flags : fpu avx avx2 fma", "x86_64", False),
        ("flags : fpu avx2 avx512f avx512bw", "x86_64", False),
        ("flags : fpu avx512f avx512_bf16", "x86_64", True),
        ("flags : fpu amx_tile amx_bf16", "x86_64", True),
        ("Features : fp asimd sve bf16", "aarch64", True),
        ("Features : fp asimd", "aarch64", False),
    ],
)
def test_native_bf16_detection(monkeypatch, flags, machine, native):
    monkeypatch.setattr("platform.machine", lambda: machine)
    assert cpu_has_native_bf16(flags) is native


def test_dtype_choice():
    cpu = torch.device("cpu")
    assert choose_dtype("fp32", cpu) == torch.float32
    assert choose_dtype("BF16", cpu) == torch.bfloat16
    assert choose_dtype(torch.float16, cpu) == torch.float16
    assert choose_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert choose_dtype(None, cpu) == (torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    with pytest.raises(ValueError, match="unknown dtype 'int4'"):
        choose_dtype("int4", cpu)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


def test_bf16_path_agrees_with_fp32(tiny):
    texts = ["def add(a, b):\n    return a + b", "class A:\n    pass", "for i in range(10): print(i)"]
    v32 = load_encoder(tiny, device="cpu", dtype="fp32").encode(texts)
    v16 = load_encoder(tiny, device="cpu", dtype="bf16").encode(texts)
    cos = (v32 * v16).sum(1)
    assert cos.min() > 0.99, cos


def test_input_order_is_kept_whatever_the_batching(tiny):
    texts = [("x " * n) + str(n) for n in (50, 1, 300, 7, 120, 2, 90)]
    small = load_encoder(tiny, device="cpu", dtype="fp32", batch_tokens=64).encode(texts)
    big = load_encoder(tiny, device="cpu", dtype="fp32", batch_tokens=100_000).encode(texts)
    one_by_one = np.stack([load_encoder(tiny, device="cpu", dtype="fp32").encode([t])[0] for t in texts])
    np.testing.assert_allclose(small, one_by_one, atol=1e-6)
    np.testing.assert_allclose(big, one_by_one, atol=1e-6)


def test_progress_callback(tiny):
    enc = load_encoder(tiny, device="cpu", dtype="fp32", batch_tokens=16)
    seen: list[tuple[int, int]] = []
    enc.encode(["a b c d e f"] * 5, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (5, 5) and len(seen) == enc.stats.batches


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_demo_prints_similarity_matrix():
    out = run_cli("demo")  # the shipped default model
    assert out.returncode == 0, out.stderr
    assert "model: semcode-code-minilm@" in out.stdout
    rows = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("  [") and "+1.000" in line]
    assert len(rows) == 4  # the diagonal of a 4 x 4 cosine matrix
    sims = [[float(x) for x in row] for row in rows]
    assert sims[0][1] > sims[0][3]  # add(a, b) is closer to sum_two(x, y) than to a SQL query

    tiny = run_cli("demo", "--tiny")
    assert tiny.returncode == 0, tiny.stderr
    assert "random weights" in tiny.stdout


def test_cli_encode_json(tiny):
    import json

    out = run_cli("encode", "--model", str(tiny), "--json", "--kind", "query", "def f(): pass", "")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["def f(): pass", ""]
    assert all(len(r["vector"]) == 64 for r in rows)


def test_cli_bad_model_is_a_clear_error(tmp_path):
    out = run_cli("encode", "--model", str(tmp_path / "missing"), "x")
    assert out.returncode == 2
    assert "semcode: error:" in out.stderr and "no such folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_help():
    out = run_cli("--help")
    assert out.returncode == 0 and "demo" in out.stdout and "encode" in out.stdout
