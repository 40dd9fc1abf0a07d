"""Conflicts gitsync client ↔ gitsync server, in every ``--policy``: what each side ends with.

Real drivers and real Git repositories on both sides (see tests/app/helpers.py). The rule
checked everywhere: whatever the policy, the losing text stays reachable in ``git log``
on the side that had it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitsync.app.server import ServerOptions
from gitsync.protocol.constants import St
from gitsync.sync.conflict import (
    Policy,
    has_conflict_markers,
    resolve_delete_vs_modify,
    resolve_modify,
)
from gitsync.sync.report import SyncReport
from tests.app.helpers import Loopback
from tests.helpers import git, read_notes, write_notes

BASE = b"shopping\n\neggs\nmilk\nbread\nbutter\ntea\n"
CLIENT = BASE.replace(b"eggs", b"eggs (12)")  # overlaps with SERVER
SERVER = BASE.replace(b"eggs", b"eggs (6)")
CLIENT_TAIL = BASE.replace(b"tea", b"tea (green)")  # merges cleanly with SERVER
MERGED = SERVER.replace(b"tea", b"tea (green)")
OTHER = b"an unrelated note\n"

ALL_POLICIES = list(Policy)


class Setup:
    """A server with ``policy`` and one client "a" that synced BASE as n.txt."""

    def __init__(self, tmp: Path, policy: Policy) -> None:
        self.reports: list[SyncReport] = []
        self.lb = Loopback(tmp, server_options=ServerOptions(policy=policy, on_report=self.reports.append))
        self.client = self.lb.client_dir("a")
        self.server = self.lb.server_dir
        write_notes(self.client, {"n.txt": BASE, "other.txt": OTHER})
        self.lb.sync("a")
        assert read_notes(self.server) == {"n.txt": BASE, "other.txt": OTHER}

    def sync(self) -> SyncReport:
        return self.lb.sync("a")

    def both(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        return read_notes(self.client), read_notes(self.server)


def in_history(root: Path, text: bytes) -> bool:
    """Whether ``text`` is in some version of a note in the branch's history."""
    log = git(root, "log", "-p", "--format=", "--text")
    return all(line.decode() in log for line in text.splitlines() if line)


def assert_clean(root: Path) -> None:
    assert git(root, "status", "--porcelain") == ""


# ---------------------------------------------------------------- the pure rules


def _fake_merge(base: bytes | None, ours: bytes, theirs: bytes) -> tuple[bytes, bool]:
    return b"<<<<<<< a\n" + ours + b"=======\n" + theirs + b">>>>>>> b\n", False


@pytest.mark.parametrize(
    ("policy", "code", "server", "send", "copy"),
    [
        (Policy.MERGE, St.CONFLICT_MERGED, "markers", "markers", None),
        (Policy.CLIENT_WINS, St.CONFLICT_CLIENT_WON, CLIENT, None, None),
        (Policy.SERVER_WINS, St.CONFLICT_SERVER_WON, SERVER, SERVER, None),
        (Policy.KEEP_BOTH, St.CONFLICT_DUPLICATE, SERVER, SERVER, CLIENT),
        (Policy.ERROR, St.CONFLICT, SERVER, None, None),
    ],
)
def test_resolve_modify_table(
    policy: Policy, code: int, server: bytes | str, send: bytes | str | None, copy: bytes | None
) -> None:
    out = resolve_modify(BASE, SERVER, CLIENT, policy, _fake_merge, duplicates_ok=True)
    assert out.code == code
    assert out.copy == copy
    if server == "markers":
        assert out.server is not None and has_conflict_markers(out.server) and out.send == out.server
        assert out.unresolved
    else:
        assert out.server == server and out.send == send
        assert out.unresolved is (policy is Policy.ERROR)


def test_keep_both_without_209_keeps_the_servers_version_as_the_copy() -> None:
    out = resolve_modify(BASE, SERVER, CLIENT, Policy.KEEP_BOTH, _fake_merge, duplicates_ok=False)
    assert (out.code, out.server, out.send, out.copy) == (St.CONFLICT_CLIENT_WON, CLIENT, None, SERVER)


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_a_clean_merge_wins_in_every_policy(policy: Policy) -> None:
    def clean(base: bytes | None, ours: bytes, theirs: bytes) -> tuple[bytes, bool]:
        return MERGED, True

    out = resolve_modify(BASE, SERVER, CLIENT_TAIL, policy, clean, duplicates_ok=True)
    assert (out.code, out.server, out.send, out.unresolved) == (St.CONFLICT_MERGED, MERGED, MERGED, False)


