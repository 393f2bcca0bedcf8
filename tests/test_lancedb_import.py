"""indexer/lancedb_import.py: LanceDB imports without its REST client, and the client still loads on first use."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import indexer.store  # imports lancedb through indexer.lancedb_import
loaded_api = "lance_namespace_urllib3_client.api" in sys.modules
import lance_namespace_urllib3_client as client
models_imported = "lance_namespace_urllib3_client.models" in sys.modules
from lance_namespace_urllib3_client import ApiClient, __version__
from lance_namespace_urllib3_client.api.table_api import TableApi
print(loaded_api, models_imported, ApiClient.__module__, bool(__version__), client.TableApi is TableApi)
"""


def test_rest_client_deferred_until_used() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    # not loaded by the import; its models (lance_namespace needs them) are; the package works once used
    assert out == ["False", "True", "lance_namespace_urllib3_client.api_client", "True", "True"]


def test_defer_is_a_no_op_for_an_imported_or_missing_package() -> None:
    from indexer.lancedb_import import defer_rest_client

    assert defer_rest_client("json") is False  # already imported
    assert defer_rest_client("no_such_package_semcode") is False
    assert "no_such_package_semcode" not in sys.modules


PANDAS_PROBE = """
import sys
import indexer.store
skipped = "pandas" not in sys.modules
import pandas as pd
import pyarrow as pa
frame = pd.DataFrame({"a": [1, 2, 3]})
table = pa.table(frame)  # pyarrow still takes a data frame once pandas is imported
back = table.to_pandas()
print(skipped, table.num_rows, back["a"].tolist() == [1, 2, 3], "pandas" in sys.modules)
"""


def test_pandas_not_imported_with_lancedb_and_still_usable() -> None:
    out = subprocess.run([sys.executable, "-c", PANDAS_PROBE], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "3", "True", "True"]


def test_without_pandas_blocks_only_inside() -> None:
    probe = (
        "import sys\nfrom indexer.lancedb_import import without_pandas\nsys.modules.pop('pandas', None)\n"
        "with without_pandas():\n"
        "    try:\n        import pandas\n        print('imported')\n"
        "    except ImportError:\n        print('blocked')\n"
        "import pandas\nprint('after', pandas.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["blocked", "after", "pandas"]
