"""The client's address and scheme behind reverse proxies: forwarded headers count only from a
trusted proxy, and only as far as the chain of trusted proxies reaches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitsync.app.server import ServerOptions, SyncServer
from gitsync.store.git import GitStore
from gitsync.transport.proxy import client_origin, parse_trusted
from gitsync.transport.wsgi import Request, Response, make_wsgi_app
from tests.hostile.helpers import ScriptedClient, post

TRUSTED = parse_trusted(["127.0.0.1", "10.0.0.0/8,::1"])


def _env(peer: str, xff: str | None = None, proto: str | None = None) -> dict[str, str]:
    env = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http"}
    if xff is not None:
        env["HTTP_X_FORWARDED_FOR"] = xff
    if proto is not None:
        env["HTTP_X_FORWARDED_PROTO"] = proto
    return env


@pytest.mark.parametrize(
    ("peer", "xff", "proto", "want"),
    [
        ("203.0.113.5", "1.2.3.4", "https", ("203.0.113.5", "http")),  # not a proxy: headers ignored
        ("127.0.0.1", None, None, ("127.0.0.1", "http")),
        ("127.0.0.1", "198.51.100.7", "https", ("198.51.100.7", "https")),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "https", ("198.51.100.7", "https")),  # 6.6.6.6: client-made
        ("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3", None, ("198.51.100.7", "http")),  # two proxies
        ("127.0.0.1", "10.9.9.9, 10.1.2.3", None, ("10.9.9.9", "http")),  # only proxies: the farthest
        ("127.0.0.1", "garbage, 198.51.100.7", None, ("198.51.100.7", "http")),
        ("127.0.0.1", "198.51.100.7, garbage", None, ("127.0.0.1", "http")),  # unparsable: stop at our proxy
        ("::1", "[2001:db8::1]:4711", "HTTPS", ("2001:db8::1", "https")),
        ("127.0.0.1", "198.51.100.7:5555", "gopher", ("198.51.100.7", "http")),
    ],
)
def test_client_origin(peer: str, xff: str | None, proto: str | None, want: tuple[str, str]) -> None:
    assert client_origin(_env(peer, xff, proto), TRUSTED) == want


def test_no_trusted_proxies_means_the_tcp_peer() -> None:
    assert client_origin(_env("127.0.0.1", "1.2.3.4", "https")) == ("127.0.0.1", "http")
    with pytest.raises(ValueError, match="not an IP address"):
        parse_trusted(["proxy.example"])


def test_requests_carry_the_resolved_origin(tmp_path: Path) -> None:
    """What session binding and throttling see (Request.remote_addr), and the RespURI's scheme."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(body=b"ok")

    app = make_wsgi_app(handler, trusted_proxies=TRUSTED)
    post(app, b"x", remote_addr="127.0.0.1")
    environ_extra = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.7", "HTTP_X_FORWARDED_PROTO": "https"}
    _post_with(app, environ_extra, "127.0.0.1")
    _post_with(app, environ_extra, "203.0.113.9")  # not a proxy of ours: its headers mean nothing
    assert [(r.remote_addr, r.base_url.split(":")[0]) for r in seen] == [
        ("127.0.0.1", "http"), ("198.51.100.7", "https"), ("203.0.113.9", "http")
    ]

    # the server end to end: behind a TLS-terminating proxy its RespURIs stay on https
    server = SyncServer(GitStore.open(tmp_path, create=True), ServerOptions(trusted_proxies=TRUSTED))
    inner = server.wsgi_app()

    def via_proxy(environ: dict[str, Any], start_response: Any) -> Any:
        environ.update(REMOTE_ADDR="127.0.0.1", **environ_extra)
        return inner(environ, start_response)

    client = ScriptedClient(via_proxy)
    client.sync([])
    resp_uris = [r.header.resp_uri for r in client.replies if r.header.resp_uri]
    assert resp_uris and all(u.startswith("https://") for u in resp_uris), resp_uris


def _post_with(app: Any, extra: dict[str, str], peer: str) -> None:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        environ.update(extra)
        return app(environ, start_response)

    post(wrapped, b"x", remote_addr=peer)
