"""SyncML credentials: building and checking ``syncml:auth-basic`` and ``syncml:auth-md5``.

MD5 (SyncML 1.1+): ``b64(md5(b64(md5("user:pass")) + ":" + nonce))`` with the nonce as
raw bytes (the decoded NextNonce; empty on first contact). Verified against captured
SyncEvolution messages (tests/protocol/test_synthesis_replay.py). Pure functions: no clock, no I/O.

The users table maps a name to a :class:`~gitsync.protocol.passwords.PasswordEntry` (a hash, the
MD5 secret, or a plain password) or, for callers that build it in code, to a plain password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
from gitsync.protocol.messages import Cred
from gitsync.protocol.passwords import PasswordEntry

__all__ = ["Users", "basic_cred", "check_cred", "md5_cred", "md5_digest", "parse_basic"]

#: who may log in: name → stored entry (or a plain password)
Users = Mapping[str, PasswordEntry | str]


def basic_cred(user: str, password: str) -> Cred:
    """Basic credentials: base64 of ``user:password``."""
    raw = f"{user}:{password}".encode()
    return Cred(type=AUTH_BASIC, data=base64.b64encode(raw).decode("ascii"))


def parse_basic(cred: Cred) -> tuple[str, str] | None:
    """The ``(user, password)`` a basic credential carries, or ``None`` when it does not decode.

    The one decoder of basic credentials: the checker and the per-user router must agree on
    which name a credential claims.
    """
    try:
        raw = base64.b64decode(cred.data.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


def md5_digest(user: str, password: str, nonce: bytes) -> str:
    """The base64 MD5 digest SyncML 1.1/1.2 expects for ``user``/``password``/``nonce``."""
    inner = base64.b64encode(hashlib.md5(f"{user}:{password}".encode()).digest())
    return _md5_with_inner(inner, nonce)


def _md5_with_inner(inner: bytes, nonce: bytes) -> str:
    return base64.b64encode(hashlib.md5(inner + b":" + nonce).digest()).decode("ascii")


def _entry(value: PasswordEntry | str) -> PasswordEntry:
    return value if isinstance(value, PasswordEntry) else PasswordEntry("plain", value)


def md5_cred(user: str, password: str, nonce: bytes) -> Cred:
    """MD5 credentials for the given nonce."""
    return Cred(type=AUTH_MD5, data=md5_digest(user, password, nonce))


def check_cred(
    cred: Cred | None, users: Users, *, nonce: bytes, username_hint: str | None
) -> str | None:
    """Return the authenticated user name, or ``None`` when ``cred`` does not prove one.

    Basic credentials carry the user name; MD5 ones do not, so the name comes from
    ``username_hint`` (SyncHdr Source/LocName) — or, failing that, every known user is tried.
    Basic credentials are checked against the stored hash; MD5 ones need the user's MD5 secret
    (or a plain password), so a user stored with a hash only cannot log in with MD5.
    """
    if cred is None:
        return None
    ctype = (cred.type or AUTH_BASIC).strip().lower()
    if ctype == AUTH_BASIC:
        parsed = parse_basic(cred)
        if parsed is None:
            return None
        user, password = parsed
        known = users.get(user)
        if known is None:
            # an unknown name costs what a wrong password does: no list of names by timing
            some = next((e for e in users.values() if isinstance(e, PasswordEntry) and not e.plain), None)
            if some is not None:
                some.check(user, password)
            return None
        return user if _entry(known).check(user, password) else None
    if ctype == AUTH_MD5:
        candidates = [username_hint] if username_hint and username_hint in users else list(users)
        for user in candidates:
            inner = _entry(users[user]).md5_inner(user)
            if inner is None:
                continue
            if hmac.compare_digest(_md5_with_inner(inner, nonce).encode(), cred.data.strip().encode()):
                return user
        return None
    return None
