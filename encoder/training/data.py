"""Training data for the default model: (doc sentence, code) pairs from pinned sources only, in every language.

Sources (recorded in the model card): the Python standard library of the running interpreter without ``tkinter``,
``idlelib``, ``turtledemo`` and the test suites; the wheels of the packages in ``PACKAGES``, downloaded by this
recipe with ``pip download`` (never packages that happen to be installed); and the npm packages, Debian packages
and sdists of ``sources.TRAIN_SOURCES`` (TypeScript, JavaScript, Go, Rust, Java, C, C++). The benchmarks' trees and
the held-out projects are excluded by name, twice: they are in no source list, and ``EXCLUDED`` (with
``sources.FORBIDDEN``) filters every path.

A pair is what the retrieval benchmark and the indexer see (``extract.py``): the query is the first sentence of a
definition's doc comment; the document is ``# Qualified.name`` plus its code with the doc removed, dedented. Three
kinds: functions, classes (the whole type, member docs removed) and files (module doc -> the whole file, no
header): the long pairs that teach whole-chunk embeddings. Queries that occur more than once in a source are
ambiguous and dropped; each (source, language, kind) keeps at most ``CAPS[kind]`` pairs (Python functions:
``PYTHON_FUNCTION_CAP``), drawn with a fixed seed, so no single big project dominates a language.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import sysconfig
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from . import extract, sources

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
    "setuptools==75.6.0",
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
    # held out by the model issue: never trained on
    "docutils",
    "ipython",
    "pytest",
    "_pytest",
    "sphinx",
}
SKIP_DIRS = {"__pycache__", "test", "tests", "testing", "_vendor", "vendor", "site-packages", "lib2to3"}
MIN_WORDS = 4

# per (source, language, kind): the most pairs kept (a fixed-seed sample)
CAPS = {"function": 4000, "class": 240, "file": 80}
# the shipped model learned Python functions from 16,000 pairs already: fewer keep them from being forgotten
PYTHON_FUNCTION_CAP = 600


@dataclass
class Pair:
    source: str  # "stdlib" or the package name
    path: str  # relative to the source root
    symbol: str
    query: str
    code: str  # header line + code, as embedded
    language: str = "python"
    kind: str = "function"  # "function" | "class" | "file"


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
    return extract.first_sentence(doc, MIN_WORDS)


def pairs_of(source: str, language: str, rel: str, text: str) -> Iterator[Pair]:
    """Every pair of one file: functions, classes and (with a file doc) the whole file."""
    for d in extract.definitions(language, rel, text):
        query = extract.query_of(d, MIN_WORDS)
        if query and d.code.strip():
            code = d.code if d.kind == "file" else f"# {d.symbol}\n{d.code}"
            yield Pair(source, rel, d.symbol, query, code, language, d.kind)


def pairs_of_file(source: str, rel: str, text: str) -> Iterator[Pair]:
    """The function pairs of one Python file."""
    return (p for p in pairs_of(source, "python", rel, text) if p.kind == "function")


def other_language_files(cache: Path) -> Iterator[tuple[str, str, str, str]]:
    """(source, language, relative path, text) of every file of ``sources.TRAIN_SOURCES`` (fetched into cache)."""
    for src in sources.TRAIN_SOURCES:
        root = sources.fetch(src, cache)
        for rel, language in sources.source_files(root, src.languages):
            if _excluded(tuple(rel.split("/"))):
                continue
            try:
                text = (root / rel).read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            yield src.name, language, rel, text


def build(out: Path) -> Path:
    """Download the sources and write ``out/pairs.jsonl``; returns its path."""
    from tqdm import tqdm

    files = [(src, "python", rel, text) for src, rel, text in source_files()]
    for wheel in download(out):
        files.extend((src, "python", rel, text) for src, rel, text in wheel_files(wheel))
    files.extend(other_language_files(out / "sources"))
    pairs = [p for f in tqdm(files, desc="extract", unit="file") for p in pairs_of(*f)]
    counts = Counter((p.source, p.query) for p in pairs)
    seen_code: set[str] = set()
    groups: dict[tuple[str, str, str], list[Pair]] = {}
    for p in pairs:
        if counts[(p.source, p.query)] > 1 or p.code in seen_code:
            continue
        seen_code.add(p.code)
        groups.setdefault((p.source, p.language, p.kind), []).append(p)
    rng = random.Random(0)
    kept = []
    for key in sorted(groups):
        group = groups[key]
        cap = PYTHON_FUNCTION_CAP if key[1:] == ("python", "function") else CAPS[key[2]]
        kept.extend(group if len(group) <= cap else [group[i] for i in sorted(rng.sample(range(len(group)), cap))])
    path = out / "pairs.jsonl"
    with path.open("w") as f:
        for p in kept:
            f.write(json.dumps(asdict(p)) + "\n")
    table = Counter(f"{p.language}/{p.kind}" for p in kept)
    by_source = Counter(f"{p.source} {p.language}/{p.kind}" for p in kept)
    report = {"packages": PACKAGES, "sources": [asdict(s) for s in sources.TRAIN_SOURCES]}
    (out / "sources.json").write_text(json.dumps({**report, "pairs": table, "by_source": by_source}, indent=2))
    return path


def load(path: Path) -> list[Pair]:
    with path.open() as f:
        return [Pair(**json.loads(line)) for line in f]
