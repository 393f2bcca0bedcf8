"""Tests for indexer/secrets.py: one table of texts that hold a secret of each family, one of near-misses that must
not match (ordinary code, hashes, UUIDs, base64 data, placeholders, documented example keys).

The secrets are built at test time from seeded random characters, so this file holds no literal a scanner (or
semcode indexing its own repository) would flag.
"""

from __future__ import annotations

import random
import string
import uuid

import pytest

from indexer.secrets import FAMILIES, SecretFinding, find_secret

UP, LOW, DIG = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UP + LOW + DIG
WORD = ALNUM + "_-"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


def tok(alphabet: str, n: int) -> str:
    rng = random.Random(f"{alphabet}/{n}")
    return "".join(rng.choice(alphabet) for _ in range(n))


def pem(kind: str, headers: str = "", newline: str = "\n") -> str:
    body = newline.join(tok(B64, 64)[i:] + tok(B64, 70)[: i + 1] for i in range(3))
    return f"-----BEGIN {kind}-----{newline}{headers}{body}{newline}-----END {kind}-----"


# (kind, text, line of the secret)
SECRETS: list[tuple[str, str, int]] = [
    ("private key", f'"""Test fixture."""\nKEY = """\n{pem("RSA PRIVATE KEY")}\n"""\n', 3),
    ("private key", f"# deploy key\n\n```\n{pem('OPENSSH PRIVATE KEY')}\n```\n", 4),
    ("private key", pem("PRIVATE KEY"), 1),
    ("private key", pem("EC PRIVATE KEY", "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C3D\n\n"), 1),
    ("private key", pem("PGP PRIVATE KEY BLOCK", "Version: GnuPG v2\nComment: test\n\n"), 1),
    # a service account's JSON key file: the PEM inside a JSON string, line breaks written as \n
    ("private key", '{\n  "type": "service_account",\n  "private_key": "' + pem("PRIVATE KEY", "", "\\n") + '"}', 3),
    ("AWS access key", f'import boto3\n\ns3 = boto3.client("s3", aws_access_key_id="AKIA{tok(UP + "234567", 16)}")', 3),
    ("AWS access key", f"[default]\naws_access_key_id = ASIA{tok(UP + DIG, 16)}\n", 2),
    ("AWS secret access key", f"AWS_SECRET_ACCESS_KEY = '{tok(B64, 40)}'\n", 1),
    ("AWS secret access key", f'{{"Credentials": {{\n  "SecretAccessKey": "{tok(B64, 40)}"}}}}', 2),
    ("AWS secret access key", f"aws_secret_key: {tok(B64, 40)}\n", 1),
    ("GitHub token", f'TOKEN = "ghp_{tok(ALNUM, 36)}"', 1),
    ("GitHub token", f"export GH=gho_{tok(ALNUM, 36)}", 1),
    ("GitHub token", f"token = 'github_pat_{tok(ALNUM + '_', 82)}'", 1),
    ("GitLab token", f"GITLAB_TOKEN=glpat-{tok(WORD, 20)}\n", 1),
    ("Slack token", f'slack = "xoxb-{tok(DIG, 12)}-{tok(DIG, 13)}-{tok(ALNUM, 24)}"', 1),
    ("Slack token", f"https://hooks.slack.com/services/T{tok(UP + DIG, 8)}/B{tok(UP + DIG, 10)}/{tok(ALNUM, 24)}", 1),
    ("Stripe key", f'stripe.api_key = "sk_live_{tok(ALNUM, 24)}"', 1),
    ("Stripe key", f'key = "rk_live_{tok(ALNUM, 40)}"', 1),
    ("Google API key", f"const key = 'AIza{tok(WORD, 35)}';", 1),
    ("Google OAuth client secret", f'"client_secret": "GOCSPX-{tok(WORD, 28)}"', 1),
    ("OpenAI API key", f'OPENAI_API_KEY = "sk-proj-{tok(WORD, 74)}T3BlbkFJ{tok(WORD, 74)}"', 1),
    ("OpenAI API key", f'openai.api_key = "sk-{tok(ALNUM, 20)}T3BlbkFJ{tok(ALNUM, 20)}"', 1),
    ("Anthropic API key", f'client = Anthropic(api_key="sk-ant-api03-{tok(WORD, 93)}AA")', 1),
    ("npm token", f"//registry.npmjs.org/:_authToken=npm_{tok(ALNUM, 36)}\n", 1),
    ("PyPI token", f"[pypi]\npassword = pypi-AgEIcHlwaS5vcmc{tok(WORD, 120)}\n", 2),
    ("Azure storage key", f"conn = 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={tok(B64, 86)}==;'", 1),
    ("Twilio API key", f'TWILIO_API_KEY = "SK{tok(HEX, 32)}"', 1),
    ("SendGrid API key", f'sg = SendGridAPIClient("SG.{tok(WORD, 22)}.{tok(WORD, 43)}")', 1),
    ("Hugging Face token", f'login(token="hf_{tok(UP + LOW, 34)}")', 1),
    ("Shopify token", f"SHOPIFY = 'shpat_{tok(HEX, 32)}'", 1),
    ("DigitalOcean token", f"DO_TOKEN=dop_v1_{tok(HEX, 64)}", 1),
    ("age secret key", f"AGE-SECRET-KEY-1{tok('QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 58)}", 1),
]

