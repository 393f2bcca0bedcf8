"""Index folders as a whole: which there are (the user's cache, or named ones), what each holds, and deleting one,
or one repository's part of an index several share. ``semcode indexes`` and ``semcode forget`` are glue over this;
the engine works inside an index (``Engine.forget_repository`` removes a repository through its writer).

Only a folder (or object-storage prefix) that carries semcode's marker is ever read as an index or deleted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from indexer.storage import Location


@dataclass(frozen=True)
class IndexInfo:
    """One index: where, its size on disk (bytes) and, per model, what it holds (``indexer.store.describe_index``:
    {"model", "dim", "repos": {repo: {"files", "chunks"}}, "updated", "incomplete": [repo, ...]})."""

    location: Location
    size: int
    models: list[dict[str, Any]] = field(default_factory=list)
    warning: str | None = None  # other users can read it, and this user cannot make it private (not the owner)


@dataclass(frozen=True)
class Forgotten:
    """What ``forget`` did: ``deleted`` the index, ``removed`` one repository's `chunks` from a shared one, or
    nothing: the place is ``not-an-index`` (something else is there, left alone) or ``missing``."""

    location: Location
    outcome: Literal["deleted", "removed", "not-an-index", "missing"]
    chunks: int = 0


def cached() -> list[Location]:
    """Everything in the user's index cache (``semcode.config.indexes_dir``), indexes or not, in name order."""
    from indexer.storage import location

    from .config import indexes_dir

    base = indexes_dir()
    return [location(p) for p in sorted(base.iterdir())] if base.is_dir() else []


def describe(places: Iterable[Location]) -> Iterator[IndexInfo]:
    """The indexes among `places` (others are passed over), each described. A local index of this user's that other
    users can read is made private on the way (``Location.make_private``); one this user cannot fix (another user's)
    carries a ``warning``."""
    from indexer.identity import is_index
    from indexer.store import describe_index

    for place in places:
        if is_index(place):
            warning = place.make_private()
            yield IndexInfo(place, place.size(), describe_index(place), warning)


def forget(place: Location, repo: Path | None = None) -> Forgotten:
    """Delete the index at `place`; or, given `repo` (its root, which may no longer exist) and an index that also
    holds other repositories, remove only `repo`'s chunks, file records and marker entries, from every model's
    tables. Refuses (StoreError) a place that holds something other than an index."""
    from indexer.identity import delete_index, is_index, repo_id
    from indexer.store import Store, describe_index

    if not is_index(place):
        return Forgotten(place, "not-an-index" if place.exists() else "missing")
    if repo is not None:
        rid, models = repo_id(repo), describe_index(place)
        if {r for model in models for r in model["repos"]} - {rid}:
            removed = 0
            for model in models:
                with Store.open(place, model_id=model["model"], dim=model["dim"]) as store:
                    removed += store.forget_repo(rid)
            return Forgotten(place, "removed", removed)
    delete_index(place)
    return Forgotten(place, "deleted")
