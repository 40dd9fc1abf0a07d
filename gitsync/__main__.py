"""The ``gitsync-notes`` console script (also ``python -m gitsync``).

``sync DIR --local`` on a folder that provably did not change since the last full ``--local`` is
answered from its receipt (``gitsync.store.quickscan``) before click, pygit2 or the rest of
gitsync is imported: that keeps it near the cost of ``git status``.  Everything else, and any
doubt, goes to the full command line in ``gitsync.cli``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from gitsync.process import STOP_SIGNALS, catch_signals, silence_broken_pipe

__all__ = ["STOP_SIGNALS", "catch_signals", "main", "silence_broken_pipe"]

_VALUE_OPTIONS = {"--peer": 0, "-r": 1, "--remote": 1}


def local_options(argv: Sequence[str]) -> tuple[str, tuple[str, str]] | None:
    """(DIR, (peer, remote)) when ``argv`` is exactly ``sync DIR --local [--peer P] [--remote URL]``
    in any order; None for anything else (other options, -q, -v, a second folder)."""
    if not argv or argv[0] != "sync":
        return None
    directory: str | None = None
    values = ["", ""]
    local = False
    args = iter(argv[1:])
    for arg in args:
        name, eq, inline = arg.partition("=")
        if arg in ("-l", "--local"):
            local = True
        elif arg in _VALUE_OPTIONS:
            value = next(args, None)
            if value is None:
                return None
            values[_VALUE_OPTIONS[arg]] = value
        elif eq and name in ("--peer", "--remote"):
            values[_VALUE_OPTIONS[name]] = inline
        elif arg.startswith("-") or directory is not None:
            return None
        else:
            directory = arg
    if not local or directory is None:
        return None
    return directory, (values[0], values[1])


def _answer_from_receipt(argv: Sequence[str]) -> str | None:
    parsed = local_options(argv)
    if parsed is None:
        return None
    from gitsync.store import quickscan

    directory, options = parsed
    root = os.path.realpath(directory)
    key = quickscan.repo_key(root, options)
    return None if key is None else quickscan.load(root, key)


def main() -> None:
    try:
        answer = _answer_from_receipt(sys.argv[1:])
    except Exception:  # any doubt: the full command line decides
        answer = None
    if answer is not None:
        try:
            sys.stdout.write(answer + "\n")
            sys.stdout.flush()
        except OSError:  # a closed pipe
            silence_broken_pipe()
        os._exit(0)  # nothing to clean up; interpreter shutdown would cost as much again as a `git status`
    catch_signals()
    from gitsync.errors import Interrupted

    try:
        from gitsync.cli import main as cli

        cli(prog_name="gitsync-notes")
    except Interrupted as exc:  # before or after a command body (which reports its own)
        sys.stderr.write(f"gitsync-notes: {exc.what}\n")
        sys.exit(128 + exc.signum)


if __name__ == "__main__":
    main()
