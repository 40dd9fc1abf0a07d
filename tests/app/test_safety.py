"""Safety rails: the mass-delete guard (both directions, and a peer that comes back empty),
rewritten history falling back to a slow sync, --dry-run, and unsafe repository states.

In process (gitsync client ↔ gitsync server, real Git repositories) except the tests marked
interop, which run the CLI against the real pysyncml server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitsync.errors import SafetyStop
from gitsync.model import SyncMode
from gitsync.store.git import GitStore
from tests import peers
from tests.app.helpers import Loopback
from tests.helpers import git, read_notes, write_notes

SIX = {f"n{i}.txt": f"note {i}\n".encode() for i in range(6)}


def _refs(root: Path) -> str:
    """Every ref but the store's stat cache (refs/gitsync/worktree, refreshed by any scan)."""
    refs = git(root, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    return "\n".join(r for r in refs if not r.startswith("refs/gitsync/worktree "))


def test_outgoing_mass_delete_stops_before_sending_any_change(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    client = lb.client_dir("a")
    write_notes(client, SIX)
    lb.sync("a")
    server_head = git(lb.server_dir, "rev-parse", "HEAD")
    write_notes(client, {f"n{i}.txt": None for i in range(4)})
    with pytest.raises(SafetyStop, match="would delete 4 \\(66%\\) of the 6 notes on the server"):
        lb.sync("a")
    assert read_notes(lb.server_dir) == SIX
    assert git(lb.server_dir, "rev-parse", "HEAD") == server_head
    # the user's deletions stand locally, and --force-delete sends them
    assert sorted(read_notes(client)) == ["n4.txt", "n5.txt"]
    report = lb.sync("a", force_delete=True)
    assert report.remote.dele == 4
    assert sorted(read_notes(lb.server_dir)) == ["n4.txt", "n5.txt"]


def test_peer_that_comes_back_empty_is_suspect(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), SIX)
    lb.sync("a")
    lb.sync("b")
    assert read_notes(lb.client_dir("b")) == SIX
    # the server loses every note (b empties its folder and forces it through)
    for name in SIX:
        (lb.client_dir("b") / name).unlink()
    lb.sync("b", force_delete=True)
    assert read_notes(lb.server_dir) == {}
    a = lb.client_dir("a")
    state_before, head_before = _refs(a), git(a, "rev-parse", "HEAD")
    with pytest.raises(SafetyStop, match="deleted all of the 6 notes we share: did it lose its notes"):
        lb.sync("a")
    assert read_notes(a) == SIX
    assert _refs(a) == state_before and git(a, "rev-parse", "HEAD") == head_before
    assert git(a, "status", "--porcelain") == ""
    # the user decides: restore the server from this folder...
    report = lb.sync("a", SyncMode.REFRESH_FROM_CLIENT)
    assert report.mode == "refresh-from-client"
    assert read_notes(lb.server_dir) == SIX
    assert read_notes(a) == SIX


def test_refresh_from_an_emptied_server_is_stopped(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), SIX)
    lb.sync("a")
    lb.sync("b")
    for name in SIX:
        (lb.client_dir("b") / name).unlink()
    lb.sync("b", force_delete=True)
    with pytest.raises(SafetyStop, match="every one of the 6 notes here"):
        lb.sync("a", SyncMode.REFRESH_FROM_SERVER)
    assert read_notes(lb.client_dir("a")) == SIX


def test_incoming_mass_delete_goes_through_with_force_delete(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), SIX)
    lb.sync("a")
    lb.sync("b")
    write_notes(lb.client_dir("b"), {f"n{i}.txt": None for i in range(5)})
    lb.sync("b", force_delete=True)
    with pytest.raises(SafetyStop):
        lb.sync("a")
    report = lb.sync("a", force_delete=True)
    assert report.local.dele == 5
    assert read_notes(lb.client_dir("a")) == {"n5.txt": b"note 5\n"}


def test_few_deletes_pass_the_guard(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), SIX)
    lb.sync("a")
    lb.sync("b")
    write_notes(lb.client_dir("b"), {"n0.txt": None, "n1.txt": None, "n2.txt": None})  # exactly half
    lb.sync("b")
    report = lb.sync("a")
    assert report.local.dele == 3
    assert sorted(read_notes(lb.client_dir("a"))) == ["n3.txt", "n4.txt", "n5.txt"]


