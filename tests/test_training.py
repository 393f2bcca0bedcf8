"""The default model's recipe: data extraction, BERT -> ModernBERT conversion, a real (tiny) training run, export.

The teacher here is a tiny random BERT written with transformers, so the whole recipe runs in seconds; the real
run uses all-MiniLM-L6-v2 the same way.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from encoder import load_encoder
from encoder.model import ModernBertModel
from encoder.training import data
from encoder.training.convert import bert_to_modernbert
from encoder.training.export import export
from encoder.training.shrink import prune_mlp, unit_importance
from encoder.training.teacher_cache import build_cache, shard_path
from encoder.training.train import (
    SemcodeTeacher,
    Teacher,
    TrainOptions,
    batches_for_epoch,
    make_teacher,
    relational_kd,
    train,
)

SOURCE = '''
def top(a, b):
    """Add two numbers and return the sum of them.

    :param a: first
    """
    return a + b


class Store:
    """A store."""

    def put(self, key, value):
        """Put the value under the key in the store."""
        def helper():
            """Inner docstring goes away too, it is long enough."""
            return 1
        self.d[key] = value

    def short(self):
        """Too short."""
'''


def test_pairs_drop_docstrings_and_qualify_names():
    pairs = {p.symbol: p for p in data.pairs_of_file("pkg", "pkg/mod.py", SOURCE)}
    assert set(pairs) == {"top", "Store.put", "Store.put.helper"}  # "Too short." has under 4 words
    assert pairs["top"].query == "Add two numbers and return the sum of them."
    assert pairs["top"].code == "# top\ndef top(a, b):\n    return a + b"
    put = pairs["Store.put"].code
    assert put.startswith("# Store.put\ndef put(self, key, value):\n")  # dedented like the benchmark's corpus
    assert '"""' not in put and "self.d[key] = value" in put


@pytest.mark.parametrize(
    ("doc", "sentence"),
    [
        ("Return the :func:`foo` of ``x`` quickly. More text.", "Return the foo of x quickly."),
        ("Parse it all now\n    and then stop.\n\nArgs:\n  x: y", "Parse it all now and then stop."),
        ("Too short here.", None),
        (">>> doctest only", None),
    ],
)
def test_first_sentence(doc, sentence):
    assert data.first_sentence(doc) == sentence


@pytest.mark.parametrize(
    ("parts", "excluded"),
    [
        (("tkinter", "font.py"), True),
        (("idlelib", "x.py"), True),
        (("werkzeug", "routing", "map.py"), True),
        (("botocore", "client.py"), True),
        (("django", "tests", "x.py"), True),
        (("numpy", "test_core.py"), True),
        (("django", "db", "models.py"), False),
    ],
)
def test_excluded_sources(parts, excluded):
    assert data._excluded(parts) is excluded


