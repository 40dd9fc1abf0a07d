"""Sync state, the session commit (finish_sync), crash recovery, locking and path safety."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitsync.errors import GitsyncError, RepositoryBusy, StoreError
from gitsync.store import crashpoints
from gitsync.store.git import CRASH_POINTS, GitStore
from tests.store.helpers import REPO_ROOT, fsck_ok, git, lock_files, status, write

PEER = "phone"


def worktree_files(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` except .git, as path -> content."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                out[str(path.relative_to(root))] = path.read_bytes()
    return out


@dataclass
class Session:
    """A prepared session: old state saved, a new branch commit built but not installed."""

    store: GitStore
    root: Path
    old_head: str
    old_state: str
    new_commit: str
    new_tree: str
    old_files: dict[str, bytes]
    new_files: dict[str, bytes]
    kwargs: dict[str, object] = field(default_factory=dict)

    def finish(self, **overrides: object) -> str:
        return self.store.finish_sync(PEER, **{**self.kwargs, **overrides})  # type: ignore[arg-type]

    def assert_old(self) -> None:
        snap = self.store.state_load(PEER)
        assert snap is not None and snap.commit == self.old_state
        assert self.store.head() == self.old_head
        assert worktree_files(self.root) == self.old_files
        assert git(self.root, "for-each-ref", "refs/gitsync/journal") == ""
        assert status(self.root) == ""
        assert lock_files(self.root) == []

    def assert_new(self) -> None:
        snap = self.store.state_load(PEER)
        assert snap is not None and snap.commit != self.old_state
        assert snap.head == self.new_commit
        assert snap.files == {"state": b"anchor=2", "map": b"L1\tG1\n"}
        assert snap.synced_tree == self.new_tree
        assert self.store.head() == self.new_commit
        assert worktree_files(self.root) == self.new_files
        assert git(self.root, "for-each-ref", "refs/gitsync/journal") == ""
        assert status(self.root) == ""
        assert lock_files(self.root) == []


@pytest.fixture
def session(store: GitStore, notes: Path) -> Session:
    head = store.head()
    assert head is not None
    base = store.tree_of(head)
    old_state = store.finish_sync(PEER, expected_state=None, files={"state": b"anchor=1"}, synced_tree=base,
                                  new_commit=None, expected_head=head, message="first sync with phone")
    blob = store.write_blob
    new_tree = store.build_tree(
        base,
        {"sub/b.txt": blob(b"bravo from phone\n"), "peer/new.txt": blob(b"new from phone\n"),
         "sub/deep/e.txt": blob(b"echo\n")},
        ["sub/gone.txt"],
    )
    new_commit = store.commit_tree(new_tree, [head], "sync: changes from phone")
    old_files = worktree_files(notes)
    new_files = dict(old_files)
    del new_files["sub/gone.txt"]
    new_files.update({"sub/b.txt": b"bravo from phone\n", "peer/new.txt": b"new from phone\n",
                      "sub/deep/e.txt": b"echo\n"})
    kwargs: dict[str, object] = dict(
        expected_state=old_state, files={"state": b"anchor=2", "map": b"L1\tG1\n"}, synced_tree=new_tree,
        new_commit=new_commit, expected_head=head, message="sync with phone\n\nanchor 2\n",
    )
    return Session(store, notes, head, old_state, new_commit, new_tree, old_files, new_files, kwargs)


# ---- state ---------------------------------------------------------------------------------------


def test_state_roundtrip_and_history(store: GitStore) -> None:
    assert store.state_load(PEER) is None
    assert store.peers() == []
    assert list(store.state_history(PEER)) == []
    head = store.head()
    assert head is not None
    files = {"state": b"anchor=1", "map": bytes(range(256)), "devinf": b"<DevInf/>"}
    s1 = store.finish_sync(PEER, expected_state=None, files=files, synced_tree=None, new_commit=None,
                           expected_head=head, message="one")
    snap = store.state_load(PEER)
    assert snap is not None
    assert (snap.commit, snap.files, snap.synced_tree, snap.head) == (s1, files, None, head)
    assert snap.message == "one"
    tree = store.tree_of(head)
    s2 = store.finish_sync(PEER, expected_state=s1, files={"state": b"anchor=2"}, synced_tree=tree,
                           new_commit=None, expected_head=None, message="two")
    history = list(store.state_history(PEER))
    assert [h.commit for h in history] == [s2, s1]
    assert history[0].files == {"state": b"anchor=2"} and history[0].head is None
    assert history[0].synced_tree == store.tree_of(head)
    assert store.head() == head  # no branch move without new_commit


def test_peer_names_roundtrip_and_reserved_names(store: GitStore) -> None:
    names = ["phone", "journal", "worktree", "a/b", "ünï cödé", ".x", "x.lock"]
    for name in names:
        store.finish_sync(name, expected_state=None, files={}, synced_tree=None, new_commit=None,
                          expected_head=None, message=name)
    assert store.peers() == sorted(names)
    for name in names:
        snap = store.state_load(name)
        assert snap is not None and snap.message == name
    for bad in ("synced", "head", "branch", "a/b", ""):
        with pytest.raises(StoreError):
            store.finish_sync(PEER, expected_state=None, files={bad: b"x"}, synced_tree=None, new_commit=None,
                              expected_head=None, message="bad")
    with pytest.raises(StoreError):
        store.state_load("")


# ---- the session commit --------------------------------------------------------------------------


def test_finish_sync_happy_path(session: Session) -> None:
    state = session.finish()
    session.assert_new()
    snap = session.store.state_load(PEER)
    assert snap is not None and snap.commit == state and snap.message == "sync with phone\n\nanchor 2\n"
    assert [h.commit for h in session.store.state_history(PEER)] == [state, session.old_state]
    root = session.root
    assert git(root, "reflog", "-1", "--format=%gs", "main").strip() == "gitsync: sync with phone"
    assert git(root, "show", "-s", "--format=%P", "refs/gitsync/phone").strip() == session.old_state
    assert git(root, "ls-tree", "--name-only", "refs/gitsync/phone").split() == [
        "branch", "head", "map", "state", "synced"]
    assert not (root / "sub" / "gone.txt").exists()
    # the stat cache knows the written files: the next scan is the new tree, and nothing to commit
    assert session.store.scan_worktree_tree() == session.new_tree
    assert session.store.commit_worktree("nothing") == session.new_commit
    assert fsck_ok(root)


def test_finish_sync_prunes_emptied_folders(session: Session) -> None:
    store = session.store
    tree = store.build_tree(session.new_tree, {}, ["sub/deep/c.txt", "sub/deep/e.txt"])
    session.finish()
    commit = store.commit_tree(tree, [session.new_commit], "remove deep")
    state = store.state_load(PEER)
    assert state is not None
    store.finish_sync(PEER, expected_state=state.commit, files={}, synced_tree=tree, new_commit=commit,
                      expected_head=session.new_commit, message="again")
    assert not (session.root / "sub" / "deep").exists()
    assert (session.root / "sub").is_dir()
    assert status(session.root) == ""


def test_finish_sync_without_new_commit_only_saves_state(session: Session) -> None:
    state = session.finish(new_commit=None)
    assert session.store.head() == session.old_head
    assert worktree_files(session.root) == session.old_files
    snap = session.store.state_load(PEER)
    assert snap is not None and snap.commit == state and snap.head == session.old_head


def test_finish_sync_with_new_commit_equal_to_head_moves_nothing(session: Session) -> None:
    session.finish(new_commit=session.old_head)
    assert session.store.head() == session.old_head


def _assert_unchanged(session: Session) -> None:
    snap = session.store.state_load(PEER)
    assert snap is not None and snap.commit == session.old_state
    assert session.store.head() == session.old_head
    assert worktree_files(session.root) == session.old_files
    assert git(session.root, "for-each-ref", "refs/gitsync/journal") == ""
    assert lock_files(session.root) == []


def test_cas_conflict_on_state_changes_nothing(session: Session) -> None:
    with pytest.raises(StoreError, match="sync state of 'phone' moved"):
        session.finish(expected_state=None)
    with pytest.raises(StoreError, match="moved"):
        session.finish(expected_state=session.new_commit)
    _assert_unchanged(session)
    assert status(session.root) == ""


def test_cas_conflict_on_branch_changes_nothing(session: Session) -> None:
    write(session.root, "user.txt", "committed by the user meanwhile\n")
    git(session.root, "add", "user.txt")
    git(session.root, "commit", "-q", "-m", "user commit")
    user_head = git(session.root, "rev-parse", "HEAD").strip()
    with pytest.raises(StoreError, match="moved during the sync"):
        session.finish()
    snap = session.store.state_load(PEER)
    assert snap is not None and snap.commit == session.old_state
    assert session.store.head() == user_head
    assert git(session.root, "for-each-ref", "refs/gitsync/journal") == ""


def test_new_commit_must_be_a_child_of_expected_head(session: Session) -> None:
    orphan = session.store.commit_tree(session.new_tree, [], "orphan")
    with pytest.raises(StoreError, match="not a child"):
        session.finish(new_commit=orphan)
    _assert_unchanged(session)


# ---- concurrent edits by the user ----------------------------------------------------------------


def test_user_edit_during_sync_is_not_overwritten(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    write(session.root, "sub/b.txt", "bravo edited by the user\n")
    write(session.root, "sub/gone.txt", "the user still wants this\n")
    with caplog.at_level(logging.WARNING, logger="gitsync.store"):
        session.finish()
    assert (session.root / "sub" / "b.txt").read_text() == "bravo edited by the user\n"
    assert (session.root / "sub" / "gone.txt").read_text() == "the user still wants this\n"
    assert (session.root / "peer" / "new.txt").read_text() == "new from phone\n"
    assert session.store.head() == session.new_commit
    assert "sub/b.txt was changed locally" in caplog.text
    assert "sub/gone.txt was changed locally" in caplog.text
    # the user's edits show up as local changes against the new head, nothing is staged
    assert status(session.root) == " M sub/b.txt\n?? sub/gone.txt\n"
    head = session.store.commit_worktree("user edits")
    assert head is not None
    assert git(session.root, "show", "HEAD:sub/b.txt") == "bravo edited by the user\n"


def test_staged_user_change_is_kept(session: Session) -> None:
    write(session.root, "sub/b.txt", "staged by the user\n")
    git(session.root, "add", "sub/b.txt")
    session.finish()
    assert git(session.root, "show", ":sub/b.txt") == "staged by the user\n"
    assert status(session.root) == "M  sub/b.txt\n"


def test_missing_file_is_written(session: Session) -> None:
    (session.root / "sub" / "b.txt").unlink()
    session.finish()
    assert (session.root / "sub" / "b.txt").read_bytes() == b"bravo from phone\n"
    assert status(session.root) == ""


# ---- hostile paths ---------------------------------------------------------------------------------


def _mktree(root: Path, entries: str) -> str:
    """``git mktree`` does not validate names: a tree no honest Git would write."""
    return subprocess.run(["git", "-C", str(root), "mktree"], input=entries, capture_output=True, text=True,
                          check=True).stdout.strip()


def _literal_tree(root: Path, entries: str) -> str:
    """A raw tree object from ``ls-tree`` lines, names unchecked (even with a slash)."""
    raw = b""
    for line in entries.splitlines():
        meta, name = line.split("\t", 1)
        mode, _, oid = meta.split()
        raw += mode.lstrip("0").encode() + b" " + name.encode() + b"\0" + bytes.fromhex(oid)
    cmd = ["git", "-C", str(root), "hash-object", "-w", "-t", "tree", "--literally", "--stdin"]
    return subprocess.run(cmd, input=raw, capture_output=True, check=True).stdout.decode().strip()


@pytest.mark.parametrize("kind", ["dotdot", "dotgit", "nested-dotgit", "slash-dotdot", "absolute"])
def test_hostile_tree_paths_are_refused(session: Session, tmp_path: Path, kind: str) -> None:
    store = session.store
    blob = store.write_blob(b"[core]\n\tfsmonitor = evil\n")
    base_entries = git(session.root, "ls-tree", session.old_head)
    inner = _mktree(session.root, f"100644 blob {blob}\tconfig\n")
    escape = os.path.relpath(tmp_path / "config", session.root)
    extra = {
        "dotdot": f"100644 blob {blob}\t..\n",
        "dotgit": f"040000 tree {inner}\t.git\n",
        "nested-dotgit": f"040000 tree {inner}\t.GIT\n",
        "slash-dotdot": f"100644 blob {blob}\t{escape}\n",
        "absolute": f"100644 blob {blob}\t{tmp_path / 'config'}\n",
    }[kind]
    if "/" in extra.split("\t", 1)[1].rstrip("\n"):
        tree = _literal_tree(session.root, base_entries + extra)
    else:
        tree = _mktree(session.root, base_entries + extra)
    commit = store.commit_tree(tree, [session.old_head], "hostile")
    before = (session.root / ".git" / "config").read_bytes()
    with pytest.raises(StoreError, match="refusing"):
        session.finish(new_commit=commit)
    _assert_unchanged(session)
    assert (session.root / ".git" / "config").read_bytes() == before
    assert not (tmp_path / "config").exists()


def test_symlinked_folder_is_not_followed(session: Session, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, session.root / "peer")
    with caplog.at_level(logging.WARNING, logger="gitsync.store"):
        session.finish()
    assert list(outside.iterdir()) == []
    assert (session.root / "sub" / "b.txt").read_bytes() == b"bravo from phone\n"
    assert "peer/new.txt" in caplog.text


# ---- crashes ---------------------------------------------------------------------------------------


def _run_child(session: Session, point: str) -> int:
    kwargs = dict(session.kwargs)
    kwargs["files"] = {k: v.decode("latin-1") for k, v in kwargs["files"].items()}  # type: ignore[attr-defined]
    args = json.dumps({"root": str(session.root), "point": point, "peer": PEER, **kwargs})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.store.crash_child", args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode in (0, 77), proc.stderr
    return proc.returncode


def _assert_crashed_at(session: Session, point: str) -> None:
    """Check with the git CLI (opening a store would recover) that the child died where asked."""
    root = session.root
    journal = git(root, "for-each-ref", "--format=%(objectname)", "refs/gitsync/journal").strip()
    state_head = git(root, "cat-file", "-p", "refs/gitsync/phone:head").strip()
    branch = git(root, "rev-parse", "refs/heads/main").strip()
    files = worktree_files(root)
    done = CRASH_POINTS.index(point) if point in CRASH_POINTS else len(CRASH_POINTS)
    assert (journal == session.new_commit) == (done < CRASH_POINTS.index("journal-deleted"))
    assert (state_head == session.new_commit) == (done >= CRASH_POINTS.index("state-committed"))
    assert (branch == session.new_commit) == (done >= CRASH_POINTS.index("branch-moved"))
    if done < CRASH_POINTS.index("worktree-partial"):
        assert files == session.old_files
    elif point == "worktree-partial":
        assert files != session.old_files and files != session.new_files
    else:
        assert files == session.new_files


@pytest.mark.parametrize("point", [*CRASH_POINTS, "none"])
def test_crash_at_each_step_leaves_old_or_new_state(session: Session, point: str) -> None:
    code = _run_child(session, point)
    assert code == (0 if point == "none" else 77)
    _assert_crashed_at(session, point)
    recovered = GitStore.open(session.root)  # open() runs recover()
    session.store = recovered
    if point == "journal-written":
        session.assert_old()
    else:
        session.assert_new()
    recovered.recover()  # idempotent
    if point == "journal-written":
        session.assert_old()
    else:
        session.assert_new()
    assert fsck_ok(session.root)


def test_branch_lock_after_commit_point_is_finished_by_recover(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A branch lock appearing after the commit point: finish later, via recover()."""
    lock = session.root / ".git" / "refs" / "heads" / "main.lock"

    def block_branch(point: str) -> None:
        if point == "state-committed":
            lock.touch()

    monkeypatch.setattr(crashpoints, "_crash_point", block_branch)
    with pytest.raises(StoreError, match="sync state saved"):
        session.finish()
    monkeypatch.setattr(crashpoints, "_crash_point", crashpoints._no_crash)
    snap = session.store.state_load(PEER)
    assert snap is not None and snap.head == session.new_commit
    assert git(session.root, "for-each-ref", "--format=%(objectname)", "refs/gitsync/journal").strip() == \
        session.new_commit
    session.store.recover()  # lock still fresh: nothing happens
    assert session.store.head() == session.old_head
    reopened = GitStore.open(session.root)  # recovery has to wait, but opening works
    snap = reopened.state_load(PEER)
    assert snap is not None
    with pytest.raises(StoreError, match="previous sync with 'phone' is not finished"):
        reopened.finish_sync(PEER, expected_state=snap.commit, files={}, synced_tree=None, new_commit=None,
                             expected_head=None, message="too early")
    lock.unlink()
    session.store.recover()
    session.assert_new()


