"""Files swapped under semcode while it works: a file (or a folder) that becomes a symlink between the walk and the read
is never read through the link, in an indexing run (`indexer/read.py`: `open_beneath`, the walk's stat checked)
and in a read served to a user (`Index.read`, MCP `read_code`); and paths no file can have are one clear error.

Real files, real LanceDB, the tiny model. Each race is made deterministic: an indexing run swaps the file from its
progress callback (called after the first file's batch is written, so after the walk and before the later file is
read: ``batch_files=1``); a read swaps it as ``semcode.lines.source_lines`` is entered (a profile hook: after
``Engine.read`` checked the path and its record, before the file is opened).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from mcp import Client
from mcp_types import TextContent

import semcode
from indexer.index import IndexOptions, Progress, index_repository, repo_id
from indexer.read import FOLDER_SWAPPED, REPLACED, SYMLINK_SWAPPED
from indexer.store import Store
from mcp_server.tools import build_server
from semcode.lines import source_lines
from semcode.workspace import PathTooLong

MARKER = "zq_outside_marker_5531"  # text only the file outside the repository holds
INSIDE = "zq_inside_marker_8812"  # text of the file renamed onto a planned one


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(repository, a folder outside it whose files hold MARKER)."""
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / ".git").mkdir(parents=True)
    write(root / "a.py", "def first_file(x):\n    return x + 1\n")
    write(root / "pkg/zzy_mod.py", "def module_in_pkg(x):\n    return x * 2\n")
    write(root / "bin/tool", "def tool_main():\n    return 'tool'\n")  # no supported type: reached by tool.py only
    (root / "tool.py").symlink_to("bin/tool")  # discover indexes it at the link's path
    write(root / "zzy_passwd.py", "def planned_file(x):\n    return x - 1\n")
    write(outside / "secret.py", f"def {MARKER}():\n    return 'root:x:0:0'\n")
    write(outside / "zzy_mod.py", f"def {MARKER}():\n    return 'root:x:0:0'\n")
    return root, outside


def file_to_link_out(root: Path, outside: Path) -> str:
    (root / "zzy_passwd.py").unlink()
    (root / "zzy_passwd.py").symlink_to(outside / "secret.py")  # what a `git pull` or another user can do
    return "zzy_passwd.py"


def folder_to_link_out(root: Path, outside: Path) -> str:
    (root / "pkg").rename(root / "pkg_old")
    (root / "pkg").symlink_to(outside)  # outside/zzy_mod.py now answers to pkg/zzy_mod.py
    return "pkg/zzy_mod.py"


def kept_link_to_outside(root: Path, outside: Path) -> str:
    (root / "tool.py").unlink()
    (root / "tool.py").symlink_to(outside / "secret.py")  # the walk kept this link (its target was bin/tool)
    return "tool.py"


def file_to_link_inside(root: Path, outside: Path) -> str:
    write(root / "notes/inside", f"def {INSIDE}():\n    return 1\n")
    (root / "zzy_passwd.py").unlink()
    (root / "zzy_passwd.py").symlink_to(root / "notes/inside")
    return "zzy_passwd.py"


def other_file_renamed_onto_it(root: Path, outside: Path) -> str:
    write(root / "new.tmp", f"def {INSIDE}():\n    return 1\n")
    os.replace(root / "new.tmp", root / "zzy_passwd.py")  # another inode at the walked path
    return "zzy_passwd.py"


SWAPS: list[tuple[Callable[[Path, Path], str], str]] = [
    (file_to_link_out, SYMLINK_SWAPPED),
    (folder_to_link_out, FOLDER_SWAPPED),
    (kept_link_to_outside, SYMLINK_SWAPPED),
    (file_to_link_inside, SYMLINK_SWAPPED),
    (other_file_renamed_onto_it, REPLACED),
]


@pytest.mark.parametrize(("swap", "reason"), SWAPS, ids=[s.__name__ for s, _ in SWAPS])
def test_a_file_swapped_after_the_walk_is_skipped_not_read(
    tree: tuple[Path, Path], tmp_path: Path, enc: Any, swap: Callable[[Path, Path], str], reason: str
) -> None:
    root, outside = tree
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    swapped: list[str] = []

    def progress(_p: Progress) -> None:  # first called once a.py is written: the walk is done, the rest unread
        if not swapped:
            swapped.append(swap(root, outside))

    report = index_repository(root, store, enc, enc.tokenizer.count, IndexOptions(batch_files=1), progress)
    (path,) = swapped
    assert {s.path: s.reason for s in report.skipped}.get(path) == reason, report.skipped
    record = store.files(repo_id(root))[path]
    assert (record.status, record.reason) == ("skipped", reason)
    for text in (MARKER, INSIDE):
        assert not store.search_text(text, 5), f"{text} was indexed through the swapped {path}"
    assert [h.chunk.path for h in store.search_text("first_file", 5)][:1] == ["a.py"]  # the run went on


