"""HTTP client transport: POST a SyncML body, get the reply body (requests).

Knows nothing of SyncML beyond content types; turns every requests failure into a
:class:`~gitsync.errors.TransportError` with a message a user can act on.

TLS: certificates are always verified (against the system's CAs, ``REQUESTS_CA_BUNDLE``, or the
``ca_file`` of a private CA); a verification failure is one line naming the reason. Nothing is
downgraded: redirects are not followed, and once a sync talked HTTPS, a RespURI that points to
plain HTTP is refused rather than sent our credentials and notes in clear.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import requests
import urllib3

from gitsync.environ import ENV_LOCK
from gitsync.errors import TransportError

__all__ = ["HttpTransport"]

logger = logging.getLogger(__name__)

_SYNCML_TYPES = ("application/vnd.syncml+xml", "application/vnd.syncml+wbxml")


class HttpTransport:
    """One requests.Session per sync: keep-alive and cookies across the session's messages."""

    def __init__(
        self, *, timeout: float = 60.0, max_reply: int = 64 * 1024 * 1024, ca_file: str | None = None
    ) -> None:
        self._http = requests.Session()
        if ca_file is not None and not os.access(ca_file, os.R_OK):
            raise TransportError(f"cannot read the CA file {ca_file}")
        self._ca_file = ca_file
        self._https = False  # set by the first HTTPS exchange: no plain HTTP after it
        self._http.headers["User-Agent"] = "gitsync-notes"
        self._http.trust_env = False  # read under ENV_LOCK in _environment() instead
        self._timeout = timeout
        self._max_reply = max_reply
        self.round_trips = 0
        self.retry_after: int | None = None  # the last answer's Retry-After, in seconds
        self.bytes_sent = 0
        self.bytes_received = 0

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        """POST ``body`` to ``url``; return the reply body and its media type."""
        https = url.lower().startswith("https://")
        if self._https and not https:
            raise TransportError(f"the server sent us from HTTPS to {_origin(url)}: refused (no plain HTTP)")
        self._https = self._https or https
        try:
            env = self._environment(url)
            if self._ca_file is not None:
                env["verify"] = self._ca_file
            resp = self._http.post(
                url,
                data=body,
                headers={"Content-Type": content_type, "Accept": ", ".join(_SYNCML_TYPES)},
                timeout=self._timeout,
                stream=True,
                proxies=env["proxies"],
                verify=env["verify"],
                cert=env["cert"],
                allow_redirects=False,
            )
            data = resp.raw.read(self._max_reply + 1, decode_content=True)
        except requests.exceptions.SSLError as exc:
            raise TransportError(f"TLS with {_origin(url)} failed: {_tls_reason(exc)}") from exc
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(f"cannot reach {url}: {_reason(exc)}", hint=_UNREACHABLE) from exc
        except requests.exceptions.Timeout as exc:
            raise TransportError(f"{url} did not answer within {self._timeout:.0f} s", hint=_SLOW) from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"HTTP request to {url} failed: {exc}") from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise TransportError(f"{url} did not answer within {self._timeout:.0f} s", hint=_SLOW) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # the answer was cut off
            raise TransportError(f"the connection to {url} broke during the answer: {_reason(exc)}") from exc
        self.round_trips += 1
        self.retry_after = _retry_after(resp.headers.get("Retry-After"))
        self.bytes_sent += len(body)
        self.bytes_received += len(data)
        if len(data) > self._max_reply:
            raise TransportError(f"{url} answered more than {self._max_reply} bytes")
        ctype = resp.headers.get("Content-Type", "")
        media = ctype.split(";")[0].strip().lower()
        if resp.status_code in (401, 407):
            raise TransportError(f"{url} refused access (HTTP {resp.status_code})",
                                 hint="check the user name (-u) and the password.")
        if resp.is_redirect:
            where = resp.headers.get("Location", "")
            raise TransportError(f"{url} redirects to {where[:200]}: not followed (correct --remote)")
        if resp.status_code != 200:
            later = f"; retry in {self.retry_after} s" if self.retry_after is not None else ""
            answer = f"{url} answered HTTP {resp.status_code} {resp.reason or ''}".rstrip()
            raise TransportError(answer + later)
        if media not in _SYNCML_TYPES:
            what = media or "no content type"
            raise TransportError(f"{url} is not a SyncML server (it answered {what})",
                                 hint="is --remote the server's SyncML URL?")
        return data, media

    def _environment(self, url: str) -> dict[str, Any]:
        """Proxies and CA bundle from the environment (``HTTPS_PROXY``, ``NO_PROXY``,
        ``REQUESTS_CA_BUNDLE``...), read while no other thread changes it."""
        with ENV_LOCK:
            self._http.trust_env = True
            try:
                return dict(self._http.merge_environment_settings(url, {}, None, None, None))
            finally:
                self._http.trust_env = False

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()


#: what to try when the server cannot be reached, or does not answer in time
_UNREACHABLE = "is the server running, and is the URL right?"
_SLOW = "is the server up? a slow one needs a longer --timeout."


def _origin(url: str) -> str:
    """scheme://host:port of ``url`` (never a path, query or user info)."""
    m = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/?#]*@)?([^/?#]*)", url)
    return (m.group(1) + m.group(2)) if m else url[:100]


def _tls_reason(exc: Exception) -> str:
    """The reason of a TLS failure in words, with what to do about it."""
    text = str(exc)
    if m := re.search(r"(?:Hostname|IP address) mismatch, certificate is not valid for ('[^']*')", text):
        return f"certificate not valid for this host name (it is not valid for {m.group(1)})"
    if m := re.search(r"certificate verify failed: ([^(]+?)\s*\(", text):
        why = m.group(1).strip()
        if "self-signed" in why or "local issuer" in why:
            return f"certificate not trusted ({why}); for a private CA use --ca-file"
        return f"certificate not valid ({why})"
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "the server does not speak TLS on this port (an http:// server?)"
    if m := re.search(r"\[SSL: ([A-Z_]+)\]", text):
        return m.group(1).lower().replace("_", " ")
    if m := re.search(r"Could not find a suitable TLS CA certificate bundle, invalid path: (\S+)", text):
        return f"cannot read the CA file {m.group(1)}"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _retry_after(value: str | None) -> int | None:
    """Retry-After in seconds (the delay form only; a date, or nonsense, gives None)."""
    text = (value or "").strip()
    return min(int(text), 86400) if text.isdigit() and len(text) <= 9 else None