def test_wheel_files_reads_python_sources_only(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/core.py", SOURCE)
        z.writestr("pkg/tests/test_core.py", SOURCE)
        z.writestr("pkg/data.bin", b"\x00\x01")
        z.writestr("pkg/latin.py", "x = '\xe9'".encode("latin-1"))
    assert [(s, p) for s, p, _ in data.wheel_files(wheel)] == [("pkg", "pkg/core.py")]


GO_SOURCE = """// Package geo measures shapes on the plane.
package geo

// Area returns the area of the rectangle in square units.
func (r *Rect) Area() float64 { return r.w * r.h }

// Rect is an axis-aligned rectangle on the plane.
type Rect struct {
	// w is the width
	w, h float64
}
"""


def test_pairs_in_other_languages_cover_functions_types_and_files():
    pairs = {(p.kind, p.symbol): p for p in data.pairs_of("deb:geo", "go", "geo/rect.go", GO_SOURCE)}
    assert set(pairs) == {("file", "geo/rect.go"), ("function", "Rect.Area"), ("class", "Rect")}
    area = pairs[("function", "Rect.Area")]
    assert area.query == "Returns the area of the rectangle in square units."  # (Go: the leading name dropped)
    assert area.code == "# Rect.Area\nfunc (r *Rect) Area() float64 { return r.w * r.h }"
    assert area.language == "go"
    assert "w is the width" not in pairs[("class", "Rect")].code  # member docs would give the answer away
    whole = pairs[("file", "geo/rect.go")]
    assert whole.query == "Package geo measures shapes on the plane."
    assert whole.code.startswith("package geo") and "// Area returns" not in whole.code  # no header, no docs


def test_long_pairs_make_batches_of_their_own():
    pairs = [data.Pair("s", f"d{i % 3}/f.py", "f", "q", "c", "python", "function") for i in range(40)]
    pairs += [data.Pair("s", f"d{i % 3}/f.py", "C", "q", "c", "python", "class") for i in range(12)]
    batches = batches_for_epoch(pairs, 8, seed=0, long_batch=4)
    kinds = [{pairs[i].kind for i in b} for b in batches]
    assert all(len(k) == 1 for k in kinds)
    assert sorted(len(b) for b in batches) == [4] * 3 + [8] * 5
    # every 3rd batch long, while long batches last
    mixed = batches_for_epoch(pairs, 8, seed=0, long_batch=4, long_every=3)
    assert [len(b) for b in mixed] == [8, 8, 4, 8, 8, 4, 8]


def test_batches_come_from_one_source_and_are_deterministic():
    pairs = [data.Pair(f"s{i % 2}", f"d{i % 3}/f.py", "f", "q", "c") for i in range(40)]
    batches = batches_for_epoch(pairs, 4, seed=1)
    assert batches == batches_for_epoch(pairs, 4, seed=1)
    assert batches != batches_for_epoch(pairs, 4, seed=2)
    assert len(batches) == 10
    for b in batches:
        assert len({pairs[i].source for i in b}) == 1


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A random 2-layer BERT with a WordPiece tokenizer, laid out like all-MiniLM-L6-v2's folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator([SOURCE] * 3, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    assert tok.token_to_id("[CLS]") == 101 and tok.token_to_id("[SEP]") == 102
    tok.post_processor = processors.BertProcessing(("[SEP]", 102), ("[CLS]", 101))
    tok.save(str(folder / "tokenizer.json"))
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def test_conversion_copies_attention_and_mlp_exactly(tiny_bert):
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(tiny_bert)).eval()
    config, state = bert_to_modernbert(tiny_bert)
    assert config.layer_types == ("full_attention", "sliding_attention")
    student = ModernBertModel(config)
    student.load_state_dict(state, strict=True)  # every parameter is set
    x = torch.randn(5, 32)
    layer = bert.encoder.layer[1]
    with torch.no_grad():
        bert_mlp = layer.output.dense(layer.intermediate(x))  # BERT's FFN before its residual and norm
        ours = student.layers[1].mlp(x)  # the GeGLU gate starts at 1: GELU(input) * 1
        q = layer.attention.self.query(x)
        qkv = student.layers[1].attn.Wqkv(x)
    torch.testing.assert_close(ours, bert_mlp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(qkv[:, :32], q)
    torch.testing.assert_close(student.final_norm.weight, layer.output.LayerNorm.weight)
    torch.testing.assert_close(student.layers[1].attn_norm.weight, bert.encoder.layer[0].output.LayerNorm.weight)


def test_teacher_windows_long_texts(tiny_bert):
    teacher = Teacher(tiny_bert)
    short = [101, *range(110, 150), 102]
    long = [101, *([120] * 600), 102]  # 3 windows of 254
    vec = teacher.embed([short, long], 101, 102)
    assert vec.shape == (2, 32)
    torch.testing.assert_close(vec.norm(dim=-1), torch.ones(2))
    window = teacher.embed([[101, *([120] * 254), 102]], 101, 102)[0]
    # the long text's target is the normalised mean of its windows' embeddings
    assert torch.dot(vec[1], window) > 0.99


def test_training_runs_resumes_and_exports_a_loadable_model(tiny_bert, tmp_path):
    pairs = [p for _ in range(8) for p in data.pairs_of_file("pkg", "pkg/mod.py", SOURCE)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p.__dict__) + "\n" for p in pairs))
    run = tmp_path / "run"
    opts = TrainOptions(steps=2, batch=4, warmup=1, save_every=1, max_code_tokens=64)
    state = train(tmp_path, run, opts, tiny_bert)
    assert torch.load(state, weights_only=False)["step"] == 2
    assert len((run / "log.tsv").read_text().splitlines()) == 2
    before = torch.load(state, weights_only=False)["model"]["layers.0.attn.Wqkv.weight"].clone()
    train(tmp_path, run, TrainOptions(**{**opts.__dict__, "steps": 3}), tiny_bert)  # resumes at step 2
    lines = (run / "log.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2", "3"]
    after = torch.load(state, weights_only=False)["model"]["layers.0.attn.Wqkv.weight"]
    assert not torch.equal(before, after)

    folder = export(state, tmp_path / "exported", tiny_bert)
    enc = load_encoder(folder, dtype="fp32")
    assert enc.pooling == "mean" and enc.dim == 32
    vecs = enc.encode(["def top(a, b): return a + b", "store put key value"])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)


