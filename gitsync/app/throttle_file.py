"""Login strikes in one fixed-size file, shared by every process serving a repository.

Under gunicorn the attempts of one attacker reach different worker processes, so strikes kept in a
worker's memory would give each worker its own free failures.  The file is a hash table that never
grows: a 64-byte header (magic, a random salt, the geometry) and ``buckets`` buckets of
:data:`WAYS` records of 40 bytes (a keyed 16-byte hash of the key, the count, the last failure and
the end of the back-off).  A key lives in the bucket its salted hash names; a new key takes a free
or forgotten record there, else the one whose last failure is oldest.  So every operation reads and
writes one bucket (O(1)), the table holds at most ``buckets * WAYS`` keys, and a stranger who does
not know the salt cannot aim keys at one bucket to push a given address out.  An ``flock`` on the
file makes each read-modify-write atomic across processes; the file is created sparse.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

from gitsync.app.throttle import MAX_ENTRIES, Strikes

__all__ = ["WAYS", "FileStrikes"]

_MAGIC = b"gitsync-logins1\n"
_HEADER = struct.Struct("<16s16sII24x")  # magic, salt, buckets, ways
_RECORD = struct.Struct("<16sI4xdd")  # key hash, count, last, until
#: records per bucket
WAYS = 8
_EMPTY = bytes(16)


class FileStrikes:
    """A :class:`~gitsync.app.throttle.StrikeTable` in the file ``path`` holding ``capacity`` keys."""

    def __init__(self, path: Path, capacity: int = MAX_ENTRIES) -> None:
        self.path = path
        self.capacity = max(WAYS, capacity - capacity % WAYS)
        self._lock = threading.Lock()
        self._fd = -1  # the file while locked
        self._handle = -1
        self._pid = -1  # the process that opened _handle
        self._salt = b""
        self._buckets = 0

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            if self._pid != os.getpid():  # never share an open file (and its flock) across a fork
                self._handle = self._open()
                self._pid = os.getpid()
            fcntl.flock(self._handle, fcntl.LOCK_EX)
            try:
                self._fd = self._handle
                self._read_header()
                yield
            finally:
                self._fd = -1
                fcntl.flock(self._handle, fcntl.LOCK_UN)

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def close(self) -> None:
        """Close the file (it is reopened when needed)."""
        with self._lock:
            if self._pid == os.getpid():
                os.close(self._handle)
            self._pid = -1

    def _read_header(self) -> None:
        head = os.pread(self._fd, _HEADER.size, 0)
        if len(head) == _HEADER.size:
            magic, salt, buckets, ways = _HEADER.unpack(head)
            if magic == _MAGIC and ways == WAYS and buckets > 0:
                self._salt, self._buckets = salt, buckets
                return
        # new, or not ours: start afresh (forgetting strikes is safe; the file never grows)
        self._salt, self._buckets = os.urandom(16), self.capacity // WAYS
        os.ftruncate(self._fd, 0)
        os.ftruncate(self._fd, _HEADER.size + self._buckets * WAYS * _RECORD.size)
        os.pwrite(self._fd, _HEADER.pack(_MAGIC, self._salt, self._buckets, WAYS), 0)

    def _where(self, key: str) -> tuple[bytes, int]:
        raw = key.encode("utf-8", "surrogateescape")
        digest = hashlib.blake2b(raw, key=self._salt, digest_size=16).digest()
        bucket = int.from_bytes(digest[:8], "little") % self._buckets
        return digest, _HEADER.size + bucket * WAYS * _RECORD.size

    def _bucket(self, offset: int) -> list[tuple[bytes, int, float, float]]:
        data = os.pread(self._fd, WAYS * _RECORD.size, offset).ljust(WAYS * _RECORD.size, b"\0")
        return [_RECORD.unpack_from(data, i * _RECORD.size) for i in range(WAYS)]

    def get(self, key: str, now: float) -> Strikes | None:
        digest, offset = self._where(key)
        for found, count, last, until in self._bucket(offset):
            if found == digest:
                strikes = Strikes(count, last, until)
                return strikes if strikes.live(now) else None
        return None

    def put(self, key: str, strikes: Strikes) -> None:
        digest, offset = self._where(key)
        rows = self._bucket(offset)
        slot = next((i for i, row in enumerate(rows) if row[0] == digest), None)
        if slot is None:  # a free or forgotten record, else the one that failed longest ago
            slot = min(range(WAYS), key=lambda i: (rows[i][0] != _EMPTY, Strikes(rows[i][1], rows[i][2]).live(
                strikes.last), rows[i][2]))
        record = _RECORD.pack(digest, strikes.count, strikes.last, strikes.until)
        os.pwrite(self._fd, record, offset + slot * _RECORD.size)

    def delete(self, key: str) -> None:
        digest, offset = self._where(key)
        for i, row in enumerate(self._bucket(offset)):
            if row[0] == digest:
                os.pwrite(self._fd, bytes(_RECORD.size), offset + i * _RECORD.size)

    def live_keys(self, now: float) -> int:
        """How many keys the file holds that still count (for tests and the log)."""
        with self.locked():
            total = 0
            for bucket in range(self._buckets):
                for found, count, last, _ in self._bucket(_HEADER.size + bucket * WAYS * _RECORD.size):
                    total += found != _EMPTY and Strikes(count, last).live(now)
            return total
