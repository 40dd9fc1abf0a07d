"""The one locator of the shared folder (tests/shared.py): the suite must not shrink silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared import SharedNotFound, find_shared, in_ci, locate_shared


def _tree(tmp_path: Path, *, shared_at: str | None) -> Path:
    repo = tmp_path / "a" / "b" / "repo"
    repo.mkdir(parents=True)
    if shared_at is not None:
        (tmp_path / shared_at / "shared").mkdir(parents=True)
    return repo


@pytest.mark.parametrize("where", ["a/b", "a"])
def test_the_nearest_ancestor_holding_shared_is_found(tmp_path: Path, where: str) -> None:
    repo = _tree(tmp_path, shared_at=where)
    assert find_shared(repo, {}) == tmp_path / where / "shared"
    assert locate_shared(repo, {"CI": "true"}) == tmp_path / where / "shared"


def test_gitsync_shared_wins_and_must_exist(tmp_path: Path) -> None:
    repo = _tree(tmp_path, shared_at="a")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_shared(repo, {"GITSYNC_SHARED": str(elsewhere)}) == elsewhere
    with pytest.raises(SharedNotFound, match="not a folder"):
        find_shared(repo, {"GITSYNC_SHARED": str(tmp_path / "missing")})


def test_nothing_found_is_none_outside_ci_and_an_error_under_ci(tmp_path: Path) -> None:
    repo = _tree(tmp_path, shared_at=None)
    if find_shared(repo, {}) is not None:
        pytest.skip("a shared/ folder above the temporary folder")
    assert locate_shared(repo, {}) is None
    assert locate_shared(repo, {"CI": "false"}) is None
    with pytest.raises(SharedNotFound, match="GITSYNC_SHARED"):
        locate_shared(repo, {"CI": "true"})


@pytest.mark.parametrize(
    ("value", "ci"), [("true", True), ("1", True), ("", False), ("false", False), ("0", False)]
)
def test_what_counts_as_ci(value: str, ci: bool) -> None:
    assert in_ci({"CI": value}) is ci
