"""The post-commit hook, fired by real `git commit`s in temporary repositories.

What a user sees: the commit returns at once (even when the server hangs or gitsync-notes is
missing), the note reaches the server in the background, the outcome is in .git/gitsync-hook.log
and in `gitsync-notes status`, an existing hook keeps running, and syncs never overlap.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from gitsync.app import hook
from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.hook import RunOutcome, request_run, run_again_generation, run_coalesced
from gitsync.errors import ConfigError
from gitsync.store.git import GitStore
from gitsync.transport.inprocess import InProcessTransport
from tests import peers
from tests.app.helpers import Loopback
from tests.helpers import git, read_notes, write_notes
from tests.hooks.helpers import HangingServer, commit, hook_log, wait_for_log, wait_idle

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMIT_BUDGET = 0.2  # seconds: the limit for `git commit` with the hook installed


def _folder(tmp_path: Path, name: str = "notes") -> Path:
    root = tmp_path / name
    root.mkdir()
    write_notes(root, {"first.txt": b"first note\n"})
    GitStore.open(root)
    return root


def test_shipped_script_is_the_one_installed_by_default() -> None:
    shipped = REPO_ROOT / "hooks" / "post-commit"
    assert shipped.read_text(encoding="utf-8") == hook.hook_script()
    assert shipped.stat().st_mode & stat.S_IXUSR


@pytest.mark.interop
def test_commit_syncs_in_the_background_with_a_running_server(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    with peers.GitsyncServer(tmp_path / "server") as server:
        peers.run_gitsync("sync", root, "--remote", server.url, "--id", "dev-hook", "-q")
        res = peers.run_gitsync("hook", "install", root)
        assert "installed" in res.stdout
        write_notes(root, {"from-commit.txt": b"written, then committed\n"})
        seconds, done = commit(root, "a note")
        assert done.returncode == 0, done.stderr
        assert seconds < COMMIT_BUDGET
        log = wait_for_log(root, ": ok: sync with")
        wait_idle(root)
        assert read_notes(server.dir)["from-commit.txt"] == b"written, then committed\n"
        assert "+0 ~0 -0 in, +1 ~0 -0 out" in log
        # the sync recorded itself as a commit on top of the user's, and the user's is intact
        subjects = git(root, "log", "--format=%s", "-3").splitlines()
        assert subjects[0].startswith("sync with ") and subjects[1] == "a note"
        assert git(root, "status", "--porcelain") == ""
        status = peers.run_gitsync("status", root).stdout
        assert "Hook: installed" in status
        assert "(hook) ok: sync with" in status
        # the sync's own commit fired no hook: exactly one run is logged
        assert hook_log(root).count("syncing with") == 1

        # a change arriving from the server comes in on the next commit's sync
        write_notes(server.dir, {"from-server.txt": b"made on the server\n"})
        write_notes(root, {"first.txt": b"first note, edited\n"})
        commit(root, "edit")
        wait_for_log(root, ": ok: sync with", count=2)
        wait_idle(root)
        assert read_notes(root)["from-server.txt"] == b"made on the server\n"
        assert read_notes(server.dir)["first.txt"] == b"first note, edited\n"
    assert "Traceback" not in server.output()


@pytest.mark.interop
def test_a_rebase_is_synced_once_it_is_finished(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    with peers.GitsyncServer(tmp_path / "server") as server:
        peers.run_gitsync("sync", root, "--remote", server.url, "--id", "dev-rebase", "-q")
        git(root, "checkout", "-q", "-b", "side")
        write_notes(root, {"b.txt": b"b from side\n"})
        git(root, "add", "-A")
        git(root, "commit", "-qm", "side 1")
        write_notes(root, {"a.txt": b"a from side\n"})
        git(root, "add", "-A")
        git(root, "commit", "-qm", "side 2")
        git(root, "checkout", "-q", "main")
        write_notes(root, {"a.txt": b"a from main\n"})
        git(root, "add", "-A")
        git(root, "commit", "-qm", "main a")
        git(root, "checkout", "-q", "side")
        hook.install(GitStore.open(root))
        # "side 1" replays cleanly (post-commit fires mid-rebase), "side 2" stops on a conflict
        with pytest.raises(Exception):  # noqa: B017 - the rebase stops, as intended
            git(root, "rebase", "main")
        time.sleep(1.5)
        assert "syncing with" not in hook_log(root)  # nothing synced while the rebase goes on
        assert "b.txt" not in read_notes(server.dir)
        write_notes(root, {"a.txt": b"a, resolved\n"})
        git(root, "add", "a.txt")
        env = dict(os.environ, GIT_EDITOR="true")
        subprocess.run(["git", "rebase", "--continue"], cwd=root, env=env, check=True, capture_output=True)
        wait_for_log(root, ": ok: sync with")
        wait_idle(root)
        assert read_notes(server.dir)["b.txt"] == b"b from side\n"
        assert read_notes(server.dir)["a.txt"] == b"a, resolved\n"
        assert read_notes(server.dir) == read_notes(root)
        assert "FAILED" not in peers.run_gitsync("status", root).stdout


def test_commit_returns_at_once_when_the_server_hangs(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    with HangingServer() as hanging:
        store = GitStore.open(root)
        store.config_set("gitsync.remote", hanging.url)
        hook.install(store)  # gitsync-notes from PATH
        times = []
        for i in range(3):
            write_notes(root, {f"n{i}.txt": f"note {i}\n".encode()})
            seconds, res = commit(root, f"note {i}")
            assert res.returncode == 0, res.stderr
            assert res.stdout == "" and res.stderr == ""
            times.append(seconds)
        assert max(times) < COMMIT_BUDGET, times
        wait_for_log(root, "syncing with")
        deadline = time.monotonic() + 30
        while not hanging.accepted:  # the background sync is connected and waiting for an answer
            assert time.monotonic() < deadline, hook_log(root)
            time.sleep(0.05)
        write_notes(root, {"late.txt": b"committed while the sync hangs\n"})
        seconds, res = commit(root, "late")
        assert res.returncode == 0 and seconds < COMMIT_BUDGET
        time.sleep(0.5)
        assert hook_log(root).count("syncing with") == 1  # one sync at a time: the others wait for it
        assert len(git(root, "log", "--format=%s").splitlines()) == 5  # every commit went in
    # the server went away: the background sync fails, says so, and ends
    wait_for_log(root, "failed")
    wait_idle(root)
    status = peers.run_gitsync("status", root).stdout
    assert "FAILED" in status


def test_commit_is_unaffected_when_gitsync_notes_is_not_on_path(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    store = GitStore.open(root)
    store.config_set("gitsync.remote", "http://127.0.0.1:9/unused")
    hook.install(store, "gitsync-notes")  # found through PATH only
    git_bin = shutil.which("git")
    assert git_bin is not None
    env = dict(os.environ, PATH=f"{os.path.dirname(git_bin)}:/bin")
    assert shutil.which("gitsync-notes", path=env["PATH"]) is None
    write_notes(root, {"n.txt": b"n\n"})
    seconds, res = commit(root, "no gitsync here", env=env)
    assert res.returncode == 0 and res.stderr == ""
    assert seconds < COMMIT_BUDGET
    assert "gitsync-notes not found: no sync started" in hook_log(root)
    # and an absolute command that does not exist is just as harmless
    hook.install(store, str(tmp_path / "nowhere" / "gitsync-notes"))
    write_notes(root, {"m.txt": b"m\n"})
    _, res = commit(root, "still fine")
    assert res.returncode == 0
    assert "nowhere/gitsync-notes not found" in hook_log(root)


def test_commits_made_with_gitsync_active_start_nothing(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    store = GitStore.open(root)
    store.config_set("gitsync.remote", "http://127.0.0.1:9/unused")
    hook.install(store, str(tmp_path / "nowhere" / "gitsync-notes"))
    write_notes(root, {"n.txt": b"n\n"})
    _, res = commit(root, "by a sync", env=dict(os.environ, GITSYNC_ACTIVE="1"))
    assert res.returncode == 0
    assert hook_log(root) == ""


# ---------------------------------------------------------------------- install / uninstall
_USER_HOOK = "#!/bin/sh\necho \"user hook ran for $(git rev-parse --short HEAD)\" >> user-hook.out\n"


def test_install_chains_an_existing_hook_and_uninstall_puts_it_back(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / ".git" / "info" / "exclude").write_text("user-hook.out\n")
    hooks = root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    user_hook = hooks / "post-commit"
    user_hook.write_text(_USER_HOOK)
    user_hook.chmod(0o755)
    res = peers.run_gitsync("hook", "install", root, "--command", str(tmp_path / "nowhere" / "gitsync-notes"))
    assert "previous hook now runs first" in res.stdout
    assert (hooks / "post-commit.pre-gitsync").read_text() == _USER_HOOK
    write_notes(root, {"a.txt": b"a\n"})
    seconds, done = commit(root, "a")
    assert done.returncode == 0 and seconds < COMMIT_BUDGET
    assert "user hook ran for" in (root / "user-hook.out").read_text()  # the user's hook still runs
    assert "not found: no sync started" in hook_log(root)  # and so does ours
    # installing again only refreshes ours
    peers.run_gitsync("hook", "install", root)
    assert (hooks / "post-commit.pre-gitsync").read_text() == _USER_HOOK
    res = peers.run_gitsync("hook", "uninstall", root)
    assert "previous hook is back" in res.stdout
    assert user_hook.read_text() == _USER_HOOK and os.access(user_hook, os.X_OK)
    assert not (hooks / "post-commit.pre-gitsync").exists()
    res = peers.run_gitsync("hook", "uninstall", root, check=False)
    assert res.returncode == 2 and "not gitsync's hook: it was left alone" in res.stderr
    assert user_hook.read_text() == _USER_HOOK


def test_install_refuses_when_a_hook_would_be_lost(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    hooks = root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "post-commit").write_text(_USER_HOOK)
    (hooks / "post-commit.pre-gitsync").write_text("#!/bin/sh\necho another\n")
    res = peers.run_gitsync("hook", "install", root, check=False)
    assert res.returncode == 2
    assert "would lose one of them" in res.stderr and "Traceback" not in res.stderr
    assert (hooks / "post-commit").read_text() == _USER_HOOK
    assert (hooks / "post-commit.pre-gitsync").read_text() == "#!/bin/sh\necho another\n"


def test_install_refuses_with_core_hooks_path(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    git(root, "config", "core.hooksPath", str(tmp_path / "shared-hooks"))
    res = peers.run_gitsync("hook", "install", root, check=False)
    assert res.returncode == 2
    assert "core.hooksPath is set" in res.stderr and "gitsync-notes hook run" in res.stderr
    assert not (tmp_path / "shared-hooks").exists()
    assert not (root / ".git" / "hooks" / "post-commit").exists()


def test_uninstall_without_a_hook_says_so(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    res = peers.run_gitsync("hook", "uninstall", root)
    assert "nothing to remove" in res.stdout


def test_uninstall_leaves_a_foreign_hook_alone(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    hooks = root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "post-commit").write_text(_USER_HOOK)
    with pytest.raises(ConfigError, match="left alone"):
        hook.uninstall(GitStore.open(root))
    assert (hooks / "post-commit").read_text() == _USER_HOOK


# ---------------------------------------------------------------------- never two syncs at once
def test_a_hook_run_during_a_sync_makes_the_running_one_go_again(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    running, late = GitStore.open(root), GitStore.open(root)  # two lock holders, as two processes
    rounds_seen: list[int] = []
    inner: list[tuple[RunOutcome, int]] = []

    def one_round() -> None:
        rounds_seen.append(len(rounds_seen) + 1)
        if len(rounds_seen) == 1:
            # a commit's hook fires while this sync runs: it must not sync, only ask for a re-run
            inner.append(run_coalesced(late, lambda: pytest.fail("two syncs at once")))

    outcome, rounds = run_coalesced(running, one_round)
    assert inner == [(RunOutcome.BUSY, 0)]
    assert (outcome, rounds) == (RunOutcome.DONE, 2)
    assert rounds_seen == [1, 2]
    assert run_again_generation(running) == 0


def test_a_brief_lock_holder_delays_the_hook_sync_but_does_not_drop_it(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    other = GitStore.open(root)  # e.g. `gitsync-notes status` or a sync started by hand
    ran: list[float] = []
    release_at = 0.0

    def hold() -> None:
        with other.lock():
            time.sleep(0.4)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    release_at = time.monotonic() + 0.3
    outcome, rounds = run_coalesced(GitStore.open(root), lambda: ran.append(time.monotonic()), wait=10)
    holder.join()
    assert (outcome, rounds) == (RunOutcome.DONE, 1)
    assert len(ran) == 1 and ran[0] >= release_at - 0.05


def test_a_commit_during_a_cli_sync_is_synced_by_that_sync(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    client = lb.client_dir("a")
    write_notes(client, {"one.txt": b"one\n"})
    lb.sync("a")
    store = GitStore.open(client)
    late = GitStore.open(client)
    inner = InProcessTransport(lb.app)
    calls = 0

    class CommitDuringSync:
        def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
            nonlocal calls
            calls += 1
            if calls == 2:  # mid-session: the user commits, and the hook asks for a run
                write_notes(client, {"during.txt": b"committed during the sync\n"})
                git(client, "add", "-A")
                git(client, "commit", "-qm", "during")
                request_run(late)  # what the hook does first (its runner then waits for this sync)
            return inner.exchange(url, body, content_type)

    write_notes(client, {"two.txt": b"two\n"})
    opts = ClientOptions(url=lb.url, device_id="dev-a", name="server")
    sync_client(store, opts, CommitDuringSync())
    assert read_notes(lb.server_dir) == read_notes(client)
    assert read_notes(lb.server_dir)["during.txt"] == b"committed during the sync\n"
    assert git(client, "status", "--porcelain") == ""
    assert "during" in git(client, "log", "--format=%s")