def test_stale_gitsync_lock_is_removed(session: Session) -> None:
    lock = session.root / ".git" / "refs" / "gitsync" / "phone.lock"
    lock.touch()
    old = time.time() - 60
    os.utime(lock, (old, old))
    session.finish()
    session.assert_new()


def test_fresh_gitsync_lock_fails_cleanly(session: Session) -> None:
    lock = session.root / ".git" / "refs" / "gitsync" / "phone.lock"
    lock.touch()
    with pytest.raises(StoreError, match="cannot update"):
        session.finish()
    lock.unlink()
    _assert_unchanged(session)


def test_fresh_branch_lock_fails_before_any_change(session: Session) -> None:
    lock = session.root / ".git" / "refs" / "heads" / "main.lock"
    lock.touch()
    with pytest.raises(StoreError, match=r"main\.lock exists"):
        session.finish()
    lock.unlink()
    _assert_unchanged(session)


def test_leftover_journal_without_commit_point_is_dropped(session: Session) -> None:
    git(session.root, "update-ref", "refs/gitsync/journal/phone", session.new_commit)
    GitStore.open(session.root)
    session.assert_old()


# ---- the repository lock ---------------------------------------------------------------------------

_HOLD_LOCK = (
    "import sys\n"
    "from gitsync.store.git import GitStore\n"
    "s = GitStore.open(sys.argv[1])\n"
    "with s.lock():\n"
    "    print('locked', flush=True)\n"
    "    sys.stdin.read()\n"
)


