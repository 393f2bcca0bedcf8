"""Settings every front door shares, each with its one default: the model (``--model`` -> ``$SEMCODE_MODEL`` ->
``model`` in the config file -> the shipped model), the index folder of a repository root (or one object-store URI,
``s3://bucket/prefix``, with its storage options: ``Settings.storage_options`` -> ``[storage]`` in the config file ->
the ``AWS_*`` environment LanceDB reads), and the options of discovery and indexing. Front doors parse their own flags
or protocol options into a ``Settings``. The rules of that resolution live in ``semcode.config``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import DEBOUNCE_S, MAX_FILE_MB, configured_model, configured_storage, index_dir_for, index_location

if TYPE_CHECKING:
    from indexer.discover import DiscoverOptions
    from indexer.index import IndexOptions
    from indexer.storage import Location


@dataclass(frozen=True)
class Settings:
    """What an index is opened with. None means "the default" (see each field)."""

    model: str | None = None  # checkpoint folder or hub id (default: configured_model(None))
    index_dir: str | None = None  # one LanceDB folder or URI for every root (default: one per root, default_index_dir)
    device: str | None = None  # "cpu", "cuda", ... (default: CUDA if available)
    dtype: str | None = None  # "fp32", "bf16", "fp16", "int8" (default: int8 on VNNI CPUs, else bf16 if native, fp32)
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    max_tokens: int | None = None  # chunk budget and encoder limit (default: the model's, 8192)
    embed_tokens: int | None = None  # how many tokens of a chunk its vector reads (default: EMBED_TOKENS, 512)
    max_file_mb: float = MAX_FILE_MB
    include_secrets: bool = False  # also index .env, *.pem, *.key, id_rsa, ...
    extra_excludes: tuple[str, ...] = field(default=())  # gitignore-syntax lines, relative to each root
    debounce_s: float = DEBOUNCE_S
    # LanceDB storage options of an object-store index_dir (default: configured_storage(None)); secrets: no repr
    storage_options: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    def resolved_model(self) -> str:
        return configured_model(self.model)

    def storage(self) -> dict[str, str]:
        """The storage options an object-store index is reached with (see ``configured_storage``)."""
        return configured_storage(self.storage_options)

    def index_location(self, index_dir: str) -> Location:
        """Where `index_dir` lives, with the storage options that reach it (resolved for a URI only: a local folder
        needs none)."""
        return index_location(index_dir, self.storage_options)

    def index_dir_for(self, root: Path) -> str:
        """The index of `root`: ``index_dir`` (a URI normalised: ``s3://b/p/`` and ``s3://b/p`` are one index) or
        the default folder of the root."""
        return index_dir_for(self.index_dir, root)

    def discover_options(self) -> DiscoverOptions:
        """What the walk and the reader leave out."""
        from indexer.discover import DiscoverOptions

        return DiscoverOptions(
            max_file_bytes=int(self.max_file_mb * 1024 * 1024),
            include_secrets=self.include_secrets,
            extra_excludes=self.extra_excludes,
        )

    def index_options(
        self, max_tokens: int, vector_index_min_rows: int | None = None, *, embed: bool = True
    ) -> IndexOptions:
        """Indexing options (``max_tokens``: the loaded encoder's limit). The vector index is built separately
        (``Engine.build_vector_index``) unless ``vector_index_min_rows`` is given; ``embed`` False: phase 1 only."""
        from indexer.index import EMBED_TOKENS, IndexOptions

        if self.embed_tokens is not None and self.embed_tokens < 2:
            raise ValueError(f"embed_tokens must be at least 2, got {self.embed_tokens}")
        return IndexOptions(
            discover=self.discover_options(),
            max_tokens=max_tokens,
            vector_index_min_rows=vector_index_min_rows,
            embed=embed,
            embed_tokens=self.embed_tokens or EMBED_TOKENS,
        )
