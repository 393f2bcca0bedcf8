"""Every file read of a checkpoint happens here: resolve a folder or hub id, then read config, weights, tokenizer
and the sentence-transformers files (pooling, prompts).

A checkpoint folder is laid out as on the Hugging Face hub::

    config.json                      ModernBERT config (4.x or 5.x keys)
    model.safetensors                bare ModernBertModel names, or "model."-prefixed masked-LM names
    tokenizer.json                   tokenizers' serialised tokenizer
    modules.json                     sentence-transformers pipeline (optional)
    1_Pooling/config.json            pooling_mode_cls_token / pooling_mode_mean_tokens (optional)
    config_sentence_transformers.json  prompts for query / document (optional)
    sentence_bert_config.json        max_seq_length (optional)

Errors name the file and the problem (``CheckpointError``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .config import ConfigError, EncoderConfig
from .errors import CheckpointError
from .shipped import DEFAULT_MODEL_DIR as DEFAULT_MODEL_DIR  # re-exported: their home is encoder.shipped
from .shipped import DEFAULT_MODEL_NAME as DEFAULT_MODEL_NAME
from .shipped import default_model as default_model

if TYPE_CHECKING:
    import numpy as np
    import torch

T = TypeVar("T")

log = logging.getLogger(__name__)

HUB_FILES = [
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*.safetensors",
    "tokenizer.json",
    "modules.json",
    "1_Pooling/config.json",
    "*_Pooling/config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_DROP_PREFIXES = ("head.", "decoder.", "classifier.", "dense.")


_FALLBACK_HINT = "or leave the model unset to use semcode's built-in default model"


def _default_model_id(known: Path | None = None) -> str:
    """The default model's identity: its name and a hash of its weights, so a retrained model never mixes vectors."""
    weights = DEFAULT_MODEL_DIR / "model.safetensors"
    st = weights.stat()
    return f"{DEFAULT_MODEL_NAME}@{_sha256_prefix(str(weights), st.st_size, st.st_mtime_ns, known)}"


_HASHES: dict[str, str] = {}  # this process's: "path size mtime_ns" -> sha256[:12]