NEAR_MISSES: list[tuple[str, str]] = [
    ("ordinary code", "def private_key(self):\n    return self._load('secret_access_key', token=None)\n"),
    ("PEM markers in a parser", 'BEGIN = "-----BEGIN RSA PRIVATE KEY-----"\nEND = "-----END RSA PRIVATE KEY-----"\n'),
    ("PEM markers around code", "if line == '-----BEGIN PRIVATE KEY-----':\n    body = read(f)  # to the END line\n"),
    ("placeholder PEM", "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n"),
    ("public key", pem("PUBLIC KEY")),
    ("certificate", pem("CERTIFICATE")),
    ("SHA-1 and SHA-256 digests", f'sha1 = "{tok(HEX, 40)}"\nsha256 = "{tok(HEX, 64)}"\n'),
    ("UUIDs", f"ids = ['{uuid.UUID(int=random.Random(1).getrandbits(128))}', '{uuid.UUID(int=7)}']\n"),
    ("base64 test data", f'DATA = b"{tok(B64, 400)}=="\n'),
    ("upper-case identifiers", "ASIA_PACIFIC_REGIONS = TASK_SKIP_MASK = AKIA_PREFIX_LENGTH = 4\n"),
    ("names with token prefixes", "from huggingface_hub import hf_hub_download\nnpm_config_cache = sk_live_mode = 1\n"),
    ("AWS documented example key id", 'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"\n'),
    ("AWS documented example secret", 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'),
    ("Slack documented webhook", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n"),
    ("placeholder tokens", f"GH = 'ghp_{'x' * 36}'\nGL = 'glpat-{'x' * 20}'\nSTRIPE = 'sk_live_{'0' * 24}'\n"),
    (
        "Azure storage emulator key",
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
    ),
    ("Stripe test key (not flagged)", f'stripe.api_key = "sk_test_{tok(ALNUM, 24)}"\n'),
    ("JWT (not flagged)", f"token = 'eyJ{tok(ALNUM, 30)}.eyJ{tok(ALNUM, 40)}.{tok(WORD, 43)}'\n"),
    ("too short", f"key = 'ghp_{tok(ALNUM, 20)}'\nid = 'AKIA{tok(UP, 10)}'\n"),
    ("hex after SK in a longer word", f"MASK{tok(HEX, 32)} = 1\n"),
]


@pytest.mark.parametrize(("kind", "text", "line"), SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)])
def test_each_family_found_with_kind_and_line(kind: str, text: str, line: int) -> None:
    assert find_secret(text) == SecretFinding(kind, line)


@pytest.mark.parametrize(("what", "text"), NEAR_MISSES, ids=[w for w, _ in NEAR_MISSES])
def test_near_misses_are_not_secrets(what: str, text: str) -> None:
    assert find_secret(text) is None


def test_every_family_has_a_positive_case() -> None:
    assert {f.kind for f in FAMILIES} == {kind for kind, _, _ in SECRETS}


def test_reason_names_kind_and_line_never_the_value() -> None:
    for kind, text, line in SECRETS:
        found = find_secret(text)
        assert found is not None
        assert found.reason == f"contains a secret ({kind}, line {line}); set include_secrets to index it"
        longest_run = max(text.replace('"', " ").replace("'", " ").split(), key=len)
        assert longest_run not in found.reason


def test_first_secret_in_the_text_wins() -> None:
    aws, gh = SECRETS[6][1], SECRETS[11][1]
    assert find_secret(f"{gh}\n\n{aws}") == SecretFinding("GitHub token", 1)
    assert find_secret(f"x = 1\n{aws}\n{gh}") == SecretFinding("AWS access key", 4)


def test_a_real_key_after_an_example_one_is_found() -> None:
    text = f'example = "AKIAIOSFODNN7EXAMPLE"\nreal = "AKIA{tok(UP + "234567", 16)}"\n'
    assert find_secret(text) == SecretFinding("AWS access key", 2)


def test_empty_and_huge_plain_texts() -> None:
    assert find_secret("") is None
    assert find_secret("x = 1\n" * 200_000) is None
