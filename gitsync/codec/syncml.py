"""SyncML element tree (:class:`Node`) <-> :mod:`gitsync.protocol.messages`.

Written once for both byte encodings (XML and WBXML decode to the same Node shape).

Input is lenient, because peers differ: element order is free, unknown elements are
ignored, commands we do not model (Copy, Move, Exec, Search, or anything else carrying a
CmdID) become :class:`Unknown`, and scalar values are whitespace-stripped. Item ``Data``
is never stripped. What we cannot act on is a :class:`CodecError` (400): no
SyncHdr/SyncBody/SessionID/MsgID, a non-integer MsgID/CmdID/MsgRef/CmdRef, a Status or
Alert without its code, a MapItem without both LocURIs, or ``b64`` data that is not base64.

Output follows the SyncML 1.2 DTD element order. Item payloads are written as bytes text
(WBXML emits them as OPAQUE), base64-encoded when the item's (else the command's)
``Meta/Format`` is ``b64``. A payload that XML cannot carry verbatim (not UTF-8, or
holding characters XML 1.0 forbids) is base64-encoded automatically and ``Format b64`` is
added to that Item's Meta, so ``decode(encode(m))`` returns the same bytes (with
``item.meta.format == "b64"``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable
from typing import TypedDict

from gitsync.codec.node import DEVINF_NS, METINF_NS, Node
from gitsync.codec.xml import decode_xml, is_xml_safe, serialize_children
from gitsync.errors import CodecError
from gitsync.protocol.messages import (
    Add,
    Alert,
    Anchor,
    Atomic,
    Chal,
    Command,
    Cred,
    CTInfo,
    DataStore,
    Delete,
    DevInf,
    Get,
    Item,
    Map,
    MapItem,
    Message,
    Meta,
    Put,
    Replace,
    Results,
    Sequence,
    Status,
    Sync,
    SyncHdr,
    Unknown,
)

__all__ = ["BAD_BASE64_TYPE", "message_to_node", "node_to_message"]

#: The Meta/Type an Item gets when its data says Format b64 but is not base64: the item keeps
#: its data as sent, and the application keeps it as an unreadable note (issue 14) instead of
#: the whole message failing (which the peer would repeat every session).
BAD_BASE64_TYPE = "application/x-gitsync-bad-base64"

_INT = re.compile(r"[0-9]{1,18}\Z")
_WHITESPACE = re.compile(rb"\s+")
_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
# SyncML commands we recognise but do not model: always Unknown, even without a CmdID.
_UNSUPPORTED = frozenset({"Copy", "Move", "Exec", "Search"})
_EMPTY_META = Meta()
_ITEM_COMMANDS: dict[str, type[Add] | type[Replace] | type[Put] | type[Get]] = {
    "Add": Add,
    "Replace": Replace,
    "Put": Put,
    "Get": Get,
}


# =========================================================================== decoding


def node_to_message(root: Node) -> Message:
    """Map a decoded SyncML document to a :class:`Message`.

    Raises:
        CodecError: the document lacks something mandatory or has a malformed number.
    """
    if root.tag != "SyncML":
        raise CodecError(f"root element is <{root.tag}>, not <SyncML>")
    header = root.find("SyncHdr")
    if header is None:
        raise CodecError("SyncML message has no SyncHdr")
    body = root.find("SyncBody")
    if body is None:
        raise CodecError("SyncML message has no SyncBody")
    try:
        return Message(
            header=_header(header),
            commands=_commands(body.children),
            final=body.find("Final") is not None,
        )
    except RecursionError as exc:  # only reachable with a Node tree not built by decode_xml
        raise CodecError("SyncML commands nested too deeply") from exc


def _text(node: Node | None, tag: str) -> str | None:
    """Stripped text of child ``tag``; ``""`` if it is empty, ``None`` if absent."""
    if node is None:
        return None
    value = node.findtext(tag)
    return None if value is None else value.strip()


def _int(value: str | None, what: str) -> int:
    """A mandatory non-negative decimal integer."""
    if value is None:
        raise CodecError(f"{what} is missing")
    if not _INT.match(value):
        raise CodecError(f"{what} is not an integer: {value[:40]!r}")
    return int(value)


def _opt_int(value: str | None) -> int | None:
    """An informational integer: absent or malformed both give ``None``."""
    return int(value) if value is not None and _INT.match(value) else None


def _flag(node: Node, tag: str) -> bool:
    """Empty marker elements (``<NoResp/>``, ``<Final/>``, ``<UTC/>``...): presence is truth."""
    return node.find(tag) is not None


def _loc(node: Node, tag: str) -> tuple[str | None, str | None]:
    """(LocURI, LocName) of a Source/Target child; (None, None) when there is none."""
    child = node.find(tag)
    if child is None:
        return None, None
    return _text(child, "LocURI") or "", _text(child, "LocName")


def _wire_text(node: Node | None) -> str | None:
    """Text that must stay text (Cred data, nonces): WBXML OPAQUE that is not UTF-8 becomes base64."""
    if node is None:
        return None
    if isinstance(node.text, bytes):
        try:
            return node.text.decode("utf-8").strip()
        except UnicodeDecodeError:
            return base64.b64encode(node.text).decode("ascii")
    return node.text_str().strip()


def _metinf(node: Node | None) -> Node | None:
    """The MetInf fields of a Meta element, looking inside an explicit ``<MetInf>`` wrapper too."""
    if node is None:
        return None
    flat = Node("Meta")
    for child in node.children:
        flat.children.extend(child.children if child.tag == "MetInf" else [child])
    return flat


def _meta(node: Node | None) -> Meta | None:
    """A Meta element; ``None`` when it carries nothing we keep."""
    flat = _metinf(node)
    if flat is None:
        return None
    anchor = flat.find("Anchor")
    meta = Meta(
        type=_text(flat, "Type"),
        format=_text(flat, "Format"),
        version=_text(flat, "Version"),
        anchor=_anchor(anchor) if anchor is not None else None,
        max_msg_size=_opt_int(_text(flat, "MaxMsgSize")),
        max_obj_size=_opt_int(_text(flat, "MaxObjSize")),
        size=_opt_int(_text(flat, "Size")),
        next_nonce=_wire_text(flat.find("NextNonce")),
    )
    return None if meta == _EMPTY_META else meta


def _anchor(node: Node) -> Anchor:
    return Anchor(last=_text(node, "Last"), next=_text(node, "Next"))


def _effective(item_meta: Meta | None, command_meta: Meta | None, field: str) -> str | None:
    """A Meta field as it applies to an item: item-level Meta overrides command-level Meta."""
    for meta in (item_meta, command_meta):
        value = getattr(meta, field) if meta is not None else None
        if value is not None:
            return str(value)
    return None


def _is_b64(item_meta: Meta | None, command_meta: Meta | None) -> bool:
    return (_effective(item_meta, command_meta, "format") or "").strip().lower() == "b64"


def _header(node: Node) -> SyncHdr:
    session_id = _text(node, "SessionID")
    if session_id is None:
        raise CodecError("SyncHdr has no SessionID")
    target, target_name = _loc(node, "Target")
    source, source_name = _loc(node, "Source")
    cred = node.find("Cred")
    return SyncHdr(
        ver_dtd=_text(node, "VerDTD") or "1.2",
        ver_proto=_text(node, "VerProto") or "SyncML/1.2",
        session_id=session_id,
        msg_id=_int(_text(node, "MsgID"), "SyncHdr/MsgID"),
        target=target or "",
        target_name=target_name,
        source=source or "",
        source_name=source_name,
        resp_uri=_text(node, "RespURI"),
        cred=_cred(cred) if cred is not None else None,
        meta=_meta(node.find("Meta")),
        no_resp=_flag(node, "NoResp"),
    )


def _cred(node: Node) -> Cred:
    meta = _metinf(node.find("Meta"))
    return Cred(
        type=_text(meta, "Type") or "syncml:auth-basic",
        data=_wire_text(node.find("Data")) or "",
        format=_text(meta, "Format"),
    )


def _chal(node: Node) -> Chal:
    meta = _metinf(node.find("Meta"))
    return Chal(
        type=_text(meta, "Type") or "syncml:auth-basic",
        format=_text(meta, "Format"),
        next_nonce=_wire_text(meta.find("NextNonce")) if meta is not None else None,
    )


def _commands(nodes: Iterable[Node]) -> tuple[Command, ...]:
    """The commands among ``nodes``, in order; non-command elements are skipped."""
    commands = []
    for node in nodes:
        command = _command(node)
        if command is not None:
            commands.append(command)
    return tuple(commands)


def _command(node: Node) -> Command | None:
    tag = node.tag
    if tag == "Status":
        return _status(node)
    if tag == "Alert":
        return Alert(**_common(node), code=_int(_text(node, "Data"), "Alert/Data"), items=_items(node, None))
    if tag in ("Add", "Replace", "Put", "Get"):
        meta = _meta(node.find("Meta"))
        return _ITEM_COMMANDS[tag](**_common(node), meta=meta, items=_items(node, meta))
    if tag == "Delete":
        meta = _meta(node.find("Meta"))
        return Delete(
            **_common(node),
            meta=meta,
            items=_items(node, meta),
            archive=_flag(node, "Archive"),
            sft_del=_flag(node, "SftDel"),
        )
    if tag == "Sync":
        return Sync(
            **_common(node),
            source=_loc(node, "Source")[0],
            target=_loc(node, "Target")[0],
            meta=_meta(node.find("Meta")),
            number_of_changes=_opt_int(_text(node, "NumberOfChanges")),
            commands=_commands(node.children),
        )
    if tag == "Map":
        return Map(
            **_common(node),
            source=_loc(node, "Source")[0],
            target=_loc(node, "Target")[0],
            items=tuple(_map_item(child) for child in node.findall("MapItem")),
        )
    if tag == "Results":
        return _results(node)
    if tag == "Atomic":
        return Atomic(**_common(node), commands=_commands(node.children))
    if tag == "Sequence":
        return Sequence(**_common(node), commands=_commands(node.children))
    if tag in _UNSUPPORTED or node.find("CmdID") is not None:
        return Unknown(**_common(node), name=tag)
    return None


class _Base(TypedDict):
    cmd_id: int
    no_resp: bool


def _common(node: Node) -> _Base:
    """The :class:`Command` base fields (``cmd_id``, ``no_resp``) as keyword arguments."""
    return {"cmd_id": _int(_text(node, "CmdID"), f"{node.tag}/CmdID"), "no_resp": _flag(node, "NoResp")}


def _status(node: Node) -> Status:
    chal = node.find("Chal")
    return Status(
        **_common(node),
        msg_ref=_int(_text(node, "MsgRef"), "Status/MsgRef"),
        cmd_ref=_int(_text(node, "CmdRef"), "Status/CmdRef"),
        cmd=_text(node, "Cmd") or "",
        code=_int(_text(node, "Data"), "Status/Data"),
        target_refs=tuple(ref.text_str().strip() for ref in node.findall("TargetRef")),
        source_refs=tuple(ref.text_str().strip() for ref in node.findall("SourceRef")),
        chal=_chal(chal) if chal is not None else None,
        items=_items(node, None),
    )


def _results(node: Node) -> Results:
    msg_ref = _text(node, "MsgRef")
    meta = _meta(node.find("Meta"))
    return Results(
        **_common(node),
        msg_ref=_int(msg_ref, "Results/MsgRef") if msg_ref is not None else None,
        cmd_ref=_int(_text(node, "CmdRef"), "Results/CmdRef"),
        meta=meta,
        target_ref=_text(node, "TargetRef"),
        source_ref=_text(node, "SourceRef"),
        items=_items(node, meta),
    )


def _map_item(node: Node) -> MapItem:
    source, target = _loc(node, "Source")[0], _loc(node, "Target")[0]
    if not source or not target:
        raise CodecError("MapItem needs both Source and Target LocURI")
    return MapItem(source=source, target=target)


def _items(node: Node, command_meta: Meta | None) -> tuple[Item, ...]:
    return tuple(_item(child, command_meta) for child in node.findall("Item"))


def _item(node: Node, command_meta: Meta | None) -> Item:
    source, source_name = _loc(node, "Source")
    target, target_name = _loc(node, "Target")
    meta = _meta(node.find("Meta"))
    try:
        data = _payload(node.find("Data"), meta, command_meta)
    except _BadBase64 as exc:
        meta = dataclasses.replace(meta or _EMPTY_META, type=BAD_BASE64_TYPE, format=None)
        data = exc.raw
    return Item(
        source=source,
        source_name=source_name,
        target=target,
        target_name=target_name,
        meta=meta,
        data=data,
        more_data=_flag(node, "MoreData"),
    )


class _BadBase64(CodecError):
    """Item data marked b64 that is not base64 (``raw``: the data as sent)."""

    def __init__(self, raw: bytes) -> None:
        super().__init__("Item data with Format b64 is not valid base64")
        self.raw = raw


def _payload(
    data: Node | None, item_meta: Meta | None, command_meta: Meta | None
) -> bytes | DevInf | Anchor | None:
    """Item data: DevInf/Anchor when it holds those elements, otherwise exact bytes (b64 undone)."""
    if data is None:
        return None
    devinf = data.find("DevInf")
    if devinf is not None:
        return _devinf(devinf)
    anchor = data.find("Anchor")
    if anchor is not None:
        return _anchor(anchor)
    if data.children:
        return serialize_children(data)
    raw = data.text if isinstance(data.text, bytes) else (data.text or "").encode("utf-8", "surrogatepass")
    if _is_b64(item_meta, command_meta):
        try:
            raw = base64.b64decode(_WHITESPACE.sub(b"", raw), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _BadBase64(raw) from exc
    if "devinf" in (_effective(item_meta, command_meta, "type") or "").lower() and raw.lstrip()[:1] == b"<":
        # Some peers send DevInf XML as escaped text or CDATA instead of as elements.
        try:
            parsed = decode_xml(raw)
        except CodecError:
            return raw
        if parsed.tag == "DevInf":
            return _devinf(parsed)
    return raw


def _devinf(node: Node) -> DevInf:
    """DevInf 1.1 or 1.2; CTCap types are kept per DataStore (1.1 lists them once for the
    device: every store gets them); DSMem, Ext, CTCap properties and other extras are ignored."""
    device_caps = _ctcaps(node)
    return DevInf(
        ver_dtd=_text(node, "VerDTD") or "1.2",
        man=_text(node, "Man"),
        mod=_text(node, "Mod"),
        oem=_text(node, "OEM"),
        fw_v=_text(node, "FwV"),
        sw_v=_text(node, "SwV"),
        hw_v=_text(node, "HwV"),
        dev_id=_text(node, "DevID") or "",
        dev_typ=_text(node, "DevTyp") or "workstation",
        utc=_flag(node, "UTC"),
        support_large_objs=_flag(node, "SupportLargeObjs"),
        support_number_of_changes=_flag(node, "SupportNumberOfChanges"),
        datastores=tuple(_datastore(child, device_caps) for child in node.findall("DataStore")),
    )


def _ctcaps(node: Node) -> tuple[CTInfo, ...]:
    """CTType/VerCT pairs of the CTCap children of ``node`` (a CTCap may list several types)."""
    found: list[CTInfo] = []
    for cap in node.findall("CTCap"):
        current: str | None = None
        version: str | None = None
        for child in cap.children:
            if child.tag == "CTType":
                if current:
                    found.append(CTInfo(ct_type=current, ver_ct=version))
                current, version = child.text_str().strip(), None
            elif child.tag == "VerCT" and current:
                version = child.text_str().strip() or None
        if current:
            found.append(CTInfo(ct_type=current, ver_ct=version))
    return tuple(found)


def _datastore(node: Node, device_caps: tuple[CTInfo, ...] = ()) -> DataStore:
    return DataStore(
        source_ref=_text(node, "SourceRef") or "",
        display_name=_text(node, "DisplayName"),
        max_guid_size=_opt_int(_text(node, "MaxGUIDSize")),
        rx_pref=_ctinfos(node, "Rx-Pref"),
        rx=_ctinfos(node, "Rx"),
        tx_pref=_ctinfos(node, "Tx-Pref"),
        tx=_ctinfos(node, "Tx"),
        sync_types=tuple(
            value
            for cap in node.findall("SyncCap")
            for sync_type in cap.findall("SyncType")
            if (value := _opt_int(sync_type.text_str().strip())) is not None
        ),
        ctcaps=_ctcaps(node) + device_caps,
    )


def _ctinfos(node: Node, tag: str) -> tuple[CTInfo, ...]:
    infos = []
    for child in node.findall(tag):
        ct_type = _text(child, "CTType")
        if ct_type:
            infos.append(CTInfo(ct_type=ct_type, ver_ct=_text(child, "VerCT")))
    return tuple(infos)


# =========================================================================== encoding


def message_to_node(msg: Message) -> Node:
    """Build the SyncML element tree of ``msg`` in DTD order.

    Raises:
        CodecError: an :class:`Unknown` command whose name cannot be written back.
    """
    root = Node("SyncML", [_header_node(msg.header)])
    body = root.add("SyncBody")
    body.children.extend(_command_node(command) for command in msg.commands)
    if msg.final:
        body.add("Final")
    return root


def _add_loc(parent: Node, tag: str, uri: str | None, name: str | None = None) -> None:
    if uri is None and name is None:
        return
    loc = parent.add(tag)
    loc.add("LocURI", uri or "")
    if name is not None:
        loc.add("LocName", name)


def _add_int(parent: Node, tag: str, value: int | None) -> None:
    if value is not None:
        parent.add(tag, str(value))


def _add_meta(parent: Node, meta: Meta | None) -> None:
    """Meta in MetInf DTD order, each child in the ``syncml:metinf`` namespace."""
    if meta is None or meta == _EMPTY_META:
        return
    node = parent.add("Meta")
    fields: tuple[tuple[str, str | int | None], ...] = (
        ("Format", meta.format),
        ("Type", meta.type),
        ("Size", meta.size),
    )
    for tag, value in fields:
        if value is not None:
            node.add(tag, str(value), ns=METINF_NS)
    if meta.anchor is not None:
        node.children.append(_anchor_node(meta.anchor))
    fields = (
        ("Version", meta.version),
        ("NextNonce", meta.next_nonce),
        ("MaxMsgSize", meta.max_msg_size),
        ("MaxObjSize", meta.max_obj_size),
    )
    for tag, value in fields:
        if value is not None:
            node.add(tag, str(value), ns=METINF_NS)


def _anchor_node(anchor: Anchor) -> Node:
    node = Node("Anchor", ns=METINF_NS)
    if anchor.last is not None:
        node.add("Last", anchor.last, ns=METINF_NS)
    if anchor.next is not None:
        node.add("Next", anchor.next, ns=METINF_NS)
    return node


def _header_node(header: SyncHdr) -> Node:
    node = Node("SyncHdr")
    node.add("VerDTD", header.ver_dtd)
    node.add("VerProto", header.ver_proto)
    node.add("SessionID", header.session_id)
    node.add("MsgID", str(header.msg_id))
    _add_loc(node, "Target", header.target, header.target_name)
    _add_loc(node, "Source", header.source, header.source_name)
    if header.resp_uri is not None:
        node.add("RespURI", header.resp_uri)
    if header.no_resp:
        node.add("NoResp")
    if header.cred is not None:
        cred = node.add("Cred")
        _add_meta(cred, Meta(format=header.cred.format, type=header.cred.type))
        cred.add("Data", header.cred.data)
    _add_meta(node, header.meta)
    return node


def _start(tag: str, command: Command, *, no_resp: bool = True) -> Node:
    """A command element with its CmdID (and NoResp where the DTD allows it)."""
    node = Node(tag)
    node.add("CmdID", str(command.cmd_id))
    if no_resp and command.no_resp:
        node.add("NoResp")
    return node


def _command_node(command: Command) -> Node:
    match command:
        case Status():
            return _status_node(command)
        case Alert():
            node = _start("Alert", command)
            node.add("Data", str(command.code))
            _add_items(node, command.items, None)
        case Add() | Replace() | Put() | Get():
            node = _start(type(command).__name__, command)
            _add_meta(node, command.meta)
            _add_items(node, command.items, command.meta)
        case Delete():
            node = _start("Delete", command)
            if command.archive:
                node.add("Archive")
            if command.sft_del:
                node.add("SftDel")
            _add_meta(node, command.meta)
            _add_items(node, command.items, command.meta)
        case Sync():
            node = _start("Sync", command)
            _add_loc(node, "Target", command.target)
            _add_loc(node, "Source", command.source)
            _add_meta(node, command.meta)
            _add_int(node, "NumberOfChanges", command.number_of_changes)
            node.children.extend(_command_node(sub) for sub in command.commands)
        case Map():
            node = _start("Map", command, no_resp=False)
            _add_loc(node, "Target", command.target)
            _add_loc(node, "Source", command.source)
            for map_item in command.items:
                item = node.add("MapItem")
                _add_loc(item, "Target", map_item.target)
                _add_loc(item, "Source", map_item.source)
        case Results():
            node = _start("Results", command, no_resp=False)
            _add_int(node, "MsgRef", command.msg_ref)
            node.add("CmdRef", str(command.cmd_ref))
            _add_meta(node, command.meta)
            if command.target_ref is not None:
                node.add("TargetRef", command.target_ref)
            if command.source_ref is not None:
                node.add("SourceRef", command.source_ref)
            _add_items(node, command.items, command.meta)
        case Atomic() | Sequence():
            node = _start(type(command).__name__, command)
            node.children.extend(_command_node(sub) for sub in command.commands)
        case Unknown():
            # Written back as a bare stub so decode(encode(m)) == m; the session never sends one.
            if not _TAG.match(command.name) or command.name in _MODELLED:
                raise CodecError(f"cannot encode Unknown command named {command.name!r}")
            node = _start(command.name, command)
        case _:
            raise CodecError(f"cannot encode {type(command).__name__}")
    return node


_MODELLED = frozenset(
    {
        "Add",
        "Alert",
        "Atomic",
        "Delete",
        "Get",
        "Map",
        "Put",
        "Replace",
        "Results",
        "Sequence",
        "Status",
        "Sync",
    }
)


def _status_node(status: Status) -> Node:
    """Status in DTD order: ... TargetRef*, SourceRef*, Chal?, Data, Item* (Data precedes Item)."""
    node = _start("Status", status, no_resp=False)
    node.add("MsgRef", str(status.msg_ref))
    node.add("CmdRef", str(status.cmd_ref))
    node.add("Cmd", status.cmd)
    for ref in status.target_refs:
        node.add("TargetRef", ref)
    for ref in status.source_refs:
        node.add("SourceRef", ref)
    if status.chal is not None:
        chal = status.chal
        _add_meta(node.add("Chal"), Meta(format=chal.format, type=chal.type, next_nonce=chal.next_nonce))
    node.add("Data", str(status.code))
    _add_items(node, status.items, None)
    return node


def _add_items(parent: Node, items: Iterable[Item], command_meta: Meta | None) -> None:
    for item in items:
        parent.children.append(_item_node(item, command_meta))


def _item_node(item: Item, command_meta: Meta | None) -> Node:
    node = Node("Item")
    _add_loc(node, "Target", item.target, item.target_name)
    _add_loc(node, "Source", item.source, item.source_name)
    meta = item.meta
    data: Node | None = None
    if isinstance(item.data, DevInf):
        data = Node("Data", [_devinf_node(item.data)])
    elif isinstance(item.data, Anchor):
        data = Node("Data", [_anchor_node(item.data)])
    elif isinstance(item.data, bytes):
        payload = item.data
        if not _is_b64(meta, command_meta) and not is_xml_safe(payload):
            meta = dataclasses.replace(meta or _EMPTY_META, format="b64")
        if _is_b64(meta, command_meta):
            data = Node("Data", text=base64.b64encode(payload).decode("ascii"))
        else:
            data = Node("Data", text=payload)
    _add_meta(node, meta)
    if data is not None:
        node.children.append(data)
    if item.more_data:
        node.add("MoreData")
    return node


def _devinf_node(devinf: DevInf) -> Node:
    """DevInf in DevInf 1.2 DTD order (CTCap inside each DataStore, as 1.2 has it; peers reading
    1.1 ignore it there, and our DevInf lists only the gitsync-only exact format in it)."""
    node = Node("DevInf", ns=DEVINF_NS)
    node.add("VerDTD", devinf.ver_dtd)
    optional = (
        ("Man", devinf.man),
        ("Mod", devinf.mod),
        ("OEM", devinf.oem),
        ("FwV", devinf.fw_v),
        ("SwV", devinf.sw_v),
        ("HwV", devinf.hw_v),
    )
    for tag, value in optional:
        if value is not None:
            node.add(tag, value)
    node.add("DevID", devinf.dev_id)
    node.add("DevTyp", devinf.dev_typ)
    for tag, flag in (
        ("UTC", devinf.utc),
        ("SupportLargeObjs", devinf.support_large_objs),
        ("SupportNumberOfChanges", devinf.support_number_of_changes),
    ):
        if flag:
            node.add(tag)
    for store in devinf.datastores:
        node.children.append(_datastore_node(store))
    return node


def _datastore_node(store: DataStore) -> Node:
    node = Node("DataStore")
    node.add("SourceRef", store.source_ref)
    if store.display_name is not None:
        node.add("DisplayName", store.display_name)
    _add_int(node, "MaxGUIDSize", store.max_guid_size)
    for tag, infos in (
        ("Rx-Pref", store.rx_pref),
        ("Rx", store.rx),
        ("Tx-Pref", store.tx_pref),
        ("Tx", store.tx),
    ):
        for info in infos:
            ct = node.add(tag)
            ct.add("CTType", info.ct_type)
            if info.ver_ct is not None:
                ct.add("VerCT", info.ver_ct)
    for info in store.ctcaps:
        ct = node.add("CTCap")
        ct.add("CTType", info.ct_type)
        if info.ver_ct is not None:
            ct.add("VerCT", info.ver_ct)
        ct.add("Property").add("PropName", "BODY")  # DevInf 1.2 wants at least one Property
    if store.sync_types:
        cap = node.add("SyncCap")
        for sync_type in store.sync_types:
            cap.add("SyncType", str(sync_type))
    return node
