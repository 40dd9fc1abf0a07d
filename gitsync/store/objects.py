"""Git objects by id: commits, trees and blobs looked up with one clear error, and what a note is.

A note is a regular file (``100644`` or ``100755``); symlinks, gitlinks and the top-level
``.gitattributes``/``.gitignore``/``.gitmodules`` are not.  Every id that comes from outside
the store (a caller, a state blob) is checked here before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pygit2
from pygit2 import Oid
from pygit2.enums import FileMode

from gitsync.errors import StoreError

__all__ = ["EMPTY_TREE", "Objects", "is_note", "is_regular", "remember"]

EMPTY_TREE: Final = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
TOP_LEVEL_NON_NOTES: Final = frozenset({".gitattributes", ".gitignore", ".gitmodules"})
REGULAR: Final = frozenset({int(FileMode.BLOB), int(FileMode.BLOB_EXECUTABLE)})


def is_regular(mode: int) -> bool:
    """Whether ``mode`` is a regular file's (executable or not)."""
    return int(mode) in REGULAR


def is_note(path: str, mode: int) -> bool:
    """Whether the tree entry ``path`` with ``mode`` is a note."""
    return is_regular(mode) and path not in TOP_LEVEL_NON_NOTES


def remember(cache: dict[Any, Any], key: Any, value: Any, size: int = 3) -> Any:
    """Put ``value`` in the small cache ``cache``, dropping its oldest entry; return ``value``."""
    if key not in cache and len(cache) >= size:
        cache.pop(next(iter(cache)))
    cache[key] = value
    return value


class Objects:
    """Typed lookups in one repository's object database; ``root`` names it in errors."""

    def __init__(self, repo: pygit2.Repository, root: Path) -> None:
        self._repo = repo
        self._root = root

    def oid(self, hexid: str, what: str = "object") -> Oid:
        """The id ``hexid`` of an object that exists, else ``StoreError``."""
        try:
            oid = Oid(hex=hexid)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"invalid {what} id {hexid!r}") from exc
        if oid not in self._repo:
            raise StoreError(f"{what} {hexid} does not exist in {self._root}")
        return oid

    def commit(self, hexid: str) -> pygit2.Commit:
        """The commit ``hexid``, else ``StoreError``."""
        obj = self._repo.get(self.oid(hexid, "commit"))
        if not isinstance(obj, pygit2.Commit):
            raise StoreError(f"{hexid} is not a commit")
        return obj

    def tree(self, hexid: str | Oid | None) -> pygit2.Tree | None:
        """The tree ``hexid`` (None for None), else ``StoreError``."""
        if hexid is None:
            return None
        oid = hexid if isinstance(hexid, Oid) else self.oid(hexid, "tree")
        obj = self._repo.get(oid)
        if not isinstance(obj, pygit2.Tree):
            raise StoreError(f"{hexid} is not a tree")
        return obj

    def read_blob(self, blob: str) -> bytes:
        """The content of blob ``blob`` (one object lookup: a big note is inflated once)."""
        try:
            obj = self._repo.get(Oid(hex=blob))
        except (ValueError, TypeError) as exc:
            raise StoreError(f"invalid blob id {blob!r}") from exc
        if obj is None:
            raise StoreError(f"blob {blob} does not exist in {self._root}")
        if not isinstance(obj, pygit2.Blob):
            raise StoreError(f"{blob} is not a blob")
        return obj.data

    def blob_size(self, blob: str) -> int | None:
        """The length of blob ``blob`` from its header (no content read), ``None`` if unknown."""
        try:
            _kind, size = self._repo.odb.read_header(Oid(hex=blob))
        except (ValueError, TypeError, KeyError, pygit2.GitError):
            return None
        return int(size)