def _hold_lock(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(root)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


def test_lock_excludes_a_second_process(session: Session) -> None:
    child = _hold_lock(session.root)
    try:
        start = time.monotonic()
        with pytest.raises(RepositoryBusy), session.store.lock(wait=0.3):
            pass
        assert time.monotonic() - start >= 0.25
        with pytest.raises(RepositoryBusy):
            session.finish()
        with pytest.raises(RepositoryBusy):
            session.store.commit_worktree("blocked")
        # read-only scanning still works while a sync runs (it just does not save the cache)
        assert session.store.scan_worktree_tree() == session.store.tree_of(session.old_head)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    with session.store.lock(), session.store.lock():  # re-entrant in one store object
        pass
    session.finish()
    session.assert_new()


def test_lock_is_released_when_its_holder_is_killed(session: Session) -> None:
    child = _hold_lock(session.root)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with session.store.lock(wait=5):
        pass


def test_first_sync_into_unborn_repository_without_index(tmp_path: Path) -> None:
    root = tmp_path / "clone"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "mine.txt", "untracked user note\n")
    store = GitStore.open(root)
    assert store.head() is None and not (root / ".git" / "index").exists()
    tree = store.build_tree(None, {"a.txt": store.write_blob(b"from peer\n"),
                                   "mine.txt": store.write_blob(b"peer version\n")}, [])
    commit = store.commit_tree(tree, [], "sync: first")
    store.finish_sync(PEER, expected_state=None, files={"state": b"1"}, synced_tree=tree, new_commit=commit,
                      expected_head=None, message="first")
    assert store.head() == commit
    assert (root / "a.txt").read_text() == "from peer\n"
    assert (root / "mine.txt").read_text() == "untracked user note\n"  # never clobbered
    assert status(root) == " M mine.txt\n"


