"""Where the shared folder is (``shared/``: the real peers and the captured reference messages).

One answer for every test and for ``.ci/run``: ``$GITSYNC_SHARED``, else the first ancestor of the
checkout that holds a ``shared/`` folder.  When there is none, tests that need it skip, visibly,
except under CI (``$CI`` set and not "false"/"0"), where a suite that silently lost hundreds of
cases must not pass: finding nothing is an error there.  ``python -m tests.shared`` prints the
folder (or fails the same way); ``.ci/run`` uses it.  No pytest import: ``.ci/run`` runs it bare.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["REPO_ROOT", "SharedNotFound", "find_shared", "in_ci", "locate_shared"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class SharedNotFound(RuntimeError):
    """No shared folder where one is required."""


def in_ci(env: Mapping[str, str] = os.environ) -> bool:
    """Whether this is a CI run ($CI set to anything but empty, "0" or "false")."""
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_shared(root: Path = REPO_ROOT, env: Mapping[str, str] = os.environ) -> Path | None:
    """``$GITSYNC_SHARED`` (which must then be a folder), else ``shared/`` in the nearest ancestor of
    ``root`` holding one, else None."""
    value = env.get("GITSYNC_SHARED", "")
    if value:
        path = Path(value).expanduser().resolve()
        if not path.is_dir():
            raise SharedNotFound(f"GITSYNC_SHARED={value} is not a folder")
        return path
    for parent in root.resolve().parents:
        if (parent / "shared").is_dir():
            return parent / "shared"
    return None


def locate_shared(root: Path = REPO_ROOT, env: Mapping[str, str] = os.environ) -> Path | None:
    """:func:`find_shared`, raising under CI when it finds nothing."""
    found = find_shared(root, env)
    if found is None and in_ci(env):
        raise SharedNotFound(
            f"no shared/ folder in any ancestor of {root} and GITSYNC_SHARED is not set: under CI the "
            "tests that need the peers and captured messages must run, not vanish. "
            "Set GITSYNC_SHARED to the folder holding peers/ and reference/."
        )
    return found


if __name__ == "__main__":
    try:
        shared = locate_shared()
    except SharedNotFound as exc:
        sys.exit(f"tests.shared: {exc}")
    if shared is None:
        sys.exit("tests.shared: no shared/ folder found (set GITSYNC_SHARED)")
    print(shared)