def test_refresh_from_client_of_an_emptied_folder_is_stopped(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    client = lb.client_dir("a")
    write_notes(client, SIX)
    lb.sync("a")
    for name in SIX:
        (client / name).unlink()
    with pytest.raises(SafetyStop, match="every one of the 6 notes on the server"):
        lb.sync("a", SyncMode.REFRESH_FROM_CLIENT)
    assert read_notes(lb.server_dir) == SIX


@pytest.mark.parametrize("rewrite", ["amend", "reset"])
def test_rewritten_history_falls_back_to_a_slow_sync(tmp_path: Path, rewrite: str) -> None:
    lb = Loopback(tmp_path)
    client = lb.client_dir("a")
    write_notes(client, {"keep.txt": b"keep\n", "x.txt": b"x one\n"})
    lb.sync("a")
    write_notes(client, {"x.txt": b"x two\n"})
    git(client, "commit", "-qam", "edit x")
    assert lb.sync("a").mode == "two-way"
    assert read_notes(lb.server_dir)["x.txt"] == b"x two\n"
    if rewrite == "amend":
        write_notes(client, {"x.txt": b"x two, amended\n"})
        git(client, "commit", "-q", "-a", "--amend", "-m", "edit x (amended)")
        git(client, "reflog", "expire", "--expire=now", "--all")
        git(client, "gc", "-q", "--prune=now")  # the synced commit may even be gone
    else:
        git(client, "reset", "-q", "--hard", "HEAD~2")  # back before the edit and its sync
        assert read_notes(client)["x.txt"] == b"x one\n"
    report = lb.sync("a")
    assert report.mode == "slow"
    assert any("rewritten" in n for n in report.notes)
    server, here = read_notes(lb.server_dir), read_notes(client)
    assert server == here
    assert server["keep.txt"] == b"keep\n"
    if rewrite == "amend":
        assert server["x.txt"] == b"x two, amended\n"
    else:
        # no note is deleted on either side: the slow sync compared every note, and the server
        # settled x.txt by its conflict policy (merge: its base is what it last synced with us)
        assert set(server) == {"keep.txt", "x.txt"}
    assert lb.sync("a").mode == "two-way"


# ---------------------------------------------------------------------- through the CLI
def _cli_folder(tmp_path: Path, notes: dict[str, bytes]) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    write_notes(root, notes)
    GitStore.open(root)
    git(root, "config", "gitsync.remote", "http://127.0.0.1:9/never-contacted")
    return root


def _snapshot(root: Path) -> tuple[str, str, dict[str, bytes], str]:
    config = (root / ".git" / "config").read_text()
    return _refs(root), git(root, "status", "--porcelain"), read_notes(root), config


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("detached", "HEAD is detached"),
        ("merge", "a merge is in progress"),
        ("rebase", "a rebase is in progress"),
        ("index-lock", "index.lock exists"),
    ],
)
def test_unsafe_repository_states_stop_with_a_clear_message(tmp_path: Path, setup: str, message: str) -> None:
    root = _cli_folder(tmp_path, {"a.txt": b"a\n", "b.txt": b"b\n"})
    if setup == "detached":
        git(root, "checkout", "-q", "--detach")
    elif setup == "merge":
        git(root, "checkout", "-q", "-b", "side")
        write_notes(root, {"a.txt": b"a on side\n"})
        git(root, "commit", "-qam", "side")
        git(root, "checkout", "-q", "main")
        write_notes(root, {"a.txt": b"a on main\n"})
        git(root, "commit", "-qam", "main")
        res = peers.run_gitsync("--version")  # warm-up; the merge below must conflict
        assert res.returncode == 0
        with pytest.raises(Exception):  # noqa: B017 - git exits 1 on the conflict, as intended
            git(root, "merge", "-q", "side")
    elif setup == "rebase":
        git(root, "checkout", "-q", "-b", "side")
        write_notes(root, {"a.txt": b"a on side\n"})
        git(root, "commit", "-qam", "side")
        git(root, "checkout", "-q", "main")
        write_notes(root, {"a.txt": b"a on main\n"})
        git(root, "commit", "-qam", "main")
        with pytest.raises(Exception):  # noqa: B017 - the rebase stops on the conflict
            git(root, "rebase", "-q", "side")
    else:
        (root / ".git" / "index.lock").write_bytes(b"")
    write_notes(root, {"new.txt": b"an uncommitted note\n"})
    before = _snapshot(root)
    res = peers.run_gitsync("sync", root, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert _snapshot(root) == before


def test_dry_run_writes_nothing_and_lists_what_would_be_sent(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    client = lb.client_dir("a")
    write_notes(client, SIX)
    lb.sync("a")
    git(client, "config", "gitsync.remote", lb.url)
    git(client, "config", "gitsync.peer", "server")
    write_notes(client, {"n0.txt": b"edited\n", "new.txt": b"new\n", "n1.txt": None})
    (client / "n2.txt").rename(client / "n2-renamed.txt")
    before = _snapshot(client)
    res = peers.run_gitsync("sync", client, "--dry-run")
    out = res.stdout
    assert "nothing was written" in out and "two-way" in out
    assert "  modify  n0.txt" in out
    assert "  add     new.txt" in out
    assert "  delete  n1.txt" in out
    assert "  rename  n2.txt -> n2-renamed.txt" in out
    assert "would STOP" not in out
    assert _snapshot(client) == before
    # the guard's verdict is part of the dry run
    write_notes(client, {"n3.txt": None, "n4.txt": None, "n5.txt": None})
    res = peers.run_gitsync("sync", client, "--dry-run", check=False)
    assert res.returncode == 1, "a dry run exits as the real sync would"
    assert "would STOP: this sync would delete 4 (66%) of the 6 notes on the server" in res.stdout


def test_dry_run_of_a_folder_that_is_no_repository_yet_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_notes(root, {"a.txt": b"a\n"})
    res = peers.run_gitsync("sync", root, "--remote", "http://127.0.0.1:9/", "--dry-run")
    assert "nothing was written" in res.stdout and "every note" in res.stdout
    assert sorted(p.name for p in root.iterdir()) == ["a.txt"]


# ---------------------------------------------------------------------- against pysyncml
@pytest.mark.interop
def test_amend_after_a_sync_with_pysyncml_keeps_syncing(tmp_path: Path) -> None:
    """pysyncml's server cannot run a slow sync over notes it has (HTTP 500), so for it a rewritten
    history is synced as the changes since the last sync, never duplicating or failing."""
    peers.pysyncml_launcher()
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n", "b.txt": b"b\n"})
    with peers.PysyncmlServer(tmp_path / "server") as server:
        peers.run_gitsync("sync", client, "--remote", server.url, "--id", "gs-amend", "-q")
        write_notes(client, {"a.txt": b"a, edited\n"})
        git(client, "commit", "-qam", "edit a")
        peers.run_gitsync("sync", client, "-q")
        assert git(client, "log", "-1", "--format=%s").startswith("sync with")
        write_notes(client, {"a.txt": b"a, edited and amended\n"})
        git(client, "commit", "-q", "-a", "--amend", "-m", "amended the sync commit")
        res = peers.run_gitsync("sync", client)
        assert "|  notes |  <>  |" in res.stdout
        assert "rewritten" in res.stderr
        assert read_notes(server.dir) == {"a.txt": b"a, edited and amended\n", "b.txt": b"b\n"}
        assert read_notes(client) == read_notes(server.dir)


@pytest.mark.interop
def test_guard_and_dry_run_against_pysyncml(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    client = tmp_path / "client"
    client.mkdir()
    notes = {f"p{i}.txt": f"pysyncml note {i}\n".encode() for i in range(8)}
    write_notes(client, notes)
    with peers.PysyncmlServer(tmp_path / "server") as server:
        peers.run_gitsync("sync", client, "--remote", server.url, "--id", "gs-guard", "-q")
        assert read_notes(server.dir) == notes

        # dry run of a mass delete: shows it, would stop, changes nothing anywhere
        for i in range(6):
            (client / f"p{i}.txt").unlink()
        before = _snapshot(client)
        res = peers.run_gitsync("sync", client, "--dry-run", check=False)
        assert res.returncode == 1, "a dry run exits as the real sync would"
        assert "  delete  p0.txt" in res.stdout
        assert "would STOP: this sync would delete 6 (75%) of the 8 notes on the server" in res.stdout
        assert _snapshot(client) == before
        assert read_notes(server.dir) == notes

        # the real sync stops before contacting the server
        res = peers.run_gitsync("sync", client, check=False)
        assert res.returncode == 1 and "--force-delete" in res.stderr
        assert read_notes(server.dir) == notes
        write_notes(client, {f"p{i}.txt": notes[f"p{i}.txt"] for i in range(6)})  # the user changes mind
        peers.run_gitsync("sync", client, "-q")
        assert read_notes(server.dir) == notes

        # the server loses its notes: the client refuses to follow, and keeps everything
        for entry in server.dir.iterdir():
            if entry.name != ".sync":
                entry.unlink()
        head = git(client, "rev-parse", "HEAD")
        res = peers.run_gitsync("sync", client, check=False)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "did it lose its notes" in res.stderr
        assert read_notes(client) == notes
        assert git(client, "rev-parse", "HEAD") == head
        # restoring the server from the folder is one push-over away
        peers.run_gitsync("sync", client, "--mode", "push-over", "-q")
        assert read_notes(server.dir) == notes
        assert read_notes(client) == notes
    shutil.rmtree(tmp_path / "server", ignore_errors=True)
