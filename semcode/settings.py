"""Settings every front door shares, each with its one default: the model (``--model`` -> ``$SEMCODE_MODEL`` ->
``model`` in the config file -> the shipped model), the index folder of a repository root (or one object-store URI,
``s3://bucket/prefix``, with its storage options: ``Settings.storage_options`` -> ``[storage]`` in the config file ->
the ``AWS_*`` environment LanceDB reads), and the options of discovery and indexing. Front doors parse their own flags
or protocol options into a ``Settings``."""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.discover import DiscoverOptions
    from indexer.index import IndexOptions
    from indexer.storage import Location

MODEL_ENV = "SEMCODE_MODEL"
MAX_FILE_MB = 2.0  # files over this many MB are skipped with a reason
DEBOUNCE_S = 0.3  # a file must be quiet this long before the watcher re-indexes it


def config_file() -> Path:
    """``$XDG_CONFIG_HOME/semcode/config.toml`` (platformdirs' user config dir)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("semcode")) / "config.toml"


def read_config() -> dict[str, Any]:
    """The config file's tables ({} when there is none). Raises ValueError for an unreadable file."""
    path = config_file()
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read the semcode config file ({e})") from e


def configured_storage(explicit: Mapping[str, str] | None) -> dict[str, str]:
    """The storage options of an object-store index (LanceDB's ``storage_options``: ``aws_endpoint``,
    ``aws_region``, ``aws_access_key_id``, ``aws_secret_access_key``, ``allow_http``, ...): ``explicit``
    (``Settings.storage_options``, ``semcode.open(storage_options=...)``) -> the ``[storage]`` table of
    ``config_file()`` -> {} (LanceDB then reads ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ... from
    the environment). Values are strings (TOML booleans and numbers are turned into them). Raises ValueError for a
    `storage` entry that is not a table of scalars (the message names the key, never a value)."""
    if explicit is not None:
        return {str(k): str(v) for k, v in explicit.items()}
    table = read_config().get("storage", {})
    if not isinstance(table, dict):
        raise ValueError(f'{config_file()}: `storage` must be a table ([storage] with key = "value" lines)')
    out = {}
    for key, value in table.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float):
            raise ValueError(f"{config_file()}: [storage] {key} must be a string, a number or a boolean")
        out[key] = str(value)
    return out


def configured_model(explicit: str | None) -> str:
    """The model to load, by the resolution order of every front door: ``explicit`` (``--model``,
    ``initializationOptions.model``, ``semcode.open(model=...)``) -> ``$SEMCODE_MODEL`` -> ``model = "..."`` in
    ``config_file()`` -> the model shipped with semcode (its folder). Raises ValueError for an unreadable config
    file."""
    if explicit:
        return explicit
    if os.environ.get(MODEL_ENV, "").strip():
        return os.environ[MODEL_ENV].strip()
    value = read_config().get("model")
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise ValueError(f"{config_file()}: `model` must be a non-empty string (a checkpoint folder or hub id)")
    if value:
        return value.strip()
    from encoder.load import default_model

    return str(default_model())


def indexes_dir() -> Path:
    """Where default index folders live: the user cache dir (``~/.cache/semcode/indexes`` on Linux)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("semcode")) / "indexes"


def default_index_dir(root: Path) -> str:
    """The index folder of a repository root when none is named: ``<indexes_dir>/<name>-<hash of the path>``."""
    resolved = root.resolve()
    key = hashlib.blake2b(str(resolved).encode(), digest_size=6).hexdigest()
    return str(indexes_dir() / f"{resolved.name}-{key}")


@dataclass(frozen=True)
class Settings:
    """What an index is opened with. None means "the default" (see each field)."""

    model: str | None = None  # checkpoint folder or hub id (default: configured_model(None))
    index_dir: str | None = None  # one LanceDB folder or URI for every root (default: one per root, default_index_dir)
    device: str | None = None  # "cpu", "cuda", ... (default: CUDA if available)
    dtype: str | None = None  # "fp32", "bf16", "fp16" (default: bf16 where native, else fp32)
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    max_tokens: int | None = None  # chunk budget and encoder limit (default: the model's, 8192)
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
        from indexer.storage import is_uri, location

        return location(index_dir, self.storage() if is_uri(index_dir) else None)

    def index_dir_for(self, root: Path) -> str:
        """The index of `root`: ``index_dir`` (a URI normalised: ``s3://b/p/`` and ``s3://b/p`` are one index) or
        the default folder of the root."""
        if not self.index_dir:
            return default_index_dir(root)
        from indexer.storage import canonical

        return canonical(self.index_dir)

    def discover_options(self) -> DiscoverOptions:
        """What the walk and the reader leave out."""
        from indexer.discover import DiscoverOptions

        return DiscoverOptions(
            max_file_bytes=int(self.max_file_mb * 1024 * 1024),
            include_secrets=self.include_secrets,
            extra_excludes=self.extra_excludes,
        )

    def index_options(self, max_tokens: int, vector_index_min_rows: int | None = None) -> IndexOptions:
        """Indexing options (``max_tokens``: the loaded encoder's limit). The vector index is built separately
        (``Engine.build_vector_index``) unless ``vector_index_min_rows`` is given."""
        from indexer.index import IndexOptions

        return IndexOptions(
            discover=self.discover_options(), max_tokens=max_tokens, vector_index_min_rows=vector_index_min_rows
        )
