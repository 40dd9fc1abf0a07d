"""Content-type lookup and negotiation against the DevInf of real peers."""

from __future__ import annotations

import pytest

from gitsync.errors import FormatError
from gitsync.formats import (
    OUR_FORMATS,
    SIFN_10,
    SIFN_11,
    TEXT_10,
    TEXT_11,
    VNOTE_11,
    NoteFormat,
    UnsupportedFormat,
    format_for,
    negotiate,
)
from gitsync.protocol.messages import CTInfo, DataStore
from tests.formats.captured import datastores, needs_fixtures


def test_our_formats_in_preference_order() -> None:
    assert OUR_FORMATS == (SIFN_11, SIFN_10, TEXT_10, TEXT_11, VNOTE_11)
    assert [(f.content_type, f.version) for f in OUR_FORMATS] == [
        ("text/x-s4j-sifn", "1.1"),
        ("text/x-s4j-sifn", "1.0"),
        ("text/plain", "1.0"),
        ("text/plain", "1.1"),
        ("text/x-vnote", "1.1"),
    ]
    for fmt in OUR_FORMATS:
        assert isinstance(fmt, NoteFormat)
        with pytest.raises(AttributeError):
            fmt.version = "9"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("content_type", "version", "expected"),
    [
        ("text/x-s4j-sifn", "1.1", SIFN_11),
        ("text/x-s4j-sifn", "1.0", SIFN_10),
        ("text/x-s4j-sifn", None, SIFN_11),
        ("text/plain", None, TEXT_10),
        ("text/plain", "1.1", TEXT_11),
        ("TEXT/PLAIN; charset=UTF-8", "1.0", TEXT_10),
        ("text/plain", "2.0", TEXT_10),
        ("text/x-vnote", "1.1", VNOTE_11),
        ("text/x-vnote", "1.0", VNOTE_11),
    ],
)
def test_format_for(content_type: str, version: str | None, expected: NoteFormat) -> None:
    assert format_for(content_type, version) is expected


@pytest.mark.parametrize("content_type", ["text/calendar", "text/x-vcard", "", "application/octet-stream"])
def test_format_for_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedFormat) as info:
        format_for(content_type, "1.0")
    assert isinstance(info.value, FormatError)
    assert info.value.content_type == content_type


@needs_fixtures
def test_pysyncml_prefers_sifn_11() -> None:
    (store,) = datastores("pysyncml/slowsync-first/m1-c2s-devinf-put-get.xml")
    assert store.rx_pref == (CTInfo(ct_type="text/x-s4j-sifn", ver_ct="1.1"),)
    assert negotiate(store) is SIFN_11


@needs_fixtures
def test_syncevolution_gets_text_plain() -> None:
    (store,) = datastores("synthesis/http-pkg1-syncevolution-client/m1-c2s-pkg1-enableWBXML0.xml")
    assert store.source_ref == "./memo"
    assert negotiate(store) is TEXT_10


def test_syncevolution_shape_without_fixtures() -> None:
    store = DataStore(
        source_ref="./memo",
        rx_pref=(CTInfo(ct_type="text/plain", ver_ct="1.0"),),
        rx=(CTInfo(ct_type="text/plain", ver_ct="1.1"),),
    )
    assert negotiate(store) is TEXT_10
    only_11 = DataStore(source_ref="memo", rx=(CTInfo(ct_type="text/plain", ver_ct="1.1"),))
    assert negotiate(only_11) is TEXT_11
    odd_version = DataStore(source_ref="memo", rx_pref=(CTInfo(ct_type="text/plain", ver_ct="1.2"),))
    assert negotiate(odd_version).content_type == "text/plain"


def test_no_devinf_or_nothing_in_common_gives_sifn_11() -> None:
    assert negotiate(None) is SIFN_11
    assert negotiate(DataStore(source_ref="notes")) is SIFN_11
    calendar_only = DataStore(source_ref="cal", rx_pref=(CTInfo(ct_type="text/calendar", ver_ct="2.0"),))
    assert negotiate(calendar_only) is SIFN_11


def test_peer_order_wins_and_unknown_entries_are_skipped() -> None:
    phone = DataStore(
        source_ref="Memo",
        rx_pref=(CTInfo(ct_type="text/calendar", ver_ct="2.0"),),
        rx=(CTInfo(ct_type="text/x-vnote", ver_ct="1.1"), CTInfo(ct_type="text/plain", ver_ct="1.0")),
    )
    assert negotiate(phone) is VNOTE_11
    funambol = DataStore(source_ref="snote", rx_pref=(CTInfo(ct_type="text/x-s4j-sifn", ver_ct="1.0"),))
    assert negotiate(funambol) is SIFN_10
    no_version = DataStore(source_ref="note", rx=(CTInfo(ct_type="text/x-s4j-sifn", ver_ct=None),))
    assert negotiate(no_version) is SIFN_11
