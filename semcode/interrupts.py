"""Ctrl-C in semcode's programs: who handles SIGINT, and when it ends the process at once.

Python turns SIGINT into ``KeyboardInterrupt``, an exception that surfaces at whatever line the main thread runs.
During a program's start-up that is mostly inside imports, where it is not always an ordinary exception: raised in
one of importlib's weakref callbacks it is printed as "Exception ignored" and lost (the command runs on), and raised
while an extension module initialises it can end the process by the signal, after our own message. Both were seen
on a loaded 2-core machine.

So a program (``semcode`` run as a command) ends at once on Ctrl-C: one ``semcode: interrupted`` line, exit 130
(``end_at_once``). That is safe wherever nothing needs finishing: read-only commands, start-up, and any write, since
the index survives a kill at any moment. Work that stops cleanly and says what it kept (``index``, ``watch``) takes
Ctrl-C as ``KeyboardInterrupt`` only while it runs (``raising``), once its imports and the model are loaded. A server
with an event loop installs its own handler where the program owns SIGINT (``owned``).

The main thread alone sets handlers; a caller in Python (tests, an embedder) that did not call ``take_ctrl_c`` keeps
Python's default behaviour throughout."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

MESSAGE = b"semcode: interrupted\n"
EXIT_INTERRUPTED = 130


def end_at_once(signum: int, frame: FrameType | None) -> None:
    """The handler: one line on stderr and exit 130, without unwinding (no traceback, no exit handlers)."""
    os.write(2, MESSAGE)
    os._exit(EXIT_INTERRUPTED)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def owned() -> bool:
    """Whether this program handles Ctrl-C: on the main thread, with SIGINT at Python's default or ours (not ignored,
    as in a job started with ``&``, nor an embedder's handler)."""
    return _on_main_thread() and signal.getsignal(signal.SIGINT) in (signal.default_int_handler, end_at_once)


def take_ctrl_c() -> None:
    """From here on Ctrl-C ends the process at once (``end_at_once``), where this program owns SIGINT."""
    if owned():
        signal.signal(signal.SIGINT, end_at_once)


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` inside this block; afterwards it ends the process at once again. A no-op
    where the program did not take Ctrl-C (``take_ctrl_c``): there it raises anyway, or is ignored."""
    if not _on_main_thread() or signal.getsignal(signal.SIGINT) is not end_at_once:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, end_at_once)
