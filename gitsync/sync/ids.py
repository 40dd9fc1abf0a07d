"""Names we make up: note ids (deterministic, so a retried session offers the same ones) and peer names."""

from __future__ import annotations

import hashlib
import re

__all__ = ["make_id", "peer_ref_name"]


def make_id(*parts: str) -> str:
    """A 32-hex id derived from what identifies a note when first seen.

    Deterministic, so a session that died and is retried offers the same ids again and
    the peer can match them instead of duplicating notes.
    """
    return hashlib.sha1("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def peer_ref_name(text: str) -> str:
    """A readable, ref-safe peer name from a URL or device id."""
    text = re.sub(r"^[a-z]+://([^/@]*@)?", "", text.strip().lower())  # never a user name or password
    text = re.sub(r"[^a-z0-9._-]+", "-", text).strip("-.")
    return text[:80] or "peer"
