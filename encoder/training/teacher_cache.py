"""Teacher vectors for every training text, computed once and kept: training reads them instead of running the
teacher at every step (a stronger teacher such as all-mpnet-base-v2 reads about 5x slower than MiniLM, FACTS.md).

    python -m encoder.training teacher --data DATA --teacher FOLDER     # re-run the same command to resume

``DATA/pairs.jsonl`` (``prepare``) is read in order; every pair's query and code get the teacher's vector. They are
written in shards of ``shard_size`` pairs, ``DATA/teacher/<name>-<pairs hash>/shard-00012.npz`` (``query`` and
``code``, float16, unit length), each written to a temporary name and renamed when whole: a kill loses at most the
shard being computed, and a re-run computes only the missing shards. The folder is keyed by a hash of the pairs
file, so pairs rebuilt with other rules never meet vectors of the old ones; ``meta.json`` says which teacher, window
and shard size made it, and a re-run with other ones is refused.

A text longer than the teacher's window (``window`` tokens) gets the mean of the vectors of its consecutive windows,
normalised (issue 24: "the mean of windows"), so a whole class or file has a target built from all of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Embed = Callable[[list[str]], np.ndarray]  # texts -> (n, d) vectors
Windows = Callable[[str], list[str]]  # a text -> the texts of its windows (one when it fits)


@dataclass(frozen=True)
class CacheInfo:
    folder: Path
    shards: int
    computed: int  # shards computed by this call (the others were there)
    pairs: int


def pairs_hash(pairs_file: Path) -> str:
    digest = hashlib.blake2b(digest_size=8)
    with pairs_file.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_pairs(pairs_file: Path) -> list[tuple[str, str]]:
    """(query, code) of every pair, in file order."""
    out = []
    with pairs_file.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.append((row["query"], row["code"]))
    return out


def embed_windows(texts: Sequence[str], embed: Embed, windows: Windows, batch: int = 64) -> np.ndarray:
    """Unit vectors of `texts`: a text's windows are embedded (in batches of `batch` windows) and averaged."""
    pieces: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        parts = windows(text) or [text]
        pieces.extend(parts)
        owner.extend([i] * len(parts))
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))  # like lengths share a batch: little padding
    vectors = np.empty((0, 0), dtype=np.float32)
    for s in range(0, len(order), batch):
        part = embed([pieces[i] for i in order[s : s + batch]])
        if vectors.size == 0:
            vectors = np.zeros((len(pieces), part.shape[1]), dtype=np.float32)
        vectors[order[s : s + batch]] = part
    sums = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(owner), vectors.astype(np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def build_cache(
    data: Path,
    name: str,
    embed: Embed,
    windows: Windows,
    *,
    meta: dict[str, object],
    shard_size: int = 512,
    progress: Callable[[int, int, int], None] | None = None,
) -> CacheInfo:
    """Compute the missing shards of `data`'s teacher cache `name` (see the module docstring). `meta` describes the
    teacher (folder, window, ...); a cache made with other `meta` or shard size is refused (ValueError)."""
    pairs_file = data / "pairs.jsonl"
    pairs = read_pairs(pairs_file)
    folder = data / "teacher" / f"{name}-{pairs_hash(pairs_file)}"
    folder.mkdir(parents=True, exist_ok=True)
    want = {**meta, "shard_size": shard_size, "pairs": len(pairs)}
    meta_file = folder / "meta.json"
    if meta_file.exists():
        have = json.loads(meta_file.read_text())
        if have != json.loads(json.dumps(want)):
            raise ValueError(f"{folder} was made with {have}, not {want}: use another name or remove it")
    else:
        meta_file.write_text(json.dumps(want, indent=1))
    shards = (len(pairs) + shard_size - 1) // shard_size
    computed = 0
    for k in spread_order(shards):
        path = shard_path(folder, k)
        if path.exists():
            continue
        part = pairs[k * shard_size : (k + 1) * shard_size]
        queries = embed_windows([q for q, _ in part], embed, windows)
        codes = embed_windows([c for _, c in part], embed, windows)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, query=queries.astype(np.float16), code=codes.astype(np.float16))
        os.replace(tmp, path)  # whole or absent: a kill never leaves half a shard under its name
        computed += 1
        if progress is not None:  # (shard k written, shards there now, shards in all)
            progress(k, sum(shard_path(folder, j).exists() for j in range(shards)), shards)
    return CacheInfo(folder, shards, computed, len(pairs))


