"""Collections of note paths that answer "is this name taken?" the way names are compared.

:meth:`gitsync.sync.payload.Wire.path_for` compares paths case-insensitively (``Notes.txt`` and
``notes.txt`` are one file on macOS and Windows checkouts).  Building a lower-cased copy of every
path for each incoming note made a slow sync of N notes cost N² (over a minute at 20,000 notes);
these collections keep that lower-cased index up to date as paths come and go, so the question
costs O(1) (O(depth) with the file/folder check: ``a`` and ``a/b`` cannot both be notes, so a name
clashing that way is taken too).  They are a plain ``set``/``dict`` to everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any, Self

__all__ = ["PathMap", "PathSet"]


def _count(counts: dict[str, int], key: str, step: int) -> None:
    n = counts.get(key, 0) + step
    if n > 0:
        counts[key] = n
    else:
        counts.pop(key, None)


def _fold(counts: dict[str, int], path: str, step: int, dirs: dict[str, int] | None = None) -> None:
    """Count ``path`` (lower-cased) in ``counts`` and each of its folders in ``dirs``."""
    key = path.lower()
    _count(counts, key, step)
    if dirs is not None:
        folder = key.rpartition("/")[0]
        while folder:
            _count(dirs, folder, step)
            folder = folder.rpartition("/")[0]


def _taken(
    counts: dict[str, int],
    exact: set[str] | dict[str, Any],
    candidate: str,
    besides: str | None,
    dirs: dict[str, int] | None = None,
) -> bool:
    """Whether ``candidate`` is a path in use (ignoring case), or clashes with one: it is a folder
    of other notes, or one of its folders is a note (a file and a folder cannot share a name)."""
    key = candidate.lower()
    mine = besides.lower() if besides is not None and besides in exact else None
    n = counts.get(key, 0)
    if n and mine == key:
        n -= 1
    if n > 0:
        return True
    if dirs is None:
        return False
    inside = dirs.get(key, 0)
    if inside and mine is not None and mine.startswith(key + "/"):
        inside -= 1
    if inside > 0:
        return True
    folder = key.rpartition("/")[0]
    while folder:
        if counts.get(folder, 0) - (1 if mine == folder else 0) > 0:
            return True
        folder = folder.rpartition("/")[0]
    return False


class PathSet(set[str]):
    """A set of paths; :meth:`taken` tells whether a name is in it, ignoring case."""

    def __init__(self, paths: Iterable[str] = ()) -> None:
        super().__init__(paths)
        self._folded: dict[str, int] = {}
        self._dirs: dict[str, int] = {}
        for path in self:
            _fold(self._folded, path, 1, self._dirs)

    def taken(self, candidate: str, besides: str | None = None) -> bool:
        """Whether a path other than ``besides`` equals ``candidate`` ignoring case, or clashes with
        one (file/folder)."""
        return _taken(self._folded, self, candidate, besides, self._dirs)

    def holds(self, candidate: str) -> bool:
        """Whether ``candidate`` is one of the paths, ignoring case."""
        return candidate.lower() in self._folded

    def add(self, path: str) -> None:
        if path not in self:
            super().add(path)
            _fold(self._folded, path, 1, self._dirs)

    def update(self, *others: Iterable[str]) -> None:
        for other in others:
            for path in other:
                self.add(path)

    def discard(self, path: object) -> None:
        if isinstance(path, str) and path in self:
            super().discard(path)
            _fold(self._folded, path, -1, self._dirs)

    def remove(self, path: str) -> None:
        if path not in self:
            raise KeyError(path)
        self.discard(path)

    def pop(self) -> str:
        path = super().pop()
        _fold(self._folded, path, -1, self._dirs)
        return path

    def clear(self) -> None:
        super().clear()
        self._folded.clear()
        self._dirs.clear()

    def difference_update(self, *others: Iterable[Any]) -> None:
        for other in others:
            for path in list(other):
                self.discard(path)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        super().intersection_update(*others)
        self._rebuild()

    def symmetric_difference_update(self, other: Iterable[str]) -> None:
        super().symmetric_difference_update(other)
        self._rebuild()

    def __ior__(self, other: Set[str]) -> Self:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __isub__(self, other: Set[object]) -> Self:
        self.difference_update(other)
        return self

    def __iand__(self, other: Set[object]) -> Self:
        self.intersection_update(other)
        return self

    def __ixor__(self, other: Set[str]) -> Self:  # type: ignore[override,misc]
        self.symmetric_difference_update(other)
        return self

    def _rebuild(self) -> None:
        self._folded.clear()
        self._dirs.clear()
        for path in self:
            _fold(self._folded, path, 1, self._dirs)


class PathMap(dict[str, str]):
    """A dict keyed by path; :meth:`taken` tells whether a key equals a name, ignoring case."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(items)
        self._folded: dict[str, int] = {}
        self._dirs: dict[str, int] = {}
        for path in self:
            _fold(self._folded, path, 1, self._dirs)

    def taken(self, candidate: str, besides: str | None = None) -> bool:
        """Whether a key other than ``besides`` equals ``candidate`` ignoring case, or clashes with
        one (file/folder)."""
        return _taken(self._folded, self, candidate, besides, self._dirs)

    def holds(self, candidate: str) -> bool:
        """Whether ``candidate`` is a key, ignoring case."""
        return candidate.lower() in self._folded

    def __setitem__(self, path: str, value: str) -> None:
        if path not in self:
            _fold(self._folded, path, 1, self._dirs)
        super().__setitem__(path, value)

    def __delitem__(self, path: str) -> None:
        super().__delitem__(path)
        _fold(self._folded, path, -1, self._dirs)

    def pop(self, path: str, *default: Any) -> Any:
        if path in self:
            _fold(self._folded, path, -1, self._dirs)
            return super().pop(path)
        if default:
            return default[0]
        raise KeyError(path)

    def popitem(self) -> tuple[str, str]:
        path, value = super().popitem()
        _fold(self._folded, path, -1, self._dirs)
        return path, value

    def setdefault(self, path: str, default: str) -> str:
        if path not in self:
            self[path] = default
        return self[path]

    def update(self, *args: Any, **kwargs: str) -> None:
        for path, value in dict(*args, **kwargs).items():
            self[path] = value

    def clear(self) -> None:
        super().clear()
        self._folded.clear()
        self._dirs.clear()

    def __ior__(self, other: Any) -> Self:  # type: ignore[override,misc]
        self.update(other)
        return self

    def copy(self) -> dict[str, str]:  # a plain dict: copies are snapshots
        return dict(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (PathMap, (dict(self),))


class IdMap(dict[str, str]):
    """id → path, with the reverse lookup kept current (``id_at``) so it is O(1) per note."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._ids: dict[str, str] = {}
        for key, path in pairs:
            self[key] = path

    def __setitem__(self, key: str, path: str) -> None:
        old = self.get(key)
        if old is not None and self._ids.get(old) == key:
            del self._ids[old]
        super().__setitem__(key, path)
        self._ids[path] = key

    def __delitem__(self, key: str) -> None:
        path = self[key]
        super().__delitem__(key)
        if self._ids.get(path) == key:
            del self._ids[path]

    def pop(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        """Remove ``key`` (and its reverse entry); return its path or ``default``."""
        if key not in self:
            return default
        path = self[key]
        del self[key]
        return path

    def id_at(self, path: str) -> str | None:
        """The id whose note is at ``path`` (the last one set there)."""
        return self._ids.get(path)
