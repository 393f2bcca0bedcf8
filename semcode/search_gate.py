"""How many searches a server runs at once, and how many it lets wait: past that it answers "busy" at once.

A server of many clients (MCP over HTTP, the CLI daemon, a language server on a shared index) gets requests on as
many threads as it has clients. Run all at once, they contend for the cores (each search also runs its candidate
lists in parallel, and LanceDB has threads of its own), so every answer slows down together and CPU goes to
switching threads. ``SearchGate`` lets ``running`` searches run (default: one per core) and ``waiting`` more
(default: 16 per core, about half a second of work at 2 cores) wait their turn in arrival order; a request past
those is refused with ``Busy`` ("retry in a moment") instead of slowing everyone, as is one that waited longer
than ``max_wait_s``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache


class Busy(ValueError):
    """The server is at capacity: the client should retry in a moment. Its message says so. A ValueError, as
    ``SearchTimeout`` is: every front door answers one with its message as the request's error (MCP: a tool error;
    the daemon: an expected error; the language server: a failed request)."""


class SearchGate:
    """At most `running` searches at once and `waiting` waiting (first come, first served); others: ``Busy``."""

    def __init__(self, running: int | None = None, waiting: int | None = None, max_wait_s: float = 10.0) -> None:
        self.running = max(1, running or os.cpu_count() or 1)
        self.waiting = max(0, 16 * self.running if waiting is None else waiting)
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._active = 0
        self._queue: list[object] = []  # tickets of the waiting requests, oldest first
        self.refused = 0  # requests answered Busy (for status and benchmarks)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a running slot for the block's duration; ``Busy`` when the queue is full or the wait too long."""
        ticket = object()
        with self._cond:
            if self._active >= self.running or self._queue:
                if len(self._queue) >= self.waiting:
                    self.refused += 1
                    raise Busy(
                        f"busy: {self._active} searches running and {len(self._queue)} waiting; retry in a moment"
                    )
                self._queue.append(ticket)
                deadline = time.monotonic() + self.max_wait_s
                while self._active >= self.running or self._queue[0] is not ticket:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._queue.remove(ticket)
                        self.refused += 1
                        self._cond.notify_all()
                        raise Busy(f"busy: waited {self.max_wait_s:.0f} s for a turn; retry in a moment")
                    self._cond.wait(left)
                self._queue.pop(0)
                self._cond.notify_all()  # the next in line may have a free slot too (two released at once)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()


SEARCHES_ENV = "SEMCODE_SEARCHES"  # searches at once (default: the cores); e.g. 1 where other work needs a core


@cache
def shared_gate() -> SearchGate:
    """The gate of this process: every engine in it (a daemon serves many indexes) shares the cores. Its size:
    ``$SEMCODE_SEARCHES`` (searches at once; a value that is not a whole number >= 1 is ignored), else the cores."""
    value = os.environ.get(SEARCHES_ENV, "").strip()
    return SearchGate(int(value) if value.isdigit() and int(value) >= 1 else None)
