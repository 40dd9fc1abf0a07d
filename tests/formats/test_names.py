"""Note names: peer paths made safe, text/plain slugs, collision suffixes."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
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
        ("CON.txt", "_CON.txt"),
        ("con", "_con"),
        ("sub/lpt9.log", "sub/_lpt9.log"),
        ("com¹.txt", "_com¹.txt"),
        ("NUL .txt", "_NUL .txt"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ("a\x00b.txt", "a_b.txt"),
        ("tab\there\x7f.txt", "tab_here_.txt"),
        ('w<i>n:d"o|w?s*.txt', "w_i_n_d_o_w_s_.txt"),
        ("back\\slash.txt", "back_slash.txt"),
        ("..\\..\\etc\\passwd", ".._.._etc_passwd"),
        ("C:/Users/x.txt", "C_/Users/x.txt"),
        ("trailing. . ./x.txt ", "trailing/x.txt"),
        ("sub/.gitignore", "sub/_.gitignore"),
        (".GITATTRIBUTES", "_.GITATTRIBUTES"),
        (".github/x.txt", ".github/x.txt"),
        ("...x", "...x"),
        ("\u2028/.", "_"),
        ("line\x85break\u2029.txt", "line_break_.txt"),
        ("\u3000/ /x.txt", "x.txt"),
        (" lead.txt", " lead.txt"),
    ],
)
def test_safe_relpath_repairs(proposed: str, expected: str) -> None:
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
        "...",
        "a/.. /b",
        " /\u3000",
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


def test_safe_relpath_long_path_is_cut_to_1024_bytes() -> None:
    result = safe_relpath("/".join(["d" * 200] * 10) + "/" + "n" * 300 + ".md")
    assert result is not None
    assert len(result.encode()) <= 1024
    assert result.endswith(".md")
    assert result.startswith("d" * 200 + "/")


def test_safe_relpath_depth_is_limited() -> None:
    result = safe_relpath("/".join(["d"] * 50) + "/leaf.txt")
    assert result is not None
    parts = result.split("/")
    assert len(parts) == 32
    assert parts[-1] == "leaf.txt"


@given(st.text(max_size=80))
def test_safe_relpath_results_are_safe(proposed: str) -> None:
    result = safe_relpath(proposed)
    if result is None:
        return
    assert result == unicodedata.normalize("NFC", result)
    assert not result.startswith("/")
    assert len(result.encode()) <= 1024
    parts = result.split("/")
    assert 1 <= len(parts) <= 32
    for part in parts:
        assert part not in ("", ".", "..")
        assert part.lower() != ".git"
        assert len(part.encode()) <= 255
        assert not any(ord(c) < 0x20 or c in '<>:"\\|?*\x7f' for c in part)
        assert not part.endswith((".", " "))
    assert safe_relpath(result) == result


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Shopping list\nmilk\n", "Shopping_list.txt"),
        (b"\n\n   \nTitle: My Note\nbody", "My_Note.txt"),
        (b"NAME:  x y\n", "x_y.txt"),
        ("ünïcode note".encode(), "ünïcode_note.txt"),
        ("日本語のメモ\n".encode(), "日本語のメモ.txt"),
        ("नमस्ते दुनिया".encode(), "नमस्ते_दुनिया.txt"),
        (b"a/b\\c:d*e?f.g,h_i+j=k!l@m#n$o%p^q&r(s)t-u", "abcdefg,h_i+j=k!l@m#n$o%p^q&r(s)t-u.txt"),
        (b"Server side memo\r\nsecond line\r\n\r\n", "Server_side_memo.txt"),
        (b"", "note.txt"),
        (b"\n \n", "note.txt"),
        (b"title:\n", "note.txt"),
        ("😀 🎉".encode(), "_.txt"),
        (b"...///", "note.txt"),
        (b"CON", "_CON.txt"),
        (b"caf\xe9 latin-1", "café_latin-1.txt"),
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