def test_a_symlinked_file_is_indexed_at_the_link_and_follows_its_target(
    tree: tuple[Path, Path], tmp_path: Path, enc: Any
) -> None:
    """discover's rule: a link to a file of no supported type is indexed at the link's path; its record follows
    the target (the walk's stat of a kept link is its target's), so an edit of the target is picked up."""
    root, _ = tree
    store = Store.open(tmp_path / "index", model_id=enc.name, dim=enc.dim)
    index_repository(root, store, enc, enc.tokenizer.count, IndexOptions())
    assert [h.chunk.path for h in store.search_text("tool_main", 5)] == ["tool.py"]
    assert store.files(repo_id(root))["tool.py"].status == "indexed"
    write(root / "bin/tool", "def tool_main_renamed():\n    return 'tool, longer now'\n")
    again = index_repository(root, store, enc, enc.tokenizer.count, IndexOptions())
    assert again.files_changed == 1 and not again.skipped
    assert [h.chunk.path for h in store.search_text("tool_main_renamed", 5)] == ["tool.py"]


# -- reads served to users -----------------------------------------------------------------------------------------


@contextmanager
def swap_when_opened(swap: Callable[[], None]) -> Iterator[threading.Event]:
    """Run `swap` once, in whichever thread enters ``semcode.lines.source_lines`` (the MCP tools run in worker
    threads): after ``Engine.read`` checked the path (``Folder.inside`` resolves symlinks) and its record, before the
    file is opened. The event says it ran."""
    done = threading.Event()

    def hook(frame: FrameType, event: str, _arg: object) -> None:
        if done.is_set():
            sys.setprofile(None)  # (this thread's hook, once its work is done)
        elif event == "call" and frame.f_code is source_lines.__code__:
            done.set()
            swap()

    threading.setprofile(hook)  # type: ignore[arg-type]
    sys.setprofile(hook)  # type: ignore[arg-type]
    try:
        yield done
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(None)


@pytest.fixture
def index(tree: tuple[Path, Path], tmp_path: Path, model: Path) -> Iterator[semcode.Index]:
    root, _ = tree
    opened = semcode.open(root, index_dir=tmp_path / "index", model=str(model))
    opened.update()
    yield opened
    opened.close()


def swapping(swap: Callable[[Path, Path], str], root: Path, outside: Path) -> Callable[[], None]:
    def run() -> None:
        swap(root, outside)

    return run


@pytest.mark.parametrize("swap", [file_to_link_out, file_to_link_inside])
def test_index_read_refuses_a_file_that_became_a_symlink_after_the_check(
    tree: tuple[Path, Path], index: semcode.Index, swap: Callable[[Path, Path], str]
) -> None:
    root, outside = tree
    assert "planned_file" in index.read("zzy_passwd.py")
    with swap_when_opened(swapping(swap, root, outside)) as done, pytest.raises(FileNotFoundError) as refused:
        index.read("zzy_passwd.py")
    assert done.is_set() and (root / "zzy_passwd.py").is_symlink()
    message = str(refused.value)
    assert "it is a symlink now (not followed)" in message, message
    assert MARKER not in message and INSIDE not in message and "root:x" not in message
    with pytest.raises(ValueError, match="symlink"):
        index.read("zzy_passwd.py")  # and now that the check sees the link too


def test_mcp_read_code_refuses_a_file_that_became_a_symlink_after_the_check(
    tree: tuple[Path, Path], index: semcode.Index
) -> None:
    root, outside = tree

    async def read() -> tuple[bool, str]:
        async with Client(build_server(index.engine)) as client:
            result = await asyncio.wait_for(client.call_tool("read_code", {"path": "zzy_passwd.py"}), 120)
        (content,) = result.content
        assert isinstance(content, TextContent)
        return result.is_error, content.text

    is_error, text = asyncio.run(read())
    assert not is_error and "planned_file" in text, text  # readable before the swap
    with swap_when_opened(swapping(file_to_link_out, root, outside)) as done:
        is_error, text = asyncio.run(read())
    assert done.is_set() and is_error, text
    assert "symlink" in text and MARKER not in text and "root:x" not in text


def test_paths_no_file_can_have_are_one_clear_error(index: semcode.Index) -> None:
    for path in ("a" * 200_000, "src/" + "n" * 300 + ".py", "/" + "b/" * 100_000):
        with pytest.raises(PathTooLong, match="path too long") as refused:
            index.read(path)
        assert len(str(refused.value)) < 200  # not the path itself
        with pytest.raises(PathTooLong, match="path too long"):
            index.related(path, 0)
