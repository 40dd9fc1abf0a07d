"""Where the server keeps its open sessions (failed logins: :mod:`gitsync.app.throttle`).

A SyncML session spans several HTTP requests.  :class:`MemoryTable` keeps the sessions in the
process (the threaded ``gitsync-notes serve``).  Under a pre-fork server (gunicorn with several
worker processes) consecutive requests of one session reach different processes, so
:class:`DirTable` keeps each session as a file of its own in a private folder of the repository
(``.git/gitsync/sessions/<key>.session``) and serialises the requests of all processes with an
``flock``: a request reads only the session its key names (the file name), and writes back only
that one before the lock is released -- no index shared by all sessions is read or rewritten.

Both tables know, besides the sessions, which of them have not *established* themselves yet (not
logged in; without users: not past their first message), per client address, so that the server
can cap those per address and expire them early (see :mod:`gitsync.app.admission`).

A session is pickled with the objects of the serving process -- the store, the server, its
options and users table -- written as references and resolved to the reading process's own objects,
so session files never hold passwords (credentials that messages carried are blanked as well).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import itertools
import json
import logging
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitsync.atomic import atomic_write
from gitsync.protocol.events import OutChange
from gitsync.protocol.messages import Cred

__all__ = ["DirTable", "MemoryTable", "SessionInfo", "SessionTable"]

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{32}\Z")


@dataclass(slots=True)
class SessionInfo:
    """What the server needs to know of a session without loading it."""

    touched: float
    device: tuple[str, str]  # (SyncHdr SessionID, device id) of its first message
    addr: str  # the client address it began at (as the server sees it: after trusted proxies)
    group: str  # the address group its cap counts in (see admission.address_group)
    established: bool = False  # logged in (with users), or past its first message (without)
    #: on a server without users no session ever authenticates: counted in the caps all its life
    unauthenticated: bool = False

    @property
    def counted(self) -> bool:
        """Whether the session counts against the caps on sessions not logged in."""
        return not self.established or self.unauthenticated


@dataclass(slots=True)
class _Limits:
    idle: float = float("-inf")  # sessions untouched before this are gone
    stranger: float = float("-inf")  # sessions not established and untouched before this are gone

    def expired(self, info: SessionInfo) -> bool:
        return info.touched < (self.idle if info.established else max(self.idle, self.stranger))


@dataclass(slots=True)
class SessionTable:
    """The interface (and the in-memory bookkeeping both tables share)."""

    #: device id -> its interrupted session (app/carryover.Suspended), for a resume (Alert 225)
    suspended: dict[str, Any] = field(default_factory=dict)
    #: whether ``suspended`` is kept (a table shared by processes keeps none: a resume is a slow sync)
    keeps_suspended: bool = True

    @contextlib.contextmanager
    def transaction(self, externals: Mapping[str, object]) -> Iterator[None]:
        """Hold the table for one request; ``externals`` are objects sessions refer to by name."""
        yield

    def get(self, key: str | None) -> Any | None:
        raise NotImplementedError

    def info(self, key: str | None) -> SessionInfo | None:
        raise NotImplementedError

    def put(self, key: str, run: Any, info: SessionInfo, *, link: bool) -> None:
        """A new session; ``link``: findable by its (SessionID, device) at once (see by_device)."""
        raise NotImplementedError

    def touch(self, key: str, now: float, *, established: bool) -> None:
        """The session was used now; ``established``: it logged in (it is then findable by device)."""
        raise NotImplementedError

    def _may_link(self, key: str, info: SessionInfo, force: bool) -> bool:
        """Whether session ``key`` takes over its (SessionID, device): a session that logged in
        always; one that did not, unless that device's session is open from another address."""
        if force:
            return True
        other = self.by_device(info.device)
        held = self.info(other) if other is not None and other != key else None
        return held is None or held.addr == info.addr

    def pop(self, key: str) -> None:
        raise NotImplementedError

    def by_device(self, device: tuple[str, str]) -> str | None:
        raise NotImplementedError

    def strangers(self, group: str) -> list[str]:
        """Keys of the sessions of address group ``group`` not established yet, oldest first."""
        raise NotImplementedError

    def make_room_all(self, max_strangers: int) -> list[str]:
        """Drop the sessions not established idle longest, from any address, so that one more
        fits ``max_strangers`` (a flood from many addresses)."""
        raise NotImplementedError

    def expire(self, *, idle: float, stranger: float, now: float, max_strangers: int) -> list[str]:
        """Drop the sessions untouched since ``idle`` (not established: since ``stranger``), and the
        oldest not established beyond ``max_strangers`` in all (a flood from many addresses)."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class MemoryTable(SessionTable):
    """Sessions in this process (one server process, any number of threads); every step O(1)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, Any] = {}
        self.infos: dict[str, SessionInfo] = {}
        self.devices: dict[tuple[str, str], str] = {}
        # oldest first: expiry pops from the front, each only what it drops
        self._established: OrderedDict[str, None] = OrderedDict()
        self._strangers: OrderedDict[str, None] = OrderedDict()
        self._groups: dict[str, OrderedDict[str, None]] = {}

    def get(self, key: str | None) -> Any | None:
        return self.runs.get(key) if key else None

    def info(self, key: str | None) -> SessionInfo | None:
        return self.infos.get(key) if key else None

    def put(self, key: str, run: Any, info: SessionInfo, *, link: bool) -> None:
        self.pop(key)
        self.runs[key] = run
        self.infos[key] = info
        if link and self._may_link(key, info, False):
            self.devices[info.device] = key
        self._file(key, info)

    def _file(self, key: str, info: SessionInfo) -> None:
        if info.established:
            self._established[key] = None
        if info.counted:
            self._strangers[key] = None
            self._groups.setdefault(info.group, OrderedDict())[key] = None

    def _unfile(self, key: str, info: SessionInfo) -> None:
        self._established.pop(key, None)
        self._strangers.pop(key, None)
        group = self._groups.get(info.group)
        if group is not None:
            group.pop(key, None)
            if not group:
                del self._groups[info.group]

    def touch(self, key: str, now: float, *, established: bool) -> None:
        info = self.infos.get(key)
        if info is None:
            return
        self._unfile(key, info)
        info.touched = now
        if established and not info.established:
            info.established = True
            self.devices[info.device] = key
        self._file(key, info)

    def pop(self, key: str) -> None:
        info = self.infos.pop(key, None)
        self.runs.pop(key, None)
        if info is not None:
            self._unfile(key, info)
            if self.devices.get(info.device) == key:
                del self.devices[info.device]

    def by_device(self, device: tuple[str, str]) -> str | None:
        return self.devices.get(device)

    def strangers(self, group: str) -> list[str]:
        return list(self._groups.get(group, ()))

    def make_room_all(self, max_strangers: int) -> list[str]:
        gone = list(itertools.islice(self._strangers, max(0, len(self._strangers) - max_strangers + 1)))
        for key in gone:
            self.pop(key)
        return gone

    def expire(self, *, idle: float, stranger: float, now: float, max_strangers: int) -> list[str]:
        limits = _Limits(idle, stranger)
        gone: list[str] = []
        for queue in (self._strangers, self._established):
            while queue:
                key = next(iter(queue))
                if not limits.expired(self.infos[key]) and (queue is self._established
                                                            or len(queue) < max_strangers):
                    break
                gone.append(key)
                self.pop(key)
        return gone

    def __len__(self) -> int:
        return len(self.infos)