# ---- a server's deferred work-tree update ------------------------------------------------------------


def _journal(root: Path) -> str:
    return git(root, "for-each-ref", "--format=%(objectname)", "refs/gitsync/journal").strip()


def test_deferred_worktree_waits_for_settle(session: Session) -> None:
    """Committed (state and branch) at once; the files, the index and the journal wait for settle()."""
    session.finish(defer_worktree=True)
    store, root = session.store, session.root
    snap = store.state_load(PEER)
    assert snap is not None and snap.head == session.new_commit
    assert store.head() == session.new_commit
    assert worktree_files(root) == session.old_files
    assert _journal(root) == session.new_commit and store.unsettled
    store.settle()
    assert not store.unsettled
    session.assert_new()
    assert store.commit_worktree("nothing") == session.new_commit
    store.settle()  # nothing left: a no-op
    session.assert_new()


def test_deferred_worktree_is_written_before_anyone_scans(session: Session) -> None:
    """Another store (another process: the hook, a manual sync) taking the lock before settle() first
    writes the committed notes; its scan must not take the old files for edits and undo the session."""
    other = GitStore.open(session.root)
    session.finish(defer_worktree=True)
    assert worktree_files(session.root) == session.old_files
    assert other.commit_worktree("local edits") == session.new_commit  # nothing reverted
    session.assert_new()
    session.store.settle()  # the journal is gone: nothing to do, nothing undone
    session.assert_new()


