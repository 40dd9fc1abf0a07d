"""SyncML credentials: building and checking ``syncml:auth-basic`` and ``syncml:auth-md5``.

MD5 (SyncML 1.1+): ``b64(md5(b64(md5("user:pass")) + ":" + nonce))`` with the nonce as
raw bytes (the decoded NextNonce; empty on first contact). Verified against a captured
SyncEvolution message (protocol.md §8). Pure functions: no state, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
from gitsync.protocol.messages import Cred

__all__ = ["basic_cred", "check_cred", "md5_cred", "md5_digest"]


def basic_cred(user: str, password: str) -> Cred:
    """Basic credentials: base64 of ``user:password``."""
    raw = f"{user}:{password}".encode()
    return Cred(type=AUTH_BASIC, data=base64.b64encode(raw).decode("ascii"))


def md5_digest(user: str, password: str, nonce: bytes) -> str:
    """The base64 MD5 digest SyncML 1.1/1.2 expects for ``user``/``password``/``nonce``."""
    inner = base64.b64encode(hashlib.md5(f"{user}:{password}".encode()).digest())
    return base64.b64encode(hashlib.md5(inner + b":" + nonce).digest()).decode("ascii")


def md5_cred(user: str, password: str, nonce: bytes) -> Cred:
    """MD5 credentials for the given nonce."""
    return Cred(type=AUTH_MD5, data=md5_digest(user, password, nonce))


def check_cred(
    cred: Cred | None, users: Mapping[str, str], *, nonce: bytes, username_hint: str | None
) -> str | None:
    """Return the authenticated user name, or ``None`` when ``cred`` does not prove one.

    Basic credentials carry the user name; MD5 ones do not, so the name comes from
    ``username_hint`` (SyncHdr Source/LocName) — or, failing that, every known user is tried.
    """
    if cred is None:
        return None
    ctype = (cred.type or AUTH_BASIC).strip().lower()
    if ctype == AUTH_BASIC:
        try:
            raw = base64.b64decode(cred.data.strip(), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        user, sep, password = raw.partition(":")
        known = users.get(user)
        if sep and known is not None and hmac.compare_digest(known.encode(), password.encode()):
            return user
        return None
    if ctype == AUTH_MD5:
        candidates = [username_hint] if username_hint and username_hint in users else list(users)
        for user in candidates:
            want = md5_digest(user, users[user], nonce)
            if hmac.compare_digest(want.encode(), cred.data.strip().encode()):
                return user
        return None
    return None