def test_delete_vs_modify_table() -> None:
    edit = b"edited\n"
    # the client deleted, the server edited
    assert resolve_delete_vs_modify(edit, None, Policy.MERGE).send == edit
    assert resolve_delete_vs_modify(edit, None, Policy.CLIENT_WINS).server is None
    assert resolve_delete_vs_modify(edit, None, Policy.ERROR).code == St.CONFLICT
    # the client edited, the server deleted
    assert resolve_delete_vs_modify(None, edit, Policy.KEEP_BOTH).server == edit
    assert resolve_delete_vs_modify(None, edit, Policy.SERVER_WINS).send_delete
    assert resolve_delete_vs_modify(None, edit, Policy.ERROR).server is None


def test_conflict_markers_are_recognised_only_when_complete() -> None:
    assert has_conflict_markers(b"a\n<<<<<<< server\nx\n||||||| base\n=======\ny\n>>>>>>> dev\nb\n")
    assert has_conflict_markers(b"<<<<<<< s\r\nx\r\n=======\r\ny\r\n>>>>>>> d\r\n")
    assert not has_conflict_markers(b"=======\nheading\n=======\n")
    assert not has_conflict_markers(b"<<<<<<<< not quite\n=======\n>>>>>>> x\n")


# ---------------------------------------------------------------- mod/mod


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_non_overlapping_edits_merge_in_every_policy(tmp_path: Path, policy: Policy) -> None:
    s = Setup(tmp_path, policy)
    write_notes(s.client, {"n.txt": CLIENT_TAIL})
    write_notes(s.server, {"n.txt": SERVER})
    report = s.sync()
    client, server = s.both()
    assert client["n.txt"] == server["n.txt"] == MERGED
    assert (report.conflicts, report.merged, report.unresolved) == (1, 1, [])
    assert s.reports[-1].merged == 1
    assert_clean(s.client)
    assert_clean(s.server)
    # settled: the next sync has nothing to do
    again = s.sync()
    assert again.local.total() == again.remote.total() == again.conflicts == 0


