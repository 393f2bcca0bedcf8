"""Tests for indexer/secrets.py: one table of texts that hold a secret of each family, one of near-misses that must
not match (ordinary code, hashes, UUIDs, base64 data, placeholders, documented example keys); then a corpus of
secrets in the shapes code wraps them in (a private key in string literals or comments, in a dozen languages; AWS keys
under other names; generic high-entropy values assigned to secret names), one of ordinary code that must not be
flagged, and the read path and `semcode chunks --json` on a file of each shape: skipped, and no value printed.

The secrets are built at test time from seeded random characters, so this file holds no literal a scanner (or
semcode indexing its own repository) would flag.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from indexer.read import read_source
from indexer.secrets import FAMILIES, INCLUDE_SECRETS_HINT, SecretFinding, find_secret
from indexer.types import Skip

ROOT = Path(__file__).resolve().parent.parent

UP, LOW, DIG = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UP + LOW + DIG
WORD = ALNUM + "_-"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


def tok(alphabet: str, n: int, salt: str = "") -> str:
    rng = random.Random(f"{alphabet}/{n}{salt}")
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
    assert {f.kind for f in FAMILIES} == {kind for kind, _, _ in SECRETS} | {shape.kind for shape in SHAPES}


def test_reason_names_kind_and_line_never_the_value() -> None:
    for kind, text, line in SECRETS:
        found = find_secret(text)
        assert found is not None
        assert found.reason == f"contains a secret ({kind}, line {line}); {INCLUDE_SECRETS_HINT}"
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


# ---------------------------------------------------------------------------------------------------------------
# secrets in the shapes code wraps them in


@dataclass(frozen=True)
class Shape:
    language: str
    file: str  # its name in the end-to-end tests
    kind: str
    text: str
    line: int  # of the secret (a private key: its BEGIN line)
    value: str  # the secret's random material: never in a reason or an output


BODY = [tok(B64, 64, f"body{i}") for i in range(3)]  # a private key's base64 lines


def pem_as(template: str, head: str = "", tail: str = "", kind: str = "PRIVATE KEY") -> str:
    """A private key with each of its lines written as `template` ("@" marks the line), between `head` and `tail`."""
    lines = [f"-----BEGIN {kind}-----", *BODY, f"-----END {kind}-----"]
    return head + "\n".join(template.replace("@", line) for line in lines) + tail


def key(language: str, file: str, text: str, line: int, kind: str = "private key") -> Shape:
    return Shape(language, file, kind, text, line, BODY[0])


def generic(language: str, file: str, before: str, value: str, after: str = "", line: int = 1) -> Shape:
    """A high-entropy `value` assigned in the shape `before` + value + `after`."""
    return Shape(language, file, "high-entropy secret", before + value + after, line, value)


AWS_40 = tok(B64, 40, "aws")
AWS_ID = "AKIA" + tok(UP + "234567", 16, "glued")
PY_HEAD = '"""Fixture."""\n\n'

SHAPES: list[Shape] = [
    # a private key, wrapped
    key("python", "adjacent.py", pem_as('    "@\\n"', "KEY = (\n", "\n)\n"), 2),
    key("python", "plus.py", pem_as('    "@\\n" + \\\\', "KEY = \\\\\n", '\n    ""\n'), 2),
    key("python", "comment.py", pem_as("# @", PY_HEAD), 3),
    key("python", "one_line_list.py", "LINES = [" + pem_as('"@"').replace("\n", ", ") + "]\n", 1),
    key("python", "bytes.py", pem_as("    b'@\\n'", "KEY = (\n", "\n)\n", "EC PRIVATE KEY"), 2),
    key("javascript", "plus.js", pem_as('  "@\\n" +', "const key =\n", '\n  "";\n'), 2),
    key("javascript", "comment.js", pem_as("// @", "function f() {}\n"), 2),
    key("javascript", "jsdoc.js", pem_as(" * @", "/**\n * A test key:\n", "\n */\nexport {};\n"), 3),
    key("typescript", "template.ts", pem_as("@", "export const KEY = `", "`;\n"), 1),
    key("typescript", "indented.ts", pem_as("    @", "export const KEY = `\n", "\n`;\n", "RSA PRIVATE KEY"), 2),
    key("go", "plus.go", pem_as('\t"@\\n" +', 'package keys\n\nconst key = "" +\n', '\n\t""\n'), 4),
    key("go", "raw.go", pem_as("@", "package keys\n\nvar key = `", "`\n"), 3),
    key(
        "java",
        "leading_plus.java",
        pem_as('      + "@\\n"', 'class K {\n  static final String KEY = ""\n', ";\n}\n"),
        3,
    ),
    key("java", "block.java", pem_as(" * @", "/*\n", "\n */\nclass K {}\n"), 2),
    key("c", "adjacent.c", pem_as('    "@\\n"', "static const char *key =\n", ";\n"), 2),
    key("c", "line_comment.c", pem_as("// @", "#include <stdio.h>\n\n"), 3),
    key("c", "continued.c", pem_as("@\\n\\\\", 'static const char *key = "', '";\n', "OPENSSH PRIVATE KEY"), 1),
    key("ruby", "continued.rb", pem_as('  "@\\n" \\\\', "KEY = \\\\\n", '\n  ""\n'), 2),
    key("ruby", "comment.rb", pem_as("# @", "class Deploy; end\n"), 2),
    key("php", "dot.php", pem_as('    . "@\\n"', '<?php\n$key = ""\n', ";\n"), 3),
    key("rust", "concat.rs", pem_as('    "@\\n",', "const KEY: &str = concat!(\n", "\n);\n"), 2),
    key("lua", "dots.lua", pem_as('  "@\\n" ..', "local key =\n", '\n  ""\n'), 2),
    key("sql", "comment.sql", pem_as("-- @", "SELECT 1;\n"), 2),
    key("ini", "comment.ini", pem_as("; @", "[ssl]\n"), 2),
    key("bash", "echo.sh", pem_as('echo "@" >> "$HOME/key"', "#!/bin/sh\n"), 2),
    key("yaml", "block.yaml", pem_as("    @", "tls:\n  key: |\n"), 3),
    key("markdown", "quote.md", pem_as("> @", "# Deploy\n\n"), 3),
    key("json", "escaped.json", '{\n  "key": "' + pem_as("@\\n") + '"\n}\n', 2),
    # AWS keys under more names, and glued to a name
    Shape("python", "aws_secret.py", "AWS secret access key", f'aws_secret = "{AWS_40}"\n', 1, AWS_40),
    Shape("javascript", "aws.js", "AWS secret access key", f"const AWS_SECRET = '{AWS_40}';\n", 1, AWS_40),
    Shape("ruby", "aws.rb", "AWS secret access key", f'# boto\nsecret = "{AWS_40}"\n', 2, AWS_40),
    Shape(
        "go", "aws.go", "AWS secret access key", f'package a\n\nvar c = C{{SecretAccessKey: "{AWS_40}"}}\n', 3, AWS_40
    ),
    Shape("yaml", "aws.yaml", "AWS access key", f"access: KEY_{AWS_ID}\n", 1, AWS_ID),
    Shape("bash", "aws.sh", "AWS access key", f"export AWS_KEY_ID_{AWS_ID}_OLD=1\n", 1, AWS_ID),
    # a high-entropy value assigned to a secret name
    generic("python", "password.py", 'password = "', tok(ALNUM, 24, "py1"), '"\n'),
    generic("python", "typed.py", "API_TOKEN: str = '", tok(WORD, 40, "py2"), "'\n"),
    generic("python", "kwarg.py", 'client = Client(client_secret="', tok(HEX, 40, "py3"), '")\n'),
    generic("python", "django.py", 'SECRET_KEY = "django-insecure-', tok(LOW + DIG + "!@#%^&*-_=+", 50, "dj"), '"\n'),
    generic("javascript", "headers.js", 'fetch(u, { headers: { "X-Api-Key": "', tok(ALNUM, 32, "js1"), '" } });\n'),
    generic("javascript", "const.js", "const apiKey = '", tok(ALNUM, 32, "js2"), "';\n"),
    generic(
        "typescript",
        "field.ts",
        'class A {\n  private readonly clientSecret: string = "',
        tok(B64, 30, "ts"),
        '";\n}\n',
        2,
    ),
    generic("go", "short_decl.go", 'package a\n\nfunc f() {\n\tapiKey := "', tok(ALNUM, 28, "go1"), '"\n}\n', 4),
    generic("go", "struct.go", 'package a\n\nvar c = Config{\n\tPassword: "', tok(WORD, 26, "go2"), '",\n}\n', 4),
    generic(
        "java",
        "final.java",
        'class A {\n  private static final String API_KEY = "',
        tok(ALNUM, 36, "jv1"),
        '";\n}\n',
        2,
    ),
    generic("java", "setter.java", 'class A {{ ds.setPassword("', tok(ALNUM + "!#%", 22, "jv2"), '"); }}\n'),
    generic("ruby", "attr.rb", "config.secret_token = '", tok(HEX, 64, "rb1"), "'\n"),
    generic("ruby", "rocket.rb", '{ :password => "', tok(ALNUM, 24, "rb2"), '" }\n'),
    generic("yaml", "bare.yaml", "database:\n  password: ", tok(ALNUM, 24, "ym1"), "\n", 2),
    generic(
        "yaml",
        "compose.yaml",
        "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD=",
        tok(ALNUM, 30, "ym2"),
        "\n",
        4,
    ),
    generic("json", "token.json", '{\n  "access_token": "', tok(WORD, 43, "json"), '",\n  "expires_in": 3600\n}\n', 2),
    generic("env", "dotenv.sh", "DEBUG=1\nDB_PASSWORD=", tok(ALNUM, 24, "env1"), "\n", 2),
    generic("env", "export.sh", "export GITHUB_TOKEN=", tok(ALNUM, 40, "env2"), "  # ci\n"),
    generic("ini", "settings.ini", "[db]\nhost = localhost\npassword = ", tok(ALNUM, 24, "ini"), "\n", 3),
    generic("ini", "app.cfg", "spring.datasource.password=", tok(ALNUM + "_", 28, "cfg"), "\n"),
    generic("c", "define.c", '#define API_KEY "', tok(ALNUM, 32, "c1"), '"\n'),
    generic("c", "pointer.c", 'static const char *secret_key = "', tok(B64, 44, "c2"), '";\n'),
    generic(
        "bash", "curl.sh", 'curl "https://api.service.test/v1/items?api_key=', tok(ALNUM, 32, "sh"), '&limit=10"\n'
    ),
    generic("rust", "const.rs", 'const API_KEY: &str = "', tok(ALNUM, 32, "rs"), '";\n'),
    generic("php", "array.php", "<?php\nreturn ['password' => '", tok(ALNUM, 24, "php"), "'];\n", 2),
    generic("kotlin", "val.kt", 'val signingKey = "', tok(B64, 44, "kt"), '"\n'),
    generic("hcl", "main.tf", 'resource "db" "main" {\n  password = "', tok(ALNUM, 24, "tf"), '"\n}\n', 2),
    generic("dockerfile", "Dockerfile", "FROM python:3.11\nENV API_TOKEN=", tok(ALNUM, 32, "docker"), "\n", 2),
    generic("lua", "token.lua", 'local token = "', tok(ALNUM, 32, "lua"), '"\n'),
    generic("csharp", "init.cs", 'var c = new Client { ApiKey = "', tok(ALNUM, 32, "cs"), '" };\n'),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s.language}-{s.file}" for s in SHAPES])
def test_each_shape_found_with_kind_and_line(shape: Shape) -> None:
    assert find_secret(shape.text) == SecretFinding(shape.kind, shape.line)


def test_the_shapes_corpus_spans_languages() -> None:
    assert len(SHAPES) >= 30 and len({s.language for s in SHAPES}) >= 6
    assert len({s.file for s in SHAPES}) == len(SHAPES)


def test_crlf_line_endings_change_nothing() -> None:
    for shape in SHAPES:
        assert find_secret(shape.text.replace("\n", "\r\n")) == SecretFinding(shape.kind, shape.line), shape.file


def test_a_key_in_each_comment_style_and_concatenation_is_found() -> None:
    """The shapes a hostile trial got through: each wrapping of a private key, alone."""
    for template in ("# @", "// @", " * @", "-- @", "; @", '"@\\n" +', '"@\\n"', "'@',"):
        assert find_secret(pem_as(template)) == SecretFinding("private key", 1), template


# ---------------------------------------------------------------------------------------------------------------
# ordinary code that must not be flagged

SHA256, SHA1, MD5 = tok(HEX, 64, "sha256"), tok(HEX, 40, "sha1"), tok(HEX, 32, "md5")
UUID = str(uuid.UUID(int=random.Random("uuid").getrandbits(128)))
SRI = "sha512-" + tok(B64, 86, "sri") + "=="

ORDINARY: list[tuple[str, str]] = [
    # base64 test data and digests under names that do not say secret
    ("base64 test data", f'EXPECTED = "{tok(B64, 120, "b64")}=="\n'),
    ("base64 decode of a literal", f'payload = base64.b64decode("{tok(B64, 64, "b64d")}")\n'),
    ("SHA-256 in a test", f'assert digest(data) == "{SHA256}"\n'),
    ("hash named after a secret", f'password_hash = "{SHA256}"\ntoken_sha256 = "{SHA256}"\n'),
    ("bcrypt hash", f'hashed_password = "$2b$12${tok(B64, 53, "bcrypt")}"\n'),
    ("MD5 and SHA-1 sums", f"md5sum: {MD5}\nsha1: {SHA1}\n"),
    ("checksum", f'checksum = "{SHA256}"\n'),
    ("git commit", f'REVISION = "{SHA1}"  # pinned commit\n'),
    # lockfiles
    ("npm integrity", f'"node_modules/js-tokens": {{\n  "version": "4.0.0",\n  "integrity": "{SRI}"\n}}\n'),
    ("yarn integrity", f'js-tokens@^4.0.0:\n  version "4.0.0"\n  integrity {SRI}\n'),
    ("poetry hash", f'files = [\n    {{file = "tokenizers-0.15.0.tar.gz", hash = "sha256:{SHA256}"}},\n]\n'),
    ("Cargo checksum", f'[[package]]\nname = "secrecy"\nversion = "0.8.0"\nchecksum = "{SHA256}"\n'),
    ("go.sum", f"golang.org/x/oauth2 v0.15.0 h1:{tok(B64, 43, 'gosum')}=\n"),
    # UUIDs
    ("UUID token", f'token = "{UUID}"\nclient_secret: {UUID}\n'),
    ("UUID scope", f"const t = await credential.getToken('{UUID}/.default');\n"),
    # minified or generated code
    (
        "minified property reads",
        "var a=t.apiKey||e.accessToken,n=r.secretKey;function s(e){return e.token=e.token||u}\n",
    ),
    ("dotted values", "MLKEM768X25519PrivateKey = rust_openssl.hpke.MLKEM768X25519PrivateKey\n"),
    ("annotations", "def sign(\n    private_key: ed25519.Ed25519PrivateKey,\n    token: TokenTypeAnnotationV2,\n):\n"),
    ("names defined in the file", "from .types import PKCS7PrivateKeyTypes\n\nPRIVATE_KEY = PKCS7PrivateKeyTypes\n"),
    ("getter call", 'token = get_token("projects/p1/secrets/db_password/versions/latest")\n'),
    ("verify call", f'assert not verify_password("{tok(ALNUM, 24, "verify")}")\n'),
    # documented example keys and placeholders
    (
        "AWS documented examples",
        'aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\nid = "AKIAIOSFODNN7EXAMPLE"\n',
    ),
    ("Stripe test key", f'stripe.api_key = "sk_test_{tok(ALNUM, 24, "stripe")}"\n'),
    ("JWT fixture", f"id_token = 'eyJ{tok(ALNUM, 30)}.eyJ{tok(ALNUM, 40)}.{tok(WORD, 43)}'\n"),
    ("angle placeholder", 'API_KEY = "<your-api-key-goes-here>"\n'),
    ("template variables", 'token = "${GITHUB_TOKEN}"\npassword: "{{ vault_db_password }}"\napi_key: ${API_KEY}\n'),
    ("changeme", "password: changeme1234567890abcdef\nSECRET_KEY=change_me_in_production_2024\n"),
    ("x placeholder", f'secret = "{"x" * 32}"\npassword = "{"*" * 20}"\n'),
    ("your value here", "API_KEY=your_api_key_here_1234567\nclient_secret = 'REPLACE_WITH_CLIENT_SECRET'\n"),
    ("words", 'password = "correct-horse-battery-staple"\nsecret = "s3cr3t-Key-That-Must-Never-Show"\n'),
    # env lookups
    ("python environ", 'password = os.environ["DB_PASSWORD"]\ntoken = os.getenv("GITHUB_TOKEN", "")\n'),
    ("node env", "const apiKey = process.env.OPENAI_API_KEY;\n"),
    ("go env", 'package a\n\nfunc f() {\n\tpassword := os.Getenv("DB_PASSWORD")\n}\n'),
    ("java env", 'String secret = System.getenv("CLIENT_SECRET");\n'),
    ("ruby env", 'token = ENV.fetch("API_TOKEN")\nsecret_key_base: <%= ENV["SECRET_KEY_BASE"] %>\n'),
    ("shell variable", 'export GITHUB_TOKEN="$(cat /run/secrets/github_token)"\nTOKEN=$CI_JOB_TOKEN\n'),
    # names that hold a secret word but no secret
    ("URLs and types", 'token_url = "https://oauth2.googleapis.com/token"\ntoken_type = "Bearer"\n'),
    ("a tokenizer", 'tokenizer = "sentence-transformers/all-MiniLM-L6-v2"\nmax_tokens = 1234567890123456789012\n'),
    ("pagination token", f'{{"NextContinuationToken": "{tok(B64, 56, "page")}=="}}\n'),
    ("a timestamp", '"PasswordLastUsed": "2016-09-08T21:47:36Z",\n'),
    ("field names", 'password_field = "id_password_confirmation"\nsecret_name = "prod-db-credentials-2024"\n'),
    # private key markers without a key
    ("PEM markers concatenated", 'PEM = "-----BEGIN PRIVATE KEY-----\\n" + body + "\\n-----END PRIVATE KEY-----\\n"\n'),
    ("PEM placeholder in comments", "# -----BEGIN PRIVATE KEY-----\n# (your key here)\n# -----END PRIVATE KEY-----\n"),
    ("certificate in a comment", pem_as(" * @", "/*\n", "\n */\n", "CERTIFICATE")),
    ("public key concatenated", pem_as('    "@\\n"', "KEY = (\n", "\n)\n", "PUBLIC KEY")),
]


@pytest.mark.parametrize(("what", "text"), ORDINARY, ids=[w for w, _ in ORDINARY])
def test_ordinary_code_is_not_flagged(what: str, text: str) -> None:
    assert find_secret(text) is None


def test_the_ordinary_corpus_is_large_enough() -> None:
    assert len(ORDINARY) >= 30


# ---------------------------------------------------------------------------------------------------------------
# the read path and the CLI print kind and line, never the value


def write_shape(root: Path, i: int, shape: Shape) -> str:
    rel = f"s{i:02d}/{shape.file}"
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(shape.text)
    return rel


def check_no_value(shape: Shape, *outputs: str) -> None:
    for out in outputs:
        assert shape.value not in out and shape.value[:16] not in out, (shape.file, out)


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s.language}-{s.file}" for s in SHAPES])
def test_read_source_skips_each_shape_without_the_value(tmp_path: Path, shape: Shape) -> None:
    rel = write_shape(tmp_path, 0, shape)
    got = read_source(tmp_path, rel)
    assert got == Skip(rel, SecretFinding(shape.kind, shape.line).reason)
    check_no_value(shape, got.reason, repr(got))


def test_cli_chunks_json_skips_every_shape_and_prints_no_value(tmp_path: Path, model: Path) -> None:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    expected = {
        write_shape(root, i, shape): SecretFinding(shape.kind, shape.line).reason for i, shape in enumerate(SHAPES)
    }
    (root / "ok.py").write_text("def ok():\n    return 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lsp_server.cli", "chunks", str(root), "--json", "--model", str(model)]
    out = subprocess.run(cmd, capture_output=True, cwd=ROOT, env=env, timeout=300)
    stdout, stderr = out.stdout.decode("utf-8"), out.stderr.decode("utf-8")
    assert out.returncode == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert {r["path"]: r["skipped"] for r in rows if "skipped" in r} == expected
    assert {r["path"] for r in rows if "skipped" not in r} == {"ok.py"}
    for shape in SHAPES:
        check_no_value(shape, stdout, stderr)
