"""Child process for the crash tests: run one finish_sync and die (os._exit) at a given step.

Usage: python -m tests.store.crash_child '<json>' with keys root, point, peer and the keyword
arguments of finish_sync (``files`` values as latin-1 strings).
"""

from __future__ import annotations

import json
import os
import sys

from gitsync.store import crashpoints
from gitsync.store.git import GitStore


def main() -> int:
    """Run the session described by argv[1]; exit 77 at the crash point."""
    args = json.loads(sys.argv[1])
    point = args.pop("point")
    root = args.pop("root")
    peer = args.pop("peer")
    args["files"] = {k: v.encode("latin-1") for k, v in args["files"].items()}

    def crash(name: str) -> None:
        if name == point:
            os._exit(77)

    crashpoints._crash_point = crash
    store = GitStore.open(root)
    store.finish_sync(peer, **args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
