"""HTTP client transport: POST a SyncML body, get the reply body (requests).

Knows nothing of SyncML beyond content types; turns every requests failure into a
:class:`~gitsync.errors.TransportError` with a message a user can act on.
"""

from __future__ import annotations

import logging
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

    def __init__(self, *, timeout: float = 60.0, max_reply: int = 64 * 1024 * 1024) -> None:
        self._http = requests.Session()
        self._http.headers["User-Agent"] = "gitsync-notes"
        self._http.trust_env = False  # read under ENV_LOCK in _environment() instead
        self._timeout = timeout
        self._max_reply = max_reply
        self.round_trips = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        """POST ``body`` to ``url``; return the reply body and its media type."""
        try:
            env = self._environment(url)
            resp = self._http.post(
                url,
                data=body,
                headers={"Content-Type": content_type, "Accept": ", ".join(_SYNCML_TYPES)},
                timeout=self._timeout,
                stream=True,
                proxies=env["proxies"],
                verify=env["verify"],
                cert=env["cert"],
            )
            data = resp.raw.read(self._max_reply + 1, decode_content=True)
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(f"cannot reach {url}: {_reason(exc)}") from exc
        except requests.exceptions.Timeout as exc:
            raise TransportError(f"{url} did not answer within {self._timeout:.0f} s") from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"HTTP request to {url} failed: {exc}") from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise TransportError(f"{url} did not answer within {self._timeout:.0f} s") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # the answer was cut off
            raise TransportError(f"the connection to {url} broke during the answer: {_reason(exc)}") from exc
        self.round_trips += 1
        self.bytes_sent += len(body)
        self.bytes_received += len(data)
        if len(data) > self._max_reply:
            raise TransportError(f"{url} answered more than {self._max_reply} bytes")
        ctype = resp.headers.get("Content-Type", "")
        media = ctype.split(";")[0].strip().lower()
        if resp.status_code in (401, 407):
            raise TransportError(f"{url} refused access (HTTP {resp.status_code}): check user name/password")
        if resp.status_code != 200:
            raise TransportError(f"{url} answered HTTP {resp.status_code} {resp.reason or ''}".rstrip())
        if media not in _SYNCML_TYPES:
            what = media or "no content type"
            raise TransportError(f"{url} is not a SyncML server (it answered {what})")
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


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(exc).__name__
