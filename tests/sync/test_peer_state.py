"""PeerState: the typed view of a peer's state blobs round-trips byte for byte, for both roles."""

from __future__ import annotations

import pytest

from gitsync.protocol.messages import DataStore, DevInf
from gitsync.sync.state import IdRow, PeerState, Role, kept

CLIENT = PeerState(
    role=Role.CLIENT,
    url="http://h/sync",
    device_id="gitsync-1",
    remote_uri="notes",
    our_anchor="20260101T000000Z",
    peer_anchor="42",
    session_id="7",
    content_type="text/x-s4j-sifn",
    nonce="bm9uY2U=",
    mode="two-way",
    advertise="text/plain",
    ids=(IdRow("L1", "G1", "a.txt"), IdRow("L2", None, "dir/b.txt"), IdRow("L3", "", "tab\tname.txt")),
    devinf=DevInf(dev_id="srv", datastores=(DataStore(source_ref="notes"),)),
    extras={"a.txt": ("text/x-s4j-sifn", (("Color", "1"), ("Height", "200")))},
    names={"dir/b.txt": "dir/B:1.txt"},
)
SERVER = PeerState(
    role=Role.SERVER,
    device_id="IMEI:1",
    our_anchor="20260101T000000Z-ab12",
    peer_anchor="99",
    nonce="AAAA",
    content_type="text/plain",
    mode="slow",
    user="alice",
    ids=(IdRow("G1", "5", "a.txt"), IdRow("G2", None, "new.txt")),
    refused={"G2": ("0123abcd", 500, 2)},
)


@pytest.mark.parametrize("state", [CLIENT, SERVER, PeerState()], ids=["client", "server", "empty"])
def test_state_round_trips(state: PeerState) -> None:
    files = state.dump()
    again = PeerState.load(files)
    assert again == PeerState(**{**_fields(state), "ids": tuple(sorted(state.ids, key=_row_line))})
    assert again.dump() == files


def test_blob_layout_is_what_older_versions_wrote() -> None:
    """The blobs of existing repositories stay readable: the key names per role, the map columns."""
    client = CLIENT.dump()
    assert b"local_anchor=20260101T000000Z\n" in client["state"]
    assert b"remote_anchor=42\n" in client["state"]
    assert client["map"] == b"L1\tG1\ta.txt\nL2\t-\tdir/b.txt\nL3\t\ttab\tname.txt\n"
    assert set(client) == {"state", "map", "devinf", "extras", "names"}
    server = SERVER.dump()
    assert b"server_anchor=20260101T000000Z-ab12\nuser=alice\n" in server["state"]
    assert b"client_anchor=99\n" in server["state"]
    assert server["map"] == b"G1\t5\ta.txt\nG2\t-\tnew.txt\n"
    assert server["refused"] == b"G2\t0123abcd\t500\t2\n"
    assert set(server) == {"state", "map", "refused"}


def test_a_server_state_is_recognised_by_its_anchors() -> None:
    state = PeerState.load({"state": b"client_anchor=3\nserver_anchor=4\ndevice_id=d\n"})
    assert (state.role, state.our_anchor, state.peer_anchor) == (Role.SERVER, "4", "3")
    state = PeerState.load({"state": b"local_anchor=1\nremote_anchor=2\n"})
    assert (state.role, state.our_anchor, state.peer_anchor) == (Role.CLIENT, "1", "2")


def test_unknown_keys_are_kept() -> None:
    files = {"state": b"from_a_newer_version=x\nurl=u\n", "map": b""}
    state = PeerState.load(files)
    assert state.other == {"from_a_newer_version": "x"} and state.url == "u"
    assert state.dump() == files


@pytest.mark.parametrize(
    "files",
    [
        None,
        {},
        {"state": b"\xff\xfe", "map": b"one column\n", "devinf": b"[", "extras": b"{", "names": b"[1]",
         "refused": b"G\tb\tnot a code\t1\n"},
        {"extras": b'{"a": {"type": "t"}}', "names": b"not json"},
    ],
)
def test_damaged_blobs_read_as_nothing(files: dict[str, bytes] | None) -> None:
    state = PeerState.load(files)
    assert (state.ids, state.devinf, state.extras, state.names, state.refused) == ((), None, {}, {}, {})
    assert state.our_anchor is None and state.url is None


def test_kept_keeps_the_notes_still_there() -> None:
    assert kept({"a": 1, "b": 2, "c": 3}, {"a", "c"}.__contains__) == {"a": 1, "c": 3}


def _row_line(row: IdRow) -> str:
    return "\t".join((row.ours, "-" if row.theirs is None else row.theirs, row.path))


def _fields(state: PeerState) -> dict[str, object]:
    return {name: getattr(state, name) for name in PeerState.__dataclass_fields__}
