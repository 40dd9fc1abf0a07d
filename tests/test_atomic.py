"""gitsync/atomic.py: the target holds the old bytes or the new ones, and no temporary file stays."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gitsync.atomic import atomic_write


@pytest.mark.parametrize("durable", [False, True])
def test_replaces_the_content_and_leaves_nothing_else(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    atomic_write(target, b"new", durable=durable)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f"]


@pytest.mark.parametrize("mode", [0o600, 0o755])
def test_an_explicit_mode_is_exact(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "f"
    old = os.umask(0o077)
    try:
        atomic_write(target, b"x", mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    class Boom(Exception):
        pass

    def fail(*args: object) -> None:
        raise Boom

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", fail)
        with pytest.raises(Boom):
            atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_a_missing_folder_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        atomic_write(tmp_path / "no" / "f", b"x")


def test_relative_to_a_folder_descriptor_with_a_named_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"old")
    seen: list[str] = []
    real = os.replace

    def spy(src: str, dst: str, **kwargs: int) -> None:
        seen.append(src)
        real(src, dst, **kwargs)

    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "replace", spy)
            atomic_write("f", b"new", dir_fd=dfd, temp_prefix=".tmp-x-")
            atomic_write("g", b"exec", dir_fd=dfd, new_mode=0o777, temp_prefix=".tmp-x-")
        with pytest.raises(ValueError):
            atomic_write("sub/f", b"x", dir_fd=dfd)
    finally:
        os.close(dfd)
    assert (tmp_path / "f").read_bytes() == b"new" and (tmp_path / "g").read_bytes() == b"exec"
    assert sorted(os.listdir(tmp_path)) == ["f", "g"]
    assert all(name.startswith(".tmp-x-") for name in seen) and len(seen) == 2
    assert (tmp_path / "g").stat().st_mode & 0o100
