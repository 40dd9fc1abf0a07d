"""SyncML messages as frozen dataclasses (OMA DS 1.1/1.2 RepPro).

These are what the codecs (``gitsync.codec``) decode to and encode from, and what the
sans-I/O sessions consume and produce. They carry no behaviour.

Conventions:
- Item payloads (``Item.data``) are raw ``bytes``: the codec has already undone
  ``Format b64`` on the way in and applies it on the way out when the item's or the
  command's ``Meta.format`` is ``"b64"``. DevInf payloads are :class:`DevInf`; the anchor
  echoed in an Alert's Status is an :class:`Anchor`.
- ``Cred.data`` and ``Meta.next_nonce`` stay as the base64 text seen on the wire.
- Absent optional elements are ``None`` (or empty tuples / ``False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Add",
    "Alert",
    "Anchor",
    "Atomic",
    "CTInfo",
    "Chal",
    "Command",
    "Cred",
    "DataStore",
    "Delete",
    "DevInf",
    "Get",
    "Item",
    "Map",
    "MapItem",
    "Message",
    "Meta",
    "Put",
    "Replace",
    "Results",
    "Sequence",
    "Status",
    "StatusDraft",
    "Sync",
    "SyncHdr",
    "Unknown",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """Sync anchors (MetInf ``Anchor``): opaque strings compared for equality only."""

    last: str | None = None
    next: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    """The MetInf fields we read or write; unknown ones are dropped by the codec."""

    type: str | None = None
    format: str | None = None
    version: str | None = None
    anchor: Anchor | None = None
    max_msg_size: int | None = None
    max_obj_size: int | None = None
    size: int | None = None
    next_nonce: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cred:
    """Credentials in SyncHdr: ``type`` is ``syncml:auth-basic`` or ``syncml:auth-md5``."""

    type: str
    data: str
    format: str | None = "b64"


@dataclass(frozen=True, slots=True, kw_only=True)
class Chal:
    """An authentication challenge attached to a SyncHdr Status."""

    type: str
    format: str | None = "b64"
    next_nonce: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CTInfo:
    """A content type and version a datastore can receive or transmit."""

    ct_type: str
    ver_ct: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DataStore:
    """One DevInf ``DataStore``; CTCap and DSMem are not kept."""

    source_ref: str
    display_name: str | None = None
    max_guid_size: int | None = None
    rx_pref: tuple[CTInfo, ...] = ()
    rx: tuple[CTInfo, ...] = ()
    tx_pref: tuple[CTInfo, ...] = ()
    tx: tuple[CTInfo, ...] = ()
    sync_types: tuple[int, ...] = ()
    #: content types the peer describes in CTCap (DataStore level in 1.2, DevInf level in 1.1)
    ctcaps: tuple[CTInfo, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DevInf:
    """Device information (OMA DS DevInf 1.1/1.2)."""

    ver_dtd: str = "1.2"
    man: str | None = None
    mod: str | None = None
    oem: str | None = None
    fw_v: str | None = None
    sw_v: str | None = None
    hw_v: str | None = None
    dev_id: str = ""
    dev_typ: str = "workstation"
    utc: bool = False
    support_large_objs: bool = False
    support_number_of_changes: bool = False
    datastores: tuple[DataStore, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """A SyncML ``Item``: addresses plus an optional payload."""

    source: str | None = None
    source_name: str | None = None
    target: str | None = None
    target_name: str | None = None
    meta: Meta | None = None
    data: bytes | DevInf | Anchor | None = None
    more_data: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MapItem:
    """One LUID↔GUID pair in a ``Map``: ``source`` is the client LUID, ``target`` the server GUID."""

    source: str
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every SyncBody command. ``cmd_id`` is unique within a message."""

    cmd_id: int
    no_resp: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert(Command):
    """An Alert: sync mode requests (200-205), 222 next message, 225 resume, ..."""

    code: int
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Add(Command):
    """Add one or more items."""

    meta: Meta | None = None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Replace(Command):
    """Replace one or more items."""

    meta: Meta | None = None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete(Command):
    """Delete one or more items (``archive``/``sft_del`` flags as sent)."""

    meta: Meta | None = None
    items: tuple[Item, ...] = ()
    archive: bool = False
    sft_del: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync(Command):
    """A Sync: the container of Add/Replace/Delete for one datastore pair."""

    source: str | None = None
    target: str | None = None
    meta: Meta | None = None
    number_of_changes: int | None = None
    commands: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Map(Command):
    """A Map: client tells the server which LUIDs it gave the server's Adds."""

    source: str | None = None
    target: str | None = None
    items: tuple[MapItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Put(Command):
    """Put (we only use it for DevInf)."""

    meta: Meta | None = None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Get(Command):
    """Get (we only use it for DevInf)."""

    meta: Meta | None = None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Results(Command):
    """Results of a Get."""

    msg_ref: int | None = None
    cmd_ref: int = 0
    meta: Meta | None = None
    target_ref: str | None = None
    source_ref: str | None = None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Command):
    """The answer to one command; ``cmd_ref`` 0 with ``cmd`` "SyncHdr" answers the header."""

    msg_ref: int
    cmd_ref: int
    cmd: str
    code: int
    target_refs: tuple[str, ...] = ()
    source_refs: tuple[str, ...] = ()
    chal: Chal | None = None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Atomic(Command):
    """Atomic: all sub-commands or none."""

    commands: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Sequence(Command):
    """Sequence: sub-commands in order."""

    commands: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown(Command):
    """A command we parse but do not support (Copy, Move, Exec, Search, ...)."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncHdr:
    """The SyncML header."""

    ver_dtd: str = "1.2"
    ver_proto: str = "SyncML/1.2"
    session_id: str = "1"
    msg_id: int = 1
    target: str = ""
    target_name: str | None = None
    source: str = ""
    source_name: str | None = None
    resp_uri: str | None = None
    cred: Cred | None = None
    meta: Meta | None = None
    no_resp: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One SyncML message: a header, commands in order, and whether it ends its package."""

    header: SyncHdr
    commands: tuple[Command, ...] = field(default=())
    final: bool = True


@dataclass(slots=True, kw_only=True)
class StatusDraft:
    """A Status waiting for its CmdID (assigned when the message is built)."""

    msg_ref: int
    cmd_ref: int
    cmd: str
    code: int
    target_refs: tuple[str, ...] = ()
    source_refs: tuple[str, ...] = ()
    chal: Chal | None = None
    items: tuple[Item, ...] = ()

    def build(self, cmd_id: int) -> Status:
        """The Status command with its CmdID."""
        return Status(
            cmd_id=cmd_id,
            msg_ref=self.msg_ref,
            cmd_ref=self.cmd_ref,
            cmd=self.cmd,
            code=self.code,
            target_refs=self.target_refs,
            source_refs=self.source_refs,
            chal=self.chal,
            items=self.items,
        )