class DirTable(SessionTable):
    """Sessions in files under ``folder``, shared by every process serving the repository.

    ``<key>.session``: one session (a JSON line of its :class:`SessionInfo`, then its pickle);
    ``dev/<hash of (SessionID, device)>``: the key of that device's session, for the no-users
    fallback; ``new/<hash of the address group>/<key>``: an empty file per session of that group
    not established yet (the cap counts them).  Failed logins are not kept here
    (:mod:`gitsync.app.throttle`).  Sessions that expired are swept every ``sweep_every`` seconds.
    """

    sweep_every = 30.0

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.keeps_suspended = False
        self.folder = folder
        self._externals: Mapping[str, object] = {}
        self._runs: dict[str, Any] = {}
        self._infos: dict[str, SessionInfo] = {}
        self._dirty: set[str] = set()
        self._dropped: dict[str, SessionInfo | None] = {}
        self._limits = _Limits()

    @contextlib.contextmanager
    def transaction(self, externals: Mapping[str, object]) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._externals = externals
            self._runs, self._infos, self._dirty, self._dropped = {}, {}, set(), {}
            self._limits = _Limits()
            yield
            self._write_back()
        finally:
            self._runs, self._infos = {}, {}
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ---- one session
    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.session"

    def _load(self, key: str | None) -> bool:
        """Read session ``key`` into this transaction; whether it exists (and has not expired)."""
        if not key or not _KEY.match(key) or key in self._dropped:
            return False
        if key in self._infos:
            return True
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            logger.warning("cannot read session %s: %s", key[:8], exc)
            return False
        try:
            head, _, rest = data.partition(b"\n")
            raw = json.loads(head)
            info = _info(raw)
            run = _Unpickler(io.BytesIO(rest), self._externals).load()
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, pickle.UnpicklingError,
                EOFError) as exc:
            logger.warning("dropping unreadable session %s: %s", key[:8], exc)
            self._drop(key, None)
            return False
        if self._limits.expired(info):
            self._drop(key, info)
            return False
        self._infos[key], self._runs[key] = info, run
        return True

    def get(self, key: str | None) -> Any | None:
        return self._runs[key] if key is not None and self._load(key) else None

    def info(self, key: str | None) -> SessionInfo | None:
        return self._infos[key] if key is not None and self._load(key) else None

    def put(self, key: str, run: Any, info: SessionInfo, *, link: bool) -> None:
        self._dropped.pop(key, None)
        if link and self._may_link(key, info, False):
            _write_link(self._device_path(info.device), key)
        self._infos[key], self._runs[key] = info, run
        self._dirty.add(key)
        if info.counted:
            for marker in (self._group_dir(info.group) / key, self.folder / "counted" / key):
                marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                marker.touch()

    def touch(self, key: str, now: float, *, established: bool) -> None:
        if not self._load(key):
            return
        info = self._infos[key]
        info.touched = now
        self._dirty.add(key)
        if established and not info.established:
            info.established = True
            _write_link(self._device_path(info.device), key)
        for marker in (self._group_dir(info.group) / key, self.folder / "counted" / key):
            with contextlib.suppress(FileNotFoundError):
                if info.counted:
                    os.utime(marker)  # the caps drop the session idle longest first
                else:
                    marker.unlink()

    def pop(self, key: str) -> None:
        if key in self._infos or self._load(key):
            self._drop(key, self._infos.get(key))

    def _drop(self, key: str, info: SessionInfo | None) -> None:
        self._infos.pop(key, None)
        self._runs.pop(key, None)
        self._dirty.discard(key)
        self._dropped[key] = info

    def by_device(self, device: tuple[str, str]) -> str | None:
        try:
            key = self._device_path(device).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return key if self._load(key) else None

    def strangers(self, group: str) -> list[str]:
        return self._markers(self._group_dir(group))

    def make_room_all(self, max_strangers: int) -> list[str]:
        """One listing of ``counted/`` (bounded by the cap it keeps); its markers' times only when
        it is full, and then an eighth of the cap goes at once (the idlest), so that a flood pays
        for that reading once per ``max_strangers // 8`` sessions, not for each."""
        try:
            count = len(os.listdir(self.folder / "counted"))
        except FileNotFoundError:
            return []
        if count < max_strangers:
            return []
        waiting = self._markers(self.folder / "counted")
        gone = waiting[: max(0, len(waiting) - max_strangers + max(1, max_strangers // 8))]
        for key in gone:
            self.pop(key)
        return gone

    def _markers(self, folder: Path) -> list[str]:
        """The sessions that ``folder`` has a marker of, idle longest first (stale markers go)."""
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            key = entry.name
            if not _KEY.match(key) or key in self._dropped:
                continue
            if key not in self._infos and not self._path(key).exists():  # its session is gone
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                continue
            with contextlib.suppress(FileNotFoundError):
                found.append((entry.stat().st_mtime, key))
        return [key for _, key in sorted(found)]

    def expire(self, *, idle: float, stranger: float, now: float, max_strangers: int) -> list[str]:
        self._limits = _Limits(idle, stranger)
        mark = self.folder / "swept"
        try:
            last = float(mark.read_text(encoding="ascii"))
        except (OSError, ValueError):
            last = float("-inf")
        if last <= now < last + self.sweep_every:
            return []
        atomic_write(mark, repr(now).encode())
        return self._sweep(max_strangers)

    def _sweep(self, max_strangers: int) -> list[str]:
        """Drop every expired session, and the oldest not established beyond ``max_strangers``
        (the sessions' first lines only are read, not their pickles)."""
        gone: list[str] = []
        strangers: list[tuple[float, str, SessionInfo]] = []
        for entry in os.scandir(self.folder):
            key = entry.name.removesuffix(".session")
            if not entry.name.endswith(".session") or not _KEY.match(key):
                continue
            try:
                with open(entry.path, "rb") as fh:
                    raw = json.loads(fh.readline())
                info = _info(raw)
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                self._drop(key, None)
                gone.append(key)
                continue
            if self._limits.expired(info):
                self._drop(key, info)
                gone.append(key)
            elif info.counted:
                strangers.append((info.touched, key, info))
        strangers.sort()
        for _, key, info in strangers[: max(0, len(strangers) - max_strangers)]:
            self._drop(key, info)
            gone.append(key)
        for sub in ("new", "counted", "dev"):  # markers and links whose session is gone
            for path in (self.folder / sub).glob({"new": "*/*", "counted": "*", "dev": "*"}[sub]):
                name = path.name if sub != "dev" else _read_link(path)
                if name is None or not self._path(name).exists():
                    with contextlib.suppress(OSError):
                        path.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "index.json").unlink()  # from before sessions had a file each
        return gone

    def __len__(self) -> int:
        return sum(1 for p in self.folder.glob("*.session"))

    # ---- files
    def _device_path(self, device: tuple[str, str]) -> Path:
        return self.folder / "dev" / _digest(f"{device[0]}\0{device[1]}")

    def _group_dir(self, group: str) -> Path:
        return self.folder / "new" / _digest(group)

    def _write_back(self) -> None:
        for key in self._dirty:
            info = self._infos[key]
            buf = io.BytesIO()
            head = {"touched": info.touched, "device": list(info.device), "addr": info.addr,
                    "group": info.group, "established": info.established,
                    "unauthenticated": info.unauthenticated}
            buf.write(json.dumps(head).encode() + b"\n")
            _Pickler(buf, self._externals).dump(self._runs[key])
            atomic_write(self._path(key), buf.getvalue(), mode=0o600)
        for key, gone in self._dropped.items():
            with contextlib.suppress(FileNotFoundError):
                self._path(key).unlink()
            with contextlib.suppress(FileNotFoundError):
                (self.folder / "counted" / key).unlink()
            if gone is not None:
                with contextlib.suppress(FileNotFoundError):
                    (self._group_dir(gone.group) / key).unlink()
                link = self._device_path(gone.device)
                if _read_link(link) == key:
                    with contextlib.suppress(FileNotFoundError):
                        link.unlink()


def _info(raw: Any) -> SessionInfo:
    """A session's first line, read back (raises ValueError, KeyError, TypeError, IndexError)."""
    return SessionInfo(float(raw["touched"]), (str(raw["device"][0]), str(raw["device"][1])),
                       str(raw["addr"]), str(raw["group"]), bool(raw["established"]),
                       bool(raw.get("unauthenticated", False)))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _write_link(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, key.encode("ascii"), mode=0o600)


def _read_link(path: Path) -> str | None:
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return key if _KEY.match(key) else None


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
