"""Ctrl-C in semcode's programs (`semcode.interrupts`), in child processes: a KeyboardInterrupt raised where Python
cannot deliver it (a weakref callback, as importlib's module locks have) is printed and lost, so a program ends at once
instead, and only the blocks that stop cleanly take Ctrl-C as an exception."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A SIGINT while Python runs a weakref callback: what importlib's `_get_module_lock.<locals>.cb` runs during imports
PROGRAM = """
import signal, sys, weakref
from semcode import interrupts

if sys.argv[1] == "take":
    interrupts.take_ctrl_c()


class Thing:
    pass


def in_a_callback():
    thing = Thing()
    ref = weakref.ref(thing, lambda _: signal.raise_signal(signal.SIGINT))
    del thing
    return ref


if sys.argv[2] == "raising":
    try:
        with interrupts.raising():
            signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        print("stopped cleanly")
in_a_callback()
print("ran on")
"""

CASES = [  # (take Ctrl-C?, a `raising` block first?, SIGINT at start) -> exit code, stdout, a line on stderr
    ("default", "-", signal.default_int_handler, 0, "ran on\n", "Exception ignored"),  # what a bare program does
    ("take", "-", signal.default_int_handler, 130, "", "semcode: interrupted"),
    ("take", "raising", signal.default_int_handler, 130, "stopped cleanly\n", "semcode: interrupted"),
    ("take", "-", signal.SIG_IGN, 0, "ran on\n", ""),  # a job started with `&`: Ctrl-C is not ours to take
]


@pytest.mark.parametrize(("take", "block", "at_start", "code", "stdout", "said"), CASES)
def test_ctrl_c_where_python_would_lose_it(
    take: str, block: str, at_start: object, code: int, stdout: str, said: str
) -> None:
    def start() -> None:  # in the child, before exec: SIG_IGN is inherited; SIG_DFL becomes Python's default handler
        signal.signal(signal.SIGINT, signal.SIG_IGN if at_start is signal.SIG_IGN else signal.SIG_DFL)

    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, take, block], capture_output=True, text=True, timeout=60, preexec_fn=start,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )  # fmt: skip
    assert (out.returncode, out.stdout) == (code, stdout), out.stderr
    assert said in out.stderr, out.stderr
    assert take == "default" or "Traceback" not in out.stderr, out.stderr
