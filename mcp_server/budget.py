"""How many tokens an MCP answer may take in an agent's context, and how an answer is cut to fit.

Coding agents refuse a tool result past a limit (Claude Code: 25,000 tokens by default), and every token of a result
is context the agent no longer has. So every answer of semcode's tools stays within a budget: ``max_tokens`` per call,
by default the server's (``semcode mcp --max-tokens N``, else ``DEFAULT_MAX_TOKENS``). An answer carries two
renderings, the text and the structured JSON (clients pass one or the other to the model); each stays within it.

Tokens are estimated, not counted: UTF-8 bytes / 3, rounded up (``estimate_tokens``), with no tokenizer to load and
the same figure whatever the agent. It is an estimate, not a bound: the shipped model's tokenizer (word pieces,
whitespace free) takes 2.9 bytes a token on semcode's own Python (2.2 in its densest file), and agents' byte-level
BPE tokenizers merge more (whitespace runs, common words), so most answers hold fewer real tokens than estimated,
and a dense one somewhat more. The default budget leaves three times that margin below the 25,000 tokens at which
Claude Code refuses a result. A CJK character (3 bytes) counts as one token, about as those tokenizers count it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

DEFAULT_MAX_TOKENS = 8_000  # well below the 25,000 at which Claude Code refuses a tool result
MIN_MAX_TOKENS = 1_000  # room for one hit with its snippet, or some 100 lines of code
MAX_MAX_TOKENS = 100_000
BYTES_PER_TOKEN = 3

T = TypeVar("T")


def estimate_tokens(text: str) -> int:
    """The estimate of ``text``'s tokens: UTF-8 bytes / 3, rounded up (see the module docstring)."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN)


def answer_tokens(model: BaseModel, text: str) -> int:
    """The larger estimate of an answer's two renderings: its text, and its structured content as JSON."""
    return max(estimate_tokens(text), estimate_tokens(json.dumps(model.model_dump(), ensure_ascii=False)))


def check_budget(max_tokens: int) -> int:
    """`max_tokens` if it is a budget this server accepts, else ValueError (the server option's check)."""
    if not MIN_MAX_TOKENS <= max_tokens <= MAX_MAX_TOKENS:
        raise ValueError(f"--max-tokens must be from {MIN_MAX_TOKENS:,} to {MAX_MAX_TOKENS:,}, got {max_tokens:,}")
    return max_tokens


def most_that_fit(items: Sequence[T], fits: Callable[[Sequence[T]], bool], at_least: int = 0) -> int:
    """The largest n such that ``fits(items[:n])`` (never below `at_least`): a binary search, for answers whose size
    grows with the items they carry (hits, lines, skipped files)."""
    low, high = at_least, len(items)  # fits(items[:low]) is assumed; find the last n that fits
    while low < high:
        mid = (low + high + 1) // 2
        if fits(items[:mid]):
            low = mid
        else:
            high = mid - 1
    return low


__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MAX_MAX_TOKENS",
    "MIN_MAX_TOKENS",
    "answer_tokens",
    "check_budget",
    "estimate_tokens",
    "most_that_fit",
]
