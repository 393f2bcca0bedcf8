"""What a search query asks for, read once before ranking: identifiers, quoted strings, path hints, plain words, and
whether it asks for tests, docs or examples.

``analyze("how does APIRouter include_router work")`` -> identifiers ("APIRouter", "include_router"), words
("apirouter", "api", "router", "include", "work"), ``identifier_query`` False. ``analyze("JsonReader.peek")`` ->
``identifier_query`` True, identifiers ("JsonReader.peek",), definition names ("peek", parent "JsonReader").
Never raises: punctuation-only, regex metacharacters and identifiers in any script are plain input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `::`, `->`, `#` (Ruby's Class#method) and `.` join the parts of a qualified name
_QUALIFIER = re.compile(r"::|->|#|\.")
_IDENT = r"[^\W\d]\w*"
_QUALIFIED = re.compile(rf"{_IDENT}(?:(?:::|->|#|\.){_IDENT})*")
_QUOTED = re.compile(r"`([^`]{1,200})`|\"([^\"]{1,200})\"|'([^'\s][^']{0,199})'")
_PATH_HINT = re.compile(r"[\w.-]*/[\w./-]*|[\w-]+\.(?:[a-z]{1,4})\b")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_A-Za-z]+")
_WORD = re.compile(r"\w+")
_TERM = re.compile(r"[^\W_]+")  # a word as the full-text index splits text: letters and digits
MAX_TEXT_TERMS = 12  # distinct words of a hybrid search's lexical list at most, in a large table (``lexical_query``)
LEXICAL_CAP_ROWS = 1_000_000  # from this many chunk rows on

# words that carry no meaning for matching names and paths
STOP_WORDS = frozenset({
    "a", "an", "the", "and", "or", "not", "of", "to", "in", "on", "at", "by", "for", "from", "with", "without",
    "into", "onto", "over", "under", "about", "as", "is", "are", "was", "were", "be", "been", "being", "do", "does",
    "did", "done", "how", "what", "where", "which", "who", "whom", "why", "when", "whose", "that", "this", "these",
    "those", "there", "here", "it", "its", "i", "we", "you", "they", "he", "she", "them", "us", "our", "your",
    "their", "my", "me", "can", "could", "should", "would", "will", "shall", "may", "might", "must",
    "got", "use", "uses", "used", "using", "work", "works", "working", "happen", "happens",
    "make", "makes", "made", "find", "found", "show", "shows", "code", "function", "functions",
    "method", "methods", "class", "classes", "file", "files", "implemented", "implement", "implementation",
    "defined", "define", "definition", "logic", "part", "way", "any", "all", "each", "some", "one", "two", "if",
    "else", "then", "than", "so", "such", "via", "per",
})  # fmt: skip
# words that ask for a kind of text semcode otherwise ranks below code
INTENTS: dict[str, frozenset[str]] = {
    "test": frozenset({"test", "tests", "testing", "tested", "spec", "specs", "unittest", "unittests", "fixture",
                       "fixtures", "mock", "mocks", "assert", "asserts", "assertion", "assertions"}),
    "docs": frozenset({"doc", "docs", "documentation", "documented", "readme", "guide", "tutorial", "manual",
                       "changelog", "howto"}),
    "example": frozenset({"example", "examples", "sample", "samples", "demo", "demos", "snippet"}),
    "benchmark": frozenset({"benchmark", "benchmarks", "bench", "perf"}),
}  # fmt: skip


@dataclass(frozen=True)
class QueryTerms:
    """A query as ranking reads it."""

    text: str
    identifiers: tuple[str, ...]  # code-like tokens as written: "APIRouter", "parse_qs", "Sinatra::Base"
    quoted: tuple[str, ...]  # text between quotes or backticks
    path_hints: tuple[str, ...]  # "src/router", "client.py"
    words: tuple[str, ...]  # lower-case content words and the parts of identifiers, stop words dropped
    intents: frozenset[str]  # of INTENTS' keys: what kinds of text the query asks for
    identifier_query: bool  # the whole query is one or two identifiers (symbol lookup), not a sentence

    @property
    def definitions(self) -> tuple[tuple[str | None, str], ...]:
        """(parent or None, name) of each identifier: ``JsonReader.peek`` -> ("JsonReader", "peek")."""
        out: list[tuple[str | None, str]] = []
        for ident in self.identifiers:
            parts = [p for p in _QUALIFIER.split(ident) if p]
            if parts:
                item = (".".join(parts[:-1]) or None, parts[-1])
                if item not in out:
                    out.append(item)
        return tuple(out)

    @property
    def name_terms(self) -> str:
        """What the symbol names are searched for (full text, no operator characters): the identifiers' words, or
        for a sentence without identifiers its content words (names are indexed with their camelCase parts)."""
        if not self.identifiers:
            return " ".join(self.words)
        return " ".join(dict.fromkeys(w for ident in self.identifiers for w in _WORD.findall(ident)))

    @property
    def text_query(self) -> str:
        """What a hybrid search's lexical list searches the chunk text for: a sentence without its stop words
        (``STOP_WORDS``: question and code-talk words such as "how", "does", "function", many of which the full-text
        index's own English list keeps, and whose long posting lists cost the most: at 5M chunks, the list's p50/p95
        48/103 ms instead of 57/141), an identifier lookup as written. Nothing left: the text as written."""
        if self.identifier_query:
            return self.text
        kept = [t for t in self.text.split() if "".join(_WORD.findall(t)).lower() not in STOP_WORDS]
        return " ".join(kept) or self.text


def lexical_query(terms: QueryTerms, rows: int) -> str:
    """What the lexical list of a hybrid search over a table of `rows` chunk rows reads: ``text_query``, cut to its
    ``MAX_TEXT_TERMS`` rarest words (``rarest_terms``) from ``LEXICAL_CAP_ROWS`` rows on (an identifier lookup as
    written). Each word of a full-text query reads its posting list, whose length grows with the table: at 5M
    chunks a long question's common words ("value", "option", "line") cost 10-30 ms each, while their BM25 weight
    is the least (the common-terms cut-off of search engines). Measured (``benchmarks/scale.py``'s queries, one
    process, 5M synthetic chunks): hybrid p50/p95 84-86/140-144 ms -> 83-84/113-114. Below the threshold nothing is
    cut: over the question benchmark's projects (2k-20k chunks each) the cut, forced, costs hybrid NDCG@10 0.004
    (0.865 -> 0.861; at 8 words 0.021)."""
    if terms.identifier_query or rows < LEXICAL_CAP_ROWS:
        return terms.text_query
    return rarest_terms(terms.text_query)


def rarest_terms(text: str, most: int | None = None) -> str:
    """`text` with at most `most` (``MAX_TEXT_TERMS``) distinct words, as the full-text index splits them: when it
    has more, the ones least common in code (``semcode.common_terms``; a word not listed there counts as rare), in
    their order; `text` as it is otherwise."""
    most = MAX_TEXT_TERMS if most is None else most
    words = list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))
    if len(words) <= most:
        return text
    from .common_terms import SHARES

    rarest = set(sorted(words, key=lambda w: SHARES.get(stem(w), 0.0))[:most])  # (stable: ties keep their order)
    return " ".join(w for w in words if w in rarest)


def split_words(name: str) -> list[str]:
    """Lower-case parts of a name: ``getHTTPResponse_code`` -> get, http, response, code."""
    out: list[str] = []
    for token in _WORD.findall(name):
        for part in _CAMEL.findall(token):
            out.append(part.lower())
    return out


def stem(word: str) -> str:
    """A light English stem for matching words to names: retry/retries/retried -> retri, parsers -> parser."""
    for suffix, keep in (("ies", 3), ("ied", 3), ("ing", 4), ("ers", 4), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            word = word[: -len(suffix)]
            return word + "i" if suffix in ("ies", "ied") else word
    return word[:-1] + "i" if word.endswith("y") and len(word) > 3 else word  # retry -> retri, as retried


def _is_code_like(token: str) -> bool:
    """An identifier as code writes it: qualified, snake_case, camelCase, PascalCase with a second capital, or
    an all-capitals constant (not a plain English word)."""
    if _QUALIFIER.search(token) and len([p for p in _QUALIFIER.split(token) if p]) > 1:
        return True
    core = token.strip("_")
    if "_" in core:
        return True
    if re.search(r"[a-z][A-Z]", core) or re.search(r"[A-Z]{2,}[a-z]", core):
        return True
    return bool(re.fullmatch(r"[A-Z][A-Z0-9]{2,}", core)) and any(c.isdigit() for c in core)


def analyze(query: str) -> QueryTerms:
    """Read ``query`` once (see the module's docstring)."""
    text = query.strip()
    quoted = tuple(next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text))
    tokens = [m.group(0).strip(".#") for m in _QUALIFIED.finditer(text)]
    tokens = [t for t in tokens if t]
    plain = re.sub(r"[`\"'()\[\]{},;:!?]", " ", text).split()
    single = len(plain) <= 2 and len(tokens) in (1, 2) and all(_QUALIFIED.fullmatch(t.strip("`()")) for t in plain)
    identifiers = [t for t in tokens if _is_code_like(t)]
    for q in quoted:  # `foo` and "foo_bar" name code too
        if _QUALIFIED.fullmatch(q) and q not in identifiers:
            identifiers.append(q)
    if single:
        identifiers = list(dict.fromkeys([*tokens, *identifiers]))
    path_hints = tuple(h for h in _PATH_HINT.findall(text) if not _QUALIFIED.fullmatch(h) or "/" in h)
    words: list[str] = []
    for token in _WORD.findall(text):
        low = token.lower()
        parts = [low, *split_words(token)] if token != low or "_" in token else [low]
        for w in parts:
            if w not in STOP_WORDS and len(w) > 1 and not w.isdigit() and w not in words:
                words.append(w)
    lowered = {w.lower() for w in _WORD.findall(text)}
    intents = frozenset(kind for kind, vocab in INTENTS.items() if lowered & vocab)
    return QueryTerms(
        text=text,
        identifiers=tuple(dict.fromkeys(identifiers)),
        quoted=quoted,
        path_hints=path_hints,
        words=tuple(words),
        intents=intents,
        identifier_query=single and bool(identifiers),
    )
