"""Secrets in a file's text: private keys, cloud credentials, API tokens and high-entropy values assigned to names
that say secret, so a file holding one is never indexed (the index would keep the value, and search hits would carry
it to a client in their previews).

`find_secret(text)` returns the first secret (its kind and 1-based line, never the value) or None. Three kinds of
rule, see ``FAMILIES``:

- Families that secret scanners know, each pattern modelled on gitleaks' default rules (a documented prefix, then
  the length and alphabet the issuer uses). A prefix glued to a name (``KEY_AKIA...``) counts: the edges are "no
  letter or digit", not ``\\b``, since ``_`` is a word character.
- Private keys whatever their wrapping: after each ``-----BEGIN ... PRIVATE KEY-----`` the next lines are unwrapped
  (``_unwrap``: ``\\n`` escapes, quotes, string concatenation and adjacent literals, comment markers ``#``, ``//``,
  `` * ``, ``--``, ``;``, leading whitespace) before the base64 body is looked for, so a key written as Python or
  Java string concatenation, in ``#`` or ``//`` comment lines or in a ``/* * */`` block is found.
- The generic rule (``_Assignment``, as gitleaks' generic-api-key): a value of 20 to 200 characters assigned
  (``=``, ``:``, ``=>``, ``:=``, a setter call, ``#define``) to a name one of whose words says secret (``secret``,
  ``password``, ``passwd``, ``token``, ``api_key``, ``private_key``, ``access_key``, ``client_secret``, ...) and
  none says it is something else (``hash``, ``sha256``, ``checksum``, ``id``, ``url``, ``name``, ``type``,
  ``next_token``, ...), when the value looks random: not a placeholder (``xxx``, ``<...>``, ``${VAR}``,
  ``os.environ[...]``, ``changeme``, ``example``, ``your_...``), not a UUID, not a JWT (test fixtures hold many,
  as before), not made of words (``ACCESS_TOKEN_2``, ``all-MiniLM-L6-v2``: 3/4 of it in runs that are a word and
  an optional number), and of Shannon entropy at least 3.3 bits per character (3.0 for hex). Entropy alone cannot
  tell names from keys at this length (``ThisIsMyPasswordValue`` scores 3.9, a random 20-character base64 value
  4.0), so it only drops repetitive placeholders (``aaaa1111...``, ``0000-0000...``: under 2.6); the thresholds sit
  under what random values score: 99.9% of random 20-character base64 or alphanumeric values score over 3.48, of
  lower-case-and-digit ones over 3.24, and 99% of 20-digit hex values over 2.87. A value without quotes counts only
  where config writes one (``TOKEN=...``, ``password: ...`` alone on its line, ``?api_key=...`` in a URL) and is no
  code name (``module.attr``, or an identifier the text names elsewhere). Over this checkout's .venv and
  node_modules and the Python standard library (48,000 files, 492 MB) it flags 5 files, each holding a real-looking
  token or a fake one for a mock service (moto's, a CI token in transformers' test utilities, a README's example).

Fast: over 10 MB of the Python standard library, one call per file, 40-53 MB/s on two busy cores (58-75 MB/s
before the generic rule and the unwrapping). Every family has one or two anchors, patterns that start with a literal
(``A(?:KIA|SIA|...)``, ``gh[pousr]_``). Python's regex engine finds a literal prefix about as fast as ``str.find``,
and a family's full regex runs only on a text where one of its anchors occurs. The generic rule finds its name words
with ``str.find`` in the lower-cased text (a case-insensitive regex alternation reads 15 MB/s) and tries its
assignment regex only there; a PEM header's window ends at the next header. Adversarial text stays linear (about
2 MB/s for a file that is nothing but ``token: <value>`` lines). (detect-secrets, measured on the same files, read
0.18 MB/s and flagged hex test data.)

Precise: besides the patterns, a value is ignored when its Shannon entropy is under the family's threshold (as in
gitleaks: placeholders such as ``ghp_xxxx...`` or ``T00000000/B00000000/XXXX...``), when it contains ``EXAMPLE``
(documented example keys such as AWS's ``AKIAIOSFODNN7EXAMPLE``; gitleaks allowlists them too) or when it is one of a
few published example or emulator keys (``KNOWN_EXAMPLES``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretFinding:
    """A secret found in a text: what kind and where. Never holds the value."""

    kind: str  # "AWS access key", "private key", ...
    line: int  # 1-based

    @property
    def reason(self) -> str:
        """Why the file is skipped, as shown to the user (kind and line only)."""
        return f"contains a secret ({self.kind}, line {self.line}); {INCLUDE_SECRETS_HINT}"


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


# how a skip message says where the setting is: each front door names it its own way
INCLUDE_SECRETS_HINT = (
    "to index it, pass --include-secrets (semcode index, watch, chunks) or include_secrets=True (Python API)"
)
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
_WORD_RUN = re.compile(r"[A-Za-z]+[0-9]*|[0-9]+")


def _wordish(value: str) -> bool:
    """Whether 3/4 of the letters and digits of `value` are in runs that are a word with an optional number after
    it (``ACCESS_TOKEN_2``, ``myPasswordValue``, ``all-MiniLM-L6-v2``, ``s3cr3t-Key-That-Must-Never-Show``): a name
    or a phrase, not a random value, which mixes digits into its letters (20 random alphanumeric characters have no
    digit between letters in about 3% of cases)."""
    runs = _ALNUM_RUN.findall(value)
    worded = sum(len(run) for run in runs if _WORD_RUN.fullmatch(run))
    return 4 * worded >= 3 * sum(map(len, runs))


@dataclass(frozen=True)
class _Family:
    kind: str
    anchors: tuple[re.Pattern[str], ...]  # each starts with a literal; the regex runs only when one occurs
    regex: re.Pattern[str]  # group "v", when present, is the value (else the whole match)
    min_entropy: float = 3.0  # bits per character of the value
    # where set: where a wrapped value starts (a PEM header); `regex` then matches the unwrapped text after it
    start: re.Pattern[str] | None = None

    def first(self, text: str) -> int | None:
        """The offset of the family's first real secret in `text`, or None."""
        if not any(anchor.search(text) for anchor in self.anchors):
            return None
        if self.start is not None:
            for m in self.start.finditer(text):
                end = text.find("-----BEGIN", m.end(), m.end() + UNWRAP_WINDOW)  # the next key starts its own window
                body = self.regex.match(_unwrap(text[m.end() : end if end != -1 else m.end() + UNWRAP_WINDOW]))
                if body is not None and self._is_secret(body.group("v")) and not _wordish(body.group("v")):
                    return m.start()
            return None
        for m in self.regex.finditer(text):
            value = m.group("v") if "v" in self.regex.groupindex and m.group("v") else m.group(0)
            if self._is_secret(value):
                return m.start()
        return None

    def _is_secret(self, value: str) -> bool:
        if "EXAMPLE" in value.upper() or value in KNOWN_EXAMPLES:
            return False
        return _entropy(value) >= self.min_entropy


