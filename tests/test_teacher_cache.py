"""encoder.training.teacher_cache: teacher vectors of every pair, in shards written whole, resumed after a kill,
refused for other settings, keyed by the pairs file; long texts averaged over windows. The embedder is a
deterministic function of the text (the cache's files, resume and averaging are what is tested; the CLI runs it
with a sentence-transformers teacher)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from encoder.training.teacher_cache import (
    build_cache,
    cached_pairs,
    embed_windows,
    load_cache,
    shard_path,
    spread_order,
)

DIM = 16


class Embedder:
    """A unit vector per text from its hash; counts the texts it was asked for."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=4).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(DIM)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


def words(n: int):
    """Windows of `n` words."""

    def split(text: str) -> list[str]:
        w = text.split()
        return [" ".join(w[i : i + n]) for i in range(0, len(w), n)] or [text]

    return split


def write_pairs(data: Path, n: int) -> None:
    data.mkdir(parents=True, exist_ok=True)
    rows = [{"query": f"does thing {i}", "code": f"def f{i}(): return {i}", "source": "s"} for i in range(n)]
    (data / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_every_pair_gets_its_vectors_and_a_rerun_computes_only_what_is_missing(tmp_path: Path) -> None:
    write_pairs(tmp_path, 10)
    embed = Embedder()
    info = build_cache(tmp_path, "t", embed, words(100), meta={"teacher": "x"}, shard_size=4)
    assert (info.shards, info.computed, info.pairs) == (3, 3, 10)
    queries, codes = (np.concatenate(a) for a in zip(*load_cache(info.folder), strict=True))
    assert queries.shape == codes.shape == (10, DIM)
    np.testing.assert_allclose(codes[7], Embedder()(["def f7(): return 7"])[0], atol=1e-3)  # (float16 on disk)
    # a kill while the last shard was computed: only its temporary file existed
    shard_path(info.folder, 2).unlink()
    shard_path(info.folder, 2).with_suffix(".tmp.npz").write_bytes(b"half")
    again = Embedder()
    info2 = build_cache(tmp_path, "t", again, words(100), meta={"teacher": "x"}, shard_size=4)
    assert info2.computed == 1 and len(again.texts) == 2 * 2  # pairs 8 and 9: a query and a code each
    assert len(list(load_cache(info2.folder))) == 3
    assert build_cache(tmp_path, "t", again, words(100), meta={"teacher": "x"}, shard_size=4).computed == 0


def test_other_settings_are_refused_and_rebuilt_pairs_get_a_cache_of_their_own(tmp_path: Path) -> None:
    write_pairs(tmp_path, 5)
    first = build_cache(tmp_path, "t", Embedder(), words(100), meta={"teacher": "x"}, shard_size=4)
    with pytest.raises(ValueError, match="was made with"):
        build_cache(tmp_path, "t", Embedder(), words(100), meta={"teacher": "y"}, shard_size=4)
    with pytest.raises(ValueError, match="was made with"):
        build_cache(tmp_path, "t", Embedder(), words(100), meta={"teacher": "x"}, shard_size=2)
    write_pairs(tmp_path, 6)  # pairs rebuilt (other rules, other sources): never read with the old vectors
    second = build_cache(tmp_path, "t", Embedder(), words(100), meta={"teacher": "x"}, shard_size=4)
    assert second.folder != first.folder and second.computed == 2


def test_a_long_text_is_the_mean_of_its_windows() -> None:
    embed = Embedder()
    long = " ".join(f"w{i}" for i in range(10))
    got = embed_windows([long, "short one"], embed, words(4), batch=2)
    parts = Embedder()(["w0 w1 w2 w3", "w4 w5 w6 w7", "w8 w9"])
    want = parts.mean(axis=0) / np.linalg.norm(parts.mean(axis=0))
    np.testing.assert_allclose(got[0], want, atol=1e-6)
    np.testing.assert_allclose(got[1], Embedder()(["short one"])[0], atol=1e-6)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_shards_are_computed_spread_over_the_file_and_training_reads_what_is_there(tmp_path: Path) -> None:
    assert spread_order(8) == [0, 4, 2, 6, 1, 5, 3, 7]
    assert sorted(spread_order(101)) == list(range(101)) and spread_order(101)[:3] == [0, 64, 32]
    write_pairs(tmp_path, 10)
    info = build_cache(tmp_path, "t", Embedder(), words(100), meta={"teacher": "x"}, shard_size=4)
    shard_path(info.folder, 1).unlink()  # pairs 4-7 not computed yet
    index, queries, codes = cached_pairs(info.folder)
    assert index.tolist() == [0, 1, 2, 3, 8, 9] and queries.shape == codes.shape == (6, DIM)
    np.testing.assert_allclose(codes[4], Embedder()(["def f8(): return 8"])[0], atol=1e-3)
