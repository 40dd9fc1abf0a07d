"""GitStore against real repositories: opening, committing local edits, scanning, trees, merges."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pygit2
import pytest

from gitsync.errors import ConfigError, RepositoryStateError, StoreError
from gitsync.model import ChangeKind
from gitsync.store import userindex
from gitsync.store.git import EMPTY_TREE, GitStore, TreeChange
from tests.store.helpers import age_files, fsck_ok, git, run_python, status, write

# ---- opening -----------------------------------------------------------------------------------


def test_open_initialises_a_plain_folder(notes: Path) -> None:
    write(notes, ".gitignore", "*.bak\n")
    write(notes, "old.bak", "ignored\n")
    os.symlink("a.txt", notes / "link.txt")
    store = GitStore.open(notes)

    assert store.root == notes.resolve()
    assert store.branch() == "refs/heads/main"
    assert (notes / ".gitattributes").read_bytes() == b"* -text\n"
    head = store.head()
    assert head is not None
    assert git(notes, "log", "--format=%s|%an <%ae>").strip() == (
        f"gitsync: start tracking notes in {notes.resolve()}|gitsync-notes <gitsync@localhost>"
    )
    tracked = git(notes, "ls-files").split()
    assert tracked == [".gitattributes", ".gitignore", "a.txt", "sub/b.txt", "sub/deep/c.txt", "sub/gone.txt"]
    # the symlink and the ignored file were skipped; nothing else is pending
    assert status(notes) == "?? link.txt\n"
    assert store.list_notes(store.tree_of(head)) == {
        "a.txt": git(notes, "rev-parse", "HEAD:a.txt").strip(),
        "sub/b.txt": git(notes, "rev-parse", "HEAD:sub/b.txt").strip(),
        "sub/deep/c.txt": git(notes, "rev-parse", "HEAD:sub/deep/c.txt").strip(),
        "sub/gone.txt": git(notes, "rev-parse", "HEAD:sub/gone.txt").strip(),
    }


def test_open_existing_repo_keeps_everything(store: GitStore, notes: Path) -> None:
    head = store.head()
    again = GitStore.open(notes)
    assert again.head() == head
    assert git(notes, "rev-list", "--count", "HEAD").strip() == "1"


def test_open_unborn_repository_makes_no_commit(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "n.txt", "n\n")
    store = GitStore.open(root)
    assert store.head() is None
    assert store.branch() == "refs/heads/main"


def test_open_empty_folder_commits_only_gitattributes(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    store = GitStore.open(root)
    head = store.head()
    assert head is not None
    assert git(root, "ls-files").split() == [".gitattributes"]
    assert store.list_notes(store.tree_of(head)) == {}


def test_open_keeps_an_existing_gitattributes(tmp_path: Path) -> None:
    root = tmp_path / "n"
    write(root, ".gitattributes", "*.txt diff\n")
    GitStore.open(root)
    assert (root / ".gitattributes").read_text() == "*.txt diff\n"


def test_open_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        GitStore.open(tmp_path / "missing")
    write(tmp_path, "file.txt", "x")
    with pytest.raises(ConfigError, match="not a folder"):
        GitStore.open(tmp_path / "file.txt")
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(ConfigError, match="bare"):
        GitStore.open(bare)
    outer = tmp_path / "outer"
    write(outer, "inner/n.txt", "n")
    git(outer, "init", "-q")
    with pytest.raises(ConfigError, match=f"inside the Git repository {outer.resolve()}"):
        GitStore.open(outer / "inner")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="not a Git repository"):
        GitStore.open(plain, create=False)
    assert not (plain / ".git").exists()


def test_import_keeps_pygit2_out_of_other_modules() -> None:
    code = (
        "import sys, gitsync.store, gitsync.store._names, gitsync.store._worktree\n"
        "assert 'pygit2' not in sys.modules, 'pygit2 imported'\n"
        "from gitsync.store import GitStore\n"
        "assert 'pygit2' in sys.modules and GitStore.__name__ == 'GitStore'\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr


# ---- config, identity, safety --------------------------------------------------------------------


def test_config_roundtrip_and_identity(store: GitStore, notes: Path) -> None:
    assert store.config_get("gitsync.remote") is None
    store.config_set("gitsync.remote", "https://example.invalid/sync")
    assert store.config_get("gitsync.remote") == "https://example.invalid/sync"
    assert "remote = https://example.invalid/sync" in (notes / ".git" / "config").read_text()
    store.config_set("user.name", "Ann Notes")
    store.config_set("user.email", "ann@example.invalid")
    write(notes, "new.txt", "new\n")
    store.commit_worktree("with identity")
    assert git(notes, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == (
        "Ann Notes <ann@example.invalid>|Ann Notes <ann@example.invalid>"
    )


def test_check_safe_state(store: GitStore, notes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(userindex, "INDEX_LOCK_WAIT_SECONDS", 0.1)
    store.check_safe_state()
    lock = notes / ".git" / "index.lock"
    lock.touch()
    with pytest.raises(RepositoryStateError, match=r"index\.lock"):
        store.check_safe_state()
    with pytest.raises(RepositoryStateError):
        store.commit_worktree("blocked")
    lock.unlink()
    head = store.head()
    assert head is not None
    (notes / ".git" / "MERGE_HEAD").write_text(head + "\n")
    with pytest.raises(RepositoryStateError, match="merge is in progress"):
        store.check_safe_state()
    (notes / ".git" / "MERGE_HEAD").unlink()
    git(notes, "checkout", "-q", "--detach")
    with pytest.raises(RepositoryStateError, match="detached"):
        store.check_safe_state()
    assert store.branch() is None
    assert store.head() == head


# ---- committing local edits ----------------------------------------------------------------------


def test_commit_worktree_add_modify_delete_rename_nested(store: GitStore, notes: Path) -> None:
    first = store.head()
    assert first is not None
    write(notes, "sub/b.txt", "bravo edited\n")
    (notes / "sub" / "gone.txt").unlink()
    (notes / "moved").mkdir()
    os.rename(notes / "sub" / "deep" / "c.txt", notes / "moved" / "c.txt")
    write(notes, "new/dir/d.txt", "delta\n")
    head = store.commit_worktree("local edits")

    assert head is not None and head != first
    assert status(notes) == ""
    assert git(notes, "rev-parse", "HEAD").strip() == head
    assert git(notes, "log", "-1", "--format=%s").strip() == "local edits"
    assert git(notes, "reflog", "-1", "--format=%gs").strip() == "commit: local edits"
    assert set(store.list_notes(store.tree_of(head))) == {
        "a.txt", "sub/b.txt", "moved/c.txt", "new/dir/d.txt"}
    changes = store.diff(store.tree_of(first), store.tree_of(head))
    assert [(c.kind, c.old_path, c.new_path) for c in changes] == [
        (ChangeKind.MODIFY, "sub/deep/c.txt", "moved/c.txt"),
        (ChangeKind.ADD, None, "new/dir/d.txt"),
        (ChangeKind.MODIFY, "sub/b.txt", "sub/b.txt"),
        (ChangeKind.DELETE, "sub/gone.txt", None),
    ]
    # nothing changed: same head, no new commit
    assert store.commit_worktree("again") == head
    assert git(notes, "rev-list", "--count", "HEAD").strip() == "2"


def test_commit_worktree_includes_staged_changes(store: GitStore, notes: Path) -> None:
    write(notes, "staged.txt", "v1\n")
    git(notes, "add", "staged.txt")
    write(notes, "staged.txt", "v2\n")  # work tree wins over the staged version
    os.symlink("a.txt", notes / "staged-link")
    git(notes, "add", "staged-link")  # a staged symlink is the user's explicit choice: kept
    write(notes, "a.txt", "alpha edited\n")
    head = store.commit_worktree("with staged")
    assert head is not None
    assert status(notes) == ""
    assert git(notes, "show", "HEAD:staged.txt") == "v2\n"
    assert git(notes, "ls-tree", "HEAD", "staged-link").split()[0] == "120000"
    assert "staged-link" not in store.list_notes(store.tree_of(head))


def test_commit_worktree_waits_for_a_briefly_held_index_lock(store: GitStore, notes: Path) -> None:
    lock = notes / ".git" / "index.lock"
    lock.touch()
    timer = threading.Timer(0.3, lock.unlink)
    timer.start()
    write(notes, "n.txt", "new\n")
    try:
        assert store.commit_worktree("after the editor's git status") is not None
    finally:
        timer.join()
    assert status(notes) == ""


def test_commit_worktree_rereads_an_index_changed_meanwhile(
    store: GitStore, notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(notes, "n.txt", "new\n")
    write(notes, "staged-late.txt", "staged while we were composing\n")
    calls = []
    real = store._compose

    def compose_and_stage(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            git(notes, "add", "staged-late.txt")
        return real(*args)

    monkeypatch.setattr(store, "_compose", compose_and_stage)
    head = store.commit_worktree("retry")
    assert head is not None and len(calls) == 2
    assert git(notes, "ls-tree", "--name-only", "HEAD").split().count("staged-late.txt") == 1
    assert status(notes) == ""


def test_commit_worktree_keeps_tracked_symlinks_and_tracked_ignored_files(tmp_path: Path) -> None:
    root = tmp_path / "r"
    write(root, "a.txt", "a\n")
    write(root, ".gitignore", "*.log\n")
    write(root, "keep.log", "tracked although ignored\n")
    os.symlink("a.txt", root / "link")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "add", "-f", "keep.log")
    git(root, "commit", "-q", "-m", "by hand")
    age_files(root)
    store = GitStore.open(root)
    write(root, "keep.log", "tracked, edited\n")
    write(root, "new.log", "untracked and ignored\n")
    write(root, "b.txt", "b\n")
    head = store.commit_worktree("edits")
    assert head is not None
    files = git(root, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert files == [".gitignore", "a.txt", "b.txt", "keep.log", "link"]
    assert git(root, "show", "HEAD:keep.log") == "tracked, edited\n"
    assert status(root) == ""


def test_commit_worktree_unborn_empty_returns_none(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    store = GitStore.open(root)
    assert store.commit_worktree("nothing") is None
    write(root, "n.txt", "n\n")
    head = store.commit_worktree("first")
    assert head is not None
    assert git(root, "reflog", "-1", "--format=%gs").strip() == "commit (initial): first"
    assert status(root) == ""


def test_commit_worktree_crlf_and_binary_bytes_exact(store: GitStore, notes: Path) -> None:
    data = {"crlf.txt": b"line1\r\nline2\r\n", "bin.dat": bytes(range(256)), "latin.txt": b"caf\xe9\n"}
    for name, content in data.items():
        write(notes, name, content)
    head = store.commit_worktree("bytes")
    assert head is not None
    listed = store.list_notes(store.tree_of(head))
    for name, content in data.items():
        assert store.read_blob(listed[name]) == content
    assert status(notes) == ""


def test_commit_worktree_removes_crash_leftover_temp_files(store: GitStore, notes: Path) -> None:
    write(notes, "sub/.gitsync-tmp-99-deadbeef", "half written")
    assert store.commit_worktree("nothing new") == store.head()
    assert not (notes / "sub" / ".gitsync-tmp-99-deadbeef").exists()


# ---- scanning and the stat cache -----------------------------------------------------------------


def test_scan_worktree_tree_does_not_commit(store: GitStore, notes: Path) -> None:
    head = store.head()
    assert head is not None
    assert store.scan_worktree_tree() == store.tree_of(head)
    write(notes, "sub/b.txt", "changed\n")
    tree = store.scan_worktree_tree()
    assert tree is not None and tree != store.tree_of(head)
    assert store.head() == head
    assert store.read_blob(store.list_notes(tree)["sub/b.txt"]) == b"changed\n"
    assert status(notes) == " M sub/b.txt\n"


def _private_index_stats(root: Path) -> dict[str, tuple[str, str]]:
    """path -> (mtime, size) as recorded in the private index (git ls-files --debug)."""
    out = git(root, "ls-files", "--debug", env={"GIT_INDEX_FILE": str(root / ".git" / "gitsync" / "index")})
    stats: dict[str, tuple[str, str]] = {}
    path = ""
    mtime = ""
    for line in out.splitlines():
        if not line.startswith(" "):
            path = line
        elif line.strip().startswith("mtime:"):
            mtime = line.split(":", 1)[1].strip()
        elif line.strip().startswith("size:"):
            stats[path] = (mtime, line.split()[1])
    return stats


def test_unchanged_rescan_uses_the_stat_cache(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(2000):
        write(root, f"d{i // 200:02d}/note{i:05d}.txt", f"note {i}\n" + "body\n" * (i % 7))
    age_files(root)
    store = GitStore.open(root)
    store.config_set("core.trustctime", "false")
    store = GitStore.open(root)
    head = store.head()
    assert head is not None
    assert store.scan_worktree_tree() == store.tree_of(head)

    stats = _private_index_stats(root)
    assert len(stats) == 2001  # the notes and .gitattributes
    assert all(mtime != "0:0" and size != "0" for mtime, size in stats.values())

    # Rewrite one note in place with different bytes of the same size and restore its mtime: a scan
    # that trusts the stat cache cannot notice, which proves it did not read the file.
    victim = root / "d03" / "note00600.txt"
    st = victim.stat()
    data = victim.read_bytes()
    victim.write_bytes(data.upper())
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.scan_worktree_tree() == store.tree_of(head)
    # a real change is still seen
    write(root, "d03/note00601.txt", "changed\n")
    assert store.scan_worktree_tree() != store.tree_of(head)


def test_touched_files_are_rehashed_once_then_cached(store: GitStore, notes: Path) -> None:
    head = store.head()
    assert head is not None
    for p in notes.rglob("*.txt"):
        os.utime(p)
    assert store.scan_worktree_tree() == store.tree_of(head)
    age_files(notes)
    assert store.scan_worktree_tree() == store.tree_of(head)
    stats = _private_index_stats(notes)
    assert all(mtime != "0:0" for mtime, _ in stats.values())


def test_private_index_survives_gc_prune(store: GitStore, notes: Path) -> None:
    write(notes, "scratch.txt", "only ever scanned\n")
    tree = store.scan_worktree_tree()
    assert tree is not None
    # git gc does not know our index: refs/gitsync/worktree keeps its objects reachable
    assert git(notes, "rev-parse", "refs/gitsync/worktree^{tree}").strip() == tree
    git(notes, "gc", "--prune=now", "--quiet")
    assert store.scan_worktree_tree() == tree
    assert store.commit_worktree("after gc") is not None
    assert status(notes) == ""
    assert fsck_ok(notes)


def test_private_index_rebuilt_when_its_objects_were_pruned(store: GitStore, notes: Path) -> None:
    write(notes, "sub/scratch.txt", "only ever scanned\n")
    tree = store.scan_worktree_tree()
    assert tree is not None
    git(notes, "update-ref", "-d", "refs/gitsync/worktree")
    git(notes, "gc", "--prune=now", "--quiet")
    assert git(notes, "cat-file", "-t", tree, check=False) == ""  # really gone
    fresh = GitStore.open(notes)  # new process view: no in-memory object cache
    assert fresh.scan_worktree_tree() == tree
    head = fresh.commit_worktree("after prune")
    assert head is not None
    assert status(notes) == ""
    assert fsck_ok(notes)
    assert fresh.peers() == []


# ---- trees and diffs ------------------------------------------------------------------------------


def test_diff_detects_exact_and_edited_renames(store: GitStore, notes: Path) -> None:
    base = store.head()
    assert base is not None
    long_text = "".join(f"line {i}\n" for i in range(30))
    write(notes, "long.txt", long_text)
    first = store.commit_worktree("long")
    assert first is not None
    os.rename(notes / "a.txt", notes / "sub" / "a-moved.txt")
    (notes / "long.txt").unlink()
    write(notes, "archive/long-renamed.txt", long_text + "one more line\n")
    write(notes, "sub/b.txt", "bravo edited\n")
    write(notes, "added.txt", "completely different content\n")
    write(notes, ".gitattributes", "* -text\n# comment\n")  # not a note
    os.symlink("a.txt", notes / "zlink")
    second = store.commit_worktree("renames")
    assert second is not None
    changes = store.diff(store.tree_of(first), store.tree_of(second))
    assert changes == sorted(changes, key=lambda c: c.new_path or c.old_path or "")
    by_new = {c.new_path: c for c in changes}
    assert by_new["sub/a-moved.txt"].kind == ChangeKind.MODIFY
    assert by_new["sub/a-moved.txt"].old_path == "a.txt"
    assert by_new["sub/a-moved.txt"].old_blob == by_new["sub/a-moved.txt"].new_blob
    assert by_new["archive/long-renamed.txt"].old_path == "long.txt"
    assert by_new["archive/long-renamed.txt"].old_blob != by_new["archive/long-renamed.txt"].new_blob
    assert by_new["added.txt"].kind == ChangeKind.ADD
    assert by_new["sub/b.txt"] == TreeChange(
        kind=ChangeKind.MODIFY, old_path="sub/b.txt", new_path="sub/b.txt",
        old_blob=store.list_notes(store.tree_of(first))["sub/b.txt"],
        new_blob=store.list_notes(store.tree_of(second))["sub/b.txt"],
    )
    assert ".gitattributes" not in by_new and "zlink" not in by_new
    assert len(changes) == 4
    # against nothing: everything added / deleted
    assert {c.kind for c in store.diff(None, store.tree_of(first))} == {ChangeKind.ADD}
    assert {c.kind for c in store.diff(store.tree_of(first), None)} == {ChangeKind.DELETE}
    assert store.diff(None, None) == []
    assert store.diff(store.tree_of(first), store.tree_of(first)) == []


def test_diff_finds_more_renames_than_libgit2_default_limit(store: GitStore) -> None:
    blobs = {f"old/n{i}.txt": store.write_blob(f"note {i}\n".encode() * 3) for i in range(1500)}
    before = store.build_tree(None, blobs, [])
    edited = {p.replace("old/", "new/"): b for p, b in blobs.items()}
    for i in range(1200, 1500):  # renamed and edited
        edited[f"new/n{i}.txt"] = store.write_blob(f"note {i}\n".encode() * 3 + b"edit\n")
    after = store.build_tree(None, edited, [])
    changes = store.diff(before, after)
    assert len(changes) == 1500
    assert all(c.kind == ChangeKind.MODIFY and c.old_path and c.new_path for c in changes)
    assert all(c.old_path.replace("old/", "new/") == c.new_path for c in changes if c.old_path)


def test_build_tree_nested(store: GitStore, notes: Path) -> None:
    head = store.head()
    assert head is not None
    os.chmod(notes / "a.txt", 0o755)
    head = store.commit_worktree("exec bit")
    assert head is not None
    base = store.tree_of(head)
    blob = store.write_blob(b"new content\n")
    tree = store.build_tree(base, {"x/y/z.txt": blob, "a.txt": blob, "sub/deep/c.txt": blob},
                            ["sub/gone.txt", "sub/b.txt", "does/not/exist.txt"])
    listed = store.list_notes(tree)
    assert listed == {"a.txt": blob, "sub/deep/c.txt": blob, "x/y/z.txt": blob}
    assert git(notes, "ls-tree", tree, "a.txt").split()[0] == "100755"  # exec mode kept
    pruned = store.build_tree(tree, {}, ["sub/deep/c.txt"])
    assert git(notes, "ls-tree", "--name-only", pruned).split() == [".gitattributes", "a.txt", "x"]
    assert store.build_tree(None, {}, []) == EMPTY_TREE
    assert store.build_tree(pruned, {}, ["a.txt", "x/y/z.txt", ".gitattributes"]) == EMPTY_TREE


@pytest.mark.parametrize(
    ("writes", "deletes", "match"),
    [
        ({"../x": True}, [], "refusing"),
        ({".git/config": True}, [], "refusing"),
        ({"/abs": True}, [], "refusing"),
        ({"a//b": True}, [], "refusing"),
        ({}, ["../../etc/passwd"], "refusing"),
        ({"a.txt/inner": True}, [], "is a file"),
        ({"sub": True}, [], "folder"),
        ({"n.txt": True, "n.txt/x": True}, [], "both"),
        ({"a.txt": True}, ["a.txt"], "both written and deleted"),
        ({}, ["sub"], "is a folder"),
    ],
)
def test_build_tree_refusals(
    store: GitStore, writes: dict[str, bool], deletes: list[str], match: str
) -> None:
    head = store.head()
    assert head is not None
    blob = store.write_blob(b"x\n")
    with pytest.raises(StoreError, match=match):
        store.build_tree(store.tree_of(head), dict.fromkeys(writes, blob), deletes)


def test_build_tree_replacing_file_by_folder_needs_delete(store: GitStore) -> None:
    head = store.head()
    assert head is not None
    blob = store.write_blob(b"x\n")
    tree = store.build_tree(store.tree_of(head), {"a.txt/inner.txt": blob}, ["a.txt"])
    assert store.list_notes(tree)["a.txt/inner.txt"] == blob


def test_objects_roundtrip_and_ancestry(store: GitStore) -> None:
    head = store.head()
    assert head is not None
    blob = store.write_blob(b"\x00\x01 raw")
    assert store.read_blob(blob) == b"\x00\x01 raw"
    tree = store.build_tree(store.tree_of(head), {"raw.bin": blob}, [])
    child = store.commit_tree(tree, [head], "child")
    assert store.head() == head  # commit_tree moves nothing
    assert store.tree_of(child) == tree
    assert store.is_ancestor(head, child) and store.is_ancestor(child, child)
    assert not store.is_ancestor(child, head)
    with pytest.raises(StoreError):
        store.read_blob("0" * 40)
    with pytest.raises(StoreError):
        store.tree_of(blob)


# ---- content merge ------------------------------------------------------------------------------

BASE = b"title: shopping\nmilk\neggs\nbread\n\nfooter\n"
OURS = b"title: shopping\nmilk\neggs (12)\nbread\n\nfooter\n"
THEIRS = b"title: shopping\nmilk\neggs (6)\nbread\n\nfooter edited\n"


def test_merge3_clean(store: GitStore) -> None:
    theirs = b"title: shopping list\nmilk\neggs\nbread\n\nfooter\n"
    merged = b"title: shopping list\nmilk\neggs (12)\nbread\n\nfooter\n"
    assert store.merge3(BASE, OURS, theirs) == (merged, True)
    assert store.merge3(BASE, BASE, THEIRS) == (THEIRS, True)
    assert store.merge3(BASE, OURS, BASE) == (OURS, True)
    assert store.merge3(None, OURS, OURS) == (OURS, True)


def test_merge3_conflict_matches_git_merge_file(store: GitStore, tmp_path: Path) -> None:
    merged, clean = store.merge3(BASE, OURS, THEIRS, labels=("local", "base", "peer:phone"))
    assert not clean
    for name, data in (("o", OURS), ("b", BASE), ("t", THEIRS)):
        (tmp_path / name).write_bytes(data)
    labels = ["-L", "local", "-L", "base", "-L", "peer:phone"]
    cli = subprocess.run(["git", "merge-file", "-p", "--diff3", *labels,
                          str(tmp_path / "o"), str(tmp_path / "b"), str(tmp_path / "t")],
                         capture_output=True, check=False)
    assert cli.returncode == 1
    assert merged == cli.stdout
    assert b"<<<<<<< local\neggs (12)\n||||||| base\neggs\n=======\neggs (6)\n>>>>>>> peer:phone\n" in merged
    assert merged.endswith(b"footer edited\n")


def test_merge3_crlf_latin1_add_add_binary(store: GitStore) -> None:
    merged, clean = store.merge3(b"a\r\nb\r\n", b"a\r\nB1\r\n", b"a\r\nB2\r\n")
    assert not clean
    assert b"<<<<<<< local\r\nB1\r\n" in merged and b">>>>>>> peer\r\n" in merged
    assert store.merge3(b"caf\xe9\n", b"caf\xe9\nx\n", b"y\ncaf\xe9\n") == (b"y\ncaf\xe9\nx\n", True)
    merged, clean = store.merge3(None, b"one\n", b"two\n")
    assert not clean and b"<<<<<<< local\none\n" in merged and b"two\n>>>>>>> peer\n" in merged
    assert store.merge3(b"a\0b\n", b"a\0b\nx\n", b"y\na\0b\n") == (b"a\0b\nx\n", False)
    assert store.merge3(b"a\0b", b"a\0b", b"new\0") == (b"new\0", True)  # one side unchanged


# ---- sanity against a pygit2 upgrade --------------------------------------------------------------


def test_pygit2_pin() -> None:
    assert str(getattr(pygit2, "__version__", "")).startswith("1.21.")