def _family(
    kind: str, anchors: str | tuple[str, ...], pattern: str, min_entropy: float = 3.0, start: str | None = None
) -> _Family:
    alternatives = (anchors,) if isinstance(anchors, str) else anchors
    wrapped = re.compile(start) if start is not None else None
    return _Family(kind, tuple(map(re.compile, alternatives)), re.compile(pattern), min_entropy, wrapped)


# ---------------------------------------------------------------------------------------------------------------
# unwrapping: a PEM body written inside string literals or comments, one line of code per line of the key

UNWRAP_WINDOW = 2048  # characters after a PEM header that are unwrapped: its header lines and the body's first line
_ESCAPED_BREAK = re.compile(r"\\+[rn]")  # "\n", "\r\n" (or "\\n" in a string within a string) inside a literal
# the end of one literal and the start of the next on one line: "..." "...", "..." + "...", "...", "...", '...' . '...'
_JOIN = re.compile(r"""["'`][ \t]*(?:\+|&|,|\.\.?|\|\|)?[ \t]*[bBrRuU@]?["'`]""")
# what wraps a line of the key: indentation, comment markers, quotes (with a b/r/u/@ prefix), concatenation or
# continuation operators, a shell echo
_LEAD = re.compile(r"""^(?:\s|#|//|/\*+|\*|--|;|%|!|>|\||<!--|[bBrRuU@]?["'`]|[+&,(.]|(?:echo|printf)\b)+""")
_TRAIL = " \t\r\"'`+&,;.)]\\_"  # and "*/", "-->": stripped in a loop (a regex ending in $ is quadratic)


