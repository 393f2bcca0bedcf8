"""Text -> token ids with a Hugging Face ``tokenizer.json`` (the ``tokenizers`` library), truncation counted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer


@dataclass
class Tokenized:
    ids: list[list[int]]
    truncated: int  # how many texts lost tokens to the max_tokens limit


class TextTokenizer:
    """Wraps ``tokenizers.Tokenizer``: no padding (the model packs), truncation at ``max_tokens``.

    Special tokens ([CLS] ... [SEP]) come from the tokenizer's own post-processor, as in the checkpoint.
    """

    def __init__(self, tokenizer: Tokenizer, max_tokens: int, fallback_id: int):
        self._tok = tokenizer
        self._tok.no_padding()
        self.max_tokens = max_tokens
        self._tok.enable_truncation(max_length=max_tokens)
        self._fallback_id = fallback_id
        self._counter: Tokenizer | None = None  # an untruncated copy, made on first use of count()
        self._limited: dict[int, TextTokenizer] = {}  # copies truncating sooner (``limited``)

    @classmethod
    def from_file(cls, path: Path, max_tokens: int, fallback_id: int) -> TextTokenizer:
        return cls(Tokenizer.from_file(str(path)), max_tokens, fallback_id)

    def __call__(self, texts: list[str]) -> Tokenized:
        encodings = self._tok.encode_batch(texts)
        ids: list[list[int]] = []
        truncated = 0
        for enc in encodings:
            if enc.overflowing:
                truncated += 1
            # a tokenizer without a post-processor gives nothing for "": use one [CLS] so every text has a vector
            ids.append(list(enc.ids) or [self._fallback_id])
        return Tokenized(ids, truncated)

    def with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]], bool]:
        """(ids, each token's (start, end) character offsets in ``text``, whether it was truncated): for pooling
        spans of one text's token states (late chunking)."""
        enc = self._tok.encode(text)
        return list(enc.ids), [tuple(o) for o in enc.offsets], bool(enc.overflowing)  # type: ignore[misc]

    def limited(self, max_tokens: int) -> TextTokenizer:
        """This tokenizer truncating at ``max_tokens`` (at most its own limit); made once per limit."""
        max_tokens = max(2, min(max_tokens, self.max_tokens))
        if max_tokens == self.max_tokens:
            return self
        if max_tokens not in self._limited:
            self._limited[max_tokens] = TextTokenizer(
                Tokenizer.from_str(self._tok.to_str()), max_tokens, self._fallback_id
            )
        return self._limited[max_tokens]

    def count(self, texts: list[str]) -> list[int]:
        """Token counts without truncation (for chunking budgets)."""
        if self._counter is None:
            self._counter = Tokenizer.from_str(self._tok.to_str())
            self._counter.no_truncation()
        return [len(e.ids) for e in self._counter.encode_batch(texts)]


def load_tokenizer(path_or_id: str | Path | None = None, max_tokens: int | None = None) -> TextTokenizer:
    """The checkpoint's tokenizer alone (no weights, no torch import), truncating at the same limit
    ``load_encoder`` would use.

    ``TextTokenizer.count(texts)`` gives token counts with special tokens: what the chunker budgets with.
    """
    from .load import default_model, read_tokenizer_files, token_limit

    config, tokenizer_path, max_len = read_tokenizer_files(path_or_id or default_model())
    return TextTokenizer.from_file(tokenizer_path, token_limit(config, max_len, max_tokens), config.cls_token_id)
