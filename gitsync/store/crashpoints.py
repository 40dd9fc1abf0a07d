"""The crash-test seam of the store: each step of a sync's commit calls :func:`crash` by name.

Tests (``tests/store/crash_child.py``) and the fault injection of ``gitsync.app.faults`` replace
``_crash_point`` with a function that calls ``os._exit`` at a chosen step; by default it does
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["CRASH_POINTS", "UNWRITTEN_CRASH_POINTS", "crash"]

#: Steps of ``finish_sync`` and of finishing a journal, in order.
CRASH_POINTS: Final = (
    "journal-written",
    "state-committed",
    "branch-moved",
    "worktree-partial",
    "worktree-updated",
    "journal-deleted",
)
#: Steps of writing the notes an earlier sync left unwritten (``Checkout.retry_unwritten``): after
#: the files were written, before the record of them was updated.
UNWRITTEN_CRASH_POINTS: Final = ("unwritten-retried",)


def _no_crash(point: str) -> None:
    """Default crash hook: do nothing."""


#: Test seam: called with each name in ``CRASH_POINTS`` as ``finish_sync``/``recover`` pass it.
_crash_point: Callable[[str], None] = _no_crash


def crash(point: str) -> None:
    """Pass the step ``point`` (the seam decides whether the process dies here)."""
    _crash_point(point)
