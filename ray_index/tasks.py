"""What Ray runs away from the driver: chunking tasks and the encoder actors of the Ray Data pool.

Plain Python (no Ray import): ``job.py`` wraps ``chunk_files`` with ``ray.remote`` and hands ``EncoderActor`` to
``map_batches``. Neither ever opens the index: they return data, and the driver commits it.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from encoder import Encoder
    from indexer.index import IndexOptions, Prepared
    from indexer.types import Skip


@functools.cache
def _token_counter(model: str, max_tokens: int) -> Callable[[list[str]], list[int]]:
    """The model's tokenizer, loaded once per worker process: ``encoder.load_tokenizer`` without importing torch
    (seconds per worker on a busy machine); the chunker budgets with its counts."""
    from encoder.load import read_tokenizer_files, token_limit
    from encoder.tokenize import TextTokenizer

    config, path, max_len = read_tokenizer_files(model)
    return TextTokenizer.from_file(path, token_limit(config, max_len, max_tokens), config.cls_token_id).count


def chunk_files(
    root: str,
    files: list[tuple[str, str | None]],
    options: IndexOptions,
    model: str,
    fail_once: str | None = None,
) -> list[Prepared | Skip]:
    """Read and chunk files of one repository: ``(path, content hash of its indexed record or None)`` each, as
    ``indexer.index.prepare_file`` does in one process. Writes nothing. ``fail_once``: see ``die_once``."""
    from indexer.index import prepare_file

    die_once(fail_once, "chunk")
    count = _token_counter(model, options.max_tokens)
    return [prepare_file(Path(root), path, recorded, options, count) for path, recorded in files]


def die_once(folder: str | None, name: str) -> None:
    """Tests only: the first call that finds no file ``name`` in ``folder`` creates it and kills its own worker
    process (SIGKILL, as a lost node would), so Ray must run the task again or restart the actor."""
    if folder is not None and not os.path.exists(os.path.join(folder, name)):
        Path(folder, name).touch()
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class EncoderConfig:
    """How each actor loads the encoder (the settings of ``semcode index``; ``threads`` per actor on CPUs)."""

    model: str
    device: str | None
    dtype: str | None
    threads: int | None
    max_tokens: int
    embed_tokens: int  # how many tokens of a chunk its vector reads (``IndexOptions.embed_tokens``)
    fail_once: str | None = None  # tests: see ``die_once``


class EncoderActor:
    """One member of the Ray Data actor pool: the encoder is loaded once, in ``__init__``; each call encodes a batch
    of rows, each a block of texts (``content_hash`` and ``text`` lists), and returns one ``(content_hash, vector)``
    row per text, the vectors a ``FixedSizeListArray`` (LanceDB's vector type; a NumPy column would become Ray's
    tensor extension type)."""

    def __init__(self, config: EncoderConfig) -> None:
        from encoder import load_encoder

        c = self.config = config
        self.encoder: Encoder = load_encoder(
            c.model, device=c.device, dtype=c.dtype, threads=c.threads, max_tokens=c.max_tokens
        )

    def __call__(self, batch: pa.Table) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        die_once(self.config.fail_once, "encode")
        hashes = [h for block in batch.column("content_hash").to_pylist() for h in block]
        texts = [t for block in batch.column("text").to_pylist() for t in block]
        vectors = self.encoder.encode(texts, kind="document", max_tokens=self.config.embed_tokens)
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
        column = pa.FixedSizeListArray.from_arrays(flat, self.encoder.dim)
        return pa.table({"content_hash": pa.array(hashes, pa.string()), "vector": column})
