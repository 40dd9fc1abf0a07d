"""Deterministic note folders for the benchmarks.

Two flavours, both seeded so every run (and every machine) gets byte-identical folders:

``rich``
    What a real notes folder looks like: nested folders (one to three levels, about a hundred notes
    per folder), file names taken from the note's title (12 % of them non-ASCII: accents, Greek,
    Cyrillic, CJK; with the folder names, half the paths are), ``.txt`` and ``.md`` notes, and text
    with non-ASCII words in it.  Sizes follow a log-normal law (median ~740 bytes, mean ~1.1 KiB, a
    few notes of tens of KiB), like real notes.
``flat``
    For runs that involve pysyncml: its client crashes on non-ASCII names or text and its server
    keeps no sub-folders.  ASCII only, one folder, ``note-00000.txt`` ..., the same size law.

``modify`` appends a line to every 100th note (1 %), offset by a round number, so that each
follow-up sync of a run changes other notes.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FLAVOURS", "generate", "list_notes", "modify"]

FLAVOURS = ("rich", "flat")


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _split(
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar "
    "papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu sync note git remote "
    "local change merge commit branch server client message item store peer update delete add "
    "ledger budget meeting todo idea draft review plan call email shopping milk bread eggs "
    "tomorrow today monday friday project deadline report garden holiday train ticket doctor "
    "recipe flour butter sugar oven minutes chapter book film music birthday present"
)
# Words with accents, umlauts, other scripts: the rich flavour mixes them into titles and text.
_WORDS_INTL = _split(
    "café crème brûlée naïve über Größe Straße Zoë Ångström façade jalapeño São Paulo Kraków "
    "Ελλάδα привет заметка встреча список 東京 会議 メモ 買い物 日記 북마크 ☕ —"
)
_TOP_FOLDERS = (
    "Work",
    "Personal",
    "Recipes",
    "Reisen",
    "Küche",
    "Проекты",
    "日記",
    "Archive",
    "Books",
    "Ideas",
    "Health",
    "Finance",
)
_SUB_FOLDERS = (
    "2021",
    "2022",
    "2023",
    "2024",
    "2025",
    "Meetings",
    "Drafts",
    "Été",
    "Notizen",
    "Разное",
    "Later",
    "Misc",
)
# Folders with their share of the notes ("" = top level).
_NOTES_PER_FOLDER = 100


def _text(rng: random.Random, size: int, intl: float) -> str:
    """Text of about ``size`` UTF-8 bytes: a title line, then lines of 50-78 characters."""
    title = " ".join(_word(rng, intl) for _ in range(rng.randint(2, 5))).capitalize()
    lines = [title]
    total = len(title.encode()) + 1
    line: list[str] = []
    width = rng.randint(50, 78)
    while total < size:
        w = _word(rng, intl)
        if rng.random() < 0.08:
            w += str(rng.randint(0, 9999))
        if rng.random() < 0.05:
            w += rng.choice(".,;:!?")
        line.append(w)
        if sum(len(x) + 1 for x in line) > width:
            text = " ".join(line)
            lines.append(text)
            total += len(text.encode()) + 1
            line = []
            width = rng.randint(50, 78)
            if rng.random() < 0.1:
                lines.append("")
                total += 1
    return "\n".join(lines) + "\n"


def _word(rng: random.Random, intl: float) -> str:
    return rng.choice(_WORDS_INTL) if intl and rng.random() < intl else rng.choice(_WORDS)


def _size(rng: random.Random) -> int:
    """Note size in bytes: log-normal, median ~700 B, clipped to 40 B .. 48 KiB."""
    return max(40, min(48 * 1024, int(math.exp(rng.gauss(math.log(700), 0.9)))))


def _folders(rng: random.Random, n: int) -> list[str]:
    """About ``n / 100`` folders, one to three levels deep, plus the top level."""
    count = max(1, n // _NOTES_PER_FOLDER)
    out = [""]
    seen = {""}
    while len(out) < count:
        depth = rng.choice((1, 1, 2, 2, 2, 3))
        parts = [rng.choice(_TOP_FOLDERS)]
        if depth >= 2:
            parts.append(rng.choice(_SUB_FOLDERS))
        if depth >= 3:
            parts.append(f"{rng.choice(_SUB_FOLDERS)} {rng.randint(1, 99)}")
        path = "/".join(parts)
        if path not in seen:
            seen.add(path)
            out.append(path)
    return out


def _slug(title: str) -> str:
    keep = "".join(ch if (ch.isalnum() or ch in " -_,()") else " " for ch in title)
    return " ".join(keep.split())[:48].strip() or "note"


def generate(folder: str | os.PathLike[str], n: int, *, flavour: str = "rich", seed: int = 1234) -> int:
    """Write ``n`` notes below ``folder`` (created); return the number of bytes written."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{seed}-{flavour}")
    total = 0
    if flavour == "flat":
        for i in range(n):
            data = _text(rng, _size(rng), 0.0).encode("ascii")
            (root / f"note-{i:05d}.txt").write_bytes(data)
            total += len(data)
        return total
    folders = _folders(rng, n)
    used: set[str] = set()
    for i in range(n):
        intl = 0.2 if rng.random() < 0.2 else 0.01
        text = _text(rng, _size(rng), intl)
        folder_name = folders[i % len(folders)] if i >= len(folders) else folders[i]
        ext = ".md" if rng.random() < 0.25 else ".txt"
        stem = _slug(text.split("\n", 1)[0])
        name = f"{folder_name}/{stem}{ext}" if folder_name else f"{stem}{ext}"
        k = 2
        base = name
        while name.lower() in used:
            name = base[: -len(ext)] + f" ({k}){ext}"
            k += 1
        used.add(name.lower())
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        total += len(data)
    return total


def list_notes(folder: str | os.PathLike[str]) -> Iterator[str]:
    """Relative paths of the notes below ``folder``, sorted (dot-files and dot-folders skipped)."""
    root = str(folder)
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, root)
        for name in filenames:
            if not name.startswith("."):
                out.append(name if rel == "." else f"{rel}/{name}")
    yield from sorted(out)


def modify(folder: str | os.PathLike[str], pct: float, rnd: int, *, stride_offset: int = 0) -> list[str]:
    """Append a line to ``pct`` % of the notes (every ``100/pct``-th, offset by ``rnd``); return them.

    ``stride_offset`` shifts the choice, so two folders holding the same notes can be edited on
    different notes (a two-way sync without conflicts).
    """
    step = max(1, round(100 / pct))
    off = (rnd + stride_offset) % step
    changed = []
    for i, rel in enumerate(list_notes(folder)):
        if i % step == off:
            with open(os.path.join(folder, rel), "a", encoding="utf-8") as fh:
                fh.write(f"edit round {rnd}: {'modified ' * 4}\n")
            changed.append(rel)
    return changed