def spread_order(shards: int) -> list[int]:
    """Every shard index once, in van der Corput order (0, n/2, n/4, 3n/4, ...): the pairs file is grouped by
    source, so a cache computed this way is spread over every source and language at any point of its progress,
    and training can start on the shards there are (``cached_pairs``)."""
    bits = max(1, (shards - 1).bit_length())
    return sorted(range(shards), key=lambda k: int(format(k, f"0{bits}b")[::-1], 2))


def shard_path(folder: Path, k: int) -> Path:
    return folder / f"shard-{k:05d}.npz"


def load_cache(folder: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(query vectors, code vectors) of every shard in order, float32; raises FileNotFoundError for a missing one."""
    meta = json.loads((folder / "meta.json").read_text())
    shards = (int(meta["pairs"]) + int(meta["shard_size"]) - 1) // int(meta["shard_size"])
    for k in range(shards):
        with np.load(shard_path(folder, k)) as z:
            yield z["query"].astype(np.float32), z["code"].astype(np.float32)


def cached_pairs(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair indices, query vectors, code vectors) of the shards computed so far (float32, unit length): training
    can start on a cache still being filled (``spread_order`` makes its shards cover every source)."""
    meta = json.loads((folder / "meta.json").read_text())
    size, pairs = int(meta["shard_size"]), int(meta["pairs"])
    index, queries, codes = [], [], []
    for k in range((pairs + size - 1) // size):
        path = shard_path(folder, k)
        if not path.exists():
            continue
        with np.load(path) as z:
            index.append(np.arange(k * size, k * size + len(z["query"])))
            queries.append(z["query"].astype(np.float32))
            codes.append(z["code"].astype(np.float32))
    if not index:
        raise FileNotFoundError(f"{folder}: no shard computed yet (python -m encoder.training teacher ...)")
    return np.concatenate(index), np.concatenate(queries), np.concatenate(codes)


def sentence_transformer(
    folder: Path, window: int | None = None, dtype: str | None = None
) -> tuple[Embed, Windows, dict[str, object]]:
    """The embed and window functions of a sentence-transformers folder (e.g. all-mpnet-base-v2 from its PyPI
    parts, FACTS.md), on the CPU; its window is its ``max_seq_length`` unless `window` is given. `dtype` "bf16" or
    "fp32" (default: bf16 where the CPU has it natively, ``encoder.device``: about twice as fast there)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from encoder.device import cpu_has_native_bf16

    dtype = dtype or ("bf16" if cpu_has_native_bf16() else "fp32")
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    model = SentenceTransformer(str(folder), device="cpu", model_kwargs={"torch_dtype": torch_dtype})
    size = window or int(model.max_seq_length or 512)
    model.max_seq_length = size
    tokenizer = model.tokenizer
    room = size - 2  # [CLS] and [SEP]

    def embed(texts: list[str]) -> np.ndarray:
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)
        return np.asarray(vectors.float().cpu().numpy(), dtype=np.float32)

    def windows(text: str) -> list[str]:
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        if len(offsets) <= room:
            return [text]
        return [text[offsets[s][0] : offsets[min(s + room, len(offsets)) - 1][1]] for s in range(0, len(offsets), room)]

    meta = {"teacher": str(Path(folder).resolve()), "window": size, "dtype": dtype}
    meta["pooling"] = "sentence-transformers, mean of windows"
    return embed, windows, meta