def test_deferred_worktree_is_finished_after_a_crash(session: Session) -> None:
    session.finish(defer_worktree=True)  # then the process dies before settle()
    recovered = GitStore.open(session.root)
    session.store = recovered
    session.assert_new()


def test_big_state_file_of_the_same_size_is_saved_as_given(session: Session) -> None:
    """Unchanged big state files (the LUID map) are not hashed again; a changed one of the same size
    must still be saved."""
    store = session.store
    one = b"".join(b"G%05d\tL%05d\tnote %05d.txt\n" % (i, i, i) for i in range(5000))
    two = one.replace(b"L00042", b"L99999")
    assert len(one) == len(two) >= 64 * 1024
    state = store.state_load(PEER)
    assert state is not None
    last = state.commit
    for data in (one, one, two, one):
        last = store.finish_sync(PEER, expected_state=last, files={"map": data}, synced_tree=None,
                                 new_commit=None, expected_head=None, message="map")
        assert store.state_load(PEER).files["map"] == data  # type: ignore[union-attr]
        assert GitStore.open(session.root).state_load(PEER).files["map"] == data  # type: ignore[union-attr]


# ---- a branch lock left by a killed gitsync ------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leave_branch_lock(root: Path, pid: int, *, lock_delay: float = 0.0) -> Path:
    """What a gitsync process ``pid`` killed inside its update of main leaves: claim, then lock."""
    claim = root / ".git" / "gitsync" / "ref-claim"
    claim.parent.mkdir(exist_ok=True)
    claim.write_text(f"{pid}\nrefs/heads/main\n")
    lock = root / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text(git(root, "rev-parse", "HEAD"))
    if lock_delay:
        st = claim.stat()
        os.utime(claim, (st.st_atime - lock_delay, st.st_mtime - lock_delay))
    return lock


def test_branch_lock_of_a_killed_gitsync_is_removed(store: GitStore, notes: Path) -> None:
    lock = _leave_branch_lock(notes, _dead_pid())
    head = store.head()
    write(notes, "after-crash.txt", b"edited after the crash\n")
    new = store.commit_worktree("local edits")
    assert new is not None and new != head and store.head() == new
    assert not lock.exists()
    assert not (notes / ".git" / "gitsync" / "ref-claim").exists()


@pytest.mark.parametrize("case", ["live owner", "lock made later"])
def test_other_branch_locks_are_respected(store: GitStore, notes: Path, case: str) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        if case == "live owner":
            lock = _leave_branch_lock(notes, sleeper.pid)
        else:  # a git command locked main long after a gitsync died having claimed it
            lock = _leave_branch_lock(notes, _dead_pid(), lock_delay=30.0)
        head = store.head()
        write(notes, "edit.txt", b"an edit\n")
        with pytest.raises(GitsyncError):
            store.commit_worktree("local edits")
        assert lock.exists() and store.head() == head
    finally:
        sleeper.kill()
        sleeper.wait()
