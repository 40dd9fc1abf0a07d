"""Per-peer sync state as small text blobs (stored by the Git store under refs/gitsync/).

:class:`PeerState` is what the blobs hold, typed; ``PeerState.load(files)`` and ``dump()`` are
the only readers and writers of them.  The blobs: ``state`` (``key=value`` lines: anchors,
device, content type...), ``map`` (tab-separated: our id, the peer's id or ``-``, the note path),
``devinf`` (the peer's DevInf as JSON), ``extras`` (JSON: per note, the fields the peer sent that
we do not map), ``names`` (JSON: per note, the peer's own name for it where ours differs) and
``refused`` (the server's count of refusals per note).  Text keeps
``git show refs/gitsync/<peer>:state`` readable.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from gitsync.protocol.messages import CTInfo, DataStore, DevInf

__all__ = [
    "Extras",
    "IdRow",
    "PeerState",
    "Role",
    "devinf_from_json",
    "devinf_to_json",
    "dump_kv",
    "dump_rows",
    "kept",
    "parse_kv",
    "parse_rows",
]

logger = logging.getLogger(__name__)
_V = TypeVar("_V")

#: Per note path: the content type a peer sent it in and the fields we do not map (SIF
#: Color, vNote DCREATED...), re-emitted when we send that note back in that content type.
Extras = dict[str, tuple[str, tuple[tuple[str, str], ...]]]


class Role(Enum):
    """Which side of the sessions we are toward this peer: it names our anchors in the blob."""

    CLIENT = "client"
    SERVER = "server"


#: the ``state`` keys of the two anchors, per role: (ours, the peer's)
_ANCHOR_KEYS = {
    Role.CLIENT: ("local_anchor", "remote_anchor"),
    Role.SERVER: ("server_anchor", "client_anchor"),
}
#: the ``state`` keys held as plain fields of :class:`PeerState`
_PLAIN_KEYS = ("url", "device_id", "remote_uri", "session_id", "content_type", "nonce", "mode", "advertise",
               "user")


@dataclass(frozen=True, slots=True)
class IdRow:
    """One note both sides know: our id for it, the peer's (``None`` until it told us) and its path."""

    ours: str
    theirs: str | None
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerState:
    """Everything remembered about one peer between sessions (the synced tree aside, which the
    store keeps beside these blobs).  Frozen: a session builds the next one at its end."""

    role: Role = Role.CLIENT
    url: str | None = None  # the server (client role)
    device_id: str | None = None  # ours as a client, the device's as a server
    remote_uri: str | None = None  # the peer's datastore (client role)
    session_id: str | None = None
    content_type: str | None = None  # the payload format last used
    nonce: str | None = None  # for MD5 auth: the one to use next (server role: base64)
    mode: str | None = None  # the last sync's mode, as reported
    advertise: str | None = None  # content types kept after a sync-notes takeover
    user: str | None = None  # the user the device logged in as (server role)
    our_anchor: str | None = None
    peer_anchor: str | None = None
    other: Mapping[str, str] = field(default_factory=dict)  # ``state`` keys we do not know: kept
    ids: tuple[IdRow, ...] = ()
    devinf: DevInf | None = None
    extras: Mapping[str, tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)  # path → the peer's own name for it
    refused: Mapping[str, tuple[str, int, int]] = field(default_factory=dict)  # id → (blob, status, count)

    @classmethod
    def load(cls, files: Mapping[str, bytes] | None) -> PeerState:
        """The state blobs (``None``: no state yet) → a :class:`PeerState`; damaged parts read as
        empty, never as data."""
        if not files:
            return cls()
        kv = parse_kv(files.get("state"))
        server = any(key in kv for key in _ANCHOR_KEYS[Role.SERVER])
        role = Role.SERVER if server else Role.CLIENT
        ours, theirs = _ANCHOR_KEYS[role]
        known = {*_PLAIN_KEYS, ours, theirs}
        refused: dict[str, tuple[str, int, int]] = {}
        for key, blob, code, count in parse_rows(files.get("refused"), 4):
            if code.isdigit() and count.isdigit():
                refused[key] = (blob, int(code), int(count))
        return cls(
            role=role,
            **{key: kv.get(key) for key in _PLAIN_KEYS},
            our_anchor=kv.get(ours),
            peer_anchor=kv.get(theirs),
            other={k: v for k, v in kv.items() if k not in known},
            ids=tuple(IdRow(a, None if b == "-" else b, p) for a, b, p in parse_rows(files.get("map"), 3)),
            devinf=devinf_from_json(files.get("devinf")),
            extras=_load_extras(files.get("extras")),
            names=_load_names(files.get("names")),
            refused=refused,
        )

    def dump(self) -> dict[str, bytes]:
        """The blobs to store (an empty part is left out, the ``state`` and ``map`` ones aside)."""
        ours, theirs = _ANCHOR_KEYS[self.role]
        values: dict[str, str | None] = {
            **self.other,
            **{key: getattr(self, key) for key in _PLAIN_KEYS},
            ours: self.our_anchor,
            theirs: self.peer_anchor,
        }
        rows = ((row.ours, "-" if row.theirs is None else row.theirs, row.path) for row in self.ids)
        files = {"state": dump_kv(values), "map": dump_rows(rows)}
        if self.devinf is not None:
            files["devinf"] = devinf_to_json(self.devinf)
        if self.extras:
            files["extras"] = _dump_extras(self.extras)
        if self.names:
            files["names"] = _dump_names(self.names)
        if self.refused:
            files["refused"] = dump_rows((k, b, str(c), str(n)) for k, (b, c, n) in self.refused.items())
        return files


