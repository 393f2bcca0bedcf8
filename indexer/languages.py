"""Which language a file is in, and which tree-sitter grammar parses it (tree-sitter-language-pack < 1 bundles
every grammar, so nothing is downloaded at run time)."""

from __future__ import annotations

from functools import cache
from pathlib import PurePosixPath
from typing import Any

# extension -> language name (the grammar name in tree-sitter-language-pack for parsed languages)
PARSED: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".ipp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby",
    ".php": "php",
    ".kt": "kotlin", ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala", ".sc": "scala",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash",
}  # fmt: skip

_PARSED_LANGUAGES = frozenset(PARSED.values())  # (the walk asks for every file)

# other text files: chunked by the line/paragraph fallback
TEXT: dict[str, str] = {
    ".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json", ".jsonc": "json",
    ".ini": "ini", ".cfg": "ini", ".conf": "ini",
    ".sql": "sql", ".html": "html", ".htm": "html", ".css": "css", ".scss": "css", ".xml": "xml",
    ".gradle": "groovy", ".proto": "protobuf", ".graphql": "graphql", ".tf": "hcl",
    ".lua": "lua", ".pl": "perl", ".r": "r", ".dart": "dart", ".ex": "elixir", ".exs": "elixir",
    ".vue": "vue", ".svelte": "svelte", ".hs": "haskell", ".ml": "ocaml", ".clj": "clojure",
}  # fmt: skip

FILENAMES: dict[str, str] = {
    "Dockerfile": "dockerfile", "Makefile": "make", "GNUmakefile": "make", "CMakeLists.txt": "cmake",
    "Rakefile": "ruby", "Gemfile": "ruby", "Jenkinsfile": "groovy", "BUILD": "starlark", "WORKSPACE": "starlark",
    "Vagrantfile": "ruby", "Procfile": "text", "README": "markdown", "LICENSE": "text",
    # dependency lockfiles: searched by their text only (``embed_policy``), so "which version of X" finds them
    "yarn.lock": "yaml", "Cargo.lock": "toml", "poetry.lock": "toml", "uv.lock": "toml", "pdm.lock": "toml",
    "Gemfile.lock": "text", "composer.lock": "json", "Pipfile.lock": "json", "flake.lock": "json",
    "Podfile.lock": "yaml", "pubspec.lock": "yaml", "mix.lock": "text", "go.sum": "text", "bun.lock": "json",
}  # fmt: skip


def language_for(path: str) -> str | None:
    """The language of a repository-relative path, or None for files semcode does not index."""
    p = PurePosixPath(path)
    if p.name in FILENAMES:
        return FILENAMES[p.name]
    if p.name.startswith("Dockerfile"):
        return "dockerfile"
    suffix = p.suffix.lower()
    return PARSED.get(suffix) or TEXT.get(suffix)


def is_parsed(language: str) -> bool:
    """True when the language has a tree-sitter grammar semcode chunks by syntax."""
    return language in _PARSED_LANGUAGES


@cache
def parser_for(language: str) -> Any:
    """A tree-sitter Parser for a parsed language (cached per language, per process)."""
    from tree_sitter_language_pack import get_parser

    return get_parser(language)  # type: ignore[arg-type]
