"""Indexes are private to their owner, tested with a real second local user: an index holds every chunk's full text.

The suite runs as root (here and in CI); each test module creates a user ``semcode-test-<random>`` with ``useradd``
and deletes it at the end. Work happens under a folder in /tmp that every user can traverse (pytest's tmp_path is
0700), so only the index's own mode stands between the other user and the code.

The other user's ``semcode`` is a real process with that user's credentials: it starts as root, imports what the same
command imports (listed by a first run as root), then drops to the other user (``setgroups``, ``setgid``,
``setuid``) before ``lsp_server.cli.main`` runs; every file it opens from then on is opened as that user. (Not an exec
as the user: the interpreter may live where other users cannot run it, here under /root.) Each test first shows that
this process can read an index other users may read, so a refusal is the mode's doing.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET_CODE = "zq_private_algorithm_4471"  # a function name only the private repository holds

LIST_MODULES = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from lsp_server.cli import main
sys.exit(main(sys.argv[2:]))
"""

AS_OTHER_USER = """
import importlib, json, os, sys
uid, gid, listed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for name in json.loads(open(listed).read()):
    try:
        importlib.import_module(name)
    except Exception:
        pass
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
from lsp_server.cli import main
sys.exit(main(sys.argv[4:]))
"""


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    """A second local user, deleted at the end."""
    if os.geteuid() != 0:
        pytest.fail("tests/test_local_users.py creates a second local user: run the suite as root (as CI does)")
    useradd, userdel = shutil.which("useradd"), shutil.which("userdel")
    if useradd is None or userdel is None:
        pytest.fail("useradd/userdel not found: these tests need them (Debian: the passwd package) to create a user")
    name = f"semcode-test-{secrets.token_hex(4)}"
    made = subprocess.run([useradd, "--no-create-home", name], capture_output=True, text=True)
    assert made.returncode == 0, f"useradd {name} failed: {made.stderr}"
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run([userdel, name], capture_output=True)


