"""encoder.training.sources: offline checks only (nothing is downloaded)."""

from __future__ import annotations

import pytest

from encoder.training import sources
from encoder.training.sources import DEV_SOURCES, FORBIDDEN, LANGUAGES, TRAIN_SOURCES, Source, fetch, source_files

# fmt: off
HELD_OUT = [
    "rxjs", "lodash", "lodash-es", "underscore", "ramda",
    "golang-go.uber-org-zap-dev", "golang-github-rs-zerolog-dev", "golang-github-sirupsen-logrus-dev",
    "librust-ripgrep-dev", "librust-grep-searcher-dev", "librust-globset-dev", "librust-ignore-dev",
    "librust-regex-dev", "librust-regex-syntax-dev", "librust-regex-automata-dev",
    "libcommons-lang3-java", "commons-text", "libguava-java",
    "docutils", "IPython", "pytest", "sphinx", "werkzeug", "botocore", "python3-tkinter",
    "flask", "boto3", "s3transfer", "awscli", "moto",
    "httpx", "fastapi", "@tanstack/query-core", "@tanstack/react-query", "@trpc/server", "hono", "date-fns", "zod",
    "express", "golang-github-go-chi-chi-dev", "librust-axum-dev", "libfmt-dev", "libuv1-dev", "libgoogle-gson-java",
]
# fmt: on