def test_prune_keeps_the_most_important_units_and_their_exact_function():
    """Pruning to the units that matter: the kept units compute what they computed before, in their order."""
    from encoder.tiny import random_state_dict, tiny_config

    config = tiny_config(300, intermediate_size=8, num_hidden_layers=2, mlp_bias=True)
    state = random_state_dict(config, seed=3)
    importance = [torch.tensor([0.0, 5, 1, 0, 4, 0, 0, 3]), torch.arange(8.0)]
    small, pruned = prune_mlp(config, state, importance, keep=3)
    assert small.intermediate_size == 3 and config.intermediate_size == 8
    assert pruned["layers.0.mlp.Wi.weight"].shape == (6, config.hidden_size)
    assert pruned["layers.0.mlp.Wo.weight"].shape == (config.hidden_size, 3)
    # layer 0 keeps units 1, 4, 7 (input rows and gate rows 8 + j), in their original order
    torch.testing.assert_close(pruned["layers.0.mlp.Wi.weight"][:3], state["layers.0.mlp.Wi.weight"][[1, 4, 7]])
    torch.testing.assert_close(pruned["layers.0.mlp.Wi.weight"][3:], state["layers.0.mlp.Wi.weight"][[9, 12, 15]])
    torch.testing.assert_close(pruned["layers.1.mlp.Wo.weight"], state["layers.1.mlp.Wo.weight"][:, [5, 6, 7]])
    torch.testing.assert_close(pruned["layers.0.mlp.Wi.bias"], state["layers.0.mlp.Wi.bias"][[1, 4, 7, 9, 12, 15]])
    assert torch.equal(pruned["layers.1.attn.Wqkv.weight"], state["layers.1.attn.Wqkv.weight"])
    # the MLP of the pruned model equals the sum of the kept units' contributions in the full one
    full, lean = ModernBertModel(config).eval(), ModernBertModel(small).eval()
    full.load_state_dict(state)
    lean.load_state_dict(pruned)
    x = torch.randn(5, config.hidden_size)
    with torch.no_grad():
        m = full.layers[0].mlp
        inp, gate = m.Wi(x).chunk(2, dim=-1)
        z = m.act(inp) * gate
        keep = torch.tensor([1, 4, 7])
        expected = z[:, keep] @ m.Wo.weight[:, keep].T + m.Wo.bias
        torch.testing.assert_close(lean.layers[0].mlp(x), expected)
    with pytest.raises(ValueError, match="keep must be"):
        prune_mlp(config, state, importance, keep=9)


def test_importance_is_zero_for_a_unit_that_never_writes():
    from encoder.tiny import random_state_dict, tiny_config

    config = tiny_config(300, intermediate_size=8, num_hidden_layers=2)
    state = random_state_dict(config, seed=4)
    state["layers.1.mlp.Wo.weight"][:, 2] = 0  # unit 2 of layer 1 writes nothing
    model = ModernBertModel(config)
    model.load_state_dict(state)
    scores = unit_importance(model, [[[101, 120, 130, 102], [101, 140, 102]]])
    assert [s.shape for s in scores] == [(8,), (8,)]
    assert scores[1][2] == 0 and bool((scores[0] > 0).all())


