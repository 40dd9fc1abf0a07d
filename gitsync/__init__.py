"""gitsync-notes: sync a folder of notes, kept in Git, with SyncML peers."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
