"""The network fails mid-session: the session ends cleanly, nothing is half-applied, the next sync finishes.

A real gitsync server (threaded wsgiref, 127.0.0.1) sits behind a fault plan that hits the n-th POST
of a session: the connection is closed without an answer, the answer is cut half-way, it comes too
late (the client times out), or it is a 500, an HTML page or garbage -- before the server processed
the message, or after (then the server has moved on and only the client does not know).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import SyncServer
from gitsync.errors import GitsyncError
from gitsync.store.git import GitStore
from gitsync.transport.http import HttpTransport
from gitsync.transport.serve import _ThreadingServer
from tests.crash.harness import HOST, check_repo, read_notes, seeded_changes
from tests.helpers import serve_in_thread, write_notes

CLIENT_TIMEOUT = 0.6
FAULTS = (
    "close-before",  # the connection is closed before the server saw the message
    "500-before",
    "close-after",  # the server processed the message; its answer is cut half-way
    "timeout-after",  # ... its answer comes after the client gave up
    "500-after",
    "html-after",
    "garbage-after",
)


class _Plan:
    """Which POST (1-based, counted over the server's life) gets which fault."""

    def __init__(self) -> None:
        self.fault: str | None = None
        self.at = 0
        self.posts = 0
        self.hit = False
        self.lock = threading.Lock()

    def take(self) -> str | None:
        with self.lock:
            self.posts += 1
            if self.fault is not None and self.posts == self.at:
                self.hit = True
                return self.fault
            return None


def _faulty(app: Callable[..., Iterable[bytes]], plan: _Plan) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        fault = environ.get("test.fault")
        if fault == "500-before":
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"boom\n"]
        captured: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured[:] = [status, headers]

        answer = app(environ, keep)
        try:
            body = b"".join(answer)
        finally:
            getattr(answer, "close", lambda: None)()  # as a WSGI server does: the after-answer work
        status, headers = captured
        if fault == "close-after":
            start_response(status, headers)  # Content-Length promises the whole body

            def half() -> Iterator[bytes]:
                yield body[: len(body) // 2]
                raise ConnectionAbortedError("cut")

            return half()
        if fault == "timeout-after":
            time.sleep(CLIENT_TIMEOUT * 2)
        elif fault == "500-after":
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"boom\n"]
        elif fault == "html-after":
            start_response("200 OK", [("Content-Type", "text/html")])
            return [b"<html><body>Proxy error</body></html>"]
        elif fault == "garbage-after":
            start_response("200 OK", [("Content-Type", "application/vnd.syncml+xml")])
            return [random.Random(len(body)).randbytes(300)]
        start_response(status, headers)
        return [body]

    return wrapped


def _handler(plan: _Plan) -> type[WSGIRequestHandler]:
    class Handler(WSGIRequestHandler):
        fault: str | None = None

        def parse_request(self) -> bool:
            ok = super().parse_request()
            self.fault = plan.take() if ok and self.command == "POST" else None
            return ok and self.fault != "close-before"  # False: no answer, the socket just closes

        def get_environ(self) -> dict[str, Any]:
            environ = super().get_environ()
            environ["test.fault"] = self.fault
            return environ

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def faulty_server(root: Path, plan: _Plan) -> Iterator[str]:
    server = SyncServer(GitStore.open(root))
    httpd: WSGIServer = make_server(
        HOST, 0, _faulty(server.wsgi_app(), plan), server_class=_ThreadingServer, handler_class=_handler(plan)
    )
    with serve_in_thread(httpd) as port:
        yield f"http://{HOST}:{port}/notes"


def _sync(client: Path, url: str) -> None:
    transport = HttpTransport(timeout=CLIENT_TIMEOUT)
    try:
        sync_client(GitStore.open(client), ClientOptions(url=url, device_id="cut-dev", name="srv"), transport)
    finally:
        transport.close()


CASES = [(fault, n) for fault in FAULTS for n in (1, 2, 3)]


@pytest.mark.parametrize(("fault", "n"), CASES, ids=[f"{f}-msg{n}" for f, n in CASES])
def test_network_cut_mid_session(fault: str, n: int, tmp_path: Path) -> None:
    rng = random.Random(f"{fault}{n}")
    base, client_changes, server_changes, expected = seeded_changes(rng)
    client, server = tmp_path / "client", tmp_path / "server"
    client.mkdir()
    server.mkdir()
    write_notes(client, base)
    plan = _Plan()
    with faulty_server(server, plan) as url:
        _sync(client, url)
        write_notes(client, client_changes)
        write_notes(server, server_changes)
        client_before, server_before = read_notes(client), read_notes(server)
        head_before = subprocess.run(["git", "-C", str(client), "rev-parse", "HEAD"], capture_output=True,
                                     text=True, check=True).stdout
        plan.fault, plan.at, plan.hit = fault, plan.posts + n, False

        with pytest.raises(GitsyncError) as failure:
            _sync(client, url)
        assert plan.hit
        assert str(failure.value)  # a message a user can read
        # nothing half-applied: the client's notes are its own; the server either did not commit
        # the session or committed all of it (when only the answer to the last package was lost)
        assert read_notes(client) == client_before
        assert read_notes(server) in (server_before, expected)
        # a failed sync takes back its "local changes" commit: the client's edits wait, uncommitted
        assert subprocess.run(["git", "-C", str(client), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout == head_before
        assert check_repo(client, "client", committed=False) == []
        assert check_repo(server, "server", committed=False) == []  # its edits wait for a session

        plan.fault = None
        _sync(client, url)
        assert read_notes(client) == expected
        assert read_notes(server) == expected
        assert check_repo(client, "client") == []
        assert check_repo(server, "server") == []
