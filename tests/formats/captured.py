"""Payloads pulled out of the captured wire fixtures, for golden tests.

The fixtures are real traffic (``reference/messages`` in the shared folder, see ``tests/shared.py``);
tests that need them skip when there is no shared folder (an error under CI).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from gitsync.protocol.messages import CTInfo, DataStore
from tests.helpers import shared_path

MESSAGES = shared_path("reference", "messages")

needs_fixtures = pytest.mark.skipif(not MESSAGES.is_dir(), reason=f"no captured messages at {MESSAGES}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def sif_payloads() -> list[tuple[str, bytes]]:
    """Every distinct SIF-N payload pysyncml put in ``<Data>``, with the file it came from."""
    found: dict[bytes, str] = {}
    for path in sorted(MESSAGES.glob("pysyncml/*/*.xml")):
        root = ET.parse(path).getroot()
        for element in root.iter():
            if _local(element.tag) == "Data" and element.text and element.text.startswith("<note>"):
                found.setdefault(element.text.encode("utf-8"), str(path.relative_to(MESSAGES)))
    return [(where, payload) for payload, where in found.items()]


def _mb_uint(data: bytes, index: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[index]
        index += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, index


def synthesis_text_payloads() -> list[tuple[str, bytes]]:
    """text/plain memos as Synthesis sent them: WBXML OPAQUE ``<Data>`` bytes (CRLF kept)."""
    found: dict[bytes, str] = {}
    for path in sorted(MESSAGES.glob("synthesis/local-*/*.wbxml")):
        data = path.read_bytes()
        # Data with content (0x0F | 0x40) followed by OPAQUE (0xC3) and a length.
        for match in re.finditer(rb"\x4f\xc3", data):
            length, start = _mb_uint(data, match.end())
            payload = data[start : start + length]
            if b"\r\n" in payload and not payload.startswith(b"\x02"):
                found.setdefault(payload, str(path.relative_to(MESSAGES)))
    return [(where, payload) for payload, where in found.items()]


def _ct_infos(store: ET.Element, tag: str) -> tuple[CTInfo, ...]:
    infos = []
    for element in store:
        if _local(element.tag) == tag:
            fields = {_local(child.tag): (child.text or "") for child in element}
            infos.append(CTInfo(ct_type=fields["CTType"], ver_ct=fields.get("VerCT")))
    return tuple(infos)


def datastores(relative: str) -> list[DataStore]:
    """The DevInf DataStores of one captured message, as the codec would decode them."""
    root = ET.parse(MESSAGES / relative).getroot()
    stores = []
    for store in root.iter():
        if _local(store.tag) != "DataStore":
            continue
        source_ref = next(child.text or "" for child in store if _local(child.tag) == "SourceRef")
        stores.append(
            DataStore(
                source_ref=source_ref,
                rx_pref=_ct_infos(store, "Rx-Pref"),
                rx=_ct_infos(store, "Rx"),
                tx_pref=_ct_infos(store, "Tx-Pref"),
                tx=_ct_infos(store, "Tx"),
            )
        )
    return stores
