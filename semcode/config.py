"""Where semcode's settings come from, resolved with the standard library's light modules only (no dataclasses, no
TOML parser unless there is a config file, no platformdirs on Linux): the CLI's warm path resolves an index's
folder and model here and asks the daemon serving it, in a few milliseconds. ``semcode.settings.Settings`` is the
core's view of the same resolution; every rule lives here once.

- The config file: ``$XDG_CONFIG_HOME/semcode/config.toml`` (``~/.config/semcode/config.toml``).
- The model: ``--model`` -> ``$SEMCODE_MODEL`` -> ``model`` in the config file -> the model shipped with semcode.
- An index folder: the one named (a URI normalised), else ``<cache>/semcode/indexes/<name>-<hash of the path>``.
- Storage options of an object-store index: explicit -> ``[storage]`` in the config file -> {} (the environment).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from indexer.storage import Location

try:  # what hashlib.blake2b is, without hashlib's OpenSSL start-up (4 ms)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

MODEL_ENV = "SEMCODE_MODEL"
READ_CACHE_ENV = "SEMCODE_READ_CACHE_GB"  # the read cache of object-store indexes: its size; 0 turns it off
READ_CACHE_GB = 10.0
MAX_FILE_MB = 2.0  # files over this many MB are skipped with a reason
DEBOUNCE_S = 0.3  # a file must be quiet this long before the watcher re-indexes it
_XDG = {"config": ("XDG_CONFIG_HOME", ".config"), "cache": ("XDG_CACHE_HOME", ".cache")}


def short_hash(text: str, digest_size: int) -> str:
    """A BLAKE2b hex digest of `text` of `digest_size` bytes (names of index folders and daemon sockets)."""
    return blake2b(text.encode(), digest_size=digest_size).hexdigest()


def user_dir(kind: str) -> Path:
    """semcode's user folder of `kind` ("config" or "cache"), as platformdirs names it: on Linux by the XDG rules
    (``$XDG_CONFIG_HOME`` when it is an absolute path, else ``~/.config``; plus ``semcode``), computed here
    (platformdirs costs the CLI's warm path 6 ms; tests/test_config.py holds the two together); elsewhere by
    platformdirs."""
    if sys.platform.startswith("linux"):
        env, default = _XDG[kind]
        value = os.environ.get(env, "")
        return Path(value if os.path.isabs(value) else os.path.expanduser(f"~/{default}")) / "semcode"
    import platformdirs

    return Path(platformdirs.user_config_dir("semcode") if kind == "config" else platformdirs.user_cache_dir("semcode"))


def config_file() -> Path:
    """``$XDG_CONFIG_HOME/semcode/config.toml`` (platformdirs' user config dir)."""
    return user_dir("config") / "config.toml"


def read_config() -> dict[str, Any]:
    """The config file's tables ({} when there is none). Raises ValueError for an unreadable file."""
    path = config_file()
    if not path.is_file():
        return {}
    import tomllib

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
    from encoder.shipped import default_model

    return str(default_model())


def read_cache() -> tuple[Path, int]:
    """(folder, bytes) of the local read cache that serving processes keep of indexes on object storage
    (``indexer/read_cache.py``): ``$SEMCODE_READ_CACHE_GB`` -> ``read_cache_gb`` in ``config_file()`` -> 10 GB;
    0 turns it off. Raises ValueError for a value that is not a number >= 0."""
    value: Any = os.environ.get(READ_CACHE_ENV, "").strip() or read_config().get("read_cache_gb", READ_CACHE_GB)
    try:
        gb = float(value)
    except (TypeError, ValueError):
        gb = -1.0
    if not gb >= 0:
        raise ValueError(f"read_cache_gb ({READ_CACHE_ENV}) must be a number of GB >= 0 (0: no read cache)")
    return user_dir("cache") / "object-cache", int(gb * 2**30)


def indexes_dir() -> Path:
    """Where default index folders live: the user cache dir (``~/.cache/semcode/indexes`` on Linux)."""
    return user_dir("cache") / "indexes"


def default_index_dir(root: Path) -> str:
    """The index folder of a repository root when none is named: ``<indexes_dir>/<name>-<hash of the path>``."""
    resolved = root.resolve()
    key = short_hash(str(resolved), 6)
    return str(indexes_dir() / f"{resolved.name}-{key}")


def index_dir_for(index_dir: str | None, root: Path) -> str:
    """The index of `root`: `index_dir` (a URI normalised: ``s3://b/p/`` and ``s3://b/p`` are one index) or the
    default folder of the root."""
    if not index_dir:
        return default_index_dir(root)
    from indexer.storage import canonical

    return canonical(index_dir)


def index_location(index_dir: str, storage_options: Mapping[str, str] | None = None) -> Location:
    """Where `index_dir` lives, with the storage options that reach it (``configured_storage``, resolved for a URI
    only: a local folder needs none). For a folder in the user's cache, the cache is made private first
    (``private_cache``)."""
    from indexer.storage import is_uri, location

    if is_uri(index_dir):
        return location(index_dir, configured_storage(storage_options))
    if Path(index_dir).parent == indexes_dir():
        private_cache()
    return location(index_dir)


def private_cache() -> None:
    """Make the user's index cache (``indexes_dir()`` and the ``semcode`` folder above it) private (0700) where this
    user owns it and others can read it: one made by an older semcode, or under a loose umask, lists every indexed
    repository's name. Creates nothing (``indexer.identity.claim_dir`` creates the folders 0700; it also makes each
    index folder private)."""
    from indexer.storage import location

    for folder in (user_dir("cache"), indexes_dir()):
        location(str(folder)).make_private()