def _strip_trail(line: str) -> str:
    while True:
        stripped = line.rstrip(_TRAIL).removesuffix("*/").removesuffix("-->")
        if stripped == line:
            return line
        line = stripped


def _unwrap(window: str) -> str:
    """The text of `window` with the wrapping of each line removed (see ``_LEAD`` and ``_TRAIL``), one line per
    line of the key: what a PEM body regex reads as it would read the key in a .pem file. Lines may lose a ``+``
    or ``/`` of the base64 at their edges; the body needs only 40 characters of its first line."""
    lines = _JOIN.sub("\n", _ESCAPED_BREAK.sub("\n", window)).split("\n")
    return "\n".join(_strip_trail(_LEAD.sub("", line)) for line in lines)


# ---------------------------------------------------------------------------------------------------------------
# the generic rule: a high-entropy value assigned to a name that says secret

_NAME_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")  # apiKey -> api, Key; SECRET_KEY -> SECRET, KEY
SECRET_WORDS: frozenset[str] = frozenset(
    {"secret", "secrets", "password", "passwd", "pwd", "passphrase", "token", "apikey", "credential", "credentials"}
)
SECRET_PAIRS: frozenset[tuple[str, str]] = frozenset(
    (word, "key") for word in ("api", "private", "access", "auth", "signing", "encryption", "master", "secret")
)
# a word that says the value is about a secret, not the secret: a digest of it, its id, where it is, its length
NOT_SECRET_WORDS: frozenset[str] = frozenset(
    {
        *("hash", "hashed", "sha", "md", "checksum", "digest", "integrity", "fingerprint", "uuid", "guid", "id"),
        *("url", "uri", "endpoint", "path", "file", "filename", "dir", "name", "type", "kind", "field", "label"),
        *("prefix", "header", "len", "length", "size", "count", "format", "pattern", "regex", "env", "var"),
        *("expiry", "expires", "expiration", "ttl", "timeout", "last", "used", "date", "time", "public"),
        *("next", "continuation", "page", "pagination", "cursor"),  # a page of results, not a credential
    }
)
# str.find in the lower-cased text: a case-insensitive regex alternation reads about 15 MB/s
_ANCHOR_WORDS = ("secret", "passw", "pwd", "passphrase", "token", "credential", "key")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NAME_TAIL = re.compile(r"[\w.-]*")
_NAME_REACH = 80  # characters a name may reach before its anchor word
# possessive ({20,200}+): a run that ends in the wrong character fails at once, not after 180 shorter tries
_QUOTED = r"""(?P<q>["'`])(?P<qv>[^\s"'`\\<>{}()\[\],;]{20,200}+)(?P=q)"""
_BARE = r"""(?P<bv>[\w+/=.~!@#$%^*?-]{20,200}+)(?=[\s;,)\]}&"'`]|\Z)"""
# what follows the name: an assignment, then the value
_ASSIGN = re.compile(
    r"""(?:["']\]?[ \t]*(?:,|=>|:(?![:=])|=(?![=~>]))"""  # a quoted key: "token": ..., 'token' => ..., ("token", ...)
    r"""|\]?[ \t]*(?:=>|:=|=(?![=~>])|:(?![:=])(?:[ \t]*[\w&*\[\]<>|., ]{1,40}?=(?![=>]))?)"""  # token: str = ...
    r"""|(?P<call>\(|[ \t]+(?=["'`])))"""  # setToken("..."), #define TOKEN "...", (setq token "...")
    rf"""[ \t]*(?:{_QUOTED}|{_BARE})"""
)
SETTER_WORDS: frozenset[str] = frozenset({"set", "with", "use", *SECRET_WORDS, *(word for word, _ in SECRET_PAIRS)})
# an unquoted value's line: nothing before the name but indentation, a YAML "- " or a shell/Dockerfile keyword,
# nothing after the value but a comment
_CONFIG_LEAD = re.compile(
    r"[ \t]*(?:(?:export|ENV|ARG|set|setenv|declare|local|readonly)[ \t]+(?:-\w+[ \t]+)?|-[ \t]+)?[\"']?"
)
_CONFIG_END = re.compile(r"[ \t]*(?:[#;][^\n]*)?(?:\r?\n|\Z)")
_DOTTED_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+")  # module.attr: code
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")  # code when the text names it elsewhere (imports or defines it)
# in a value (lower-cased): a placeholder, a fixture or a sequence typed by hand, not a generated secret
PLACEHOLDER_WORDS = (
    *("example", "sample", "dummy", "fake", "placeholder", "changeme", "change_me", "your", "xxxx", "redacted"),
    *("replace", "insert", "todo", "test", "passw", "secret", "token", "0123456", "123456789", "abcdefg"),
)
_REFERENCE_OR_DATE = re.compile(r"[$%]|[0-9]{4}-[0-9]{2}-[0-9]{2}")  # $VAR, %VAR%, an ISO date (matched at 0)
_UUID = re.compile(  # searched: an id with a suffix ("<uuid>/.default") is an id too
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_HEX = re.compile(r"[0-9a-fA-F]+")
GENERIC_MIN_ENTROPY = 3.3  # bits per character; see the module docstring
GENERIC_MIN_ENTROPY_HEX = 3.0


def _secret_name(name: str) -> bool:
    words = [word.lower() for word in _NAME_WORD.findall(name)]
    if any(word in NOT_SECRET_WORDS for word in words):
        return False
    return any(word in SECRET_WORDS for word in words) or any(
        pair in SECRET_PAIRS for pair in itertools.pairwise(words)
    )


def _secret_value(value: str) -> bool:
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS) or _REFERENCE_OR_DATE.match(value):
        return False
    if value.startswith("eyJ") or ("-" in value and _UUID.search(value)) or value in KNOWN_EXAMPLES:
        return False
    if _wordish(value):
        return False
    return _entropy(value) >= (GENERIC_MIN_ENTROPY_HEX if _HEX.fullmatch(value) else GENERIC_MIN_ENTROPY)


