"""HTTPS end to end: ``serve --certificate/--key`` and ``sync`` verifying the certificate, with
certificates made in the test. A bad certificate is one clear line, exit 1, and nothing changed."""

from __future__ import annotations

import shutil
import socket
import ssl
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from gitsync.errors import TransportError
from gitsync.transport.http import HttpTransport
from tests import peers
from tests.app.helpers import git, write_notes
from tests.cli.helpers import cli, repo_snapshot
from tests.helpers import serve_in_thread
from tests.transport.certs import Certs, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _https(server: peers.GitsyncServer) -> str:
    return server.url.replace("http://", "https://")


def _serve(tmp_path: Path, pair: tuple[Path, Path], name: str = "server") -> peers.GitsyncServer:
    return peers.GitsyncServer(tmp_path / name, extra=["--certificate", str(pair[0]), "--key", str(pair[1])])


def test_sync_over_https_with_a_private_ca(tmp_path: Path, certs: Certs) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"over TLS\n"})
    with _serve(tmp_path, certs.good) as server:
        write_notes(server.dir, {"s.txt": b"from the server\n"})
        res = cli("script", "sync", client, "-r", _https(server), "-i", "dev-tls", "--ca-file", certs.ca)
        assert res.code == 0, res.err
        write_notes(client, {"b.txt": b"second\n"})
        res = cli("script", "sync", client)  # URL and CA file remembered
        assert res.code == 0, res.err
        assert "https://" in server.output()  # it says where it serves
    assert peers.read_notes(server.dir) == peers.read_notes(client)
    assert set(peers.read_notes(client)) == {"a.txt", "b.txt", "s.txt"}


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Path:
    """A client folder after a good sync over HTTPS (with --ca-file), then edited."""
    tmp = tmp_path_factory.mktemp("synced")
    client = tmp / "client"
    write_notes(client, {"a.txt": b"stays here\n"})
    with _serve(tmp, certs.good) as first:
        write_notes(first.dir, {"s.txt": b"s\n"})
        res = cli("script", "sync", client, "-r", _https(first), "-i", "dev-bad", "--ca-file", certs.ca)
        assert res.code == 0, res.err
    write_notes(client, {"a.txt": b"edited, not sent\n"})
    return client


@pytest.mark.parametrize(
    ("which", "ca", "message"),
    [
        ("wrong_host", True, "certificate not valid for this host name"),
        ("expired", True, "certificate not valid (certificate has expired)"),
        ("self_signed", False,
         "certificate not trusted (self-signed certificate); for a private CA use --ca-file"),
        ("good", False, "certificate not trusted"),  # a private CA the client was not told about
    ],
)
def test_a_certificate_that_fails_verification_stops_the_sync(
    tmp_path: Path, certs: Certs, synced: Path, which: str, ca: bool, message: str
) -> None:
    client = tmp_path / "client"
    shutil.copytree(synced, client, symlinks=True)  # a folder with sync state, and an edit not yet sent
    before = repo_snapshot(client)
    with _serve(tmp_path, getattr(certs, which)) as server:
        write_notes(server.dir, {"x.txt": b"never arrives\n"})
        args = ["sync", client, "-r", _https(server), "-i", "dev-bad"]
        if ca:
            args += ["--ca-file", certs.ca]
        else:  # forget the remembered CA file
            git(client, "config", "--unset-all", f"gitsync.{_peer(client)}.cafile")
            before = repo_snapshot(client)
        res = cli("script", *args)
        assert res.code == 1, res.err
        assert len(res.lines) == 1 and message in res.err and "Traceback" not in res.err, res.err
        assert res.err.startswith("gitsync-notes: TLS with https://127.0.0.1:")
    assert repo_snapshot(client) == before
    assert peers.read_notes(server.dir) == {"x.txt": b"never arrives\n"}


def _peer(client: Path) -> str:
    return git(client, "config", "gitsync.peer").strip()


def test_https_url_to_a_plain_http_server_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with peers.GitsyncServer(tmp_path / "server") as server:
        res = cli("script", "sync", client, "-r", _https(server), "-i", "dev-x")
        assert res.code == 1 and len(res.lines) == 1 and "does not speak TLS" in res.err, res.err
        assert peers.read_notes(server.dir) == {}


def test_no_downgrade_after_https_and_no_redirects(tmp_path: Path) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serve_in_thread(HTTPServer(("127.0.0.1", 0), Redirect)) as port:
        t = HttpTransport(timeout=5)
        not_followed = r"redirects to http://127\.0\.0\.1:9/elsewhere: not followed"
        with pytest.raises(TransportError, match=not_followed):
            t.exchange(f"http://127.0.0.1:{port}/", b"<SyncML/>", "application/vnd.syncml+xml")
    t = HttpTransport(timeout=2)
    with pytest.raises(TransportError, match="cannot reach"):
        t.exchange("https://127.0.0.1:9/", b"x", "application/vnd.syncml+xml")
    # a RespURI on plain HTTP after HTTPS: refused before anything is sent
    with pytest.raises(TransportError, match=r"from HTTPS to http://127.0.0.1:9: refused"):
        t.exchange("http://user:pw@127.0.0.1:9/x?sessionid=1", b"x", "application/vnd.syncml+xml")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_server_tls_settings_and_a_silent_client_does_not_block_others(tmp_path: Path, certs: Certs) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with _serve(tmp_path, certs.good) as server:
        silent = socket.create_connection(("127.0.0.1", server.port))  # connects, never handshakes
        try:
            old = ssl.create_default_context(cafile=str(certs.ca))
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            with pytest.raises((ssl.SSLError, ConnectionError)), \
                    socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
                old.wrap_socket(raw, server_hostname="127.0.0.1")
            ctx = ssl.create_default_context(cafile=str(certs.ca))
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
            start = time.monotonic()
            res = cli("script", "sync", client, "-r", _https(server), "-i", "dev-s", "--ca-file", certs.ca)
            assert res.code == 0, res.err
            assert time.monotonic() - start < 8  # not held up by the silent connection
        finally:
            silent.close()
    assert peers.read_notes(server.dir) == {"a.txt": b"a\n"}


@pytest.mark.parametrize("case", ["missing", "not-pem", "wrong-key", "key-alone"])
def test_serve_refuses_a_certificate_it_cannot_use(tmp_path: Path, certs: Certs, case: str) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    args = {
        "missing": ["--certificate", tmp_path / "nope.pem", "--key", certs.good[1]],
        "not-pem": ["--certificate", junk, "--key", junk],
        "wrong-key": ["--certificate", certs.good[0], "--key", certs.expired[1]],
        "key-alone": ["--key", certs.good[1]],
    }[case]
    res = cli("script", "serve", tmp_path / "server", "--listen", "0", *args)
    assert res.code == 2 and len(res.lines) == 1, res.err
    assert not (tmp_path / "server").exists()  # checked before anything is created
