"""One lock for the process environment (``os.environ``), shared by the layers that touch it.

libgit2 takes a second index file only through ``GIT_INDEX_FILE``, which the store sets for a
moment; requests finds proxies by iterating ``os.environ``.  In threads (a client's scan runs while
its first message travels; servers and tests run many sessions) an iteration that meets the
variable appearing and vanishing raises ``KeyError``: both hold this lock.
"""

from __future__ import annotations

import threading

__all__ = ["ENV_LOCK"]

ENV_LOCK = threading.RLock()
