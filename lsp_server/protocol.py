"""LSP protocol pieces of the server: an answer for requests whose params do not fit, and ``$/progress``."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from indexer.index import Progress


class AnsweringProtocol(LanguageServerProtocol):
    """pygls leaves a request whose params do not fit its type unanswered; this answers it (InvalidParams)."""

    def structure_message(self, data: Any) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcInvalidParams:
            if isinstance(data, Mapping) and "id" in data and "method" in data:  # pygls would leave it unanswered
                error = JsonRpcInvalidParams(f"{data['method']}: invalid params")
                self._send_response(data["id"], error=error.to_response_error())
            raise


class ProgressReporter:
    """$/progress for one run, callable from any thread; silent when the client cannot show progress. The client
    may cancel the run through the token (``window/workDoneProgress/cancel``): `cancelled` is then set."""

    def __init__(self, ls: LanguageServer, token: str | None) -> None:
        self.ls, self.token = ls, token
        self.loop = asyncio.get_running_loop()
        self.cancelled = threading.Event()

    @classmethod
    async def begin(cls, ls: LanguageServer, title: str) -> ProgressReporter:
        window = ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return cls(ls, None)
        token = f"semcode-index-{uuid.uuid4().hex[:8]}"
        await ls.work_done_progress.create_async(token)
        reporter = cls(ls, token)
        value = types.WorkDoneProgressBegin(title=title, percentage=0, cancellable=True)
        ls.work_done_progress.begin(token, value)
        ls.work_done_progress.tokens[token].add_done_callback(lambda _: reporter.cancelled.set())
        return reporter

    def report(self, p: Progress) -> None:  # any thread
        if self.token is None:
            return
        pct = int(100 * p.files_done / p.files_total) if p.files_total else 100
        msg = f"{p.files_done}/{p.files_total} files, {p.chunks_written} chunks"
        value = types.WorkDoneProgressReport(message=msg, percentage=pct)
        self.loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token, value)

    def end(self, message: str) -> None:  # event loop thread
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)
