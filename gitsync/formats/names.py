"""Note names and paths: what a peer proposes, kept whenever this file system can hold it.

Peers are not trusted: pysyncml's server joins a SIF ``Subject`` to its root unchecked
(``../`` traversal).  Everything here is a pure function on POSIX-style ``str`` paths.  The rule
is Linux's (where the notes folder lives) plus what Git and our own state cannot hold:

* refused outright (``None``): absolute paths, ``..`` components, any component Git treats as its
  repository (``.git``, also ``.GIT``, ``git~1``, ``.git.`` and HFS+-ignorable variants: Git
  refuses them in every tree);
* rewritten, because nothing here can store them: NUL, and the other C0 controls and DEL (our
  state files are lines; logs and terminals would act on them) become ``_``; components over
  255 UTF-8 bytes are shortened (the extension kept); the path is kept under 4,095 bytes; Git
  control files (``.gitignore``...) and our temporary-file prefix get a leading ``_`` (Git or
  the store would act on them);
* kept as they are: spaces, case, dots (leading and trailing), backslashes, Unicode, and names
  Windows reserves or refuses (``nul.txt``, ``what?:*<>|.txt``, ``CON``).

Empty and ``.`` components are dropped; names are NFC-normalised (``Café`` typed on macOS and on
Linux is one note).  A rewritten name is only how the note is stored here: the drivers remember the
peer's own name and send that back (:class:`gitsync.sync.payload.Wire`), so the device that made a
note never sees it renamed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, MutableMapping

from gitsync.formats.text import decode_text

__all__ = [
    "MAX_COMPONENTS",
    "MAX_COMPONENT_BYTES",
    "MAX_PATH_BYTES",
    "name_from_text",
    "safe_relpath",
    "split_ext",
    "storable",
    "unique_path",
]

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4095
MAX_COMPONENTS = 256
MAX_SLUG_CHARS = 60
#: Longest suffix (dot included) still treated as an extension when truncating.
MAX_EXT_CHARS = 16

#: What no file name here holds faithfully: NUL (the kernel), and the other C0 controls and DEL,
#: which our line-based state files, logs and terminal output cannot carry as they are.
_UNSTORABLE = re.compile("[\x00-\x1f\x7f]")
# Code points HFS+ ignores when comparing names (git's is_hfs_dotgit list): ".g\u200cit" is ".git" there.
_HFS_IGNORABLE = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")
#: Names that are the repository itself (git's own guards: ``.git`` and its NTFS 8.3 alias).
_REPO_NAMES = frozenset({".git", "git~1"})
#: Names git interprets when they sit in the work tree: kept, but not under that name.
_GIT_CONTROL_NAMES = frozenset({".gitattributes", ".gitignore", ".gitmodules"})
#: The store's temporary files (``gitsync.store._names.TEMP_PREFIX``): a note must not look like one.
_TEMP_PREFIX = ".gitsync-tmp-"
_TITLE_PREFIX = re.compile(r"^(?:title|name)\s*:\s*", re.IGNORECASE)
#: In a name made from a note's first line: what cannot be in one component, and other controls.
_SLUG_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f/\u2028\u2029]")


def split_ext(name: str) -> tuple[str, str]:
    """``("stem", ".ext")`` of a file name; dot-files and over-long suffixes have no extension."""
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > MAX_EXT_CHARS:
        return name, ""
    return name[:dot], name[dot:]


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` UTF-8 bytes (never splits a character)."""
    if limit <= 0:
        return ""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _fit_component(name: str, limit: int) -> str:
    """Shorten ``name`` to ``limit`` UTF-8 bytes, keeping its extension when there is room."""
    if _utf8_len(name) <= limit:
        return name
    stem, ext = split_ext(name)
    if _utf8_len(ext) >= limit:
        stem, ext = name, ""
    stem = _truncate_utf8(stem, limit - _utf8_len(ext)).rstrip(". ")
    return (stem or "_") + ext


def _is_repo_name(name: str) -> bool:
    return _HFS_IGNORABLE.sub("", name).rstrip(". ").lower() in _REPO_NAMES


