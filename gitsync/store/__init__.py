"""The Git-backed note store.

``gitsync.store`` is the only package of gitsync that imports pygit2; ``GitStore`` (in
``gitsync.store.git``) is its facade, one module per concern behind it (see that module's
docstring).  The names below are loaded from it on first use, so ``import gitsync.store`` (and
everything importing it for type hints) does not load libgit2.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitsync.store.git import GitStore, SyncStateSnapshot, TreeChange

__all__ = ["GitStore", "SyncStateSnapshot", "TreeChange"]


def __getattr__(name: str) -> Any:
    """Load the public names from ``gitsync.store.git`` lazily (it imports pygit2)."""
    if name in __all__:
        return getattr(importlib.import_module("gitsync.store.git"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