def _setter(name: str) -> bool:
    """Whether a call of `name` takes a secret (``setPassword``, ``withToken``, ``.apiKey``), not looks one up with
    what it is given (``getToken('<scope>')``, ``verify_password``)."""
    words = _NAME_WORD.findall(name.rsplit(".", 1)[-1])
    return bool(words) and words[0].lower() in SETTER_WORDS


def _bare_in_config(text: str, start: int, m: re.Match[str]) -> bool:
    """Whether an unquoted value is a config value (``TOKEN=...`` or ``password: ...`` alone on its line, a URL's
    ``?api_key=...``), not code (``token: Type,``, ``key = module.attr``, ``TOKEN = Name`` defined in the text)."""
    value = m.group("bv")
    if _DOTTED_NAME.fullmatch(value):
        return False
    if _IDENTIFIER.fullmatch(value) and (text.find(value) < m.start("bv") or text.find(value, m.end()) != -1):
        return False
    if text[start - 1 : start] in ("?", "&"):
        return True
    line_start = text.rfind("\n", 0, start) + 1
    return bool(_CONFIG_LEAD.fullmatch(text, line_start, start)) and bool(_CONFIG_END.match(text, m.end()))


def _assigned_secret(text: str, at: int, end: int) -> int | None:
    """The offset of the value when the name around `text[at:end]` is assigned a secret, else None."""
    m = _ASSIGN.match(text, end)
    if m is None:
        return None
    start, reach = at, max(0, at - _NAME_REACH)
    while start > reach and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
        start -= 1
    name, quoted, bare = text[start:end], m.group("qv"), m.group("bv")
    if m.group("call") is not None and (quoted is None or not _setter(name)):
        return None
    value = quoted if quoted is not None else bare
    if value is None or not _secret_name(name) or not _secret_value(value):
        return None
    if bare is not None and not _bare_in_config(text, start, m):
        return None
    return m.start("qv" if quoted is not None else "bv")


