"""Secrets in a file's text: private keys, cloud credentials and API tokens, so a file holding one is never indexed
(the index would keep the value, and search hits would carry it to a client in their previews).

`find_secret(text)` returns the first secret (its kind and 1-based line, never the value) or None. The families are
those secret scanners know, each pattern modelled on gitleaks' default rules (a documented prefix, then the length
and alphabet the issuer uses); see ``FAMILIES``. Deliberately left out: "generic" rules (a high-entropy string
assigned to a name such as ``token``), JWTs and password assignments, which flag hashes, test fixtures and ordinary
code far too often for a tool that would then hide those files from search.

Fast (about 40 MB/s, 30,000 small files/s on two busy cores): every family has one or two anchors, patterns that
start with a literal (``A(?:KIA|SIA|...)``, ``gh[pousr]_``). Python's regex engine finds a literal prefix about as
fast as ``str.find``, so ordinary code costs 23 such scans in all, and a family's full regex runs only on a text
where one of its anchors occurs. (detect-secrets, measured on the same files, read 0.18 MB/s and flagged hex test
data.)

Precise: besides the patterns, a value is ignored when its Shannon entropy is under the family's threshold (as in
gitleaks: placeholders such as ``ghp_xxxx...`` or ``T00000000/B00000000/XXXX...``), when it contains ``EXAMPLE``
(documented example keys such as AWS's ``AKIAIOSFODNN7EXAMPLE``; gitleaks allowlists them too) or when it is one of a
few published example or emulator keys (``KNOWN_EXAMPLES``).
"""

from __future__ import annotations

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
        return f"contains a secret ({self.kind}, line {self.line}); set include_secrets to index it"


@dataclass(frozen=True)
class _Family:
    kind: str
    anchors: tuple[re.Pattern[str], ...]  # each starts with a literal; the regex runs only when one occurs
    regex: re.Pattern[str]  # group "v", when present, is the value (else the whole match)
    min_entropy: float = 3.0  # bits per character of the value


def _family(kind: str, anchors: str | tuple[str, ...], pattern: str, min_entropy: float = 3.0) -> _Family:
    alternatives = (anchors,) if isinstance(anchors, str) else anchors
    return _Family(kind, tuple(map(re.compile, alternatives)), re.compile(pattern), min_entropy)


_B64 = r"[A-Za-z0-9+/]"
_NL = r"(?:\s|\\[nr])"  # a line break, also as written inside a string literal (a key in JSON or in code)

FAMILIES: tuple[_Family, ...] = (
    _family(
        "private key",
        "PRIVATE KEY",
        # the header, optional header lines (Proc-Type, DEK-Info, Version, Comment), then the base64 body: code
        # that only names the markers ("-----BEGIN RSA PRIVATE KEY-----" in a parser) has no body after them
        rf"-----BEGIN[ A-Z0-9_-]{{0,100}}PRIVATE KEY(?: BLOCK)?-----{_NL}*"
        rf"(?:[A-Za-z][A-Za-z-]*:[^\n\\]{{0,200}}{_NL}+){{0,5}}(?P<v>{_B64}{{40,}})",
    ),
    _family(
        "AWS access key",
        "A(?:KIA|SIA|BIA|CCA|3T)",
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
    ),
    _family(
        "AWS secret access key",
        ("ecret", "ECRET"),
        rf"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?\s*(?:=|:|=>|:=|,)\s*[\"']?"
        rf"(?P<v>{_B64}{{40}})(?![A-Za-z0-9+/=])",
        min_entropy=3.5,
    ),
    _family(
        "GitHub token",
        ("gh[pousr]_", "github_pat_"),
        r"\b(?:gh[pousr]_[0-9a-zA-Z]{36}|github_pat_\w{82})\b",
    ),
    _family(
        "GitLab token",
        "gl(?:pat|ptt|dt|rt|oas|cbt)-",
        r"\bgl(?:pat|ptt|dt|rt|oas|cbt)-[\w-]{20,}",
    ),
    _family(
        "Slack token",
        ("xox", r"hooks\.slack\.com"),
        r"\bxox[abposer]-(?:\d+-)*[0-9a-zA-Z]{8,}[0-9a-zA-Z-]*"
        r"|hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v>[A-Za-z0-9+/]{43,56})",
    ),
    _family("Stripe key", "k_(?:live|prod)_", r"\b[sr]k_(?:live|prod)_[0-9a-zA-Z]{20,99}\b"),
    _family("Google API key", "AIza", r"\bAIza[\w-]{35}(?![\w-])", min_entropy=4.0),
    _family("Google OAuth client secret", "GOCSPX-", r"\bGOCSPX-[\w-]{28}(?![\w-])"),
    _family(
        "OpenAI API key",
        "T3BlbkFJ",
        r"\bsk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,74}T3BlbkFJ[A-Za-z0-9_-]{20,74}",
    ),
    _family("Anthropic API key", "sk-ant-", r"\bsk-ant-[a-z]+\d*-[\w-]{80,}"),
    _family("npm token", "npm_", r"\bnpm_[A-Za-z0-9]{36}\b"),
    _family("PyPI token", "pypi-AgE", r"\bpypi-AgEIcHlwaS5vcmc[\w-]{50,}"),
    _family("Azure storage key", "AccountKey=", rf"AccountKey=(?P<v>{_B64}{{86}}==)"),
    _family("Twilio API key", "SK", r"\bSK[0-9a-fA-F]{32}\b"),
    _family("SendGrid API key", r"SG\.", r"\bSG\.[\w-]{22}\.[\w-]{43}(?![\w-])"),
    _family("Hugging Face token", "hf_", r"\bhf_[A-Za-z]{34}\b"),
    _family("Shopify token", "shp(?:at|ca|pa|ss)_", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    _family("DigitalOcean token", "_v1_", r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    _family("age secret key", "AGE-SECRET-KEY-1", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
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


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _is_secret(value: str, family: _Family) -> bool:
    if "EXAMPLE" in value.upper() or value in KNOWN_EXAMPLES:
        return False
    return _entropy(value) >= family.min_entropy


def _first(text: str, family: _Family) -> int | None:
    """The offset of the family's first real secret in `text`, or None."""
    for m in family.regex.finditer(text):
        value = m.group("v") if "v" in family.regex.groupindex and m.group("v") else m.group(0)
        if _is_secret(value, family):
            return m.start()
    return None


def find_secret(text: str) -> SecretFinding | None:
    """The first secret in `text` (the earliest in the text of those found), or None. Cheap on ordinary code: a
    family's regex runs only when its anchor occurs."""
    best: tuple[int, str] | None = None
    for family in FAMILIES:
        if not any(anchor.search(text) for anchor in family.anchors):
            continue
        at = _first(text, family)
        if at is not None and (best is None or at < best[0]):
            best = (at, family.kind)
    if best is None:
        return None
    return SecretFinding(best[1], text.count("\n", 0, best[0]) + 1)
