"""``sync DIR --local`` answered from the receipt of the last full scan (``gitsync.store.quickscan``).

Every change a user can make after the receipt must still be reported: the fast answer may only
ever repeat what the full scan would print.  "fast" below means the process never imported pygit2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gitsync.__main__ import local_options
from tests.cli.helpers import cli, gitsync_server
from tests.helpers import write_notes

NOTES = {"a.txt": b"alpha\n", "b.txt": b"bravo\n", "sub/c.txt": b"charlie\n", "sub/deep/d.txt": b"delta\n"}
NONE = "No pending local changes"


def local(folder: Path, *extra: str) -> tuple[str, bool]:
    """(stdout of ``gitsync-notes sync FOLDER --local``, whether it was answered without pygit2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITSYNC_"))}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gitsync", "sync", str(folder), "--local", *extra],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, "pygit2" not in proc.stderr


def _changes(out: str) -> list[list[str]]:
    return sorted(line.split() for line in out.splitlines()[1:-1])


@pytest.fixture
def synced(tmp_path: Path) -> Path:
    """A notes folder synced once with a gitsync server (then stopped), files a second old."""
    folder = tmp_path / "notes"
    write_notes(folder, NOTES)
    with gitsync_server(tmp_path / "server") as srv:
        res = cli("runner", "sync", folder, "--remote", srv.url, "--id", "dev-receipt")
        assert res.code == 0, res.err
    old = time.time() - 5
    for path in folder.rglob("*"):
        if ".git" not in path.parts:
            os.utime(path, (old, old), follow_symlinks=False)
    return folder


def _edit_same_size_same_mtime(folder: Path) -> None:
    path = folder / "a.txt"
    st = path.stat()
    path.write_bytes(b"ALPHA\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime: only ctime tells


CHANGES: dict[str, tuple[Callable[[Path], None], list[list[str]]]] = {
    "same size and mtime": (_edit_same_size_same_mtime, [["modified", "a.txt"]]),
    "appended": (
        lambda f: write_notes(f, {"sub/deep/d.txt": b"delta\nmore\n"}),
        [["modified", "sub/deep/d.txt"]],
    ),
    "new file": (lambda f: write_notes(f, {"sub/new.txt": b"new\n"}), [["added", "sub/new.txt"]]),
    "new folder": (lambda f: write_notes(f, {"x/y/z.txt": b"z\n"}), [["added", "x/y/z.txt"]]),
    "deleted": (lambda f: (f / "sub" / "c.txt").unlink(), [["deleted", "sub/c.txt"]]),
    "renamed": (
        lambda f: (f / "b.txt").rename(f / "sub" / "b2.txt"), [["renamed", "b.txt", "->", "sub/b2.txt"]]
    ),
    "replaced by a folder": (
        lambda f: ((f / "b.txt").unlink(), write_notes(f, {"b.txt/inner.txt": b"bravo\n"})),
        [["renamed", "b.txt", "->", "b.txt/inner.txt"]],
    ),
}


def test_an_unchanged_folder_is_answered_from_the_receipt(synced: Path) -> None:
    first, fast = local(synced)
    assert first.startswith(NONE) and not fast  # the full scan leaves the receipt
    again, fast = local(synced)
    assert again == first and fast


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_after_the_receipt_is_reported(synced: Path, change: str) -> None:
    make, expected = CHANGES[change]
    local(synced)
    assert local(synced)[1]  # the receipt is in place
    make(synced)
    out, fast = local(synced)
    assert not fast and _changes(out) == expected, out
    again, fast = local(synced)  # the new answer is the new receipt
    assert again == out and fast


def test_a_symlink_is_no_note_and_keeps_the_fast_path(synced: Path) -> None:
    local(synced)
    (synced / "sub" / "link.txt").symlink_to("c.txt")
    assert local(synced) == (f"{NONE} (since the last sync with {_peer(synced)}).\n", False)
    assert local(synced)[1]


def test_an_ignored_file_disables_the_receipt_but_not_the_answer(synced: Path) -> None:
    (synced / ".git" / "info").mkdir(exist_ok=True)
    (synced / ".git" / "info" / "exclude").write_text("*.swp\n")
    local(synced)
    (synced / "sub" / "c.txt.swp").write_bytes(b"editor state\n")
    for _ in range(2):  # ignore rules are not in the receipt's key: always the full scan
        out, fast = local(synced)
        assert out.startswith(NONE) and not fast


def test_a_file_newer_than_the_stat_cache_is_never_trusted(synced: Path) -> None:
    future = time.time() + 3600
    write_notes(synced, {"a.txt": b"alpha edited\n"})
    os.utime(synced / "a.txt", (future, future))
    for _ in range(2):  # racy: its stat data cannot prove its content, so no receipt
        out, fast = local(synced)
        assert _changes(out) == [["modified", "a.txt"]] and not fast


def test_another_sync_or_peer_or_commit_changes_the_key(synced: Path, tmp_path: Path) -> None:
    write_notes(synced, {"a.txt": b"alpha 2\n"})
    out, _ = local(synced)
    assert _changes(out) == [["modified", "a.txt"]]
    assert local(synced) == (out, True)
    other, fast = local(synced, "--peer", "elsewhere")
    assert other.startswith("Never synced with elsewhere") and not fast
    assert local(synced, "--peer", "elsewhere") == (other, True)
    assert local(synced) == (out, False)  # one receipt: the last answer's options only
    subprocess.run(["git", "commit", "-qam", "by hand"], cwd=synced, check=True)
    assert local(synced) == (out, False)  # HEAD moved: same answer, found the slow way
    with gitsync_server(tmp_path / "server") as srv:  # the server folder of the fixture
        res = cli("runner", "sync", synced, "--remote", srv.url)
        assert res.code == 0, res.err
    out, fast = local(synced)
    assert out.startswith(NONE) and not fast


def _peer(folder: Path) -> str:
    return subprocess.run(["git", "config", "gitsync.peer"], cwd=folder, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sync", "d", "--local"], ("d", ("", ""))),
        (["sync", "-l", "d"], ("d", ("", ""))),
        (["sync", "d", "-l", "--peer", "p", "-r", "http://x/"], ("d", ("p", "http://x/"))),
        (["sync", "d", "-l", "--peer=p", "--remote=u"], ("d", ("p", "u"))),
        (["sync", "d"], None),  # a real sync
        (["sync", "d", "-l", "-q"], None),
        (["sync", "d", "-l", "-v"], None),
        (["sync", "d", "e", "-l"], None),
        (["sync", "-l"], None),
        (["sync", "d", "-l", "--peer"], None),
        (["-v", "sync", "d", "-l"], None),
        (["serve", "d", "-l"], None),
        ([], None),
    ],
)
def test_only_a_plain_local_query_takes_the_fast_path(argv: list[str], expected: object) -> None:
    assert local_options(argv) == expected