def _clean_component(raw: str) -> str | None:
    """A storable file name from one path component; ``""`` to drop it, ``None`` to refuse the path."""
    if raw in ("", "."):
        return ""
    if raw == ".." or _is_repo_name(raw):
        return None
    name = _UNSTORABLE.sub("_", raw)
    name = _fit_component(name, MAX_COMPONENT_BYTES)
    folded = _HFS_IGNORABLE.sub("", name).lower()
    if folded in _GIT_CONTROL_NAMES or name.startswith(_TEMP_PREFIX):
        name = _fit_component("_" + name, MAX_COMPONENT_BYTES)
    return name


def _fit_path(parts: list[str]) -> list[str]:
    """Keep the path within MAX_PATH_BYTES: shorten the file name, then drop the deepest folders."""
    if _utf8_len("/".join(parts)) <= MAX_PATH_BYTES:
        return parts
    *dirs, leaf = parts
    _stem, ext = split_ext(leaf)
    minimum = min(_utf8_len(leaf), _utf8_len(ext) + 16)
    kept: list[str] = []
    used = 0
    for folder in dirs:
        cost = _utf8_len(folder) + 1
        if used + cost + minimum > MAX_PATH_BYTES:
            break
        kept.append(folder)
        used += cost
    return [*kept, _fit_component(leaf, MAX_PATH_BYTES - used)]


def safe_relpath(name: str) -> str | None:
    """The path a peer-proposed relative path is stored at, or ``None`` if it is hostile or empty.

    See the module's docstring for the rule: whatever this file system can hold is kept as it is
    (NFC-normalised, ``./``, empty and ``.`` components dropped); only what it cannot hold is
    rewritten; traversal and the repository's own names are refused.
    """
    path = unicodedata.normalize("NFC", name)
    while path.startswith("./"):
        path = path[2:]
    if path.startswith("/"):
        return None
    parts: list[str] = []
    for raw in path.split("/"):
        cleaned = _clean_component(raw)
        if cleaned is None:
            return None
        if cleaned:
            parts.append(cleaned)
    if not parts:
        return None
    if len(parts) > MAX_COMPONENTS:
        parts = [*parts[: MAX_COMPONENTS - 1], parts[-1]]
    return "/".join(_fit_path(parts))


def storable(name: str) -> bool:
    """Whether ``name`` is stored exactly as proposed (no rewrite, no refusal)."""
    return safe_relpath(name) == name


def name_from_text(body: bytes) -> str:
    """A file name for a text/plain note, from its first non-empty line.

    The line as it is — spaces, case, punctuation, every script — with a ``title:``/``name:``
    prefix dropped (pysyncml writes one), ``/`` and control characters turned into ``_``, leading
    dots dropped (no hidden files), at most 60 characters, and ``.txt`` added: "Shopping list"
    gives ``Shopping list.txt``.  ``note.txt`` when nothing is left.
    """
    text = unicodedata.normalize("NFC", decode_text(body, "utf-8"))
    line = next((candidate.strip() for candidate in text.splitlines() if candidate.strip()), "")
    line = _TITLE_PREFIX.sub("", line).strip()
    slug = _SLUG_UNSAFE.sub("_", line)[:MAX_SLUG_CHARS].strip().lstrip(".").strip()
    if not slug:
        return "note.txt"
    return _clean_component(slug + ".txt") or "note.txt"


def unique_path(
    path: str, taken: Callable[[str], bool], memo: MutableMapping[str, int] | None = None
) -> str:
    """``path`` if free, else the first free of ``name (2).ext``, ``name (3).ext``, ...

    The suffix goes before the extension, in the same folder; the stem is shortened if the name
    would pass 255 UTF-8 bytes.  Comparison (case folding, Unicode forms, file/folder clashes) is
    ``taken``'s job; it must eventually answer ``False``.  ``memo`` (kept for a session) remembers
    the next number to try per name, so N notes of one name cost O(N), not O(N²).
    """
    if not taken(path):
        return path
    folder, slash, leaf = path.rpartition("/")
    stem, ext = split_ext(leaf)
    key = path.lower()
    number = memo.get(key, 2) if memo is not None else 2
    while True:
        suffix = f" ({number}){ext}"
        candidate_leaf = _truncate_utf8(stem, MAX_COMPONENT_BYTES - _utf8_len(suffix)) + suffix
        candidate = folder + slash + candidate_leaf
        if not taken(candidate):
            if memo is not None:
                memo[key] = number + 1
            return candidate
        number += 1
