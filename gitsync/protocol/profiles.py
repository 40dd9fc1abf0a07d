"""Peer quirks as one data table, chosen from the peer's DevInf (Man/Mod/DevID, SwV).

Every behaviour difference between peers is a field of :class:`PeerProfile`; code asks
the profile, never the peer's name. Each rule is exercised against the real peer by the tests in
tests/interop/ and against captured traffic by tests/protocol/test_synthesis_replay.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitsync.protocol.messages import DevInf

__all__ = ["DEFAULT", "PROFILES", "PYSYNCML", "SYNTHESIS", "PeerProfile", "Rule", "profile_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerProfile:
    """What a peer can take. Defaults describe a standards-conforming peer."""

    name: str
    #: answers 508 for an anchor mismatch (else: 200 + Alert 201)
    accepts_508: bool = True
    #: accepts 209 "conflict resolved by duplicate"
    accepts_209: bool = True
    #: can receive a package split over several messages (Alert 222, no Final)
    multi_message: bool = True
    #: wants text/plain with CRLF line breaks on the wire
    crlf_text: bool = False
    #: accepts the DevInf Put in the same message as the Alert
    devinf_with_alert: bool = True
    #: sends/accepts NumberOfChanges
    number_of_changes: bool = True
    #: cannot store notes in sub-folders: paths travel flattened ("a/b.txt" → "a%2Fb.txt")
    flat_names: bool = False
    #: takes a Replace in a slow sync (else the server's newer text waits for the next sync)
    replace_in_slow_sync: bool = True
    #: sends every item on a refresh from server (205), not only those it never sent the client
    refresh_sends_all: bool = True
    #: takes a Meta/Type in a Delete (pysyncml's client does not)
    meta_in_delete: bool = True
    #: takes objects split over messages (MoreData/Size); also needs SupportLargeObjs in its DevInf
    large_objects: bool = True
    #: appends a line break to every text/plain note it stores and to every one it sends
    #: (Synthesis: SUBJECT line + CRLF + TEXT + CRLF), so one comes off each way
    adds_trailing_newline: bool = False
    #: can run a slow sync when a note name is on both sides (pysyncml's server answers 500)
    slow_sync_with_shared_notes: bool = True
    #: takes only ASCII note text and names (Python 2 pysyncml raises on anything else, both
    #: roles): other notes are not sent to it, and reported (issue 14)
    ascii_only: bool = False


DEFAULT = PeerProfile(name="generic")
#: Synthesis engine (SyncEvolution 2.0 server and client, many phones).  What its *client* does, as
#: seen against our server (tests/interop/test_syncevolution_client.py); each is handled for every
#: peer, so none needs a flag here:
#: - sends Put+Get DevInf with the Alert in every session; stores text/plain as CRLF files;
#: - aborts the whole session on an item status 409 (and on other errors), keeps what it had sent
#:   for a resume, and after any failed session alerts 225 whatever mode was asked: it takes status
#:   200 as "resumed" and sends only what we did not acknowledge (we resume, or answer 508);
#: - suspends on SIGTERM (Alert 224) when it can, and answers 404 to a Replace for an item it no
#:   longer has (we send it as an Add next session);
#: - alerts 200, not 204, for one-way-from-server and drops its local changes from its change
#:   tracking in that mode (a slow sync brings them back);
#: - never uses a MaxMsgSize below 10240, whatever it is configured with.
SYNTHESIS = PeerProfile(name="synthesis", crlf_text=True, adds_trailing_newline=True)

@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: a peer whose Man/Mod/DevID contains ``match`` (lower case) and,
    when ``sw_v_below`` is set, whose SwV is an older version than that, gets ``profile``."""

    match: str
    profile: PeerProfile
    sw_v_below: str | None = None

    def applies(self, devinf: DevInf) -> bool:
        """Whether this rule describes the peer with ``devinf``."""
        haystack = " ".join(x for x in (devinf.man, devinf.mod, devinf.dev_id) if x).lower()
        if self.match not in haystack:
            return False
        if self.sw_v_below is None:
            return True
        return devinf.sw_v is not None and _version(devinf.sw_v) < _version(self.sw_v_below)


def _version(text: str) -> tuple[int, ...]:
    """``"3.4.0.47"`` → (3, 4, 0, 47); non-numeric parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.\-_ ]", text.strip()) if p)


PYSYNCML = PeerProfile(
    name="pysyncml",
    accepts_508=False,
    accepts_209=False,
    multi_message=False,
    flat_names=True,
    meta_in_delete=False,
    large_objects=False,  # its DevInf claims SupportLargeObjs; it ignores MoreData
    replace_in_slow_sync=False,
    refresh_sends_all=False,
    slow_sync_with_shared_notes=False,
    ascii_only=True,
)

#: The peer quirk table, first match wins.
PROFILES: tuple[Rule, ...] = (
    Rule("pysyncml", PYSYNCML),
    Rule("syncevolution", SYNTHESIS),
    Rule("synthesis", SYNTHESIS),
    Rule("sysync", SYNTHESIS),
    Rule("funambol", PeerProfile(name="funambol", crlf_text=True)),
    Rule("nokia", PeerProfile(name="nokia", crlf_text=True)),
    Rule("sonyericsson", PeerProfile(name="sonyericsson", crlf_text=True)),
    Rule("sony ericsson", PeerProfile(name="sonyericsson", crlf_text=True)),
    Rule("gitsync", PeerProfile(name="gitsync")),
)


def profile_for(devinf: DevInf | None, table: tuple[Rule, ...] = PROFILES) -> PeerProfile:
    """The profile matching a peer's DevInf (``DEFAULT`` when unknown)."""
    if devinf is None:
        return DEFAULT
    for rule in table:
        if rule.applies(devinf):
            return rule.profile
    return DEFAULT
