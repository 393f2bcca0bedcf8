"""The single writer: the one thread that makes every write to the indexes a process holds.

Jobs run one at a time. ``urgent`` ones (a save, an open buffer, a watcher's batch) run in the order they came, and
also whenever the running job calls ``drain`` (a full run does, between files), so they never wait for a whole run.

Fair both ways: a queued job (a full run) starts after the urgent jobs queued before it and before those queued
after it (one queue order for both kinds: each urgent job takes a ticket, and the pool task that runs it runs only
tickets up to its own); and ``drain`` runs the urgent jobs queued when it is called, not those that arrive while
they run. A stream of single-file updates once kept a full run from ever starting, or from getting past a file.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")
POLL_S = 0.25  # how often a waiting thread wakes to let a Ctrl-C through


def result(future: Future[T]) -> T:
    """``future.result()``, waking every ``POLL_S``: the kernel may hand a Ctrl-C to any thread (LanceDB's, the
    watcher's), and then nothing interrupts the main thread's blocking wait; Python raises KeyboardInterrupt only
    once the main thread runs again. Waking now and then makes that at once rather than when the job ends."""
    while not wait([future], timeout=POLL_S).done:
        pass
    return future.result()


class Writer:
    """The one thread that writes to the indexes. Jobs run one at a time; ``urgent`` ones in the order they came,
    and also whenever the running job calls ``drain`` (a full run does, between files), so they never wait for a
    whole run. Queued jobs of both kinds start in the order they came (see the module docstring)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semcode-writer")
        self._lock = threading.Lock()  # the pool's queue order is the order of the tickets
        self._tickets = itertools.count()
        self._last = -1  # the ticket of the last urgent job queued
        self._urgent: deque[tuple[int, Callable[[], Any], Future[Any]]] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:  # any thread
        with self._lock:
            return self._pool.submit(fn, *args)

    def urgent(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:  # any thread
        future: Future[Any] = Future()
        with self._lock:
            self._last = ticket = next(self._tickets)
            self._urgent.append((ticket, functools.partial(fn, *args), future))
            try:
                self._pool.submit(self._run_urgent, ticket)
                closed = False
            except RuntimeError:
                closed = True
        if closed:
            self.close()
        return future

    def drain(self) -> None:
        """Run the urgent jobs queued so far (on the writer thread only); those queued while they run wait for the
        next call, so a stream of them never holds up the running job."""
        with self._lock:
            last = self._last
        self._run_urgent(last)

    def _run_urgent(self, last: int) -> None:
        """Run the queued urgent jobs whose ticket is at most `last` (writer thread)."""
        while True:
            with self._lock:
                if not self._urgent or self._urgent[0][0] > last:
                    return
                _ticket, job, future = self._urgent.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except Exception as e:
                    future.set_exception(e)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the running job (if any) is done, or `timeout` seconds; call after ``close``. True when it is
        done. Interruptible (see ``result``)."""
        shutdown = threading.Thread(target=self._pool.shutdown, kwargs={"wait": True}, daemon=True)
        shutdown.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while shutdown.is_alive() and (deadline is None or time.monotonic() < deadline):
            shutdown.join(POLL_S)
        return not shutdown.is_alive()

    def close(self) -> None:
        """No new jobs; queued ones are cancelled; a running one finishes (a full run stops at its next file once
        its folder's ``cancel`` is set)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            queued, self._urgent = self._urgent, deque()
        for _ticket, _job, future in queued:
            future.cancel()
