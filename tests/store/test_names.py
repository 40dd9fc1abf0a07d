"""Pure name rules: note paths, state file names, peer names as ref components."""

from __future__ import annotations

import pygit2
import pytest

from gitsync.errors import StoreError
from gitsync.store import _names


@pytest.mark.parametrize("path", ["a.txt", "sub/deep/c.txt", ".gitignore", "x/.gitkeep", "a..b", "...x"])
def test_check_path_accepts_normal_paths(path: str) -> None:
    assert _names.check_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["", "/abs", "/etc/passwd", "../x", "a/../../x", "a/..", "./x", "a//b", "a/", ".git/config",
     ".GIT/config", "sub/.git/hooks/x", ".git", ".git./x", "git~1/config", "a\0b"],
)
def test_check_path_refuses_unsafe_paths(path: str) -> None:
    with pytest.raises(StoreError):
        _names.check_path(path)


@pytest.mark.parametrize("name", ["", "a/b", "synced", "head", "branch", ".", "..", ".git"])
def test_check_state_name_refuses(name: str) -> None:
    with pytest.raises(StoreError):
        _names.check_state_name(name)


@pytest.mark.parametrize(
    "peer",
    ["phone", "Phone.Home", "journal", "a/b", ".hidden", "a..b", "x.lock", "end.", "ünï cödé", "50%", "@{x}",
     "a b:c?d*e[f\\g^h~i", "HEAD", "-", "x.LOCK"],
)
def test_peer_names_encode_to_valid_reversible_ref_components(peer: str) -> None:
    encoded = _names.encode_peer(peer)
    assert "/" not in encoded
    assert encoded != _names.JOURNAL_COMPONENT
    assert pygit2.reference_is_valid_name(f"refs/gitsync/{encoded}")
    assert _names.decode_peer(encoded) == peer


def test_plain_peer_names_stay_readable() -> None:
    assert _names.encode_peer("my-phone_2.local") == "my-phone_2.local"


def test_empty_peer_refused() -> None:
    with pytest.raises(StoreError):
        _names.encode_peer("")


def test_temp_names() -> None:
    assert _names.is_temp_name(f"sub/{_names.TEMP_PREFIX}123-abcd")
    assert not _names.is_temp_name("sub/notes.txt")
