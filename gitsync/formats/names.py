"""Note names and paths: what a peer proposes, made safe for every common file system.

Peers are not trusted: pysyncml's server joins a SIF ``Subject`` to its root unchecked
(``../`` traversal). Everything here is a pure function on POSIX-style ``str`` paths; the
results are valid on ext4, APFS/HFS+, NTFS/FAT (Windows checkouts of the same repo) and
can never point into ``.git`` or outside the notes folder.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from gitsync.formats.text import decode_text

__all__ = [
    "MAX_COMPONENTS",
    "MAX_COMPONENT_BYTES",
    "MAX_PATH_BYTES",
    "name_from_text",
    "safe_relpath",
    "split_ext",
    "unique_path",
]

MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 1024
MAX_COMPONENTS = 32
MAX_SLUG_CHARS = 60
#: Longest suffix (dot included) still treated as an extension when truncating.
MAX_EXT_CHARS = 16

# C0/C1 controls, DEL, line/paragraph separators and what Windows forbids.
_UNSAFE_CHARS = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029<>:"\\\\|?*]')
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)
# Code points HFS+ ignores when comparing names (git's is_hfs_dotgit list): ".g\u200cit" is ".git" there.
_HFS_IGNORABLE = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")
#: Names that are the repository itself (git's own guards: ``.git`` and its NTFS 8.3 alias).
_REPO_NAMES = frozenset({".git", "git~1"})
#: Names git interprets when they sit in the work tree: kept, but not under that name.
_GIT_CONTROL_NAMES = frozenset({".gitattributes", ".gitignore", ".gitmodules"})
_TITLE_PREFIX = re.compile(r"^(?:title|name)\s*:\s*", re.IGNORECASE)
_SLUG_PUNCTUATION = frozenset(",_+=!@#$%^&()-")


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
    """A safe file name from one path component; ``""`` to drop it, ``None`` to refuse the path."""
    if raw in ("", "."):
        return ""
    if raw == ".." or _is_repo_name(raw):
        return None
    name = _UNSAFE_CHARS.sub("_", raw).rstrip(". ")
    if not name.strip():
        # Only dots and white space: Windows reads ".. " as "..", so treat it as traversal.
        return None if ".." in raw else ""
    name = _fit_component(name, MAX_COMPONENT_BYTES)
    folded = _HFS_IGNORABLE.sub("", name).lower()
    base = name.split(".", 1)[0].rstrip(" ").upper()
    if base in _WINDOWS_RESERVED or folded in _GIT_CONTROL_NAMES:
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
    """Sanitise a peer-proposed relative path, or ``None`` if it is hostile or empty.

    Refused (``None``): absolute paths (a leading ``/`` after any ``./``), any ``..``
    component (also ``.. `` and similar that Windows reads as ``..``), any ``.git``
    component (case-insensitive, also ``GIT~1``, HFS+-ignorable variants), and names with
    nothing usable left. Repaired: NFC normalisation; ``./``, empty and ``.`` components
    dropped, as are white-space-only ones; control characters (C0, DEL, C1), U+2028/2029
    and ``<>:"\\|?*`` replaced by ``_``; trailing dots and
    spaces stripped; Windows device names (``CON``, ``com1.txt``...) and git control files
    (``.gitignore``...) prefixed with ``_``; components cut to 255 UTF-8 bytes and the
    path to 1024 (the extension is kept); past 32 components the deepest folders go.
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


def _slug_char(char: str) -> str:
    if char.isspace():
        return "_"
    if char in _SLUG_PUNCTUATION or unicodedata.category(char)[0] in "LMN":
        return char
    return ""


def name_from_text(body: bytes) -> str:
    """A file name for a text/plain note, from its first non-empty line.

    Like pysyncml (drop a ``title:``/``name:`` prefix, whitespace → ``_``, keep
    ``,_+=!@#$%^&()-``, add ``.txt``) but keeps letters, marks and digits of every script,
    so ``ünïcode note`` gives ``ünïcode_note.txt``, not ``ncode_note.txt``. At most 60
    characters before ``.txt``; ``note.txt`` when nothing is left.
    """
    text = unicodedata.normalize("NFC", decode_text(body, "utf-8"))
    line = next((candidate.strip() for candidate in text.splitlines() if candidate.strip()), "")
    line = _TITLE_PREFIX.sub("", line).strip()
    slug = "".join(_slug_char(char) for char in line)[:MAX_SLUG_CHARS]
    if not slug:
        return "note.txt"
    return _clean_component(slug + ".txt") or "note.txt"


def unique_path(path: str, taken: Callable[[str], bool]) -> str:
    """``path`` if free, else the first free of ``name (2).ext``, ``name (3).ext``, ...

    The suffix goes before the extension, in the same folder; the stem is shortened if
    the name would pass 255 UTF-8 bytes. Comparison (case folding, Unicode forms) is
    ``taken``'s job; it must eventually answer ``False``.
    """
    if not taken(path):
        return path
    folder, slash, leaf = path.rpartition("/")
    stem, ext = split_ext(leaf)
    number = 2
    while True:
        suffix = f" ({number}){ext}"
        candidate_leaf = _truncate_utf8(stem, MAX_COMPONENT_BYTES - _utf8_len(suffix)) + suffix
        candidate = folder + slash + candidate_leaf
        if not taken(candidate):
            return candidate
        number += 1
