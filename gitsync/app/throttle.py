"""Login throttling that a stranger cannot turn against a user.

Device ids are not secret, so failures counted per device would let anyone lock a device out.
Failures are counted per (device, address) and per address instead, and the rules are:

1. a login from an address with no strikes is always checked (a victim on their own address is never
   locked out by a stranger elsewhere, whatever device id the stranger used);
2. a (device, address) pair with more than :data:`FREE_PER_PAIR` failures, or an address with more
   than :data:`FREE_PER_ADDRESS` (many devices may share one address behind NAT), is refused without
   a check for a back-off that doubles with each further failure, up to :data:`MAX_DELAY`;
3. a key with no failure for :data:`FORGET_AFTER` seconds is forgotten; a successful login clears
   its (device, address) pair (never the address: one valid account must not buy guesses at others);
4. the table holds at most a fixed number of keys, each O(1); when full the oldest is dropped.

IPv6 addresses count by their /64 network: one host is typically given a whole /64.

Decisions are pure functions of the strikes and the time passed in; :class:`LoginThrottle` applies
them to a :class:`StrikeTable` (:class:`MemoryStrikes` here, a file shared by worker processes in
:mod:`gitsync.app.throttle_file`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from gitsync.app.admission import address_group

__all__ = [
    "FORGET_AFTER",
    "FREE_PER_ADDRESS",
    "FREE_PER_PAIR",
    "MAX_DELAY",
    "MAX_ENTRIES",
    "LoginThrottle",
    "MemoryStrikes",
    "StrikeTable",
    "Strikes",
    "Verdict",
    "address_key",
    "after_failure",
    "strike_keys",
    "verdict",
]

#: failures of one device id from one address answered normally (a mistyped password or two)
FREE_PER_PAIR = 3
#: failures of one address answered normally, whatever the device ids (several devices behind NAT)
FREE_PER_ADDRESS = 10
#: the longest back-off, in seconds
MAX_DELAY = 300.0
#: a key with no failure for this long is forgotten (longer than any back-off)
FORGET_AFTER = 900.0
#: keys the table holds at most (the oldest is dropped to make room)
MAX_ENTRIES = 16384


@dataclass(frozen=True, slots=True)
class Strikes:
    """Failed logins under one key: how many, the last one, and the end of the back-off."""

    count: int
    last: float
    until: float = 0.0

    def live(self, now: float) -> bool:
        """Whether this record still counts (else it is forgotten)."""
        return now < self.last + FORGET_AFTER


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a login attempt is checked; if not, the seconds to wait (for Retry-After)."""

    allowed: bool
    retry_after: int = 0
    key: str = ""  # the key whose back-off refused it (for the log)


def address_key(addr: str) -> str:
    """The address as strikes count it: the group session caps use (IPv4, or the IPv6 /64)."""
    return address_group(addr)[:64]


def strike_keys(device: str, addr: str) -> tuple[str, str]:
    """The (device, address) key and the address key of an attempt; the device id is hashed, so a
    key costs the same whatever the length of the id."""
    where = address_key(addr)
    dev = hashlib.blake2b(device.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
    return f"pair {where} {dev}", f"addr {where}"


def verdict(pair: Strikes | None, address: Strikes | None, now: float) -> Verdict:
    """Whether an attempt with these strikes is checked now (rule 1 and 2 of the module docstring)."""
    if address is None or not address.live(now):
        return Verdict(True)  # an address without strikes: always checked
    waits = [(s.until - now, name) for s, name in ((pair, "pair"), (address, "addr"))
             if s is not None and s.live(now) and now < s.until]
    if not waits:
        return Verdict(True)
    wait, name = max(waits)
    return Verdict(False, max(1, math.ceil(wait)), name)


def after_failure(old: Strikes | None, now: float, free: int) -> Strikes:
    """The record after one more failure: the ``free``-th and later ones start a back-off of
    1, 2, 4... seconds, capped at :data:`MAX_DELAY`."""
    count = old.count + 1 if old is not None and old.live(now) else 1
    until = now + min(2.0 ** (count - free), MAX_DELAY) if count >= free else 0.0
    return Strikes(count, now, until)


class StrikeTable(Protocol):
    """Where strikes are kept: ``locked()`` holds the table for one read-modify-write."""

    def locked(self) -> contextlib.AbstractContextManager[None]: ...

    def get(self, key: str, now: float) -> Strikes | None: ...

    def put(self, key: str, strikes: Strikes) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryStrikes:
    """Strikes in this process, at most ``capacity`` keys (least recently failed dropped first)."""

    def __init__(self, capacity: int = MAX_ENTRIES) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, Strikes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def get(self, key: str, now: float) -> Strikes | None:
        found = self._keys.get(key)
        if found is not None and not found.live(now):
            del self._keys[key]
            return None
        return found

    def put(self, key: str, strikes: Strikes) -> None:
        self._keys[key] = strikes
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def delete(self, key: str) -> None:
        self._keys.pop(key, None)


class LoginThrottle:
    """The policy of the module docstring over a :class:`StrikeTable`."""

    def __init__(self, table: StrikeTable | None = None) -> None:
        self.table: StrikeTable = table if table is not None else MemoryStrikes()

    def check(self, device: str, addr: str, now: float) -> Verdict:
        """Whether a login attempt of ``device`` from ``addr`` is checked at all."""
        pair, where = strike_keys(device, addr)
        with self.table.locked():
            return verdict(self.table.get(pair, now), self.table.get(where, now), now)

    def failed(self, device: str, addr: str, now: float) -> Strikes:
        """Count a failed login; return the address's record."""
        pair, where = strike_keys(device, addr)
        with self.table.locked():
            self.table.put(pair, after_failure(self.table.get(pair, now), now, FREE_PER_PAIR))
            address = after_failure(self.table.get(where, now), now, FREE_PER_ADDRESS)
            self.table.put(where, address)
        return address

    def succeeded(self, device: str, addr: str) -> None:
        """A successful login clears its (device, address) pair."""
        pair, _ = strike_keys(device, addr)
        with self.table.locked():
            self.table.delete(pair)
