"""Pinned third-party source code in several languages, for training data and dev sets beyond Python.

Every source is a package at an exact version from one of three registries, fetched with its ordinary client:
``npm pack`` (the npm registry), ``apt-get download`` + ``dpkg-deb -x`` (Debian bookworm) or
``pip download --no-binary PACKAGE`` (a PyPI sdist). Only the folders in ``Source.subdirs`` are kept (a
``src.zip`` in a Debian package, the JDK's sources, is unpacked into ``src/`` first); the cache folder is named
by package and version only, so changing a source's ``subdirs`` means deleting its folder.

The retrieval benchmark's held-out projects are never fetched: ``fetch`` refuses any package whose name contains
one of ``FORBIDDEN``. ``TRAIN_SOURCES`` and ``DEV_SOURCES`` are disjoint: the dev sets are other projects.

Debian drops a version when a (security) update replaces it, e.g. ``openjdk-17-source`` every quarter, and a mirror
may be a snapshot older than a pin; ``fetch`` then takes the version Debian has and says so on stderr (the pin is
what to bump; the cache folder keeps the pin's name).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

# fmt: off
# held-out projects of the retrieval benchmarks (and their relatives), never in training, dev or tuning data:
# matched as substrings of package names
FORBIDDEN = frozenset({
    "rxjs", "lodash", "underscore", "ramda",  # JavaScript / TypeScript
    "@tanstack/", "trpc", "date-fns", "express",
    "zap", "zerolog", "logrus",  # Go
    "ripgrep", "grep", "globset", "ignore", "regex",  # Rust: ripgrep's workspace, regex, regex-syntax/-automata
    "commons-lang", "commons-text", "guava",  # Java
    "libuv",  # C
    "docutils", "ipython", "pytest", "sphinx", "werkzeug", "botocore", "tkinter",  # Python
    "flask", "boto3", "s3transfer", "awscli", "moto", "httpx", "fastapi",
})
# short held-out names, matched as whole words of a package name only ("chi" is go-chi, not "archive")
FORBIDDEN_WORDS = frozenset({"chi", "hono", "zod", "axum", "fmt", "libfmt", "gson"})

LANGUAGES = ("typescript", "javascript", "go", "rust", "java", "c", "cpp", "python")
EXTENSIONS = {
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".go": "go", ".rs": "rust", ".java": "java", ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".hh": "cpp", ".cxx": "cpp", ".py": "python",
}
# fmt: on
SKIPPED_DIRS = frozenset({"test", "tests", "testdata", "examples", "vendor", "node_modules", "__tests__", "fixtures"})
SKIPPED_FILE = re.compile(r"(_test\.|\.test\.|\.spec\.|\.min\.js$|\.d\.[cm]?ts$)")
MAX_JS_BYTES = 300_000  # larger JavaScript files are generated bundles


@dataclass(frozen=True)
class Source:
    name: str  # e.g. "npm:effect", "deb:golang-1.19-src"
    kind: str  # "npm" | "deb" | "pypi-sdist" | "pypi-wheel"
    package: str
    version: str  # exact
    languages: tuple[str, ...]
    subdirs: tuple[str, ...] = ()  # kept folders, relative to the package root (npm, sdist) or to / (deb)


def _pin(kind: str, package: str, version: str, lang: str, *subdirs: str) -> Source:
    return Source(f"{kind}:{package}", kind, package, version, (lang,), subdirs)


_npm, _deb, _sdist, _wheel = (partial(_pin, kind) for kind in ("npm", "deb", "pypi-sdist", "pypi-wheel"))


def _rust(crate: str, version: str) -> Source:
    return _deb(f"librust-{crate}-dev", version, "rust", "usr/share/cargo/registry")


def _go(package: str, version: str) -> Source:
    return _deb(package, version, "go", "usr/share/gocode/src")


# fmt: off
# the Go standard library without the compiler (cmd), the runtime and syscall internals
_GO_STD = [f"usr/share/go-1.19/src/{d}" for d in (
    "archive", "bufio", "builtin", "bytes", "compress", "container", "context", "crypto", "database", "debug", "embed",
    "encoding", "errors", "expvar", "flag", "fmt", "go", "hash", "html", "image", "index", "io", "log", "math", "mime",
    "net", "os", "path", "plugin", "reflect", "regexp", "sort", "strconv", "strings", "sync", "testing", "text",
    "time", "unicode", "unsafe",
)]
_JDK = [f"usr/lib/jvm/openjdk-17/lib/src/{d}" for d in (
    "java.base/java/lang", "java.base/java/util", "java.base/java/io", "java.base/java/net", "java.base/java/time",
    "java.base/java/math", "java.sql", "java.logging", "java.net.http",
)]
_RUST_STD = [f"usr/src/rustc-1.63.0/library/{d}" for d in ("core", "alloc", "std")]

TRAIN_SOURCES: list[Source] = [
    *(_npm(package, version, "typescript", "src") for package, version in [
        # (@trpc/server and @tanstack/query-core were here: both are held out)
        ("effect", "4.1.0"), ("mongodb", "7.9.1"), ("@reduxjs/toolkit", "2.15.0"), ("@tiptap/core", "3.35.0"),
        ("msw", "3.0.5"),
    ]),
    *(_npm(package, version, "javascript", sub) for package, version, sub in [
        ("three", "0.187.0", "src"), ("eslint", "10.15.0", "lib"), ("webpack", "5.113.0", "lib"),
        ("discord.js", "14.28.1", "src"), ("axios", "1.21.1", "lib"), ("mongoose", "9.12.1", "lib"),
        ("svelte", "5.57.3", "src"), ("@sveltejs/kit", "3.2.0", "src"),
    ]),
    _deb("golang-1.19-src", "1.19.8-2", "go", *_GO_STD),
    *(_go(package, version) for package, version in [
        ("golang-golang-x-net-dev", "1:0.7.0+dfsg-1"), ("golang-google-grpc-dev", "1.33.3-2"),
        ("golang-github-spf13-cobra-dev", "1.6.1-1"), ("golang-github-prometheus-client-golang-dev", "1.14.0-3"),
        ("golang-github-gorilla-mux-dev", "1.8.0-1"),
    ]),
    _deb("rust-src", "1.63.0+dfsg1-2", "rust", *_RUST_STD),
    *(_rust(crate, version) for crate, version in [
        ("tokio", "1.24.2-1"), ("futures-util", "0.3.21-1"), ("itertools", "0.10.3-1"), ("hashbrown", "0.12.3-1"),
        ("syn", "1.0.107-1"), ("nom", "7.1.1-1"), ("chrono", "0.4.23-2"), ("bytes", "1.2.1-1"),
        ("hyper", "0.14.19-1"), ("serde", "1.0.152-2"), ("serde-json", "1.0.87-1"), ("clap", "4.0.32-1"),
        ("rayon", "1.6.1-1"), ("crossbeam-channel", "0.5.6-1"), ("tracing-subscriber", "0.3.16-2"),
        ("http", "0.2.7-1"), ("reqwest", "0.11.13-1"), ("num-traits", "0.2.15-1"), ("image", "0.24.3-1"),
    ]),
    _deb("openjdk-17-source", "17.0.21.1+2-1~deb12u1", "java", *_JDK),
    _npm("cordova-android", "15.1.0", "java", "framework"),
    *(_deb(package, version, lang, "usr/include") for package, version, lang in [
        ("libgit2-dev", "1.5.1+ds-1+deb12u2", "c"), ("libmbedtls-dev", "2.28.3-1", "c"),
        ("libxerces-c-dev", "3.2.4+debian-1", "cpp"), ("libeigen3-dev", "3.4.0-4", "cpp"),
        ("nlohmann-json3-dev", "3.11.2-2", "cpp"),
    ]),
    # C libraries bundled in PyPI sdists
    _sdist("zstandard", "0.25.0", "c", "zstd"),
    _sdist("lz4", "4.4.5", "c", "lz4libs"),
    _sdist("xxhash", "4.1.0", "c", "deps"),
    _sdist("brotli", "1.2.1", "c", "c"),
    _deb("juce-modules-source-data", "7.0.5+ds-1", "cpp", "usr/share/juce/modules"),
    _deb("libopencv-core-dev", "4.6.0+dfsg-12", "cpp", "usr/include/opencv4"),
]

# dev sets (benchmarks/make_dev_sets.py): at least 3 projects per language (issue 24); a source is kept only when
# it gives at least 25 queries (make_dev_sets.py writes no smaller set). Tried and too sparsely documented: immer
# 11.2.14, mobx 7.1.3, ajv 8.20.0, @microsoft/signalr 11.0.0 (27 queries) (TypeScript); preact 11.2.0, moment
# 2.31.0, jquery 4.1.0, async 3.2.6 (JavaScript); react-native 0.88.1 (its Android code is Kotlin now: 12 Java
# files); anyhow, url (Rust); libxml2, nghttp2 (C headers). No TypeScript sources in the npm package: fp-ts, io-ts,
# kysely, inversify, typedi, tsyringe, @sinclair/typebox, typeorm, @codemirror/*. ethers' docs use their own markup
# (%%v%%, [[Link]]) that the queries would keep.
DEV_SOURCES: dict[str, Source] = {
    "typescript-fabric": _npm("fabric", "7.4.0", "typescript", "src"),
    "typescript-puppeteer": _npm("puppeteer-core", "25.19.0", "typescript", "src"),
    # xterm.js's own code, without src/vs (a vendored copy of VS Code's base library)
    "typescript-xterm": _npm("@xterm/xterm", "6.0.0", "typescript", "src/browser", "src/common"),
    "javascript-mocha": _npm("mocha", "12.0.3", "javascript", "lib"),
    "javascript-commander": _npm("commander", "15.1.0", "javascript", "lib"),
    "javascript-yjs": _npm("yjs", "13.6.33", "javascript", "src"),
    "javascript-ws": _npm("ws", "8.23.1", "javascript", "lib"),
    "go-gin": _go("golang-github-gin-gonic-gin-dev", "1.8.1-1"),
    "go-urfave-cli": _go("golang-github-urfave-cli-v2-dev", "2.3.0-2"),
    "go-testify": _go("golang-github-stretchr-testify-dev", "1.8.1-1"),
    "rust-indexmap": _rust("indexmap", "1.9.2-1"),
    "rust-petgraph": _rust("petgraph", "0.6.2-1"),
    "rust-time": _rust("time", "0.3.9-1+deb12u1"),
    "rust-uuid": _rust("uuid", "1.2.1-1"),
    "rust-rustix": _rust("rustix", "0.35.12-1"),  # also whole modules (//! docs): rust-files
    "java-javafx": _deb("openjfx-source", "11.0.11+1-3", "java", "usr/share/openjfx/lib/src/javafx.base"),
    "java-capacitor": _npm("@capacitor/android", "8.5.2", "java", "capacitor"),
    "java-jep": _sdist("jep", "4.3.2", "java", "src/main/java"),  # Java embedding Python: its Java side
    "c-sdl2": _deb("libsdl2-dev", "2.26.5+dfsg-1", "c", "usr/include/SDL2"),
    "c-libevent": _deb("libevent-dev", "2.1.12-stable-8+deb12u1", "c", "usr/include/event2"),
    "c-sqlite": _deb("libsqlite3-dev", "3.40.1-2+deb12u2", "c", "usr/include"),
    "cpp-ogre": _deb("libogre-1.12-dev", "1.12.10+dfsg2-3+b1", "cpp", "usr/include/OGRE"),
    "cpp-bullet": _deb("libbullet-dev", "3.24+dfsg-2", "cpp", "usr/include/bullet"),
    "cpp-glm": _deb("libglm-dev", "0.9.9.8+ds-6", "cpp", "usr/include/glm"),
    "cpp-tinyxml2": _deb("libtinyxml2-dev", "9.0.0+dfsg-3.1", "cpp", "usr/include"),
    # Python: functions, whole classes and whole files (module docstring -> file)
    "python-pip": _wheel("pip", "24.3.1", "python", "pip"),
    "python-huggingface-hub": _wheel("huggingface_hub", "0.26.2", "python", "huggingface_hub"),
    "python-nltk": _wheel("nltk", "3.9.1", "python", "nltk"),
}
# fmt: on


def forbidden(package: str) -> str | None:
    """The held-out name that ``package`` contains (``FORBIDDEN``) or has as a word (``FORBIDDEN_WORDS``), if any."""
    lowered = package.lower()
    words = set(re.split(r"[^a-z0-9]+", lowered))
    found = next((name for name in sorted(FORBIDDEN) if name in lowered), None)
    return found or next((name for name in sorted(FORBIDDEN_WORDS) if name in words), None)


def _run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[:3]
        raise RuntimeError(f"{' '.join(args)} failed (exit {done.returncode}): " + " | ".join(tail))


def _download(src: Source, into: Path) -> Path:
    """Download ``src``'s archive into the empty folder ``into`` and return its path."""
    if src.kind == "npm":
        _run(["npm", "pack", "--loglevel=error", f"{src.package}@{src.version}"], into)
    elif src.kind == "deb":
        try:
            _run(["apt-get", "download", "-q", f"{src.package}={src.version}"], into)
        except RuntimeError as e:
            policy = subprocess.run(["apt-cache", "policy", src.package], capture_output=True, text=True).stdout
            now = re.search(r"Candidate: (\S+)", policy)
            if now is None or now[1] == "(none)":
                raise RuntimeError(f"{e}; Debian has no {src.package} now") from e
            # a security update replaced the pinned version (or this mirror is a snapshot older than the pin): the
            # same package's sources at the version Debian has, said loudly, rather than no training data at all
            print(f"{src.name}: pinned {src.version} is gone from Debian, taking {now[1]}", file=sys.stderr)
            _run(["apt-get", "download", "-q", f"{src.package}={now[1]}"], into)
    elif src.kind == "pypi-sdist":
        # --no-binary for this package only: with :all: pip would also build its build requirements from source
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--dest", str(into)]
        _run([*pip, "--no-binary", src.package, f"{src.package}=={src.version}"], into)
    elif src.kind == "pypi-wheel":  # pure-Python packages: the wheel is the source
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--dest", str(into)]
        _run([*pip, f"{src.package}=={src.version}"], into)
    else:
        raise RuntimeError(f"{src.name}: unknown kind {src.kind!r}")
    archives = list(into.iterdir())
    if len(archives) != 1:
        raise RuntimeError(f"{src.name}: expected one downloaded archive, found {[p.name for p in archives]}")
    return archives[0]


