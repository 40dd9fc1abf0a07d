"""How a command process stops: on a signal (as on Ctrl-C) or when the reader of its output left.

Used by the fast path of ``gitsync.__main__`` and by the command line (``gitsync.cli``); it
imports neither, and nothing heavy.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["STOP_SIGNALS", "catch_signals", "silence_broken_pipe"]

#: The signals that stop a command the way Ctrl-C does (exit status 128 + n).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def catch_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP raise :class:`gitsync.errors.Interrupted` in the main thread, so
    a sync unwinds as on Ctrl-C (its "local changes" commit is taken back) and the CLI exits
    128 + n.  Once one arrived, the others are ignored: the process is already on its way out,
    and a second Ctrl-C must not cut that unwinding short (kill -9 still works, and is safe)."""
    from gitsync.errors import Interrupted

    def stop(signum: int, frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup'ed: stay immune
            signal.signal(sig, stop)


def silence_broken_pipe() -> None:
    """The reader of our output went away (``status | head -1``): say nothing, exit as a process
    killed by SIGPIPE would be seen by the shell (141), and let no later flush complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    os._exit(128 + signal.SIGPIPE)