@pytest.mark.parametrize("package", HELD_OUT)
def test_fetch_refuses_held_out_projects(package, tmp_path):
    src = Source(f"npm:{package}", "npm", package, "1.0.0", ("javascript",))
    with pytest.raises(ValueError, match="held-out"):
        fetch(src, tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before anything was downloaded or created


def test_pinned_sources_are_not_held_out_and_train_dev_disjoint():
    every = [*TRAIN_SOURCES, *DEV_SOURCES.values()]
    for src in every:
        assert sources.forbidden(src.package) is None, src
        assert src.kind in {"npm", "deb", "pypi-sdist", "pypi-wheel"}
        assert src.version and not src.version.startswith(("^", "~", ">", "<")) and "*" not in src.version
        assert src.languages and set(src.languages) <= set(LANGUAGES)
    train = {src.package for src in TRAIN_SOURCES}
    dev = [src.package for src in DEV_SOURCES.values()]
    assert not train & set(dev)
    assert len(dev) == len(set(dev)) and len(train) == len(TRAIN_SOURCES)
    assert len({sources.safe_name(src) for src in every}) == len(every)  # distinct cache folders
    assert {"rxjs", "lodash", "regex", "guava", "werkzeug"} <= FORBIDDEN
    # short names are whole words: go-chi is held out, an archiver or a formatter is not
    assert [sources.forbidden(p) for p in ("archiver", "zodiac", "libformat-dev", "chrono")] == [None] * 4


def test_every_language_but_python_has_training_and_dev_sources():
    for lang in set(LANGUAGES) - {"python"}:
        assert any(lang in src.languages for src in TRAIN_SOURCES), lang
        assert any(lang in src.languages for src in DEV_SOURCES.values()), lang


def _tree(root, files):
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x" * size)


def test_source_files_maps_extensions_and_skips_tests_vendored_and_bundles(tmp_path):
    # fmt: off
    _tree(tmp_path, {
        "src/a.ts": 1, "src/b.tsx": 1, "src/c.mts": 1, "src/types.d.ts": 1, "src/more.d.mts": 1,
        "lib/d.js": 1, "lib/e.mjs": 1, "lib/f.cjs": 1, "lib/g.jsx": 1, "lib/h.min.js": 1,
        "dist/bundle.js": 300_001, "dist/small.js": 10,
        "pkg/server.go": 1, "pkg/server_test.go": 1, "crate/src/lib.rs": 1, "java/Foo.java": 1,
        "c/x.c": 1, "c/x.h": 1, "cpp/y.cc": 1, "cpp/y.cpp": 1, "cpp/y.hpp": 1, "cpp/y.hh": 1, "cpp/y.cxx": 1,
        "py/m.py": 1, "README.md": 1, "src/util.test.ts": 1, "src/util.spec.js": 1,
        "test/t.ts": 1, "tests/t.rs": 1, "pkg/testdata/t.go": 1, "examples/e.js": 1, "vendor/v.go": 1,
        "node_modules/dep/index.js": 1, "src/__tests__/t.js": 1, "src/fixtures/f.ts": 1, "Tests/T.java": 1,
    })
    assert dict(source_files(tmp_path)) == {
        "src/a.ts": "typescript", "src/b.tsx": "typescript", "src/c.mts": "typescript",
        "lib/d.js": "javascript", "lib/e.mjs": "javascript", "lib/f.cjs": "javascript", "lib/g.jsx": "javascript",
        "dist/small.js": "javascript", "pkg/server.go": "go", "crate/src/lib.rs": "rust", "java/Foo.java": "java",
        "c/x.c": "c", "c/x.h": "c", "cpp/y.cc": "cpp", "cpp/y.cpp": "cpp", "cpp/y.hpp": "cpp", "cpp/y.hh": "cpp",
        "cpp/y.cxx": "cpp", "py/m.py": "python",
    }
    # fmt: on


def test_source_files_filters_languages_and_reads_headers_as_cpp_for_cpp_projects(tmp_path):
    _tree(tmp_path, {"a.h": 1, "b.c": 1, "c.hpp": 1, "d.go": 1})
    assert dict(source_files(tmp_path, ["go"])) == {"d.go": "go"}
    assert dict(source_files(tmp_path, ("c",))) == {"a.h": "c", "b.c": "c"}
    assert dict(source_files(tmp_path, ("cpp",))) == {"a.h": "cpp", "c.hpp": "cpp"}
    assert dict(source_files(tmp_path, ("c", "cpp"))) == {"a.h": "c", "b.c": "c", "c.hpp": "cpp"}


def test_fetch_returns_an_unpacked_source_without_downloading_again(tmp_path, monkeypatch):
    src = Source("deb:libexample-dev", "deb", "libexample-dev", "1.0-1", ("c",), ("usr/include",))
    _tree(tmp_path / sources.safe_name(src) / "usr/include/example", {"example.h": 1, "detail/impl.h": 1})

    def no_download(*args):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(sources, "_download", no_download)
    root = fetch(src, tmp_path)
    assert root == tmp_path / sources.safe_name(src) / "usr/include/example"
    assert dict(source_files(root, src.languages)) == {"detail/impl.h": "c", "example.h": "c"}


def test_fetch_unpacks_only_the_kept_folders_atomically(tmp_path, monkeypatch):
    import io
    import tarfile

    def fake_npm_pack(src, into):
        archive = into / "pkg-1.0.0.tgz"
        with tarfile.open(archive, "w:gz") as tf:
            for name, text in {"package/src/a.ts": "export const a = 1;", "package/README.md": "hi"}.items():
                info = tarfile.TarInfo(name)
                info.size = len(text)
                tf.addfile(info, io.BytesIO(text.encode()))
        return archive

    monkeypatch.setattr(sources, "_download", fake_npm_pack)
    src = Source("npm:@scope/pkg", "npm", "@scope/pkg", "1.0.0", ("typescript",), ("src",))
    root = fetch(src, tmp_path / "cache")
    assert root == tmp_path / "cache" / "npm-scope-pkg-1.0.0" / "src"
    assert dict(source_files(root, src.languages)) == {"a.ts": "typescript"}
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["npm-scope-pkg-1.0.0"]  # no temporary left

    missing = Source("npm:other", "npm", "other", "1.0.0", ("typescript",), ("lib",))
    with pytest.raises(RuntimeError, match="'lib' is not a folder"):
        fetch(missing, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["npm-scope-pkg-1.0.0"]
