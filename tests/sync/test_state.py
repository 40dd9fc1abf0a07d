"""gitsync/sync/state.py: the state blobs round-trip, and damaged ones read as "nothing", never as data."""

from __future__ import annotations

import pytest

from gitsync.protocol.messages import CTInfo, DataStore, DevInf
from gitsync.sync.state import devinf_from_json, devinf_to_json, dump_kv, dump_rows, parse_kv, parse_rows

KV = [
    ({}, b"\n"),
    ({"a": "1"}, b"a=1\n"),
    ({"b": "2", "a": "1"}, b"a=1\nb=2\n"),  # sorted
    ({"url": "http://h/x?a=b=c"}, b"url=http://h/x?a=b=c\n"),  # '=' in a value
    ({"empty": ""}, b"empty=\n"),
    ({"gone": None, "kept": "x"}, b"kept=x\n"),  # None dropped
    ({"name": "caf\u00e9"}, "name=caf\u00e9\n".encode()),
]


@pytest.mark.parametrize(("values", "blob"), KV)
def test_kv_dump_and_parse(values: dict[str, str | None], blob: bytes) -> None:
    assert dump_kv(values) == blob
    assert parse_kv(blob) == {k: v for k, v in values.items() if v is not None}


@pytest.mark.parametrize(
    ("blob", "parsed"),
    [
        (None, {}),
        (b"", {}),
        (b"no equals sign\n\n  \n=value without key\n", {}),
        (b" key =v\n", {"key": "v"}),
        (b"k=1\nk=2\n", {"k": "2"}),
        (b"bad=\xff\n", {"bad": "\ufffd"}),
    ],
)
def test_kv_parse_tolerates_damage(blob: bytes | None, parsed: dict[str, str]) -> None:
    assert parse_kv(blob) == parsed


ROWS = [
    ([], b""),
    ([("1", "a.txt")], b"1\ta.txt\n"),
    ([("2", "b.txt"), ("1", "a.txt")], b"1\ta.txt\n2\tb.txt\n"),  # sorted
    ([("1", "tab\tin name.txt")], b"1\ttab\tin name.txt\n"),  # the last column keeps its tabs
    ([("1", "\udcffraw.txt")], b"1\t\xffraw.txt\n"),  # a non-UTF-8 name survives byte-exact
]


@pytest.mark.parametrize(("rows", "blob"), ROWS)
def test_rows_dump_and_parse(rows: list[tuple[str, ...]], blob: bytes) -> None:
    assert dump_rows(rows) == blob
    assert parse_rows(blob, 2) == sorted(rows)


def test_rows_of_the_wrong_width_are_skipped() -> None:
    blob = b"1\ta\tb\n2\n\n3\tc\td\n"
    assert parse_rows(blob, 3) == [("1", "a", "b"), ("3", "c", "d")]
    assert parse_rows(None, 3) == []


DEVINF = DevInf(
    dev_id="IMEI:1234",
    man="Maker",
    mod="Model",
    sw_v="1.0",
    dev_typ="phone",
    datastores=(
        DataStore(
            source_ref="notes",
            display_name="Notes",
            max_guid_size=32,
            sync_types=(1, 2, 7),
            rx_pref=(CTInfo(ct_type="text/x-vnote", ver_ct="1.1"),),
            rx=(CTInfo(ct_type="text/plain", ver_ct=None),),
            tx_pref=(CTInfo(ct_type="text/x-vnote", ver_ct="1.1"),),
            tx=(CTInfo(ct_type="text/plain", ver_ct="1.0"),),
        ),
        DataStore(source_ref="./memo"),
    ),
)


def test_devinf_round_trips() -> None:
    assert devinf_from_json(devinf_to_json(DEVINF)) == DEVINF
    bare = DevInf(dev_id="x")
    assert devinf_from_json(devinf_to_json(bare)) == bare


@pytest.mark.parametrize(
    "blob",
    [None, b"", b"not json", b"[]", b'{"datastores": [{}]}', b'{"datastores": 5}', b'{"dev_id": "x"'],
)
def test_damaged_devinf_reads_as_none(blob: bytes | None) -> None:
    assert devinf_from_json(blob) is None


def test_devinf_ignores_fields_it_does_not_know() -> None:
    assert devinf_from_json(b'{"dev_id": "x", "from_a_newer_version": 1}') == DevInf(dev_id="x")
