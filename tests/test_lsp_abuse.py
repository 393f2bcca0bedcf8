"""Hostile input to the real language server over stdio: requests without params, broken framing (wrong
Content-Length either way, junk between messages, no header, bodies that are not JSON or not JSON-RPC messages), a
burst of 1,000 requests with most of them cancelled, and URIs outside the workspace. After each, the server still
answers a normal `semcode/search`, and its stderr holds log lines, never a traceback.

The server is spoken to in raw bytes (`RawServer`): what a typed client refuses to send. Its answers are read on a
thread and awaited with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pygls.uris import from_fs_path

import semcode
from lsp_server.protocol import FrameReader
from tests.raw_lsp import ANSWER_S, RawServer, frame, request, search

FILES = {
    "pkg/geometry.py": "def zorblax_triangle_area(a, b, c):\n    s = (a + b + c) / 2\n    return s * (s - a)\n",
    "pkg/text.py": "def flurbish_words(text):\n    return [w for w in text.split() if w]\n",
}
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, CANCELLED = -32700, -32600, -32602, -32800

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, model: Path) -> tuple[Path, Path]:
    """A repository and its index, built before any server starts (lexical search answers at once)."""
    base = tmp_path_factory.mktemp("abuse")
    root, index = base / "repo", base / "index"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    with semcode.open(root, index_dir=index, model=str(model)) as ix:
        ix.update()
    return root, index


@pytest.fixture
def server(indexed: tuple[Path, Path], model: Path, tmp_path: Path) -> Iterator[RawServer]:
    s = RawServer(tmp_path / "stderr.txt", cwd=indexed[0])  # as editors start it: in the workspace
    try:
        s.start(*indexed, model)
        s.serves("ready")
        yield s
    finally:
        s.close()


def error_of(answer: dict[str, Any], code: int, *says: str) -> None:
    assert answer.get("error", {}).get("code") == code, answer
    assert all(s in answer["error"]["message"] for s in says), answer


# -- the frame reader alone ----------------------------------------------------------------------------------------

A, B = b'{"jsonrpc": "2.0", "method": "a"}', b'{"jsonrpc": "2.0", "method": "b"}'
READER = [  # chunks as they arrive (None: input goes quiet), the bodies read, and what each problem line says
    ([frame(A) + frame(B)], [A, B], []),
    ([frame(A)[:5], frame(A)[5:30], frame(A)[30:]], [A], []),  # headers and body split anywhere
    ([frame(A, +5), None], [A], ["Content-Length was 38, but only 33 bytes came"]),
    ([frame(A, +5)[:-10], None], [], ["waiting for 15 more bytes of a 38-byte message"]),
    ([frame(A, +100) + frame(B)], [A, B], ["Content-Length was 133, but the next message began after 33 bytes"]),
    ([frame(A, -3) + frame(B)], [A[:-3], B], ["skipped 3 bytes that are not part of a message: b'a\"}'"]),
    ([b"junk" + frame(A) + b"\r\n\r\n" + frame(B)], [A, B], ["skipped 4 bytes that are not part of a message"]),
    ([b"junk", None, frame(A)], [A], ["skipped 4 bytes that are not part of a message: b'junk'"]),
    ([b"Content-Type: x\r\n" + frame(A)], [A], []),
    ([A + b"Content-Type: x\r\n" + frame(B)], [B], ["skipped 33 bytes that are not part of a message"]),
]  # fmt: skip


@pytest.mark.parametrize(("chunks", "bodies", "problems"), READER)
def test_frame_reader(chunks: list[bytes | None], bodies: list[bytes], problems: list[str]) -> None:
    said: list[str] = []
    reader = FrameReader(said.append)
    got = [body for chunk in chunks for body in (reader.stalled() if chunk is None else reader.feed(chunk))]
    assert (got, len(said)) == (bodies, len(problems)), said
    assert all(p in line for p, line in zip(problems, said, strict=True)), said


# -- params --------------------------------------------------------------------------------------------------------


MISSING_PARAMS = [  # method, then None (it answers) or (code, what the message says)
    ("semcode/search", (INVALID_PARAMS, "semcode/search", "'query'")),
    ("semcode/related", (INVALID_PARAMS, "semcode/related", "'textDocument.uri'")),
    ("workspace/symbol", (INVALID_PARAMS, "workspace/symbol", "params are missing")),
    ("workspace/executeCommand", (INVALID_PARAMS, "workspace/executeCommand", "params are missing")),
    ("semcode/status", None),
]


def test_requests_without_params_are_answered(server: RawServer) -> None:
    for i, (method, expected) in enumerate(MISSING_PARAMS):
        answer = server.ask({"jsonrpc": "2.0", "id": i, "method": method})
        if expected is None:
            assert answer["result"]["state"] in ("indexing", "ready"), answer
        else:
            error_of(answer, *expected)
    server.write(frame({"jsonrpc": "2.0", "method": "$/cancelRequest"}))  # a notification: logged, ignored
    server.serves()
    assert "$/cancelRequest: params are missing" in server.stop()


@pytest.mark.parametrize("params", [5, "zorblax", [1, 2], {"type_name": "not an identifier", "query": "x"}], ids=repr)
def test_params_of_the_wrong_shape_are_invalid_params(server: RawServer, params: Any) -> None:
    error_of(server.ask(request(1, "semcode/search", params)), INVALID_PARAMS, "semcode/search")
    server.serves()
    server.stop()


# -- framing -------------------------------------------------------------------------------------------------------

# Each case: the bytes sent; what answers: {id: None (a result) or an error code}; how many `"id": null` answers
# (errors for messages whose id could not be known); and what the log says. The message with id 11 comes right after
# the bad bytes: the server must have resynchronised to answer it.
FRAMING: dict[str, tuple[bytes, dict[Any, Any], int, str]] = {
    "Content-Length too large, then silence": (
        frame(search(10), +40), {10: None}, 0, "Content-Length was 161, but only 121 bytes came"
    ),
    "Content-Length far too large, then the next message": (
        frame(search(10), +10**6) + frame(search(11)), {10: None, 11: None}, 0,
        "Content-Length was 1000121, but the next message began after 121 bytes",
    ),
    "Content-Length too small": (
        frame(search(10), -12) + frame(search(11)), {10: PARSE_ERROR, 11: None}, 0,
        "skipped 12 bytes that are not part of a message",
    ),
    "Content-Length 0": (b"Content-Length: 0\r\n\r\n" + frame(search(11)), {11: None}, 1, "an empty message"),
    "Content-Length not a number": (
        b"Content-Length: ten\r\n\r\n" + json.dumps(search(10)).encode() + frame(search(11)), {11: None}, 0,
        "skipped 144 bytes that are not part of a message: b'Content-Length: ten",
    ),
    "Content-Length over the limit": (
        b"Content-Length: 99999999999\r\n\r\njunk" + frame(search(11)), {11: None}, 0,
        "refused a 99999999999-byte message",
    ),
    "junk between messages": (
        b"\r\nhello\x00\xff junk\r\n\r\n{]" + frame(search(11)), {11: None}, 0,
        "skipped 20 bytes that are not part of a message",
    ),
    "a body without a header": (
        json.dumps(search(10)).encode() + frame(search(11)), {11: None}, 0,
        "skipped 121 bytes that are not part of a message",
    ),
    "a header without its blank line": (
        b"Content-Length: 90\r\n" + json.dumps(search(10)).encode() + frame(search(11)), {11: None}, 0,
        "a message header without the blank line that ends it",
    ),
    "Content-Type before Content-Length": (
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + frame(search(11)), {11: None}, 0, ""
    ),
    "a body that is not JSON": (
        frame(b"{this is not json}") + frame(search(11)), {11: None}, 1, "a message that is not JSON"
    ),
    "a body that is not UTF-8": (
        frame(json.dumps(search(10)).encode().replace(b"zorblax", b"zor\xffblax")), {10: PARSE_ERROR}, 0,
        "'utf-8' codec can't decode byte 0xff",
    ),
    "JSON nested too deep": (
        frame(b"[" * 100_000 + b"]" * 100_000) + frame(search(11)), {11: None}, 1, "maximum recursion depth"
    ),
    "JSON that is not an object": (
        b"".join(frame(b) for b in (b"[1, 2]", b'"hello"', b"42", b"null")) + frame(search(11)), {11: None}, 4,
        "a message must be a JSON object, not list",
    ),
    "an object that is not JSON-RPC": (
        frame({"id": 10, "method": "semcode/search", "params": {"query": "x"}}) + frame(search(11)),
        {10: INVALID_REQUEST, 11: None}, 0, 'a message needs "jsonrpc": "2.0"',
    ),
    "an id that is an object": (
        frame(request({"a": 1}, "semcode/status", {})) + frame(search(11)), {11: None}, 1,
        "a message's id must be an integer or a string",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", FRAMING, ids=list(FRAMING))
def test_bad_framing_resynchronises(server: RawServer, case: str) -> None:
    sent, expected, nulls, logged = FRAMING[case]
    server.write(sent)
    for msg_id, outcome in expected.items():
        answer = server.answer(msg_id)
        if outcome is None:
            assert answer["result"]["results"][0]["symbol"] == "zorblax_triangle_area", answer
        else:
            error_of(answer, outcome)
    server.wait(lambda: len(server.null_answers) >= nulls, f"{nulls} answers to unknown ids")
    assert len(server.null_answers) == nulls, server.null_answers
    server.serves()
    assert 10 in expected or 10 not in server.answers  # a request never read is never answered
    log = server.stop()
    assert logged in log, log  # what was skipped or repaired is logged, once
    assert not logged or log.count(logged) == 1, log


def test_a_message_arriving_a_byte_at_a_time_is_read(server: RawServer) -> None:
    for byte in frame(search(10)):
        server.write(bytes([byte]))
    assert server.answer(10)["result"]["results"], server.answers
    server.stop()


def test_input_ending_inside_a_message_stops_the_server_cleanly(server: RawServer) -> None:
    server.write(frame(search(10))[:-20])
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    assert server.proc.wait(timeout=ANSWER_S) == 0
    assert "input ended in the middle of a message" in server.logged()


def test_requests_after_shutdown_are_refused(server: RawServer) -> None:
    assert server.ask(request("bye", "shutdown", None))["result"] is None
    error_of(server.ask(search(12)), INVALID_REQUEST, "shutting down")
    server.write(frame({"jsonrpc": "2.0", "method": "exit"}))
    assert server.proc.wait(timeout=ANSWER_S) == 0


# -- load and URIs -------------------------------------------------------------------------------------------------


def test_a_burst_of_a_thousand_requests_with_cancels_leaves_the_server_answering(server: RawServer) -> None:
    ids = range(1000, 2000)
    burst = b"".join(frame(search(i, f"zorblax_{i}")) for i in ids)
    cancels = b"".join(frame({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": i}}) for i in ids[::3])
    half = len(burst) // 2
    server.write(burst[:half] + cancels + burst[half:])  # some cancels arrive before their request
    started = time.monotonic()
    server.wait(lambda: all(i in server.answers for i in ids), "answers to all 1,000 requests", 240)
    print(f"1,000 requests answered in {time.monotonic() - started:.1f} s")
    for i in ids:
        answer = server.answers[i]
        assert "result" in answer or answer["error"]["code"] == CANCELLED, answer  # each answered exactly once
    server.serves()
    server.stop()


def test_uris_outside_the_workspace_get_a_clear_error(server: RawServer, indexed: tuple[Path, Path]) -> None:
    root = indexed[0]
    outside = [
        "file:///etc/passwd", "file:///", "file:", "", "untitled:Untitled-1", "http://example.com/pkg/text.py",
        f"{from_fs_path(str(root))}/../outside.py", "file:pkg/text.py", "file:///tmp/a%00b.py", "not a uri",
        "file://other-host" + str(root / "pkg/text.py"),
    ]  # fmt: skip
    for i, uri in enumerate(outside):
        params = {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}
        error_of(server.ask(request(i, "semcode/related", params)), INVALID_PARAMS, "outside the workspace")
    params = {"textDocument": {"uri": from_fs_path(str(root / "pkg/text.py"))}, "position": {"line": 0, "character": 0}}
    assert "results" in server.ask(request("inside", "semcode/related", params))["result"]
    server.serves()
    server.stop()


# -- a workspace of bad files ----------------------------------------------------------------------------------------


def test_a_workspace_of_bad_files_is_served_and_no_secret_leaves_it(tmp_path: Path, model: Path) -> None:
    """The bad-input corpus of test_bad_files (names that are not UTF-8, special files, link loops, secrets, ...) as
    an editor's workspace: the server indexes it, answers searches for the secrets with other files only, and no
    secret value appears in any answer or in its log."""
    from tests.test_bad_files import SECRET_VALUES, make_corpus

    root, index = make_corpus(tmp_path / "repo"), tmp_path / "index"
    with semcode.open(root, index_dir=index, model=str(model)) as ix:
        ix.update()
    s = RawServer(tmp_path / "stderr.txt", cwd=root)
    try:
        s.start(root, index, model)
        answers = []
        for i, query in enumerate(["private key", "aws secret access key", "github token", "parse config"]):
            for mode in ("lexical", "hybrid"):
                params = {"query": query, "mode": mode}
                answers.append(s.ask(request(f"q{i}{mode}", "semcode/search", params)))
        assert all("result" in a for a in answers), answers
        hits = {h["uri"].rsplit("/", 1)[-1] for a in answers for h in a["result"]["results"]}
        assert "ok.py" in hits and not hits & {"config.py", "key.py", "notes.md", "settings.py"}, hits
        status = s.ask(request("st", "semcode/status", {}))
        text = json.dumps(answers) + json.dumps(status) + s.stop()
        assert not [v for v in SECRET_VALUES if v in text]
    finally:
        s.close()
