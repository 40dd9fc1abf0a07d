"""Conflicts against the reference peer, pysyncml 0.2.0 ``sync-notes``, in both roles, over HTTP.

Every scenario runs in one session per policy, each on its own note:

* ``clean.txt``   both sides edit different lines (mod/mod that merges);
* ``overlap.txt`` both sides edit the same line (mod/mod that cannot merge);
* ``moddel.txt``  the client edits, the server deletes;
* ``delmod.txt``  the client deletes, the server edits;
* ``renmod.txt``  the client renames it to ``renamed.txt``, the server edits it.

pysyncml's own server never merges notes changed in its folder (it tracks no change for
them): its ``--policy`` (error | client-wins | server-wins) decides every collision. Its
client never detects a conflict; it only reports the statuses our server answers. It is
ASCII-only and keeps no sub-folders, so the notes here are ASCII and flat. Files are
checked on both sides after the session, and for every outcome where one side's text
lost, that text must still be in that side's ``git log`` when the side is ours.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import peers
from tests.helpers import git, read_notes, write_notes

pytestmark = pytest.mark.interop



def base(name: str) -> bytes:
    """The synced text of note ``name`` (distinct per note, so rename detection is unambiguous)."""
    return f"{name}\n\neggs\nmilk\nbread\nbutter\ntea\n".encode()


def top(name: str) -> bytes:  # the client's edit of clean.txt: merges with tail()
    return base(name).replace(b"\n", b" for sunday\n", 1)


def tail(name: str) -> bytes:  # the server's edit of clean.txt
    return base(name).replace(b"tea", b"tea (green)")


def c_eggs(name: str) -> bytes:  # the client's edit elsewhere
    return base(name).replace(b"eggs", b"eggs (12)")


def s_eggs(name: str) -> bytes:  # the server's edit elsewhere: overlaps with c_eggs()
    return base(name).replace(b"eggs", b"eggs (6)")


MERGED = top("clean.txt").replace(b"tea", b"tea (green)")
KEEP = b"untouched\n"
SCENARIOS = ("clean.txt", "overlap.txt", "moddel.txt", "delmod.txt", "renmod.txt")


def start(scenarios: tuple[str, ...] = SCENARIOS) -> dict[str, bytes]:
    return {**{name: base(name) for name in scenarios}, "keep.txt": KEEP}


def _client_edits(client: Path, scenarios: tuple[str, ...] = SCENARIOS) -> None:
    edits = {
        "clean.txt": top("clean.txt"),
        "overlap.txt": c_eggs("overlap.txt"),
        "moddel.txt": c_eggs("moddel.txt"),
        "delmod.txt": None,
    }
    write_notes(client, {k: v for k, v in edits.items() if k in scenarios})
    if "renmod.txt" in scenarios:
        (client / "renmod.txt").rename(client / "renamed.txt")


def _server_edits(server: Path, scenarios: tuple[str, ...] = SCENARIOS) -> None:
    edits = {
        "clean.txt": tail("clean.txt"),
        "overlap.txt": s_eggs("overlap.txt"),
        "moddel.txt": None,
        "delmod.txt": s_eggs("delmod.txt"),
        "renmod.txt": s_eggs("renmod.txt"),
    }
    write_notes(server, {k: v for k, v in edits.items() if k in scenarios})


def _in_log(repo: Path, text: bytes) -> bool:
    log = git(repo, "log", "-p", "--format=", "--text")
    return all(line.decode() in log for line in text.splitlines() if line)


# ------------------------------------------------------------------ our client, its server

# pysyncml's server dies (HTTP 500, IntegrityError re-inserting the note's id) when it must
# resurrect a note it deleted for a client that edited it under client-wins: not scenario-tested.
THEIR_SCENARIOS = {
    "error": SCENARIOS,
    "client-wins": tuple(s for s in SCENARIOS if s != "moddel.txt"),
    "server-wins": SCENARIOS,
}


def their_outcome(policy: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """What (our client, its server) hold after the conflicting session under its ``policy``."""
    ours_after = {
        "clean.txt": top("clean.txt"),
        "overlap.txt": c_eggs("overlap.txt"),
        "moddel.txt": c_eggs("moddel.txt"),
        "renamed.txt": base("renmod.txt"),
        "keep.txt": KEEP,
    }
    theirs_after = {
        "clean.txt": tail("clean.txt"),
        "overlap.txt": s_eggs("overlap.txt"),
        "delmod.txt": s_eggs("delmod.txt"),
        "renmod.txt": s_eggs("renmod.txt"),
        "keep.txt": KEEP,
    }
    if policy == "error":  # 409 for each: neither side changes
        return ours_after, theirs_after
    if policy == "client-wins":  # 208 for each: our version (or our delete) on both sides
        del ours_after["moddel.txt"]
        return ours_after, dict(ours_after)
    return theirs_after, dict(theirs_after)  # server-wins: 419, and it sends its version (or delete)


@pytest.mark.parametrize("policy", sorted(THEIR_SCENARIOS))
def test_gitsync_client_conflicts_with_a_pysyncml_server(tmp_path: Path, policy: str) -> None:
    peers.pysyncml_launcher()
    scenarios = THEIR_SCENARIOS[policy]
    client = tmp_path / "client"
    client.mkdir()
    with peers.PysyncmlServer(tmp_path / "server", policy=policy) as server:
        write_notes(server.dir, start(scenarios))
        peers.run_gitsync("sync", client, "--remote", server.url, "--id", f"gitsync-{policy}")
        assert read_notes(client) == start(scenarios)
        _client_edits(client, scenarios)
        _server_edits(server.dir, scenarios)
        res = peers.run_gitsync("sync", client, check=False)
        want_client, want_server = their_outcome(policy)
        assert read_notes(client) == want_client, res.stdout + res.stderr
        assert read_notes(server.dir) == want_server, server.output()[-3000:]
        assert git(client, "status", "--porcelain") == ""
        if policy == "error":
            # nothing was settled: we say so and exit 3 (conflict), naming the notes
            assert res.returncode == 3, res.stdout + res.stderr
            for name in ("clean.txt", "overlap.txt", "moddel.txt", "delmod.txt", "renamed.txt"):
                assert name in res.stderr
            # ... and stay stuck without damage on the next run
            again = peers.run_gitsync("sync", client, check=False)
            assert again.returncode == 3
        else:
            assert res.returncode == 0, res.stdout + res.stderr
            peers.run_gitsync("sync", client)  # settled: a further sync changes nothing
        assert read_notes(client) == want_client
        assert read_notes(server.dir) == want_server
        if policy == "server-wins":  # our losing edits stay in our history
            assert _in_log(client, top("clean.txt")) and _in_log(client, c_eggs("moddel.txt"))
    assert "Traceback" not in server.output()


# ------------------------------------------------------------------ its client, our server

MARKED = b"<markers>"  # placeholder: the note holds diff3 markers and both edits


def our_outcome(policy: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """What (its client, our server) hold after the conflicting session under our ``policy``.

    A clean merge wins in every policy (207, the merged note goes to both sides), as does
    the client's rename next to our edit; pysyncml takes no 209, so keep-both answers 208
    and sends our version as a second note.
    """
    both = {"clean.txt": MERGED, "renamed.txt": s_eggs("renmod.txt"), "keep.txt": KEEP}
    if policy == "error":  # 409 for the rest: nothing changes on either side
        return (
            {**both, "overlap.txt": c_eggs("overlap.txt"), "moddel.txt": c_eggs("moddel.txt")},
            {**both, "overlap.txt": s_eggs("overlap.txt"), "delmod.txt": s_eggs("delmod.txt")},
        )
    edit_wins = {"moddel.txt": c_eggs("moddel.txt"), "delmod.txt": s_eggs("delmod.txt")}
    outcome = {
        "merge": {**both, **edit_wins, "overlap.txt": MARKED},
        "client-wins": {**both, "overlap.txt": c_eggs("overlap.txt"), "moddel.txt": c_eggs("moddel.txt")},
        "server-wins": {**both, "overlap.txt": s_eggs("overlap.txt"), "delmod.txt": s_eggs("delmod.txt")},
        "keep-both": {
            **both,
            **edit_wins,
            "overlap.txt": c_eggs("overlap.txt"),
            "overlap (conflict).txt": s_eggs("overlap.txt"),
        },
    }[policy]
    return outcome, dict(outcome)


def _check(notes: dict[str, bytes], want: dict[str, bytes]) -> None:
    assert sorted(notes) == sorted(want)
    for name, text in want.items():
        got = notes[name]
        if text == MARKED:
            assert b"<<<<<<< server 127.0.0.1:" in got and b"||||||| last sync" in got, got
            assert re.search(rb"(?m)^>>>>>>> device \S", got) and b">>>>>>> device-" not in got, got
            assert b"eggs (12)" in got and b"eggs (6)" in got, got
        else:
            assert got == text, (name, got)


@pytest.mark.parametrize("policy", ["merge", "client-wins", "server-wins", "keep-both", "error"])
def test_pysyncml_client_conflicts_with_a_gitsync_server(tmp_path: Path, policy: str) -> None:
    peers.pysyncml_launcher()
    srv = tmp_path / "server"
    cli = tmp_path / "client"
    srv.mkdir()
    write_notes(srv, start())
    with peers.GitsyncServer(srv, extra=["--policy", policy]) as server:
        peers.run_pysyncml_client(cli, url=server.url, devid=f"pysyncml-{policy}", check=True)
        assert read_notes(cli) == start()
        _client_edits(cli)
        _server_edits(srv)
        res = peers.run_pysyncml_client(cli, check=True)
        want_client, want_ours = our_outcome(policy)
        client, ours = read_notes(cli), read_notes(srv)
        _check(client, want_client)
        _check(ours, want_ours)
        assert "conflict" in res.stdout.lower()  # its summary counts them
        assert git(srv, "status", "--porcelain") == ""
        # every text of ours that lost is still in our history
        for text in (tail("clean.txt"), s_eggs("overlap.txt"), s_eggs("delmod.txt")):
            assert _in_log(srv, text)
        # settled (or, for "error", still refused): the next session changes nothing
        peers.run_pysyncml_client(cli, check=True)
        assert read_notes(srv) == ours
        assert read_notes(cli) == client
    assert "Traceback" not in server.output()
