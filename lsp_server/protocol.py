"""LSP protocol pieces of the server: an answer for requests whose params do not fit, and ``$/progress``."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import (
    FeatureNotificationError,
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

if TYPE_CHECKING:
    from indexer.index import Progress

log = logging.getLogger("lsp_server.server")


class MessagingServer(LanguageServer):
    """A LanguageServer that tells the user: background tasks whose failure is logged, messages and log lines,
    calls onto the event loop from other threads, and every handler error reported once (no traceback)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: set[asyncio.Future[Any]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def spawn(self, work: Awaitable[Any], what: str) -> asyncio.Future[Any]:
        """Run `work` in the background; a failure is logged to the client as "semcode: {what} failed: ..."."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._task_done, what))
        return task

    def _task_done(self, what: str, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            log.error("%s failed", what, exc_info=e)
            self.log(types.MessageType.Error, f"semcode: {what} failed: {e}")

    def show(self, kind: types.MessageType, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, kind: types.MessageType, message: str) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def from_thread(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` on the event loop (notifications are sent from there only)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(fn, *args)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls calls this for every handler exception and malformed message. A request's error is in its answer;
        an unexpected one is logged too. Anything else has no answer to carry it: log it and show it."""
        if source is FeatureRequestError:
            if isinstance(error, JsonRpcInternalError) or not isinstance(error, JsonRpcException):
                self.log(types.MessageType.Error, f"semcode: a request failed: {error}")
            return
        what = "a notification failed" if source is FeatureNotificationError else "protocol error"
        self.log(types.MessageType.Error, f"semcode: {what}: {error}")
        self.show(types.MessageType.Error, f"semcode: {what}: {error}")


class ExpectedErrorsOneLine(logging.Filter):
    """pygls logs every failed request with its traceback; an expected error (bad params, a refusal we raise) is
    one line, an unexpected one keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, JsonRpcException) and not isinstance(error, JsonRpcInternalError):
            record.msg, record.args, record.exc_info = f"{record.getMessage()}: {error}", (), None
        return True


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
