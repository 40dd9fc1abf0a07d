"""Stored passwords: the entries of a users file, checked without keeping a password in clear.

A users file line is ``name:secret``, where *secret* is one of

- a bcrypt hash (``$2y$``, ``$2b$``, ``$2a$``; what ``htpasswd -B`` writes),
- a SHA-512-crypt or SHA-256-crypt hash (``$6$``, ``$5$``; what ``mkpasswd -m sha-512`` writes),
  optionally followed by ``:`` and the user's **SyncML MD5 secret**, or
- a plain password (the rest of the line, colons included; accepted with a warning).

SyncML MD5 authentication (``b64(md5(b64(md5(user:password)) + ":" + nonce))``) cannot be checked
against a salted hash: it needs ``b64(md5("user:password"))`` itself, which is what HTTP digest keeps
as HA1. That value is the *MD5 secret*: it is not the password (a leaked secret lets someone log in
with MD5 auth to this server, not learn the password used elsewhere), and with it no plain password
is stored. Basic auth is checked against the hash; without a hash, against the MD5 secret.

SHA-crypt is implemented here (Drepper's specification, tested against its vectors and against
``mkpasswd``): the stdlib ``crypt`` module is deprecated and gone in Python 3.13. bcrypt comes from
the ``bcrypt`` package (a pure-Python Blowfish would take seconds per check). Pure functions, apart
from a small cache of recently verified passwords (keyed by an HMAC under a per-process random key),
so that a client sending its credentials with every message costs one slow hash per session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

__all__ = [
    "PasswordEntry",
    "hash_password",
    "md5_secret",
    "parse_entry",
    "sha_crypt",
]

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_SHA_CRYPT = re.compile(r"\$(?P<id>[56])\$(?:rounds=(?P<rounds>[0-9]{1,9})\$)?(?P<salt>[^$:\n]{0,16})\$"
                        r"(?P<hash>[./A-Za-z0-9]{43}|[./A-Za-z0-9]{86})")
_MD5_SECRET = re.compile(r"[A-Za-z0-9+/]{22}==")
#: something that looks like a crypt(3) or LDAP-style hash we do not support: refused, never taken
#: for a plain password (``$apr1$``, ``$1$``, ``$y$`` yescrypt, ``{SHA}``...)
_OTHER_HASH = re.compile(r"\$[0-9a-z]{1,8}\$|\{[A-Za-z0-9-]{2,16}\}")
#: SHA-crypt rounds we accept in a users file: more would take minutes per check in pure Python
MAX_SHA_ROUNDS = 500_000

# SHA-crypt output byte order (the specification's final permutation) as (b2, b1, b0) triples: the
# n-th triple (n, n+k, n+2k) rotated by n places, leftwards for SHA-512 and rightwards for SHA-256
def _order(k: int, step: int) -> list[tuple[int, ...]]:
    out = []
    for n in range(k):
        trip = (n, n + k, n + 2 * k)
        rot = (step * n) % 3
        out.append(trip[rot:] + trip[:rot])
    return out


_ORDER_512 = _order(21, 1)
_ORDER_256 = _order(10, -1)


def _b64_24(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_ITOA64[w & 0x3F])
        w >>= 6
    return "".join(out)


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha_crypt(password: bytes, setting: str) -> str:
    """``crypt(3)`` for ``$5$``/``$6$`` settings (Drepper's SHA-crypt): the full hash string.

    ``setting`` is ``$6$[rounds=N$]salt`` or a full hash (the hash part is ignored), as for crypt.
    """
    m = re.match(r"\$([56])\$(?:rounds=([0-9]+)\$)?([^$]*)", setting)
    if m is None:
        raise ValueError("not a SHA-crypt setting")
    ident, rounds_text, salt_text = m.groups()
    new = hashlib.sha512 if ident == "6" else hashlib.sha256
    size = 64 if ident == "6" else 32
    rounds = 5000 if rounds_text is None else min(max(int(rounds_text), 1000), 999_999_999)
    salt = salt_text.encode()[:16]
    pw = password

    b = new(pw + salt + pw).digest()
    a = new(pw + salt)
    a.update(_repeat(b, len(pw)))
    n = len(pw)
    while n > 0:
        a.update(b if n & 1 else pw)
        n >>= 1
    digest = a.digest()
    p = _repeat(new(pw * len(pw)).digest(), len(pw))
    s = _repeat(new(salt * (16 + digest[0])).digest(), len(salt))
    c = digest
    for i in range(rounds):
        h = new(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()

    if size == 64:
        parts = [_b64_24(c[x], c[y], c[z], 4) for x, y, z in _ORDER_512]
        parts.append(_b64_24(0, 0, c[63], 2))
    else:
        parts = [_b64_24(c[x], c[y], c[z], 4) for x, y, z in _ORDER_256]
        parts.append(_b64_24(0, c[31], c[30], 3))
    prefix = f"${ident}$" + (f"rounds={rounds}$" if rounds_text is not None else "")
    return prefix + salt.decode() + "$" + "".join(parts)


def md5_secret(user: str, password: str) -> str:
    """The SyncML MD5 secret of a user: ``b64(md5("user:password"))`` (HTTP digest's HA1 idea)."""
    return base64.b64encode(hashlib.md5(f"{user}:{password}".encode()).digest()).decode("ascii")


_CACHE_KEY = os.urandom(32)
_cache: OrderedDict[bytes, None] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 256


def _cache_token(stored: str, password: str) -> bytes:
    return hmac.new(_CACHE_KEY, stored.encode() + b"\0" + password.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class PasswordEntry:
    """What a users file holds for one user: a hash (or, with a warning, a plain password) and
    optionally the SyncML MD5 secret. ``repr`` shows the scheme only."""

    scheme: str  # "bcrypt", "sha512-crypt", "sha256-crypt", "plain" or "md5-secret"
    stored: str  # the hash, the plain password, or "" (md5-secret only)
    md5: str | None = None  # b64(md5(user:password)), when stored

    def __repr__(self) -> str:
        return f"PasswordEntry({self.scheme}{', md5' if self.md5 else ''})"

    @property
    def plain(self) -> bool:
        return self.scheme == "plain"

    def check(self, user: str, password: str) -> bool:
        """Whether ``password`` is this user's (basic auth), in time independent of where it differs."""
        if self.scheme == "plain":
            return hmac.compare_digest(self.stored.encode(), password.encode())
        if self.scheme == "md5-secret":
            assert self.md5 is not None
            return hmac.compare_digest(self.md5.encode(), md5_secret(user, password).encode())
        token = _cache_token(self.stored, password)
        with _cache_lock:
            if token in _cache:
                _cache.move_to_end(token)
                return True
        if self.scheme == "bcrypt":
            import bcrypt

            try:  # bcrypt reads 72 bytes, as htpasswd -B does (bcrypt 5 raises instead of truncating)
                ok = bcrypt.checkpw(password.encode()[:72], self.stored.encode())
            except ValueError:  # a NUL in the password
                ok = False
        else:
            ok = hmac.compare_digest(sha_crypt(password.encode(), self.stored).encode(), self.stored.encode())
        if ok:
            with _cache_lock:
                _cache[token] = None
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
        return ok

    def md5_inner(self, user: str) -> bytes | None:
        """``b64(md5(user:password))`` for SyncML MD5 auth, or ``None`` when we cannot know it."""
        if self.md5 is not None:
            return self.md5.encode("ascii")
        if self.scheme == "plain":
            return md5_secret(user, self.stored).encode("ascii")
        return None


def parse_entry(secret: str) -> PasswordEntry:
    """The entry for the part of a users-file line after ``name:``; ``ValueError`` says what is wrong."""
    head, sep, tail = secret.partition(":")
    if _BCRYPT.fullmatch(head) or _SHA_CRYPT.fullmatch(head):
        if head.startswith("$2"):
            scheme = "bcrypt"
        else:
            m = _SHA_CRYPT.fullmatch(head)
            assert m is not None
            if (m["id"] == "6") != (len(m["hash"]) == 86):
                raise ValueError("malformed SHA-crypt hash")
            if m["rounds"] and int(m["rounds"]) > MAX_SHA_ROUNDS:
                raise ValueError(f"SHA-crypt rounds above {MAX_SHA_ROUNDS} (checks would take too long)")
            scheme = "sha512-crypt" if m["id"] == "6" else "sha256-crypt"
        if not sep:
            return PasswordEntry(scheme, head)
        if _MD5_SECRET.fullmatch(tail):
            return PasswordEntry(scheme, head, tail)
        raise ValueError("after the hash, expected ':' and the MD5 secret (24 characters of base64)")
    if head == "" and sep and _MD5_SECRET.fullmatch(tail):
        return PasswordEntry("md5-secret", "", tail)
    if _OTHER_HASH.match(secret):
        raise ValueError(
            "unsupported password hash (use bcrypt, htpasswd -B; or SHA-512-crypt, mkpasswd -m sha-512)"
        )
    return PasswordEntry("plain", secret)


def hash_password(password: str, *, scheme: str = "bcrypt", cost: int = 10) -> str:
    """A new hash of ``password``: bcrypt (``$2b$``, cost 10 ≈ 50–100 ms per check) or SHA-512-crypt."""
    if scheme == "bcrypt":
        import bcrypt

        if len(password.encode()) > 72 or "\0" in password:
            raise ValueError("bcrypt takes at most 72 bytes and no NUL: use SHA-512-crypt for this password")
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode("ascii")
    if scheme == "sha512-crypt":
        salt = "".join(_ITOA64[b & 0x3F] for b in os.urandom(16))
        return sha_crypt(password.encode(), f"$6${salt}")
    raise ValueError(f"unknown password scheme {scheme!r}")
