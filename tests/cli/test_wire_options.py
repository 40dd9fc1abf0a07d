"""What the sync options put on the wire: each option is checked in the bytes the server received
and sent, not only in the exit status (a client that ignored --encoding, --syncml, --max-msg-size
or --auth would still sync)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gitsync.app.server import ServerOptions, SyncServer
from gitsync.cli import main
from gitsync.codec import WBXML_TYPE, XML_TYPE, decode
from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
from gitsync.protocol.messages import Message
from gitsync.store.git import GitStore
from gitsync.sync.devinf import DEFAULT_MAX_MSG_SIZE
from gitsync.transport.serve import make_http_server
from tests.helpers import LOCALHOST, read_notes, serve_in_thread, write_notes


@dataclass
class Exchange:
    """One HTTP round trip as the server saw it."""

    request_type: str
    request: bytes
    response_type: str
    response: bytes

    def request_message(self) -> Message:
        return decode(self.request, self.request_type)[0]


@dataclass
class Recorder:
    url: str
    exchanges: list[Exchange] = field(default_factory=list)

    def requests(self) -> list[Message]:
        return [x.request_message() for x in self.exchanges]


@contextmanager
def recording_server(folder: Path, **options: Any) -> Iterator[Recorder]:
    """A gitsync server on 127.0.0.1 whose every request and answer is kept, bytes as they travelled."""
    folder.mkdir(parents=True, exist_ok=True)
    server = SyncServer(GitStore.open(folder), ServerOptions(**options))
    inner = server.wsgi_app()
    rec = Recorder("")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        seen: dict[str, str] = {}

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.update({k.lower(): v for k, v in headers})
            return start_response(status, headers, exc_info)

        answer = b"".join(inner(environ, start))
        kind = environ.get("CONTENT_TYPE", "")
        rec.exchanges.append(Exchange(kind, body, seen.get("content-type", ""), answer))
        return [answer]

    try:
        with serve_in_thread(make_http_server(app, LOCALHOST, 0)) as port:
            rec.url = f"http://{LOCALHOST}:{port}/"
            yield rec
    finally:
        server.close()


def _sync(client: Path, url: str, *args: str) -> None:
    res = CliRunner().invoke(main, ["sync", str(client), "-r", url, "-i", "dev-wire", "-q", *args])
    assert res.exit_code == 0, (res.output, res.exception)


def test_defaults_are_xml_syncml_12_our_max_msg_size_and_no_credentials(tmp_path: Path) -> None:
    write_notes(tmp_path / "client", {"a.txt": b"a\n"})
    with recording_server(tmp_path / "server") as rec:
        _sync(tmp_path / "client", rec.url)
    assert rec.exchanges and all(x.request_type == XML_TYPE for x in rec.exchanges)
    first = rec.requests()[0].header
    assert (first.ver_dtd, first.ver_proto) == ("1.2", "SyncML/1.2")
    assert first.meta is not None and first.meta.max_msg_size == DEFAULT_MAX_MSG_SIZE
    assert first.cred is None


def test_encoding_wbxml_sends_wbxml(tmp_path: Path) -> None:
    write_notes(tmp_path / "client", {"a.txt": b"a\n"})
    with recording_server(tmp_path / "server") as rec:
        _sync(tmp_path / "client", rec.url, "--encoding", "wbxml")
    assert rec.exchanges
    for x in rec.exchanges:
        assert x.request_type == WBXML_TYPE and x.request[:1] in (b"\x01", b"\x02", b"\x03")
        assert x.response_type.startswith(WBXML_TYPE)
    assert read_notes(tmp_path / "server") == {"a.txt": b"a\n"}


def test_syncml_11_is_the_version_in_every_header(tmp_path: Path) -> None:
    write_notes(tmp_path / "client", {"a.txt": b"a\n"})
    with recording_server(tmp_path / "server") as rec:
        _sync(tmp_path / "client", rec.url, "--syncml", "1.1")
    headers = [m.header for m in rec.requests()]
    assert headers and all((h.ver_dtd, h.ver_proto) == ("1.1", "SyncML/1.1") for h in headers)
    assert b"SYNCML:SYNCML1.1" in rec.exchanges[0].request


def test_max_msg_size_is_announced_and_bounds_the_servers_answers(tmp_path: Path) -> None:
    limit = 4096
    notes = {f"note {i:03d}.txt": f"note {i}\n{'x' * 300}\n".encode() for i in range(40)}
    write_notes(tmp_path / "server", notes)
    (tmp_path / "client").mkdir()
    with recording_server(tmp_path / "server") as rec:
        _sync(tmp_path / "client", rec.url, "--max-msg-size", str(limit))
    assert rec.requests()[0].header.meta is not None
    assert rec.requests()[0].header.meta.max_msg_size == limit
    assert max(len(x.response) for x in rec.exchanges) <= limit
    assert len(rec.exchanges) > 3  # the notes did not fit in one answer
    assert read_notes(tmp_path / "client") == notes


@pytest.mark.parametrize(
    ("auth", "cred_type"), [(None, AUTH_BASIC), ("md5", AUTH_MD5), ("basic", AUTH_BASIC)]
)
def test_auth_scheme_is_the_cred_type_sent(tmp_path: Path, auth: str | None, cred_type: str) -> None:
    write_notes(tmp_path / "client", {"a.txt": b"a\n"})
    with recording_server(tmp_path / "server", users={"alice": "s3cret-Pw"}) as rec:
        extra = ["--auth", auth] if auth else []
        _sync(tmp_path / "client", rec.url, "-u", "alice", "-p", "s3cret-Pw", *extra)
    sent = {m.header.cred.type for m in rec.requests() if m.header.cred is not None}
    assert sent == {cred_type}
    assert read_notes(tmp_path / "server") == {"a.txt": b"a\n"}
