"""Import LanceDB without paying for its REST client: about 0.5 s of every cold command on two cores.

``import lancedb`` imports ``lance_namespace``, which imports request types from ``lance_namespace_urllib3_client``.
That package's ``__init__`` also imports its whole generated OpenAPI client (nine API modules, hundreds of
pydantic-validated methods): 0.6 s of LanceDB's 1.2-1.4 s import here, for the REST namespace, which an embedded
index on disk or on object storage never calls. ``defer_rest_client`` registers the package without running its
``__init__``: its submodules (``.models``, ``.api.table_api``, ...) import as usual, since the package has its
``__path__``, and the first use of a name of the package itself (``from lance_namespace_urllib3_client import
ApiClient``) runs the real ``__init__`` then, once. Nothing changes for code that does use the client.

Measured (``python -X importtime``): ``import lancedb`` 1.28 s -> 0.77 s.

Pandas: ``pyarrow.dataset`` (which LanceDB imports) asks pyarrow's pandas shim whether pandas is there, and the shim
imports it to find out: 0.2-0.3 s for a library nothing here uses (LanceDB imports its own pandas lazily).
``without_pandas`` imports ``pyarrow.dataset`` while pandas cannot be found, so the shim notes "no pandas" and moves
on; every later call that needs pandas (``to_pandas()``, ``pa.table(a_data_frame)``) imports it then, as pyarrow's
shim retries where pandas is required. When pandas is imported already, nothing changes. Measured: the import of
``indexer.store`` 0.72-0.79 s -> 0.53-0.58 s.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Iterator, Sequence

log = logging.getLogger(__name__)

REST_CLIENT = "lance_namespace_urllib3_client"


def defer_rest_client(name: str = REST_CLIENT) -> bool:
    """Register package ``name`` so that its ``__init__`` runs on first use of one of its own names, not on import
    of a submodule. False (and nothing changed) when it is already imported or cannot be found."""
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)  # __path__, __spec__, __loader__ set; __init__ not run

    def load_on_use(attr: str) -> object:
        del module.__dict__["__getattr__"]
        log.debug("%s: running its __init__ (first use of %s)", name, attr)
        loader.exec_module(module)
        return getattr(module, attr)

    module.__dict__["__getattr__"] = load_on_use
    sys.modules[name] = module
    return True


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (not while pyarrow.dataset is imported)", name=name)
        return None


@contextlib.contextmanager
def without_pandas() -> Iterator[None]:
    """Within: pandas cannot be imported (unless it is already)."""
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)


defer_rest_client()
if "pyarrow.dataset" not in sys.modules and "pandas" not in sys.modules:
    with without_pandas():
        import pyarrow.dataset  # noqa: F401  (its pandas shim, told "no pandas", imports none: see the module doc)

import lancedb  # noqa: E402  (after the deferral, which is the point of this module)
from lancedb.index import FTS, Bitmap, BTree, IvfPq  # noqa: E402

__all__ = ["FTS", "BTree", "Bitmap", "IvfPq", "defer_rest_client", "lancedb", "without_pandas"]
