"""``semcode.config``, the light resolution the CLI's warm path uses, against what it replaces: platformdirs' folders
and ``Settings``' index folder, storage location and daemon socket, for every combination that matters."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import platformdirs
import pytest

from lsp_server import daemon
from lsp_server.cli import SETTINGS_OF_DAEMON, _index_dir, _settings
from semcode import config
from semcode.settings import Settings

XDG_VALUES = [None, "", "   ", "/custom/base", "relative/base"]


@pytest.mark.parametrize(("kind", "env"), [("config", "XDG_CONFIG_HOME"), ("cache", "XDG_CACHE_HOME")])
@pytest.mark.parametrize("value", XDG_VALUES)
def test_user_folders_are_platformdirs_folders(monkeypatch: pytest.MonkeyPatch, kind: str, env: str, value: str | None):
    if value is None:
        monkeypatch.delenv(env, raising=False)
    else:
        monkeypatch.setenv(env, value)
    want = platformdirs.user_config_dir("semcode") if kind == "config" else platformdirs.user_cache_dir("semcode")
    assert config.user_dir(kind) == Path(want)


def test_the_hash_is_hashlibs_blake2b() -> None:
    import hashlib

    for text, size in [("", 6), ("/home/me/repo", 6), ("a\0b\0c", 8), ("ünï", 8)]:
        assert config.short_hash(text, size) == hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


def cli_args(**given: object) -> argparse.Namespace:
    fields = {f: None for f in (*SETTINGS_OF_DAEMON, "index_dir", "include_secrets")}
    return argparse.Namespace(**(fields | given))


@pytest.mark.parametrize(
    "index_dir", [None, "relative/index", "/abs/index/", "s3://Bucket/prefix/", "S3://bucket/a//b", "gs://b"]
)
def test_index_folder_and_daemon_socket_match_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index_dir: str | None
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    options = itertools.product([None, "/models/m"], [None, "cpu"], [None, "fp32"], [None, 1], [None, 512])
    for model, device, dtype, threads, max_tokens in options:
        args = cli_args(index_dir=index_dir, model=model, device=device, dtype=dtype, threads=threads)
        args.max_tokens = max_tokens
        settings = _settings(args)
        assert _index_dir(args, root) == settings.index_dir_for(root)
        where = settings.index_dir_for(root)
        # what a warm request names (the CLI's flags, resolved without a Settings) is the index and model Settings pick
        named = daemon.target(where, *(getattr(args, f) for f in SETTINGS_OF_DAEMON))
        picked = daemon.target(where, settings.resolved_model(), settings.device, settings.dtype, settings.max_tokens)
        assert named == picked
        assert config.index_location(where) == settings.index_location(where)


def test_storage_options_of_a_uri_come_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "semcode").mkdir()
    (tmp_path / "semcode" / "config.toml").write_text('[storage]\naws_region = "eu-west-1"\nallow_http = true\n')
    want = {"aws_region": "eu-west-1", "allow_http": "true"}
    assert (
        dict(config.index_location("s3://b/p").options) == want == dict(Settings().index_location("s3://b/p").options)
    )
    assert dict(config.index_location(str(tmp_path / "local")).options) == {}  # a local folder needs none
