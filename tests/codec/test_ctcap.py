"""CTCap in a peer's DevInf: parsed at both levels, kept in the state cache, used to negotiate."""

from __future__ import annotations

from gitsync.codec import XML_TYPE, decode, encode
from gitsync.formats import TEXT_10, VNOTE_11, negotiate
from gitsync.protocol.messages import CTInfo, DataStore, DevInf, Put
from gitsync.sync.state import devinf_from_json, devinf_to_json

PHONE_11 = b"""<SyncML xmlns="SYNCML:SYNCML1.1"><SyncHdr><VerDTD>1.1</VerDTD><VerProto>SyncML/1.1</VerProto>
<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>http://s/</LocURI></Target>
<Source><LocURI>IMEI:1</LocURI></Source></SyncHdr><SyncBody>
<Put><CmdID>1</CmdID><Meta><Type xmlns="syncml:metinf">application/vnd.syncml-devinf+xml</Type></Meta>
<Item><Source><LocURI>./devinf11</LocURI></Source><Data><DevInf xmlns="syncml:devinf"><VerDTD>1.1</VerDTD>
<Man>SonyEricsson</Man><Mod>K750i</Mod><DevID>IMEI:1</DevID><DevTyp>phone</DevTyp>
<DataStore><SourceRef>Memo</SourceRef><SyncCap><SyncType>1</SyncType></SyncCap></DataStore>
<CTCap><CTType>text/x-vnote</CTType><PropName>BEGIN</PropName><ValEnum>VNOTE</ValEnum>
<PropName>BODY</PropName><CTType>text/plain</CTType></CTCap>
</DevInf></Data></Item></Put><Final/></SyncBody></SyncML>"""

STORE_12 = b"""<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto>
<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>http://s/</LocURI></Target>
<Source><LocURI>dev</LocURI></Source></SyncHdr><SyncBody>
<Put><CmdID>1</CmdID><Meta><Type xmlns="syncml:metinf">application/vnd.syncml-devinf+xml</Type></Meta>
<Item><Source><LocURI>./devinf12</LocURI></Source><Data><DevInf xmlns="syncml:devinf"><VerDTD>1.2</VerDTD>
<DevID>dev</DevID><DevTyp>phone</DevTyp><DataStore><SourceRef>Notes</SourceRef>
<CTCap><CTType>text/plain</CTType><VerCT>1.0</VerCT><Property><PropName>BODY</PropName></Property></CTCap>
<SyncCap><SyncType>1</SyncType></SyncCap></DataStore></DevInf></Data></Item></Put><Final/></SyncBody></SyncML>"""


def _devinf(body: bytes) -> DevInf:
    msg, _ = decode(body, XML_TYPE)
    put = msg.commands[0]
    assert isinstance(put, Put)
    data = put.items[0].data
    assert isinstance(data, DevInf)
    return data


def test_devinf_11_ctcap_at_device_level_reaches_every_store() -> None:
    devinf = _devinf(PHONE_11)
    store = devinf.datastores[0]
    assert store.rx_pref == () and store.rx == ()
    assert store.ctcaps == (CTInfo(ct_type="text/x-vnote"), CTInfo(ct_type="text/plain"))
    # a phone that names its types only in CTCap gets its first one, not our SIF-N default
    assert negotiate(store) is VNOTE_11


def test_devinf_12_ctcap_in_the_datastore() -> None:
    store = _devinf(STORE_12).datastores[0]
    assert store.ctcaps == (CTInfo(ct_type="text/plain", ver_ct="1.0"),)
    assert negotiate(store) is TEXT_10


def test_rx_entries_win_over_ctcap() -> None:
    store = DataStore(source_ref="n", rx_pref=(CTInfo(ct_type="text/plain", ver_ct="1.0"),),
                      ctcaps=(CTInfo(ct_type="text/x-vnote", ver_ct="1.1"),))
    assert negotiate(store) is TEXT_10


def test_ctcap_survives_the_state_cache_and_a_re_encode() -> None:
    devinf = _devinf(STORE_12)
    assert devinf_from_json(devinf_to_json(devinf)) == devinf
    msg, _ = decode(STORE_12, XML_TYPE)
    again, _ = decode(encode(msg, XML_TYPE), XML_TYPE)
    assert again == msg
