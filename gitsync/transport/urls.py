"""Server URLs as a user types them: checked up front, and never carrying a password further.

A URL is remembered in ``.git/config``, named in the peer's ref and in every sync commit's
trailers: ``http://alice:pw@host/`` must not put ``pw`` in any of them.  The user name and the
password of such a URL are taken out here (the caller uses them as ``--username`` and
``--password``) and the rest is checked, so a typo is one usage error rather than a traceback
from the HTTP library half-way through a sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from gitsync.errors import ConfigError

__all__ = ["ServerUrl", "parse_server_url"]

_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True, slots=True)
class ServerUrl:
    """``url`` without userinfo; the user name and password it carried, if any."""

    url: str
    username: str | None = None
    password: str | None = None


def parse_server_url(text: str) -> ServerUrl:
    """Check ``text`` is an http(s) URL with a host and a valid port; take its userinfo out.

    Raises ConfigError (a usage error) naming what is wrong, never echoing a password back.
    """
    if _UNSAFE.search(text):
        raise ConfigError("the server URL contains spaces or control characters")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ConfigError(f"the server URL cannot be read ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = text if "@" not in text else f"{parts.scheme}://..."  # no password echoed
        raise ConfigError(f"--remote must be an http:// or https:// URL, not {shown!r}")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        hostport = parts.netloc
    user, colon, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    if not parts.hostname:
        raise ConfigError(f"the server URL {clean!r} names no host")
    try:
        port = parts.port
    except ValueError:
        port_text = hostport.rpartition(":")[2]
        raise ConfigError(
            f"the port {port_text!r} in the server URL {clean!r} is not a number from 1 to 65535"
        ) from None
    if port == 0:
        raise ConfigError(f"the port 0 in the server URL {clean!r} is not a number from 1 to 65535")
    return ServerUrl(
        url=clean,
        username=unquote(user) if at and user else None,
        password=unquote(password) if at and colon else None,
    )
