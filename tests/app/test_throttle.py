"""The login throttling policy (app/throttle.py) and its shared file (app/throttle_file.py), as tables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitsync.app.throttle import (
    FORGET_AFTER,
    FREE_PER_ADDRESS,
    FREE_PER_PAIR,
    MAX_DELAY,
    LoginThrottle,
    MemoryStrikes,
    Strikes,
    Verdict,
    address_key,
    after_failure,
    strike_keys,
    verdict,
)
from gitsync.app.throttle_file import FileStrikes

T = 1_000_000.0
VICTIM, STRANGER = "192.0.2.10", "198.51.100.66"


@pytest.mark.parametrize(
    ("pair", "address", "now", "expected"),
    [
        (None, None, T, Verdict(True)),
        # an address without strikes is always checked, whatever the pair says
        (Strikes(9, T, T + 100), None, T, Verdict(True)),
        (Strikes(9, T, T + 100), Strikes(1, T - FORGET_AFTER - 1, 0.0), T, Verdict(True)),
        # strikes without a back-off (the free failures)
        (Strikes(2, T, 0.0), Strikes(2, T, 0.0), T, Verdict(True)),
        # the pair's back-off, rounded up to whole seconds
        (Strikes(3, T, T + 1.2), Strikes(3, T, 0.0), T, Verdict(False, 2, "pair")),
        # the address's back-off, for any device from there
        (None, Strikes(10, T, T + 4), T, Verdict(False, 4, "addr")),
        # both: the longer wait
        (Strikes(5, T, T + 4), Strikes(12, T, T + 16), T, Verdict(False, 16, "addr")),
        # a back-off that ended: checked again
        (Strikes(3, T, T + 1), Strikes(3, T, 0.0), T + 1, Verdict(True)),
        # never less than one second while refused
        (Strikes(3, T, T + 0.01), Strikes(3, T, 0.0), T, Verdict(False, 1, "pair")),
    ],
)
def test_verdict(pair: Strikes | None, address: Strikes | None, now: float, expected: Verdict) -> None:
    assert verdict(pair, address, now) == expected


@pytest.mark.parametrize(
    ("old", "free", "expected"),
    [
        (None, 3, Strikes(1, T, 0.0)),
        (Strikes(1, T - 5, 0.0), 3, Strikes(2, T, 0.0)),
        (Strikes(2, T - 5, 0.0), 3, Strikes(3, T, T + 1)),  # the free-th failure starts the back-off
        (Strikes(3, T - 5, T - 4), 3, Strikes(4, T, T + 2)),  # doubling
        (Strikes(6, T - 5, T - 4), 3, Strikes(7, T, T + 16)),
        (Strikes(40, T - 5, T - 4), 3, Strikes(41, T, T + MAX_DELAY)),  # capped
        (Strikes(9, T - 5, 0.0), 10, Strikes(10, T, T + 1)),
        (Strikes(40, T - FORGET_AFTER, T - FORGET_AFTER + 300), 3, Strikes(1, T, 0.0)),  # forgotten
    ],
)
def test_after_failure(old: Strikes | None, free: int, expected: Strikes) -> None:
    assert after_failure(old, T, free) == expected


@pytest.mark.parametrize(
    ("addr", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),  # the same host's /64
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("", ""),
        ("x" * 500, "x" * 64),
    ],
)
def test_address_key(addr: str, key: str) -> None:
    assert address_key(addr) == key


def test_device_ids_cost_the_same_whatever_their_length() -> None:
    short, long = strike_keys("d", VICTIM)[0], strike_keys("d" * 100_000, VICTIM)[0]
    assert len(short) == len(long) < 80


def tables(tmp_path: Path, capacity: int = 64) -> list[MemoryStrikes | FileStrikes]:
    return [MemoryStrikes(capacity), FileStrikes(tmp_path / "logins", capacity)]


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "file"])
def test_a_stranger_cannot_lock_out_a_victim(tmp_path: Path, kind: int) -> None:
    guard = LoginThrottle(tables(tmp_path)[kind])
    now = T
    refused = []
    for _ in range(20):  # a stranger, 20 wrong passwords under the victim's device id
        ruling = guard.check("victim-phone", STRANGER, now)
        if ruling.allowed:
            guard.failed("victim-phone", STRANGER, now)
        else:
            refused.append(ruling.retry_after)
        now += 0.01
    assert len(refused) == 20 - FREE_PER_PAIR and refused[0] == 1
    # the victim, from its own address, is checked at once
    assert guard.check("victim-phone", VICTIM, now).allowed
    # other devices at the stranger's address are checked until the address used its free failures
    for n in range(FREE_PER_ADDRESS - FREE_PER_PAIR):
        assert guard.check(f"spray-{n}", STRANGER, now).allowed
        guard.failed(f"spray-{n}", STRANGER, now)
    ruling = guard.check("anyone", STRANGER, now)
    assert not ruling.allowed and ruling.key == "addr" and ruling.retry_after == 1
    # after the back-off the stranger may try again; each failure doubles the wait
    waits = []
    for _ in range(5):
        now += guard.check("anyone", STRANGER, now).retry_after
        assert guard.check("anyone", STRANGER, now).allowed
        guard.failed("anyone", STRANGER, now)
        waits.append(guard.check("anyone", STRANGER, now).retry_after)
    assert waits == [2, 4, 8, 16, 32]
    # a success clears the pair, not the address (one valid account buys no guesses at others)
    guard.succeeded("anyone", STRANGER)
    assert not guard.check("anyone", STRANGER, now).allowed
    # long after, everything is forgotten
    now += FORGET_AFTER + 1
    assert guard.check("victim-phone", STRANGER, now).allowed


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "file"])
def test_a_flood_of_device_ids_and_addresses_stays_at_the_cap(tmp_path: Path, kind: int) -> None:
    capacity = 512
    table = tables(tmp_path, capacity)[kind]
    guard = LoginThrottle(table)
    # from one address, the address's back-off stops the flood after its free failures
    checked = 0
    for n in range(50_000):
        if guard.check(f"flood-{n}", STRANGER, T).allowed:
            guard.failed(f"flood-{n}", STRANGER, T)
            checked += 1
    assert checked == FREE_PER_ADDRESS
    # from as many addresses (an IPv4 botnet, or a proxy that forwards anything), the table stays at its cap
    size = os.stat(tmp_path / "logins").st_size if isinstance(table, FileStrikes) else 0
    for n in range(5_000):
        guard.failed(f"flood-{n}", f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", T + 1 + n * 1e-3)
    now = T + 60
    held = len(table) if isinstance(table, MemoryStrikes) else table.live_keys(now)
    assert capacity * 0.9 <= held <= capacity
    if isinstance(table, FileStrikes):
        assert os.stat(tmp_path / "logins").st_size == size  # the file never grows
    # the newest strikes survive the flood
    with table.locked():
        assert table.get(strike_keys("flood-4999", "10.0.19.135")[1], now) == Strikes(1, T + 1 + 4_999e-3)


def test_the_file_is_shared_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "logins"
    one, two = LoginThrottle(FileStrikes(path)), LoginThrottle(FileStrikes(path))
    for _ in range(FREE_PER_PAIR):
        one.failed("dev", STRANGER, T)  # worker one
    assert not two.check("dev", STRANGER, T).allowed  # worker two knows
    assert LoginThrottle(FileStrikes(tmp_path / "logins")).check("dev", STRANGER, T).retry_after == 1
    # a file that is not ours (or torn) is started afresh, never trusted
    (tmp_path / "logins").write_bytes(b"garbage" * 10)
    assert one.check("dev", STRANGER, T).allowed
    one.failed("dev", STRANGER, T)
    assert two.check("dev", STRANGER, T).allowed


def test_counters_that_cannot_be_read_refuse_logins_with_503(tmp_path: Path) -> None:
    """A real filesystem error on the counters' file (here: a folder in its place) → 503, never a
    500 and never a login checked without its counters."""
    from gitsync.app.server import ServerOptions, SyncServer
    from gitsync.store.git import GitStore
    from tests.hostile.helpers import post
    from tests.hostile.test_auth import ALERT, PASSWORD, USERS, basic, message

    folder = tmp_path / "server"
    folder.mkdir()
    server = SyncServer(GitStore.open(folder), ServerOptions(users=USERS))
    (folder / ".git" / "gitsync" / "logins").mkdir(parents=True)
    app = server.wsgi_app()
    for password in ("guess", PASSWORD):
        reply = post(app, message(1, ALERT, device="d", cred=basic("alice", password)))
        assert reply.status == 503, reply
    (folder / ".git" / "gitsync" / "logins").rmdir()
    assert post(app, message(1, ALERT, device="d", cred=basic("alice", PASSWORD))).header_status() == 212
