"""The indexer's error for an unusable index, in a module of its own: front doors catch it without importing the
indexer's data types."""

from __future__ import annotations


class StoreError(Exception):
    """The index directory cannot be used as it is (not an index, another format, or damaged)."""
