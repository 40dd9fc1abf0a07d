"""Deterministic kill points for the crash tests: ``GITSYNC_CRASH_AT=<point>:<n>``.

The crash tests (tests/crash, benchmarks/soak_crash.py) start a real ``gitsync-notes`` process with
this variable set; when the process passes ``<point>`` for the ``n``-th time it sends itself SIGKILL,
exactly as ``kill -9`` would (no cleanup, no flush, no atexit).  Points of the app layer are listed
in :data:`APP_POINTS`; the Git store's ``finish_sync`` steps (``gitsync.store.crashpoints.CRASH_POINTS``)
are points too: importing this module routes the store's ``_crash_point`` seam here when the
variable is set.  Unset (always, outside those tests) :func:`crash_point` costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from typing import Final

from gitsync.store import crashpoints as _store_crashpoints

__all__ = ["APP_POINTS", "ENV", "crash_point"]

ENV: Final = "GITSYNC_CRASH_AT"

#: client-send: before the client POSTs message n;  client-recv: after the reply to message n came
#: back (the server has processed it), before the client looks at it;  client-finish: the session is
#: over, before the client's finish_sync;  server-recv: request n reached the server, not processed;
#: server-reply: request n processed, the reply not yet sent;  server-finish: the client's last
#: package is in, before the server's finish_sync;  server-answered: a reply was sent, before the
#: work left for after it (building the tree to commit; writing the folder of a committed session).
APP_POINTS: Final = (
    "client-send",
    "client-recv",
    "client-finish",
    "server-recv",
    "server-reply",
    "server-finish",
    "server-answered",
)

_passes: dict[str, int] = {}


def crash_point(point: str) -> None:
    """Die by SIGKILL if ``$GITSYNC_CRASH_AT`` names this pass of ``point``."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.rpartition(":")
    if name != point:
        return
    _passes[point] = count = _passes.get(point, 0) + 1
    if nth.isdigit() and count == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)


if os.environ.get(ENV):
    _store_crashpoints._crash_point = crash_point