def test_overlapping_edits_merge_policy_keeps_markers_on_both_sides(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    write_notes(s.client, {"n.txt": CLIENT})
    write_notes(s.server, {"n.txt": SERVER})
    report = s.sync()
    client, server = s.both()
    assert client["n.txt"] == server["n.txt"]
    text = client["n.txt"]
    assert has_conflict_markers(text)
    assert b"eggs (12)" in text and b"eggs (6)" in text and b"\neggs\n" in text  # diff3: the base too
    assert b"<<<<<<< server sync.test\n" in text and b">>>>>>> device dev-a\n" in text
    # both sides report it: the client learns it from the merged text it receives (exit status 3)
    assert report.unresolved == ["n.txt"] and report.conflicts == 1
    assert s.reports[-1].unresolved == ["n.txt"]
    assert "Gitsync-Conflicts: 1" in git(s.server, "log", "-1", "--format=%B")
    # no ping-pong; once the user resolves it on one side, the other side follows
    again = s.sync()
    assert again.unresolved == [] and again.local.total() == again.remote.total() == 0
    write_notes(s.client, {"n.txt": CLIENT})
    assert s.sync().unresolved == []
    assert s.both() == ({"n.txt": CLIENT, "other.txt": OTHER},) * 2


@pytest.mark.parametrize(
    ("policy", "winner", "loser", "loser_side"),
    [
        (Policy.CLIENT_WINS, CLIENT, SERVER, "server"),
        (Policy.SERVER_WINS, SERVER, CLIENT, "client"),
    ],
)
def test_overlapping_edits_one_side_wins(
    tmp_path: Path, policy: Policy, winner: bytes, loser: bytes, loser_side: str
) -> None:
    s = Setup(tmp_path, policy)
    write_notes(s.client, {"n.txt": CLIENT})
    write_notes(s.server, {"n.txt": SERVER})
    report = s.sync()
    client, server = s.both()
    assert client == server == {"n.txt": winner, "other.txt": OTHER}
    assert report.conflicts == 1 and report.unresolved == []
    assert in_history(s.client if loser_side == "client" else s.server, loser)
    assert s.sync().conflicts == 0


def test_overlapping_edits_keep_both_makes_a_second_note(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.KEEP_BOTH)
    write_notes(s.client, {"n.txt": CLIENT})
    write_notes(s.server, {"n.txt": SERVER})
    report = s.sync()
    expected = {"n.txt": SERVER, "n (conflict).txt": CLIENT, "other.txt": OTHER}
    assert s.both() == (expected, expected)
    assert report.conflicts == 1 and report.unresolved == []
    assert in_history(s.client, CLIENT) and in_history(s.server, SERVER)
    again = s.sync()
    assert again.local.total() == again.remote.total() == again.conflicts == 0
    # the copy is an ordinary note from now on
    write_notes(s.client, {"n (conflict).txt": None})
    s.sync()
    assert "n (conflict).txt" not in read_notes(s.server)


def test_overlapping_edits_error_policy_changes_nothing(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.ERROR)
    write_notes(s.client, {"n.txt": CLIENT})
    write_notes(s.server, {"n.txt": SERVER})
    server_head = git(s.server, "rev-parse", "HEAD")
    for _ in range(2):  # stays stuck, and says so, until someone resolves it
        report = s.sync()
        client, server = s.both()
        assert client["n.txt"] == CLIENT and server["n.txt"] == SERVER
        assert report.unresolved == ["n.txt"] and report.conflicts == 1
        assert report.local.total() == 0
        assert s.reports[-1].unresolved == ["n.txt"]
    # the server's only new commit is the user's own edit, committed before syncing
    assert git(s.server, "log", "--format=%s", f"{server_head.strip()}..HEAD").startswith("gitsync: local")
    # the user settles it by taking the server's text: now it syncs
    write_notes(s.client, {"n.txt": SERVER})
    report = s.sync()
    assert report.unresolved == []
    assert s.both() == ({"n.txt": SERVER, "other.txt": OTHER},) * 2
    assert in_history(s.client, CLIENT)


# ---------------------------------------------------------------- edit vs delete


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_client_deletes_what_the_server_edited(tmp_path: Path, policy: Policy) -> None:
    s = Setup(tmp_path, policy)
    write_notes(s.client, {"n.txt": None})
    write_notes(s.server, {"n.txt": SERVER})
    report = s.sync()
    client, server = s.both()
    assert report.conflicts == 1
    if policy is Policy.CLIENT_WINS:
        assert client == server == {"other.txt": OTHER}
        assert in_history(s.server, SERVER)
    elif policy is Policy.ERROR:
        assert "n.txt" not in client and server["n.txt"] == SERVER
        assert report.unresolved == ["n.txt"]
    else:  # the edit wins and is restored where it was deleted
        assert client == server == {"n.txt": SERVER, "other.txt": OTHER}
        assert report.local.add == 1
    assert_clean(s.client)
    again = s.sync()
    assert again.local.total() == again.remote.total() == 0
    assert again.conflicts == (1 if policy is Policy.ERROR else 0)


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_client_edits_what_the_server_deleted(tmp_path: Path, policy: Policy) -> None:
    s = Setup(tmp_path, policy)
    write_notes(s.client, {"n.txt": CLIENT})
    write_notes(s.server, {"n.txt": None})
    report = s.sync()
    client, server = s.both()
    assert report.conflicts == 1
    if policy is Policy.SERVER_WINS:
        assert client == server == {"other.txt": OTHER}
        assert in_history(s.client, CLIENT)
    elif policy is Policy.ERROR:
        assert client["n.txt"] == CLIENT and "n.txt" not in server
        assert report.unresolved == ["n.txt"]
    else:
        assert client == server == {"n.txt": CLIENT, "other.txt": OTHER}
        assert s.reports[-1].local.add == 1
    assert_clean(s.server)
    again = s.sync()
    assert again.local.total() == again.remote.total() == 0
    assert again.conflicts == (1 if policy is Policy.ERROR else 0)
    if policy is not Policy.ERROR and "n.txt" in client:
        # the note is mapped normally afterwards: an edit travels as usual
        write_notes(s.client, {"n.txt": CLIENT + b"more\n"})
        s.sync()
        assert read_notes(s.server)["n.txt"] == CLIENT + b"more\n"


# ---------------------------------------------------------------- rename + edit


def test_client_renames_while_server_edits(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    (s.client / "n.txt").rename(s.client / "renamed.txt")
    write_notes(s.server, {"n.txt": SERVER})
    s.sync()
    expected = {"renamed.txt": SERVER, "other.txt": OTHER}
    assert s.both() == (expected, expected)
    assert s.sync().local.total() == 0


def test_client_renames_and_edits_while_server_edits(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.SERVER_WINS)
    (s.client / "sub").mkdir()
    (s.client / "n.txt").rename(s.client / "sub" / "renamed.txt")
    write_notes(s.client, {"sub/renamed.txt": CLIENT_TAIL})
    write_notes(s.server, {"n.txt": SERVER})
    report = s.sync()
    expected = {"sub/renamed.txt": MERGED, "other.txt": OTHER}
    assert s.both() == (expected, expected)
    assert report.merged == 1


def test_server_renames_while_client_edits(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    (s.server / "n.txt").rename(s.server / "renamed.txt")
    write_notes(s.client, {"n.txt": CLIENT})
    report = s.sync()
    expected = {"renamed.txt": CLIENT, "other.txt": OTHER}
    assert s.both() == (expected, expected)
    assert report.conflicts == 0  # a rename and an edit do not collide
    assert s.sync().local.total() == 0


def test_server_renames_and_edits_while_client_edits(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    (s.server / "n.txt").rename(s.server / "renamed.txt")
    write_notes(s.server, {"renamed.txt": SERVER})
    write_notes(s.client, {"n.txt": CLIENT_TAIL})
    report = s.sync()
    expected = {"renamed.txt": MERGED, "other.txt": OTHER}
    assert s.both() == (expected, expected)
    assert report.merged == 1


@pytest.mark.parametrize(
    ("policy", "name"), [(Policy.MERGE, "server.txt"), (Policy.CLIENT_WINS, "client.txt")]
)
def test_both_rename(tmp_path: Path, policy: Policy, name: str) -> None:
    s = Setup(tmp_path, policy)
    (s.server / "n.txt").rename(s.server / "server.txt")
    (s.client / "n.txt").rename(s.client / "client.txt")
    s.sync()
    expected = {name: BASE, "other.txt": OTHER}
    assert s.both() == (expected, expected)


def test_client_deletes_what_the_server_renamed(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    (s.server / "n.txt").rename(s.server / "renamed.txt")
    write_notes(s.client, {"n.txt": None})
    report = s.sync()
    assert s.both() == ({"other.txt": OTHER},) * 2  # a rename alone does not beat a delete
    assert report.conflicts == 0


def test_client_renames_what_the_server_deleted(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    write_notes(s.server, {"n.txt": None})
    (s.client / "n.txt").rename(s.client / "renamed.txt")
    s.sync()
    expected = {"renamed.txt": BASE, "other.txt": OTHER}
    assert s.both() == (expected, expected)
    assert s.sync().local.total() == 0


# ---------------------------------------------------------------- line endings


def test_crlf_notes_merge_and_keep_crlf(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    crlf = BASE.replace(b"\n", b"\r\n")
    write_notes(s.client, {"n.txt": crlf})
    s.sync()
    write_notes(s.client, {"n.txt": CLIENT_TAIL.replace(b"\n", b"\r\n")})
    write_notes(s.server, {"n.txt": SERVER.replace(b"\n", b"\r\n")})
    report = s.sync()
    client, server = s.both()
    assert client["n.txt"] == server["n.txt"] == MERGED.replace(b"\n", b"\r\n")
    assert report.merged == 1 and report.unresolved == []


def test_a_line_ending_conversion_does_not_conflict_with_an_edit(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    # the server's user converts the note to CRLF and edits it; the client edits elsewhere
    write_notes(s.server, {"n.txt": SERVER.replace(b"\n", b"\r\n")})
    write_notes(s.client, {"n.txt": CLIENT_TAIL})
    report = s.sync()
    client, server = s.both()
    assert server["n.txt"] == MERGED.replace(b"\n", b"\r\n")  # the server file keeps its new CRLF
    assert client["n.txt"] == MERGED  # the client file keeps its LF
    assert report.unresolved == [] and report.merged == 1


def test_a_line_ending_change_alone_is_not_a_change(tmp_path: Path) -> None:
    s = Setup(tmp_path, Policy.MERGE)
    write_notes(s.server, {"n.txt": BASE.replace(b"\n", b"\r\n")})
    report = s.sync()
    assert read_notes(s.client)["n.txt"] == BASE  # the client's own convention stays
    assert report.local.total() == 0
    # ... and a conversion on the client does not reach the server either
    write_notes(s.client, {"other.txt": OTHER.replace(b"\n", b"\r\n")})
    s.sync()
    assert read_notes(s.server)["other.txt"] == OTHER
    assert s.reports[-1].local.total() == 0