@pytest.fixture(scope="module")
def shared(model: Path, other_user: pwd.struct_passwd) -> Iterator[Path]:
    """A folder every user can traverse, with the tiny model (readable by all) and a home for the other user."""
    folder = Path(tempfile.mkdtemp(prefix="semcode-users-"))
    try:
        folder.chmod(0o755)
        shutil.copytree(model, folder / "model")
        for path in [folder / "model", *(folder / "model").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (folder / "home").mkdir()
        os.chown(folder / "home", other_user.pw_uid, other_user.pw_gid)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def make_repo(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    (root / "core.py").write_text(f"def {SECRET_CODE}(data):\n    return sorted(data)[::-1]\n")
    return root


def as_root(shared: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`semcode ARGS` as root with umask 022 (files 0644, folders 0755 unless semcode says otherwise)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(shared / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, cwd=shared, env=env,
        preexec_fn=lambda: os.umask(0o022), timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def imported(shared: Path) -> Path:
    """The modules a lexical `semcode search` imports (a JSON list), from a run as root over an index of its own (a
    root process opening an index makes it private: it must not be one a test has just loosened)."""
    repo, index, listed = make_repo(shared / "listing-repo"), shared / "listing-index", shared / "modules.json"
    made = as_root(shared, "index", str(repo), "--index-dir", str(index), "--model", str(shared / "model"))
    assert made.returncode == 0, made.stderr
    args = ["search", SECRET_CODE, "--mode", "lexical", "--repo", str(repo), "--index-dir", str(index)]
    run = [sys.executable, "-c", LIST_MODULES, str(listed), *args, "--model", str(shared / "model")]
    done = subprocess.run(run, capture_output=True, text=True, cwd=shared, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and SECRET_CODE in done.stdout, done.stdout + done.stderr
    return listed


def as_user(shared: Path, user: pwd.struct_passwd, imported: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`semcode ARGS` as `user` (see the module docstring), after importing the modules listed in `imported`."""
    home = shared / "home"
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"), "USER": user.pw_name, "PYTHONDONTWRITEBYTECODE": "1",
    }  # fmt: skip
    run = [sys.executable, "-c", AS_OTHER_USER, str(user.pw_uid), str(user.pw_gid), str(imported), *args]
    return subprocess.run(run, capture_output=True, text=True, cwd=home, env=env, timeout=300)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loosen(index: Path) -> None:
    """An index as semcode made them before: folders 0755, files 0644."""
    for path in [index, *index.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_another_user_cannot_read_an_index(shared: Path, other_user: pwd.struct_passwd, imported: Path) -> None:
    def search() -> subprocess.CompletedProcess[str]:
        args = ["search", SECRET_CODE, "--mode", "lexical", "--repo", str(repo), "--index-dir", str(index)]
        return as_user(shared, other_user, imported, *args, "--model", str(shared / "model"))

    repo, index = make_repo(shared / "private-repo"), shared / "index"
    repo.chmod(0o755)
    made = as_root(shared, "index", str(repo), "--index-dir", str(index), "--model", str(shared / "model"))
    assert made.returncode == 0, made.stderr
    assert mode(index) == 0o700 and mode(index / "semcode-store.json") == 0o600

    loosen(index)  # the control: the other user's process reads an index other users may read
    before = search()
    assert before.returncode == 0 and SECRET_CODE in before.stdout, before.stdout + before.stderr

    again = as_root(shared, "index", str(repo), "--index-dir", str(index), "--model", str(shared / "model"))
    assert again.returncode == 0, again.stderr
    assert mode(index) == 0o700  # an old index is made private on its next write
    refused = search()
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip() == (
        f"semcode: error: {index}: permission denied: this user cannot read this index (it belongs to root; "
        "indexes are private to their owner)"
    )
    assert SECRET_CODE not in refused.stdout + refused.stderr and "Traceback" not in refused.stderr


def test_the_index_cache_is_private(shared: Path) -> None:
    repo, cache = make_repo(shared / "cached-repo"), shared / "cache"
    made = as_root(shared, "index", str(repo), "--model", str(shared / "model"))
    assert made.returncode == 0, made.stderr
    (index,) = (cache / "semcode/indexes").iterdir()
    assert [mode(p) for p in (cache, cache / "semcode", cache / "semcode/indexes", index)] == [0o700] * 4

    for folder in (cache / "semcode", cache / "semcode/indexes"):
        folder.chmod(0o755)  # a cache an older semcode made
    loosen(index)
    again = as_root(shared, "index", str(repo), "--model", str(shared / "model"))
    assert again.returncode == 0, again.stderr
    assert [mode(p) for p in (cache / "semcode", cache / "semcode/indexes", index)] == [0o700] * 3


def test_indexes_warns_about_an_index_it_cannot_make_private(shared: Path, other_user: pwd.struct_passwd) -> None:
    repo = make_repo(shared / "listed-repo")
    theirs, ours = shared / "their-index", shared / "our-index"
    for index in (theirs, ours):
        made = as_root(shared, "index", str(repo), "--index-dir", str(index), "--model", str(shared / "model"))
        assert made.returncode == 0, made.stderr
        loosen(index)
    for path in [theirs, *theirs.rglob("*")]:
        os.chown(path, other_user.pw_uid, other_user.pw_gid, follow_symlinks=False)

    listed = as_root(shared, "indexes", "--index-dir", str(theirs), "--index-dir", str(ours))
    assert listed.returncode == 0, listed.stderr
    assert str(theirs) in listed.stdout and str(ours) in listed.stdout  # both still listed
    assert listed.stderr.splitlines() == [
        f"semcode: warning: {theirs}: other users can read this index (mode 0755, owned by {other_user.pw_name}); "
        f"its owner can make it private with `chmod 700 {theirs}`"
    ]
    assert mode(theirs) == 0o755  # not ours to change
    assert mode(ours) == 0o700  # ours: made private as it was listed

    as_json = as_root(shared, "indexes", "--json", "--index-dir", str(theirs))
    assert as_json.returncode == 0 and len(as_json.stderr.splitlines()) == 1, as_json.stderr
    assert str(theirs) in [json.loads(line)["indexDir"] for line in as_json.stdout.splitlines()]