@dataclass(frozen=True)
class _Assignment:
    """The generic rule (see the module docstring): anchored on the name words, found with ``str.find``."""

    kind: str = "high-entropy secret"

    def first(self, text: str) -> int | None:
        """The offset of the first secret value assigned in `text`, or None."""
        lowered = text.lower()
        if len(lowered) != len(text):  # "İ" lower-cases to two characters: keep the offsets (slower, and rare)
            lowered = text.translate(_ASCII_LOWER)
        found = (self._first_after(text, lowered, word) for word in _ANCHOR_WORDS)
        return min((at for at in found if at is not None), default=None)

    @staticmethod
    def _first_after(text: str, lowered: str, word: str) -> int | None:
        at = lowered.find(word)
        while at != -1:
            tail = _NAME_TAIL.match(text, at)
            end = tail.end() if tail is not None else at + len(word)
            found = _assigned_secret(text, at, end)
            if found is not None:
                return found
            at = lowered.find(word, max(end, at + 1))
        return None


# ---------------------------------------------------------------------------------------------------------------
# the families

_B64 = r"[A-Za-z0-9+/]"
_NL = r"(?:\s|\\[nr])"  # a line break, also as written inside a string literal (a key in JSON or in code)
_L = r"(?<![A-Za-z0-9])"  # a token's left edge: not \b, so KEY_AKIA... counts ("_" is a word character)
_R = r"(?![A-Za-z0-9])"

