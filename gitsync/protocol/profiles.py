"""Peer quirks as one data table, chosen from the peer's DevInf (Man/Mod/DevID).

Every behaviour difference between peers is a field of :class:`PeerProfile`; code asks
the profile, never the peer's name. Sources: ../shared/reference/protocol.md §0, §5.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitsync.protocol.messages import DevInf

__all__ = ["DEFAULT", "PROFILES", "PeerProfile", "profile_for"]


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


DEFAULT = PeerProfile(name="generic")

#: (DevInf Man/Mod/DevID substring, lower case) → profile. First match wins.
PROFILES: tuple[tuple[str, PeerProfile], ...] = (
    (
        "pysyncml",
        PeerProfile(
            name="pysyncml", accepts_508=False, accepts_209=False, multi_message=False, flat_names=True
        ),
    ),
    ("syncevolution", PeerProfile(name="synthesis", crlf_text=True)),
    ("synthesis", PeerProfile(name="synthesis", crlf_text=True)),
    ("sysync", PeerProfile(name="synthesis", crlf_text=True)),
    ("funambol", PeerProfile(name="funambol", crlf_text=True)),
    ("nokia", PeerProfile(name="nokia", crlf_text=True)),
    ("sonyericsson", PeerProfile(name="sonyericsson", crlf_text=True)),
    ("sony ericsson", PeerProfile(name="sonyericsson", crlf_text=True)),
    ("gitsync", PeerProfile(name="gitsync")),
)


def profile_for(devinf: DevInf | None) -> PeerProfile:
    """The profile matching a peer's DevInf (``DEFAULT`` when unknown)."""
    if devinf is None:
        return DEFAULT
    haystack = " ".join(x for x in (devinf.man, devinf.mod, devinf.dev_id) if x).lower()
    for needle, profile in PROFILES:
        if needle in haystack:
            return profile
    return DEFAULT
