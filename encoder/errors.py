"""The encoder's error for an unusable checkpoint, in a module of its own: front doors catch it without importing
anything of the model's code."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file (or hub id) and the problem."""