FAMILIES: tuple[_Family | _Assignment, ...] = (
    _family(
        "private key",
        "-----BEGIN",
        # after the header (found in the text) and unwrapped: the rest of its line (what closes the header's
        # literal, `" >> key.pem`), optional header lines (Proc-Type, DEK-Info, Version, Comment), then the base64
        # body: code that only names the markers ("-----BEGIN RSA PRIVATE KEY-----" in a parser) has no body
        rf"(?:[^\n]*(?=\n))?\s*(?:[A-Za-z][A-Za-z-]*:[^\n]{{0,200}}\n+){{0,5}}(?P<v>{_B64}{{40,}})",
        start=r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
    ),
    _family(
        "AWS access key",
        "A(?:KIA|SIA|BIA|CCA|3T)",
        rf"{_L}(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{{16}}{_R}",
    ),
    _family(
        "AWS secret access key",
        ("ecret", "ECRET"),
        # aws_secret_access_key, SecretAccessKey, aws_secret, AWS_SECRET_KEY, or a bare `secret` (a boto3 call's
        # argument, a config key), holding AWS's 40-character value
        rf"(?i:{_L}aws_?secret(?:_?access)?(?:_?key)?|secret_?access_?key|(?<![\w.-])secret(?:_?key)?)"
        rf"[\"']?\s*(?:=|:|=>|:=|,)\s*[\"']?(?P<v>{_B64}{{40}})(?![A-Za-z0-9+/=])",
        min_entropy=3.5,
    ),
    _family(
        "GitHub token",
        ("gh[pousr]_", "github_pat_"),
        rf"{_L}(?:gh[pousr]_[0-9a-zA-Z]{{36}}|github_pat_\w{{82}}){_R}",
    ),
    _family(
        "GitLab token",
        "gl(?:pat|ptt|dt|rt|oas|cbt)-",
        rf"{_L}gl(?:pat|ptt|dt|rt|oas|cbt)-[\w-]{{20,}}",
    ),
    _family(
        "Slack token",
        ("xox", r"hooks\.slack\.com"),
        rf"{_L}xox[abposer]-(?:\d+-)*[0-9a-zA-Z]{{8,}}[0-9a-zA-Z-]*"
        r"|hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v>[A-Za-z0-9+/]{43,56})",
    ),
    _family("Stripe key", "k_(?:live|prod)_", rf"{_L}[sr]k_(?:live|prod)_[0-9a-zA-Z]{{20,99}}{_R}"),
    _family("Google API key", "AIza", rf"{_L}AIza[\w-]{{35}}(?![\w-])", min_entropy=4.0),
    _family("Google OAuth client secret", "GOCSPX-", rf"{_L}GOCSPX-[\w-]{{28}}(?![\w-])"),
    _family(
        "OpenAI API key",
        "T3BlbkFJ",
        rf"{_L}sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{{20,74}}T3BlbkFJ[A-Za-z0-9_-]{{20,74}}",
    ),
    _family("Anthropic API key", "sk-ant-", rf"{_L}sk-ant-[a-z]+\d*-[\w-]{{80,}}"),
    _family("npm token", "npm_", rf"{_L}npm_[A-Za-z0-9]{{36}}{_R}"),
    _family("PyPI token", "pypi-AgE", rf"{_L}pypi-AgEIcHlwaS5vcmc[\w-]{{50,}}"),
    _family("Azure storage key", "AccountKey=", rf"AccountKey=(?P<v>{_B64}{{86}}==)"),
    _family("Twilio API key", "SK", rf"{_L}SK[0-9a-fA-F]{{32}}{_R}"),
    _family("SendGrid API key", r"SG\.", rf"{_L}SG\.[\w-]{{22}}\.[\w-]{{43}}(?![\w-])"),
    _family("Hugging Face token", "hf_", rf"{_L}hf_[A-Za-z]{{34}}{_R}"),
    _family("Shopify token", "shp(?:at|ca|pa|ss)_", rf"{_L}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{{32}}{_R}"),
    _family("DigitalOcean token", "_v1_", rf"{_L}do[opr]_v1_[a-f0-9]{{64}}{_R}"),
    _family("age secret key", "AGE-SECRET-KEY-1", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    _Assignment(),  # last: on a line that a named family also matches, the named kind is reported
)

# published example and emulator keys that are not secrets (besides values containing "EXAMPLE")
KNOWN_EXAMPLES: frozenset[str] = frozenset(
    {
        # Azure Storage emulator (Azurite) account key, in Microsoft's documentation
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        # allowlisted by gitleaks' gcp-api-key rule
        "AIzaSyabcdefghijklmnopqrstuvwxyz1234567",
        "AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs",
    }
)


def find_secret(text: str) -> SecretFinding | None:
    """The first secret in `text` (the one on the earliest line; on one line, the first of ``FAMILIES``), or None.
    Cheap on ordinary code: a family's regex runs only when its anchor occurs."""
    best: tuple[int, int, str] | None = None
    for order, family in enumerate(FAMILIES):
        at = family.first(text)
        if at is None:
            continue
        found = (text.count("\n", 0, at) + 1, order, family.kind)
        if best is None or found < best:
            best = found
    return None if best is None else SecretFinding(best[2], best[0])