def _unpack(src: Source, archive: Path, into: Path) -> Path:
    """Unpack ``archive`` into ``into``; return the package root that ``src.subdirs`` are relative to."""
    into.mkdir()
    if src.kind == "deb":
        _run(["dpkg-deb", "-x", str(archive), str(into)], into)
        for nested in into.rglob("src.zip"):  # the JDK's sources
            with zipfile.ZipFile(nested) as zf:
                zf.extractall(nested.with_suffix(""))
            nested.unlink()
        return into
    if archive.suffix in (".zip", ".whl"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")
    tops = list(into.iterdir())  # npm tarballs and sdists have one top folder ("package/", "name-version/")
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else into


def _source_root(folder: Path) -> Path:
    """The folder that holds the sources: descend while there is a single subfolder and nothing else."""
    while True:
        entries = list(folder.iterdir())
        if len(entries) != 1 or not entries[0].is_dir():
            return folder
        folder = entries[0]


def safe_name(src: Source) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{src.name}-{src.version}").strip("-")


def fetch(src: Source, cache: Path) -> Path:
    """Download and unpack ``src`` into ``cache/<safe name>-<version>/`` (once) and return its sources' root."""
    if held_out := forbidden(src.package) or forbidden(src.name):
        raise ValueError(f"{src.name} is a held-out benchmark project ({held_out!r}); it is never fetched")
    final = Path(cache) / safe_name(src)
    if final.is_dir():
        return _source_root(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "download").mkdir(parents=True)
    try:
        start = time.perf_counter()
        archive = _download(src, tmp / "download")
        size = archive.stat().st_size
        root = _unpack(src, archive, tmp / "unpacked")
        kept = tmp / "kept"
        if src.subdirs:
            for sub in src.subdirs:
                if not (root / sub).is_dir():
                    raise RuntimeError(f"{src.name}: {sub!r} is not a folder of the package")
                (kept / sub).parent.mkdir(parents=True, exist_ok=True)
                (root / sub).rename(kept / sub)
        else:
            root.rename(kept)
        kept.rename(final)  # atomic: a half-unpacked source never sits at its final path
        seconds = time.perf_counter() - start
        print(f"fetched {src.name} {src.version}: {size / 1e6:.1f} MB in {seconds:.1f}s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _source_root(final)


def language_of(path: str, cpp_headers: bool = False) -> str | None:
    """The language of a source file by its name, or None for files that are not sources or are skipped.

    ``.h`` is C unless ``cpp_headers`` (a C++ project's headers).
    """
    name = path.rsplit("/", 1)[-1]
    if SKIPPED_FILE.search(name):
        return None
    lang = EXTENSIONS.get(os.path.splitext(name)[1].lower())
    return "cpp" if cpp_headers and lang == "c" and name.endswith(".h") else lang


def source_files(root: Path, languages: Iterable[str] = LANGUAGES) -> Iterator[tuple[str, str]]:
    """(path relative to ``root``, language) of the source files under ``root`` in ``languages``, in a fixed order.

    Tests, test data, examples, vendored code and generated JavaScript bundles are skipped. ``.h`` files count as
    C++ when ``languages`` has "cpp" but not "c".
    """
    wanted = set(languages)
    cpp_headers = "cpp" in wanted and "c" not in wanted
    root = Path(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d.lower() not in SKIPPED_DIRS)
        for name in sorted(files):
            lang = language_of(name, cpp_headers)
            if lang not in wanted:
                continue
            path = Path(folder) / name
            if lang == "javascript" and path.stat().st_size > MAX_JS_BYTES:
                continue
            yield path.relative_to(root).as_posix(), lang