def test_stage_two_shrinks_distils_from_a_semcode_teacher_resumes_and_exports(tiny_bert, tmp_path):
    pairs = [p for _ in range(8) for p in data.pairs_of_file("pkg", "pkg/mod.py", SOURCE)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p.__dict__) + "\n" for p in pairs))
    opts = TrainOptions(steps=1, batch=4, warmup=1, save_every=1, max_code_tokens=64)
    stage1 = export(train(tmp_path, tmp_path / "run1", opts, tiny_bert), tmp_path / "stage1", tiny_bert)
    assert isinstance(make_teacher(stage1, torch.device("cpu")), SemcodeTeacher)
    assert isinstance(make_teacher(tiny_bert, torch.device("cpu")), Teacher)

    lean = TrainOptions(**{**opts.__dict__, "steps": 2, "intermediate": 16})
    state = train(tmp_path, tmp_path / "run2", lean, init=stage1)
    saved = torch.load(state, weights_only=False)
    assert saved["step"] == 2 and saved["config"]["intermediate_size"] == 16
    assert saved["model"]["layers.0.mlp.Wi.weight"].shape == (32, 32)
    train(tmp_path, tmp_path / "run2", TrainOptions(**{**lean.__dict__, "steps": 3}), init=stage1)  # resumes
    assert (tmp_path / "run2" / "log.tsv").read_text().count("\n") == 3

    folder = export(state, tmp_path / "stage2")  # no teacher needed: the run says its shape and tokenizer
    enc = load_encoder(folder, dtype="fp32")
    assert enc.config.intermediate_size == 16 and enc.dim == 32
    # the semcode teacher embeds exactly as the encoder does (same weights, pooling, normalisation)
    text = "def top(a, b): return a + b"
    target = SemcodeTeacher(folder).embed(enc.tokenizer([text]).ids, 101, 102)[0]
    torch.testing.assert_close(target, torch.from_numpy(enc.encode([text])[0]), rtol=1e-4, atol=1e-4)


def test_relational_distillation_is_zero_when_the_student_ranks_as_the_teacher_whatever_the_widths():
    g = torch.Generator().manual_seed(0)
    teacher_q, teacher_c = (torch.nn.functional.normalize(torch.randn(6, 48, generator=g), dim=-1) for _ in "qc")
    # a 12-wide student whose similarities equal the teacher's (an orthonormal map of the same 6 vectors' span)
    basis = torch.linalg.qr(torch.cat([teacher_q, teacher_c]).T)[0][:, :12]  # (48, 12)
    student_q, student_c = teacher_q @ basis, teacher_c @ basis
    assert relational_kd(student_q, student_c, teacher_q, teacher_c, 0.05, 0.05).abs() < 1e-4
    other = torch.nn.functional.normalize(torch.randn(6, 12, generator=g), dim=-1)
    assert relational_kd(other, student_c, teacher_q, teacher_c, 0.05, 0.05) > 0.1


def test_training_from_a_teacher_cache_keeps_its_pairs_when_resumed(tiny_bert, tmp_path):
    pairs = [p for _ in range(8) for p in data.pairs_of_file("pkg", "pkg/mod.py", SOURCE)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p.__dict__) + "\n" for p in pairs))

    def embed(texts: list[str]) -> np.ndarray:  # a 16-wide teacher for a 32-wide student
        rows = np.random.default_rng(len(texts)).standard_normal((len(texts), 16))
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    info = build_cache(tmp_path, "t", embed, lambda t: [t], meta={"teacher": "x"}, shard_size=len(pairs) // 2)
    shard_path(info.folder, 1).unlink()  # half the pairs have teacher vectors so far
    run, opts = tmp_path / "run", TrainOptions(steps=2, batch=4, warmup=1, save_every=1, max_code_tokens=64)
    opts.teacher_cache, opts.long_every = str(info.folder), 0
    train(tmp_path, run, opts, tiny_bert)
    assert np.load(run / "cached_pairs.npy").tolist() == list(range(len(pairs) // 2))
    kd = [float(line.split("\t")[2]) for line in (run / "log.tsv").read_text().splitlines()]
    assert len(kd) == 2 and all(k > 0 for k in kd)
    build_cache(tmp_path, "t", embed, lambda t: [t], meta={"teacher": "x"}, shard_size=len(pairs) // 2)  # grows
    train(tmp_path, run, TrainOptions(**{**opts.__dict__, "steps": 3}), tiny_bert)  # resumes on the same pairs
    assert np.load(run / "cached_pairs.npy").tolist() == list(range(len(pairs) // 2))
    assert len((run / "log.tsv").read_text().splitlines()) == 3
