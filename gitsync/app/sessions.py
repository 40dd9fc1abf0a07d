"""Where the server keeps its open sessions and its authentication-failure counters.

A SyncML session spans several HTTP requests.  :class:`MemoryTable` keeps the sessions in the
process (the threaded ``gitsync-notes serve``).  Under a pre-fork server (gunicorn with several
worker processes) consecutive requests of one session reach different processes, so
:class:`DirTable` keeps each session as a file in a private folder of the repository
(``.git/gitsync/sessions``) and serialises the requests of all processes with an ``flock``: a
request loads the session it belongs to, and the session is written back before the lock is
released.  Requests are already serialised within a process (``SyncServer`` holds one lock per
request), so the only cost is a small pickle per request.

A session is pickled with the objects of the serving process -- the store, the server, its
options and users table -- written as references and resolved to the reading process's own objects,
so session files never hold passwords (credentials that messages carried are blanked as well).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import pickle
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitsync.atomic import atomic_write
from gitsync.protocol.events import OutChange
from gitsync.protocol.messages import Cred

__all__ = ["DirTable", "MemoryTable", "SessionTable", "Strikes"]

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{32}\Z")


@dataclass(slots=True)
class Strikes:
    """Authentication failures of one client (a device id or an address)."""

    count: int = 0
    last: float = 0.0
    until: float = 0.0  # refused without a check until then


@dataclass(slots=True)
class _Entry:
    touched: float
    device: tuple[str, str]
    addr: str


@dataclass(slots=True)
class SessionTable:
    """In-memory table: session key -> session object, plus the (SessionID, device) index."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    devices: dict[tuple[str, str], str] = field(default_factory=dict)
    strikes: dict[str, Strikes] = field(default_factory=dict)
    #: device id -> its interrupted session (app/carryover.Suspended), for a resume (Alert 225)
    suspended: dict[str, Any] = field(default_factory=dict)
    #: whether ``suspended`` is kept (a table shared by processes keeps none: a resume is a slow sync)
    keeps_suspended: bool = True

    @contextlib.contextmanager
    def transaction(self, externals: Mapping[str, object]) -> Iterator[None]:
        """Hold the table for one request; ``externals`` are objects sessions refer to by name."""
        yield

    def get(self, key: str | None) -> Any | None:
        return self.runs.get(key) if key else None

    def addr(self, key: str) -> str:
        entry = self.entries.get(key)
        return entry.addr if entry else ""

    def put(self, key: str, run: Any, *, touched: float, device: tuple[str, str], addr: str) -> None:
        self.runs[key] = run
        self.entries[key] = _Entry(touched, device, addr)
        self.devices[device] = key

    def touch(self, key: str, now: float) -> None:
        if key in self.entries:
            self.entries[key].touched = now

    def pop(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        self.runs.pop(key, None)
        if entry is not None and self.devices.get(entry.device) == key:
            del self.devices[entry.device]

    def by_device(self, device: tuple[str, str]) -> str | None:
        return self.devices.get(device)

    def expire(self, limit: float) -> list[str]:
        """Drop sessions untouched since ``limit``; return their keys."""
        gone = [k for k, e in self.entries.items() if e.touched < limit]
        for key in gone:
            self.pop(key)
        return gone


class MemoryTable(SessionTable):
    """Sessions in this process (one server process, any number of threads)."""


class DirTable(SessionTable):
    """Sessions in files under ``folder``, shared by every process serving the repository."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.keeps_suspended = False
        self.folder = folder
        self._loaded: set[str] = set()
        self._dropped: set[str] = set()
        self._externals: Mapping[str, object] = {}

    @contextlib.contextmanager
    def transaction(self, externals: Mapping[str, object]) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.folder / "index.flock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._read_index()
            self._externals = externals
            self._loaded, self._dropped = set(), set()
            yield
            self._write_back()
        finally:
            self.runs.clear()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def get(self, key: str | None) -> Any | None:
        if not key or key not in self.entries or not _KEY.match(key):
            return None
        if key not in self.runs:
            try:
                data = (self.folder / f"{key}.session").read_bytes()
                run = _Unpickler(io.BytesIO(data), self._externals).load()
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, KeyError) as exc:
                logger.warning("dropping unreadable session %s: %s", key, exc)
                self.pop(key)
                return None
            self.runs[key] = run
        self._loaded.add(key)
        return self.runs[key]

    def put(self, key: str, run: Any, *, touched: float, device: tuple[str, str], addr: str) -> None:
        super().put(key, run, touched=touched, device=device, addr=addr)
        self._loaded.add(key)
        self._dropped.discard(key)

    def pop(self, key: str) -> None:
        super().pop(key)
        self._dropped.add(key)
        self._loaded.discard(key)

    # ---- files
    def _read_index(self) -> None:
        path = self.folder / "index.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            logger.warning("session index %s unreadable (%s): starting afresh", path, exc)
            data = {}
        self.entries = {
            k: _Entry(float(v["touched"]), (str(v["device"][0]), str(v["device"][1])), str(v.get("addr", "")))
            for k, v in data.get("sessions", {}).items()
            if _KEY.match(k)
        }
        self.devices = {e.device: k for k, e in self.entries.items()}
        self.strikes = {k: Strikes(**v) for k, v in data.get("strikes", {}).items()}
        self.runs = {}

    def _write_back(self) -> None:
        for key in self._loaded:
            if key in self.runs:
                buf = io.BytesIO()
                _Pickler(buf, self._externals).dump(self.runs[key])
                atomic_write(self.folder / f"{key}.session", buf.getvalue())
        for key in self._dropped:
            with contextlib.suppress(FileNotFoundError):
                (self.folder / f"{key}.session").unlink()
        index = {
            "sessions": {
                k: {"touched": e.touched, "device": list(e.device), "addr": e.addr}
                for k, e in self.entries.items()
            },
            "strikes": {
                k: {"count": s.count, "last": s.last, "until": s.until} for k, s in self.strikes.items()
            },
        }
        atomic_write(self.folder / "index.json", json.dumps(index).encode())


class _Pickler(pickle.Pickler):
    """Writes the process's own objects as names, and credentials blank."""

    def __init__(self, file: io.BytesIO, externals: Mapping[str, object]) -> None:
        super().__init__(file, protocol=5)
        self._names = {id(obj): name for name, obj in externals.items() if obj is not None}

    def persistent_id(self, obj: object) -> str | None:
        return self._names.get(id(obj))

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, Cred):
            return _blank_cred, (obj.type, obj.format)
        if isinstance(obj, OutChange) and type(obj) is not OutChange:
            # e.g. LazyOutChange: its slots as they are (its store becomes a reference), not its payload
            slots = {n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())}
            state = {
                n: object.__getattribute__(obj, n)
                for n in sorted(slots - {"data", "__weakref__"})
                if _has_slot(obj, n)
            }
            return _rebuild_slots, (type(obj), state)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, externals: Mapping[str, object]) -> None:
        super().__init__(file)
        self._externals = externals

    def persistent_load(self, pid: object) -> object:
        return self._externals[str(pid)]


def _has_slot(obj: object, name: str) -> bool:
    try:
        object.__getattribute__(obj, name)
    except AttributeError:
        return False
    return True


def _rebuild_slots(cls: type, state: dict[str, object]) -> object:
    obj: object = object.__new__(cls)
    for name, value in state.items():
        object.__setattr__(obj, name, value)
    return obj


def _blank_cred(type: str, format: str | None) -> Cred:
    return Cred(type=type, data="", format=format)
