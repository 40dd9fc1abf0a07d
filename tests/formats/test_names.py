"""Note names: peer paths made safe, text/plain slugs, collision suffixes."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitsync.formats.names import name_from_text, safe_relpath, split_ext, unique_path


@pytest.mark.parametrize(
    ("proposed", "expected"),
    [
        ("beta.txt", "beta.txt"),
        ("sub/gamma.txt", "sub/gamma.txt"),
        ("sub/ünï.txt", "sub/ünï.txt"),
        ("./a/./b.txt", "a/b.txt"),
        ("a//b.txt", "a/b.txt"),
        ("a/b/", "a/b"),
        # what Linux holds is kept: Windows device names and characters, spaces, dots, case
        ("nul.txt", "nul.txt"),
        ("CON.txt", "CON.txt"),
        ("what?:*<>|.txt", "what?:*<>|.txt"),
        ('w<i>n:d"o|w?s*.txt', 'w<i>n:d"o|w?s*.txt'),
        ("back\\slash.txt", "back\\slash.txt"),
        ("..\\..\\etc\\passwd", "..\\..\\etc\\passwd"),
        ("C:/Users/x.txt", "C:/Users/x.txt"),
        ("Shopping list.txt", "Shopping list.txt"),
        ("trailing. . ./x.txt ", "trailing. . ./x.txt "),
        (" lead.txt", " lead.txt"),
        ("...x", "...x"),
        ("...", "..."),
        ("a/.. /b", "a/.. /b"),
        ("line\x85break\u2029.txt", "line\x85break\u2029.txt"),
        ("\u3000/ /x.txt", "\u3000/ /x.txt"),
        (".github/x.txt", ".github/x.txt"),
        # what it cannot hold is rewritten, only that
        ("a\x00b.txt", "a_b.txt"),
        ("two\nlines.txt", "two_lines.txt"),
        ("tab\there\x7f.txt", "tab_here_.txt"),
        ("esc\x1b[31m.txt", "esc_[31m.txt"),
        ("sub/.gitignore", "sub/_.gitignore"),
        (".GITATTRIBUTES", "_.GITATTRIBUTES"),
        (".gitsync-tmp-x", "_.gitsync-tmp-x"),
    ],
)
def test_safe_relpath_keeps_what_linux_holds(proposed: str, expected: str) -> None:
    assert safe_relpath(proposed) == expected


@pytest.mark.parametrize(
    "proposed",
    [
        "",
        ".",
        "./",
        "/",
        "../x.txt",
        "a/../../x.txt",
        "a/..",
        "/etc/passwd",
        "//server/share",
        ".git/config",
        "sub/.GIT/hooks/pre-commit",
        ".git./config",
        ".git /config",
        ".g\u200cit/config",
        "GIT~1/config",
    ],
)
def test_safe_relpath_refuses(proposed: str) -> None:
    assert safe_relpath(proposed) is None


def test_safe_relpath_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Café/ünï.txt")
    assert nfd != "Café/ünï.txt"
    assert safe_relpath(nfd) == "Café/ünï.txt"


def test_safe_relpath_long_component_keeps_extension() -> None:
    result = safe_relpath("é" * 300 + ".txt")
    assert result is not None
    assert result.endswith("é.txt")
    assert len(result.encode()) <= 255


def test_safe_relpath_keeps_a_long_path_linux_holds() -> None:
    long = "/".join(["d" * 200] * 10) + "/" + "n" * 250 + ".md"
    assert safe_relpath(long) == long  # 2,263 bytes: Linux holds up to 4,095


def test_safe_relpath_long_path_is_cut_to_4095_bytes() -> None:
    result = safe_relpath("/".join(["d" * 200] * 30) + "/" + "n" * 300 + ".md")
    assert result is not None
    assert len(result.encode()) <= 4095
    assert result.endswith(".md")
    assert result.startswith("d" * 200 + "/")


def test_safe_relpath_depth_is_limited() -> None:
    assert safe_relpath("/".join(["d"] * 50) + "/leaf.txt") == "/".join(["d"] * 50) + "/leaf.txt"
    result = safe_relpath("/".join(["d"] * 500) + "/leaf.txt")
    assert result is not None
    parts = result.split("/")
    assert len(parts) == 256
    assert parts[-1] == "leaf.txt"


#: code points HFS+ ignores in names (so ``.g\u200cit`` is ``.git`` there)
_IGNORABLE = "".join(
    map(chr, [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])
)


def _folded(part: str, *, trailing: bool = True) -> str:
    """``part`` as Git (on HFS+ too) compares it; ``trailing``: also without trailing dots and
    spaces (what Git does for ``.git`` itself, not for its control files)."""
    bare = "".join(c for c in part if c not in _IGNORABLE)
    return (bare.rstrip(". ") if trailing else bare).lower()


def _component_storable(part: str) -> bool:
    """The rule, said independently: what one component of a stored path may be."""
    return (
        part not in ("", ".", "..")
        and not any(ord(c) < 0x20 or c == "\x7f" for c in part)
        and len(part.encode()) <= 255
        and _folded(part) not in (".git", "git~1")
        and _folded(part, trailing=False) not in (".gitignore", ".gitattributes", ".gitmodules")
        and not part.startswith(".gitsync-tmp-")
    )


_NAME_CHARS = st.sampled_from([*'aB. -_/\\?*:<>|"\x00\n\t\x7fé日😀', "\u0301", "..", ".git", "nul"])
#: components that sit at an edge of the rule: refused, rewritten, or kept though they look odd
_EDGE_PARTS = st.sampled_from([
    "", ".", "..", "...", ".git", ".GIT", ".git.", ".git ", ".g\u200cit", "GIT~1", ".gitx", "git",
    ".gitignore", ".GitAttributes", ".gitmodules.", ".gitsync-tmp-1", ".gitsync", "a\x00b", "tab\t",
    "\x7f", "nul", "CON", "e\u0301", " ", "é" * 128, "x" * 255, "x" * 256, "x" * 300 + ".txt",
])
_PART = st.one_of(_EDGE_PARTS, st.text(max_size=12), st.lists(_NAME_CHARS, max_size=6).map("".join))
_PATHS = st.one_of(
    st.lists(st.one_of(_EDGE_PARTS, st.just("n.txt")), min_size=1, max_size=4).map("/".join),
    st.text(max_size=80),
    st.lists(_NAME_CHARS, max_size=30).map("".join),
    st.builds(
        lambda lead, parts: lead + "/".join(parts),
        st.sampled_from(["", "", "./", "/", ".//", "././", "//"]),
        st.lists(_PART, max_size=8),
    ),
    # deep and long paths: the limits on depth (256) and length (4095 bytes)
    st.lists(st.sampled_from(["d", "é" * 100, "x" * 200, "n.md"]), min_size=20, max_size=300).map("/".join),
)


# every edge of the rule, always tried (whatever the random draw), then random paths
@example("sub/.GITIGNORE/n.txt")
@example(".Git\u200dModules")
@example("a/.gitsync-tmp-1")
@example(".g\u200cit/config")
@example("a/GIT~1.")
@example("a/../b")
@example(".//etc/passwd")
@example("a\x00b/tab\there\x7f")
@example("Cafe\u0301/e\u0301.txt")
@example("x" * 300 + ".txt")
@example("/".join(["d"] * 300) + "/leaf.txt")
@example("/".join(["x" * 200] * 30) + "/note.md")
@given(_PATHS)
def test_safe_relpath_rewrites_only_what_cannot_be_stored(proposed: str) -> None:
    result = safe_relpath(proposed)
    nfc = unicodedata.normalize("NFC", proposed)
    rest = nfc
    while rest.startswith("./"):
        rest = rest[2:]
    parts_in = [p for p in rest.split("/") if p not in ("", ".")]
    refused = [p for p in rest.split("/") if p == ".." or _folded(p) in (".git", "git~1")]
    hostile = rest.startswith("/") or bool(refused)
    if hostile or not parts_in:
        assert result is None
        return
    assert result is not None
    # whatever comes out can be stored: every component, the whole path
    assert result == unicodedata.normalize("NFC", result)
    assert not result.startswith("/")
    assert len(result.encode()) <= 4095
    parts = result.split("/")
    assert 1 <= len(parts) <= 256
    assert all(_component_storable(part) for part in parts)
    assert safe_relpath(result) == result
    kept = [*parts_in[:255], parts_in[-1]]
    if len(parts_in) > 256 and len("/".join(kept).encode()) <= 4095 and all(map(_component_storable, kept)):
        assert result == "/".join(kept)  # too deep: the first 255 folders and the note itself are kept
    total = len("/".join(parts_in).encode())
    # whatever could be stored came out exactly as proposed (NFC, empty and "." parts aside)
    if len(parts_in) <= 256 and total <= 4095 and all(_component_storable(part) for part in parts_in):
        assert result == "/".join(parts_in)
    elif len(parts_in) <= 256 and total + len(parts_in) <= 4095:  # a rewrite adds a byte at most
        # only the components that could not be stored changed
        assert len(parts) == len(parts_in)
        assert all(a == b for a, b in zip(parts_in, parts, strict=True) if _component_storable(a))
    else:  # a path too long or too deep: leading folders kept as they were, the note's extension too
        assert all(a == b for a, b in zip(parts_in, parts[:-1], strict=False) if _component_storable(a))
        leaf_ext = split_ext(parts_in[-1])[1]
        if _component_storable(parts_in[-1]) and leaf_ext:
            assert parts[-1].endswith(leaf_ext)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Shopping list\nmilk\n", "Shopping list.txt"),
        (b"\n\n   \nTitle: My Note\nbody", "My Note.txt"),
        (b"NAME:  x y\n", "x y.txt"),
        ("ünïcode note".encode(), "ünïcode note.txt"),
        ("日本語のメモ\n".encode(), "日本語のメモ.txt"),
        ("नमस्ते दुनिया".encode(), "नमस्ते दुनिया.txt"),
        (b"a/b\\c:d*e?f.g,h", "a_b\\c:d*e?f.g,h.txt"),
        (b"Server side memo\r\nsecond line\r\n\r\n", "Server side memo.txt"),
        (b"", "note.txt"),
        (b"\n \n", "note.txt"),
        (b"title:\n", "note.txt"),
        ("😀 🎉".encode(), "😀 🎉.txt"),
        (b"...", "note.txt"),
        (b"...///", "___.txt"),
        (b".hidden", "hidden.txt"),
        (b"CON", "CON.txt"),
        (b"tab\there", "tab_here.txt"),
        (b"caf\xe9 latin-1", "café latin-1.txt"),
    ],
)
def test_name_from_text(body: bytes, expected: str) -> None:
    assert name_from_text(body) == expected


def test_name_from_text_is_at_most_60_chars_plus_ext() -> None:
    name = name_from_text("ü".encode() * 100)
    assert name == "ü" * 60 + ".txt"


@given(st.binary(max_size=200))
def test_name_from_text_is_always_a_safe_file_name(body: bytes) -> None:
    name = name_from_text(body)
    assert name.endswith(".txt")
    assert safe_relpath(name) == name
    assert "/" not in name
    assert not name.startswith(".")
    assert len(name) <= 65


def test_unique_path() -> None:
    taken = {"a.txt", "a (2).txt", "sub/b", "sub/b (2)", "sub/b (3)"}
    assert unique_path("new.txt", taken.__contains__) == "new.txt"
    assert unique_path("a.txt", taken.__contains__) == "a (3).txt"
    assert unique_path("sub/b", taken.__contains__) == "sub/b (4)"
    assert unique_path(".bashrc", {".bashrc"}.__contains__) == ".bashrc (2)"
    assert unique_path("x.tar.gz", {"x.tar.gz"}.__contains__) == "x.tar (2).gz"


def test_unique_path_case_insensitivity_is_the_callers_choice() -> None:
    existing = {"readme.txt"}
    assert unique_path("README.txt", lambda p: p.lower() in existing) == "README (2).txt"
    assert unique_path("README.txt", existing.__contains__) == "README.txt"


def test_unique_path_stays_within_255_bytes() -> None:
    long = "x" * 251 + ".txt"
    result = unique_path(long, {long}.__contains__)
    assert result.endswith(" (2).txt")
    assert len(result.encode()) <= 255


def test_split_ext() -> None:
    assert split_ext("a.txt") == ("a", ".txt")
    assert split_ext(".hidden") == (".hidden", "")
    assert split_ext("noext") == ("noext", "")
    assert split_ext("a." + "x" * 30) == ("a." + "x" * 30, "")


def test_unique_path_remembers_the_next_suffix() -> None:
    """Thousands of notes of one name (text/plain phones: one first line) cost O(1) each."""
    taken: set[str] = set()
    calls = 0

    def is_taken(path: str) -> bool:
        nonlocal calls
        calls += 1
        return path in taken

    memo: dict[str, int] = {}
    for _ in range(5000):
        taken.add(unique_path("Shopping list.txt", is_taken, memo))
    assert len(taken) == 5000
    assert "Shopping list (5000).txt" in taken
    assert calls <= 2 * 5000  # without the memo: 12.5 million