def _sha256_prefix(path: str, size: int, mtime_ns: int, known: Path | None = None) -> str:
    """The first 12 hex digits of the file's SHA-256 (50 ms for the shipped weights), kept for this process and,
    with `known` (a JSON file in the user's private cache folder), for the next ones: size and mtime make a
    changed file a new key. `known` is read and written on a best-effort basis, and only where its folder exists."""
    key = f"{path} {size} {mtime_ns}"
    if key in _HASHES:
        return _HASHES[key]
    saved: dict[str, str] = {}
    if known is not None:
        try:
            saved = json.loads(known.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        found = saved.get(key) if isinstance(saved, dict) else None
        if isinstance(found, str) and re.fullmatch(r"[0-9a-f]{12}", found):
            _HASHES[key] = found
            return found
    digest = _HASHES[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    if known is not None and known.parent.is_dir():
        _save_hashes(known, {**(saved if isinstance(saved, dict) else {}), key: digest})
    return digest


def _save_hashes(known: Path, hashes: dict[str, str]) -> None:
    tmp = known.with_name(f".{known.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(list(hashes.items())[-16:]), f)  # (a few models' worth; the newest last)
        os.replace(tmp, known)
    except OSError as e:
        log.debug("could not keep the model's hash in %s: %s", known, e)
        tmp.unlink(missing_ok=True)


@dataclass
class Checkpoint:
    """Everything read from a checkpoint folder, before any model is built."""

    folder: Path
    config: EncoderConfig
    state_dict: dict[str, torch.Tensor]
    tokenizer_path: Path
    pooling: str = "mean"  # "cls" or "mean"
    prompts: dict[str, str] = field(default_factory=dict)  # kind ("query"/"document") -> prefix
    max_seq_length: int | None = None


def model_id(path_or_id: str | Path, *, known: Path | None = None) -> str:
    """A stable name for a model: the resolved path of a local folder, else the hub id as given.

    The shipped default model is named by its weights (``semcode-code-minilm@<sha256[:12]>``), not by where the
    package happens to be installed; `known`: a file that keeps that hash for the next processes (``_sha256_prefix``).
    """
    path = Path(path_or_id).expanduser()
    if not path.is_dir():
        return str(path_or_id)
    resolved = path.resolve()
    return _default_model_id(known) if resolved == DEFAULT_MODEL_DIR else str(resolved)


def resolve(path_or_id: str | Path) -> Path:
    """A local folder as is; otherwise a hub id fetched (or found in the local cache) with huggingface_hub."""
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return path
    text = str(path_or_id)
    if path.exists():
        raise CheckpointError(f"{text}: is a file; expected a checkpoint folder (with config.json)")
    if not _HUB_ID.match(text):
        raise CheckpointError(f"{text}: no such folder, and not a hub id of the form 'org/name' ({_FALLBACK_HINT})")
    return _download(text)


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise CheckpointError(f"{repo_id}: huggingface_hub is not installed; pass a local folder") from e
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
    except Exception as online_error:
        # offline, unknown repo, or no network: try the local cache before giving up
        try:
            return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=True))
        except Exception:
            pass
        raise CheckpointError(
            f"{repo_id}: not a local folder, and the Hugging Face hub could not provide it "
            f"({type(online_error).__name__}: {_first_line(online_error)}); nothing is in the local cache "
            f"either. Missing: config.json, model.safetensors and tokenizer.json for {repo_id}. "
            f"Download it on a machine with network access (huggingface-cli download {repo_id}) "
            f"or pass a local checkpoint folder, {_FALLBACK_HINT} ({DEFAULT_MODEL_NAME})."
        ) from online_error


def read_checkpoint(path_or_id: str | Path, *, weights: bool = True) -> Checkpoint:
    """Everything a checkpoint folder holds; ``weights=False`` leaves ``state_dict`` empty (read them with
    ``read_numpy_weights(ckpt.folder)`` for the torch-free query encoder)."""
    folder = resolve(path_or_id)
    config, tokenizer_path = _read_config_and_tokenizer(folder)
    pooling, prompts, max_len = _read_sentence_transformers(folder)
    return Checkpoint(
        folder=folder,
        config=config,
        state_dict=_read_weights(folder) if weights else {},
        tokenizer_path=tokenizer_path,
        pooling=pooling,
        prompts=prompts,
        max_seq_length=max_len,
    )


def token_limit(config: EncoderConfig, max_seq_length: int | None, max_tokens: int | None) -> int:
    """How many tokens a text keeps: the model's positions, the checkpoint's max_seq_length, ``max_tokens``."""
    limit = config.max_position_embeddings
    if max_seq_length:
        limit = min(limit, max_seq_length)
    if max_tokens is not None:
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
        limit = min(limit, max_tokens)
    return limit


def read_tokenizer_files(path_or_id: str | Path) -> tuple[EncoderConfig, Path, int | None]:
    """Config and tokenizer.json only (no weights): what chunking needs to count tokens."""
    folder = resolve(path_or_id)
    config, tokenizer_path = _read_config_and_tokenizer(folder)
    _, _, max_len = _read_sentence_transformers(folder)
    return config, tokenizer_path, max_len


def _read_config_and_tokenizer(folder: Path) -> tuple[EncoderConfig, Path]:
    try:
        config = EncoderConfig.from_hf_dict(_read_json(folder / "config.json"), source=str(folder / "config.json"))
    except ConfigError as e:
        raise CheckpointError(str(e)) from e
    tokenizer_path = folder / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise CheckpointError(f"{tokenizer_path}: missing (semcode needs a fast tokenizer.json)")
    return config, tokenizer_path


def model_state_dict(raw: dict[str, T]) -> dict[str, T]:
    """Map checkpoint names to ``ModernBertModel`` names: strip ``model.``, drop MLM/classifier heads."""
    out: dict[str, T] = {}
    for name, tensor in raw.items():
        if name.startswith("model."):
            name = name[len("model.") :]
        elif name.startswith(_DROP_PREFIXES):
            continue
        out[name] = tensor
    return out


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    raw: dict[str, torch.Tensor] = {}
    for f in _weight_files(folder):
        raw.update(_load_safetensors(f, load_file))
    return model_state_dict(raw)


def read_numpy_weights(folder: Path) -> dict[str, np.ndarray]:
    """The weights as fp32 NumPy arrays, under ``ModernBertModel`` names (no torch import)."""
    import numpy as np
    from safetensors.numpy import load_file

    raw: dict[str, np.ndarray] = {}
    for f in _weight_files(folder):
        raw.update(_load_safetensors(f, load_file))
    return {k: np.asarray(v, dtype=np.float32) for k, v in model_state_dict(raw).items()}


def _load_safetensors(path: Path, load_file: Callable[[str], dict[str, T]]) -> dict[str, T]:
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors weights ({_first_line(e)})") from e


def _weight_files(folder: Path) -> list[Path]:
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        return [folder / s for s in shards]
    others = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
    hint = f" (found {', '.join(others)}: convert to safetensors)" if others else ""
    raise CheckpointError(f"{single}: missing{hint}")


def _read_sentence_transformers(folder: Path) -> tuple[str, dict[str, str], int | None]:
    pooling = "mean"  # sentence-transformers' default for a bare transformer
    pooling_dir = folder / "1_Pooling"
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        modules = _read_json(modules_file)
        if not isinstance(modules, list):
            raise CheckpointError(f"{modules_file}: expected a list of modules")
        for module in modules:
            if str(module.get("type", "")).endswith("Pooling"):
                pooling_dir = folder / module.get("path", "1_Pooling")
    pooling_file = pooling_dir / "config.json"
    if pooling_file.is_file():
        pooling = _pooling_mode(_read_json(pooling_file), pooling_file)
    else:
        log.info("%s: no pooling config; using mean pooling (the sentence-transformers default)", folder)

    prompts: dict[str, str] = {}
    st_file = folder / "config_sentence_transformers.json"
    if st_file.is_file():
        raw_prompts = _read_json(st_file).get("prompts") or {}
        if not isinstance(raw_prompts, dict):
            raise CheckpointError(f"{st_file}: 'prompts' must be an object")
        prompts = _prompts_by_kind(raw_prompts)

    max_len = None
    sb_file = folder / "sentence_bert_config.json"
    if sb_file.is_file():
        value = _read_json(sb_file).get("max_seq_length")
        max_len = int(value) if value else None
    return pooling, prompts, max_len


def _pooling_mode(raw: dict[str, Any], source: Path) -> str:
    modes = [k for k, v in raw.items() if k.startswith("pooling_mode") and v]
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    raise CheckpointError(
        f"{source}: unsupported pooling {modes or 'none'}; semcode supports pooling_mode_cls_token or "
        f"pooling_mode_mean_tokens (exactly one)"
    )


def _prompts_by_kind(raw: dict[str, str]) -> dict[str, str]:
    aliases = {
        "query": ("query", "search_query", "retrieval.query"),
        "document": ("document", "search_document", "passage", "corpus", "retrieval.passage"),
    }
    out = {}
    for kind, names in aliases.items():
        for name in names:
            if name in raw and isinstance(raw[name], str):
                out[kind] = raw[name]
                break
    return out


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
