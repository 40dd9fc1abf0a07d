"""The DevInf we advertise (client and server alike) and how we find the peer's notes store in its own."""

from __future__ import annotations

from gitsync import __version__
from gitsync.formats import EXACT, OUR_FORMATS
from gitsync.protocol.messages import CTInfo, DataStore, DevInf

__all__ = ["DEFAULT_MAX_MSG_SIZE", "our_devinf", "peer_datastore"]

#: The MaxMsgSize we advertise (client and server): the peer keeps each message under it.  Above
#: ~0.5 MB a bigger message only costs memory (20,000 notes, 512 KiB instead of 2 MB: 5-6 MiB less
#: peak RSS per side, same wall time on 127.0.0.1; benchmarks/run.py measures it).
DEFAULT_MAX_MSG_SIZE = 512 * 1024


def our_devinf(dev_id: str, *, server: bool, display_name: str | None = None) -> DevInf:
    """The DevInf we advertise: one notes store, SIF-N 1.1 preferred (pysyncml needs it), and the
    exact format in CTCap (what gitsync peers send each other, :mod:`gitsync.formats.exact`)."""
    cts = tuple(CTInfo(ct_type=f.content_type, ver_ct=f.version) for f in OUR_FORMATS)
    store = DataStore(
        source_ref="notes",
        display_name=display_name or "Notes",
        max_guid_size=64,
        rx_pref=cts[:1],
        rx=cts[1:],
        tx_pref=cts[:1],
        tx=cts[1:],
        ctcaps=(CTInfo(ct_type=EXACT.content_type, ver_ct=EXACT.version),),  # gitsync peers only
        sync_types=(1, 2, 3, 4, 5, 6, 7),
    )
    return DevInf(
        man="gitsync-notes",
        mod="gitsync-notes",
        oem="-",
        fw_v="-",
        sw_v=__version__,
        hw_v="-",
        dev_id=dev_id,
        dev_typ="server" if server else "workstation",
        utc=True,
        support_large_objs=True,  # MoreData both ways (gitsync.protocol.session)
        support_number_of_changes=True,
        datastores=(store,),
    )


def peer_datastore(devinf: DevInf | None, uri: str) -> DataStore | None:
    """The peer's datastore named ``uri`` (``./`` and case ignored), else its only one."""
    if devinf is None or not devinf.datastores:
        return None

    def norm(u: str) -> str:
        return u.removeprefix("./").strip("/").lower()

    for ds in devinf.datastores:
        if norm(ds.source_ref) == norm(uri):
            return ds
    return devinf.datastores[0] if len(devinf.datastores) == 1 else None