def kept(values: Mapping[str, _V], keep: Callable[[str], bool]) -> dict[str, _V]:
    """The per-note entries of ``values`` whose path ``keep`` answers yes (the notes still there)."""
    return {path: value for path, value in values.items() if keep(path)}


def parse_kv(data: bytes | None) -> dict[str, str]:
    """``key=value`` lines → dict (blank and malformed lines ignored)."""
    out: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value
    return out


def dump_kv(values: Mapping[str, str | None]) -> bytes:
    """dict → sorted ``key=value`` lines (``None`` values dropped)."""
    lines = [f"{k}={v}" for k, v in sorted(values.items()) if v is not None]
    return ("\n".join(lines) + "\n").encode()


def parse_rows(data: bytes | None, width: int) -> list[tuple[str, ...]]:
    """Tab-separated rows of exactly ``width`` columns (the last column may contain tabs)."""
    rows: list[tuple[str, ...]] = []
    for line in (data or b"").decode("utf-8", "surrogateescape").split("\n"):
        if not line:
            continue
        parts = line.split("\t", width - 1)
        if len(parts) == width:
            rows.append(tuple(parts))
    return rows


def dump_rows(rows: Iterable[Iterable[str]]) -> bytes:
    """Rows → sorted tab-separated lines."""
    lines = sorted("\t".join(row) for row in rows)
    return ("".join(line + "\n" for line in lines)).encode("utf-8", "surrogateescape")


def devinf_to_json(devinf: DevInf) -> bytes:
    """A DevInf as JSON (for caching the peer's device information)."""
    return json.dumps(dataclasses.asdict(devinf), sort_keys=True, indent=1).encode()


def devinf_from_json(data: bytes | None) -> DevInf | None:
    """The inverse of :func:`devinf_to_json`; ``None`` for missing or unreadable data."""
    if not data:
        return None
    try:
        raw = json.loads(data)
        stores = tuple(
            DataStore(
                source_ref=ds["source_ref"],
                display_name=ds.get("display_name"),
                max_guid_size=ds.get("max_guid_size"),
                sync_types=tuple(ds.get("sync_types", ())),
                **{
                    key: tuple(CTInfo(ct_type=c["ct_type"], ver_ct=c.get("ver_ct")) for c in ds.get(key, ()))
                    for key in ("rx_pref", "rx", "tx_pref", "tx", "ctcaps")
                },
            )
            for ds in raw.get("datastores", ())
        )
        fields = {k: v for k, v in raw.items() if k != "datastores" and k in DevInf.__dataclass_fields__}
        return DevInf(**fields, datastores=stores)
    except (ValueError, KeyError, TypeError, AttributeError):  # AttributeError: JSON but not an object
        return None


def _load_extras(data: bytes | None) -> Extras:
    """The ``extras`` blob (JSON) → :data:`Extras`; unreadable data gives ``{}``."""
    if not data:
        return {}
    try:
        raw = json.loads(data)
        return {
            str(path): (str(entry["type"]), tuple((str(k), str(v)) for k, v in entry["fields"]))
            for path, entry in raw.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.warning("unreadable extras in the sync state: ignored")
        return {}


def _dump_extras(extras: Mapping[str, tuple[str, tuple[tuple[str, str], ...]]]) -> bytes:
    kept = {path: {"type": ct, "fields": [list(f) for f in fields]} for path, (ct, fields) in extras.items()}
    return json.dumps(kept, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8", "surrogateescape")


def _load_names(data: bytes | None) -> dict[str, str]:
    """The ``names`` blob (JSON: local path → the peer's name for it) → a dict."""
    if not data:
        return {}
    try:
        raw = json.loads(data)
        return {str(path): str(name) for path, name in raw.items()}
    except (ValueError, TypeError, AttributeError):
        logger.warning("unreadable peer names in the sync state: ignored")
        return {}


def _dump_names(names: Mapping[str, str]) -> bytes:
    text = json.dumps(dict(names), sort_keys=True, indent=1, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")
