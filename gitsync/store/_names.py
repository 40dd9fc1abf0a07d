"""Name rules of the Git store: note paths, state file names, peer names as ref components.

Pure functions with no pygit2 import, so they can be tested and reused without loading libgit2.
"""

from __future__ import annotations

import string
import urllib.parse

from gitsync.errors import StoreError

__all__ = [
    "JOURNAL_COMPONENT",
    "TEMP_PREFIX",
    "UNWRITTEN_COMPONENT",
    "WORKTREE_COMPONENT",
    "check_path",
    "check_state_name",
    "decode_peer",
    "encode_peer",
    "is_temp_name",
]

#: Prefix of the temporary files the store writes next to a note before renaming them over it.
TEMP_PREFIX = ".gitsync-tmp-"

#: ``refs/gitsync/journal/`` holds the journals, so no peer may be encoded to this name.
JOURNAL_COMPONENT = "journal"
#: ``refs/gitsync/worktree`` keeps the stat cache's objects reachable; not a peer either.
WORKTREE_COMPONENT = "worktree"
#: ``refs/gitsync/unwritten`` lists the notes a sync could not write into the folder yet.
UNWRITTEN_COMPONENT = "unwritten"
_RESERVED_COMPONENTS = frozenset({JOURNAL_COMPONENT, WORKTREE_COMPONENT, UNWRITTEN_COMPONENT})

_SAFE = frozenset(string.ascii_letters + string.digits + "-_")
_RESERVED_STATE_NAMES = frozenset({"synced", "head", "branch"})


def _is_git_dir_name(part: str) -> bool:
    """Whether a path component would name a ``.git`` folder (case, NTFS and 8.3 tricks included)."""
    folded = part.lower().rstrip(". ")
    return folded in (".git", "git~1")


def check_path(path: str) -> str:
    """Return ``path`` if it is a safe, normalised path relative to the work tree, else raise.

    Refuses empty paths, absolute paths, ``.``/``..`` components, empty components (``a//b``, ``a/``),
    NUL bytes and any component naming a ``.git`` folder, so a path from a peer or a crafted tree can
    never point outside the notes folder or into the repository's own files.
    """
    if not isinstance(path, str) or not path:
        raise StoreError(f"refusing empty or non-text path {path!r}")
    if "\0" in path:
        raise StoreError(f"refusing path with a NUL byte: {path!r}")
    if path.startswith("/"):
        raise StoreError(f"refusing absolute path {path!r}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise StoreError(f"refusing path {path!r}: it has an empty, '.' or '..' component")
        if _is_git_dir_name(part):
            raise StoreError(f"refusing path {path!r}: it points into a .git folder")
    return path


def check_state_name(name: str) -> str:
    """Return ``name`` if it can be a top-level file of a state commit, else raise ``StoreError``."""
    if not isinstance(name, str) or not name or "/" in name or "\0" in name or name in (".", ".."):
        raise StoreError(f"invalid sync state file name {name!r}: use a plain file name")
    if _is_git_dir_name(name):
        raise StoreError(f"invalid sync state file name {name!r}")
    if name in _RESERVED_STATE_NAMES:
        raise StoreError(f"sync state file name {name!r} is reserved by the store")
    return name


def is_temp_name(path: str) -> bool:
    """Whether ``path`` is one of the store's own temporary files (left behind only by a crash)."""
    return path.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)


def encode_peer(peer: str) -> str:
    """Encode a peer name into one valid, reversible Git ref component.

    Letters, digits, ``-``, ``_`` and inner dots stay as they are; everything else is percent-encoded
    (UTF-8), as are dots that Git forbids (leading, doubled, trailing, or starting a ``.lock`` suffix).
    ``journal``, ``worktree`` and ``unwritten`` get their first letter encoded: the store uses those
    ref names.
    """
    if not isinstance(peer, str) or not peer:
        raise StoreError("peer name must be a non-empty string")
    out: list[str] = []
    n = len(peer)
    for i, ch in enumerate(peer):
        plain_dot = ch == "." and not (
            i == 0 or peer[i - 1] == "." or i == n - 1 or peer[i:].lower() == ".lock"
        )
        if ch in _SAFE or plain_dot:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    encoded = "".join(out)
    if encoded in _RESERVED_COMPONENTS:
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    return encoded


def decode_peer(component: str) -> str:
    """Invert :func:`encode_peer`."""
    return urllib.parse.unquote(component, errors="surrogateescape")
