"""Training data for the default model: (docstring sentence, function code) pairs from pinned sources only.

Sources (recorded in the model card): the Python standard library of the running interpreter without ``tkinter``,
``idlelib``, ``turtledemo`` and the test suites, and the wheels of the packages in ``PACKAGES``, downloaded by
this recipe with ``pip download`` (never packages that happen to be installed). The retrieval benchmark's trees
(werkzeug, botocore, ``tkinter``) and their relatives are excluded by name, twice: they are not in ``PACKAGES``,
and ``EXCLUDED`` filters every path.

A pair is what the retrieval benchmark and the indexer see: the query is the first sentence of a function's
docstring; the document is ``# Qualified.name`` plus the function's source with every docstring removed,
dedented. Queries that occur more than once in a source are ambiguous and dropped.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import sysconfig
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

# pinned so the recipe is reproducible; pure-Python parts of wheels for CPython 3.11 on x86_64 Linux
PACKAGES = [
    "django==5.1.4",
    "sympy==1.13.3",
    "scipy==1.14.1",
    "numpy==2.1.3",
    "pandas==2.2.3",
    "networkx==3.4.2",
    "sqlalchemy==2.0.36",
    "matplotlib==3.9.2",
    "requests==2.32.3",
    "rich==13.9.4",
    "pydantic==2.10.3",
    "scikit-learn==1.5.2",
    "pytest==8.3.4",
    "setuptools==75.6.0",
    "docutils==0.21.2",
    "pygments==2.18.0",
]
EXCLUDED = {
    "tkinter",
    "idlelib",
    "turtledemo",
    "werkzeug",
    "flask",
    "botocore",
    "boto3",
    "s3transfer",
    "awscli",
    "moto",
}
SKIP_DIRS = {"__pycache__", "test", "tests", "testing", "_vendor", "vendor", "site-packages", "lib2to3"}
MIN_WORDS = 4

_SECTION = re.compile(
    r"^\s*(:param|:type|:return|:rtype|:raises|:arg|:keyword|>>>|\.\.\s|"
    r"(Args|Arguments|Parameters|Returns?|Yields?|Raises|Examples?|Notes?|Attributes|See Also)\s*:?\s*$|-{3,}|={3,})"
)
_ROLE = re.compile(r":[\w:.+-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"])|(?<=[.!?])$")


@dataclass
class Pair:
    source: str  # "stdlib" or the package name
    path: str  # relative to the source root
    symbol: str
    query: str
    code: str  # header line + code, as embedded


def download(out: Path) -> list[Path]:
    """The wheels of ``PACKAGES`` in ``out/wheels`` (pip download, no dependencies)."""
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for spec in PACKAGES:
        name = spec.split("==")[0].replace("-", "_").lower()
        if any(w.name.lower().startswith(name + "-") for w in wheels.glob("*.whl")):
            continue
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11"]
        cmd += ["--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"]
        cmd += ["--platform", "any", "-d", str(wheels), spec]
        subprocess.run(cmd, check=True)
    return sorted(wheels.glob("*.whl"))


def source_files() -> Iterator[tuple[str, str, str]]:
    """(source, relative path, text) for every Python file of the standard library (minus exclusions)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _excluded(rel.parts):
            continue
        try:
            yield "stdlib", str(rel), path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue


def wheel_files(wheel: Path) -> Iterator[tuple[str, str, str]]:
    source = wheel.name.split("-")[0].lower()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            if not name.endswith(".py") or _excluded(tuple(name.split("/"))):
                continue
            try:
                yield source, name, z.read(name).decode("utf-8")
            except UnicodeDecodeError:
                continue


def _excluded(parts: tuple[str, ...]) -> bool:
    return any(p in SKIP_DIRS or p.lower() in EXCLUDED or p.startswith("test_") for p in parts)


def first_sentence(doc: str) -> str | None:
    lines = []
    for line in doc.strip().splitlines():
        if not line.strip() or _SECTION.match(line):
            break
        lines.append(line.strip())
    text = _ROLE.sub(r"\1", " ".join(lines)).replace("``", "").replace("`", "")
    text = re.sub(r"\s+", " ", text).strip()
    m = _SENT_END.search(text)
    if m:
        text = text[: m.start()].strip()
    return text if len(text.split()) >= MIN_WORDS else None


def pairs_of_file(source: str, rel: str, text: str) -> Iterator[Pair]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return
    lines = text.splitlines()
    for node, qualname in _functions(tree, ""):
        doc = ast.get_docstring(node)
        query = first_sentence(doc) if doc else None
        if not query:
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        end = node.end_lineno or node.lineno
        drop: set[int] = set()
        for d in _docstring_nodes(node):
            drop.update(range(d.lineno, (d.end_lineno or d.lineno) + 1))
        body = [ln for i, ln in enumerate(lines[start - 1 : end], start) if i not in drop]
        indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
        code = "\n".join(ln[indent:] if ln[:indent].isspace() else ln for ln in body)
        yield Pair(source, rel, qualname, query, f"# {qualname}\n{code}")


def _functions(node: ast.AST, prefix: str) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield child, prefix + child.name
            yield from _functions(child, prefix + child.name + ".")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, prefix + child.name + ".")


def _docstring_nodes(node: ast.AST) -> Iterator[ast.Expr]:
    for n in ast.walk(node):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = n.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                yield first


def build(out: Path) -> Path:
    """Download the sources and write ``out/pairs.jsonl``; returns its path."""
    files = list(source_files())
    for wheel in download(out):
        files.extend(wheel_files(wheel))
    pairs = [p for f in files for p in pairs_of_file(*f)]
    counts = Counter((p.source, p.query) for p in pairs)
    seen_code: set[str] = set()
    kept = []
    for p in pairs:
        if counts[(p.source, p.query)] > 1 or p.code in seen_code:
            continue
        seen_code.add(p.code)
        kept.append(p)
    path = out / "pairs.jsonl"
    with path.open("w") as f:
        for p in kept:
            f.write(json.dumps(asdict(p)) + "\n")
    by_source = Counter(p.source for p in kept)
    (out / "sources.json").write_text(json.dumps({"packages": PACKAGES, "pairs": by_source}, indent=2))
    return path


def load(path: Path) -> list[Pair]:
    with path.open() as f:
        return [Pair(**json.loads(line)) for line in f]
