"""Three-way merge of note contents (``git merge-file`` with diff3 markers), bytes in, bytes out.

Trivial cases (a side unchanged, both sides equal) resolve here without libgit2, even for binary
content; the rest goes through libgit2's ``git_merge_file_from_index``.
"""

from __future__ import annotations

from typing import Any

import pygit2
from pygit2 import IndexEntry
from pygit2.enums import FileMode, MergeFavor, MergeFileFlag

from gitsync.errors import StoreError

__all__ = ["merge3"]


def merge3(repo: pygit2.Repository, base: bytes | None, ours: bytes, theirs: bytes,
           labels: tuple[str, str, str]) -> tuple[bytes, bool]:
    """``(merged, clean)``; conflicts get diff3 markers labelled (ours, base, theirs).

    Binary content (a NUL byte) that really changed on both sides returns ``(ours, False)``.
    """
    if ours == theirs:
        return ours, True
    if base is not None:
        if base == ours:
            return theirs, True
        if base == theirs:
            return ours, True
    if b"\0" in ours or b"\0" in theirs or (base is not None and b"\0" in base):
        return ours, False
    try:
        return _merge_file(repo, base, ours, theirs, labels)
    except pygit2.GitError as exc:
        raise StoreError(f"content merge failed: {exc}") from exc


# pygit2's cffi handle (pinned: pygit2 1.21.x, see pyproject)
def _merge_file(repo: pygit2.Repository, base: bytes | None, ours: bytes, theirs: bytes,
                labels: tuple[str, str, str]) -> tuple[bytes, bool]:
    """``git_merge_file_from_index`` with labels and diff3 style; bytes in, bytes out.

    pygit2 exposes no ``merge_file`` and its ``merge_file_from_index`` takes no options and decodes
    the result as UTF-8, so this uses pygit2's own cffi objects (``repo._repo``,
    ``IndexEntry._to_c``): private API, hence the pygit2 pin.
    """
    try:
        from pygit2.errors import check_error
        from pygit2.ffi import C, ffi
    except ImportError as exc:  # pragma: no cover - only with another pygit2
        raise StoreError(f"merge3 needs pygit2's cffi module: {exc}") from exc
    if not hasattr(IndexEntry, "_to_c") or not hasattr(repo, "_repo"):  # pragma: no cover
        raise StoreError(f"merge3 is not supported with pygit2 {getattr(pygit2, '__version__', '?')}")
    crepo: Any = repo
    keep: list[Any] = []
    cents: list[Any] = []
    for data in (base, ours, theirs):
        if data is None:
            cents.append(ffi.NULL)
            continue
        entry: Any = IndexEntry("note", repo.create_blob(data), FileMode.BLOB)
        centry, cpath = entry._to_c()
        keep += [centry, cpath]
        cents.append(centry)
    our_label, base_label, their_label = labels
    opts: Any = ffi.new("git_merge_file_options *")
    opts.version = 1
    cl = [ffi.new("char[]", label.encode("utf-8")) for label in (base_label, our_label, their_label)]
    opts.ancestor_label, opts.our_label, opts.their_label = cl
    opts.favor = int(MergeFavor.NORMAL)
    opts.flags = int(MergeFileFlag.STYLE_DIFF3)
    opts.marker_size = 0
    out: Any = ffi.new("git_merge_file_result *")
    check_error(C.git_merge_file_from_index(out, crepo._repo, cents[0], cents[1], cents[2], opts))
    try:
        clean = bool(out.automergeable)
        merged = bytes(ffi.buffer(out.ptr, out.len)[:]) if out.ptr != ffi.NULL else b""
    finally:
        C.git_merge_file_result_free(out)
    if not clean and not merged:  # libgit2 calls it binary and produces nothing
        return ours, False
    return merged, clean
