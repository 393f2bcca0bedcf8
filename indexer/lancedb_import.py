"""Import LanceDB without paying for its REST client: about 0.5 s of every cold command on two cores.

``import lancedb`` imports ``lance_namespace``, which imports request types from ``lance_namespace_urllib3_client``.
That package's ``__init__`` also imports its whole generated OpenAPI client (nine API modules, hundreds of
pydantic-validated methods): 0.6 s of LanceDB's 1.2-1.4 s import here, for the REST namespace, which an embedded
index on disk or on object storage never calls. ``defer_rest_client`` registers the package without running its
``__init__``: its submodules (``.models``, ``.api.table_api``, ...) import as usual, since the package has its
``__path__``, and the first use of a name of the package itself (``from lance_namespace_urllib3_client import
ApiClient``) runs the real ``__init__`` then, once. Nothing changes for code that does use the client.

Measured (``python -X importtime``): ``import lancedb`` 1.28 s -> 0.77 s.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

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


defer_rest_client()

import lancedb  # noqa: E402  (after the deferral, which is the point of this module)
from lancedb.index import FTS, Bitmap, BTree, IvfPq  # noqa: E402

__all__ = ["FTS", "BTree", "Bitmap", "IvfPq", "defer_rest_client", "lancedb"]
