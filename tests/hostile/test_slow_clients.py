"""Slow and idle connections (slowloris) against the built-in server and the documented gunicorn line.

Connections that trickle their headers or body, or open and say nothing, come from other loopback
addresses (127.0.0.2-4) than the well-behaved client (127.0.0.1), as from other machines.  While they
hang on, a real sync completes in normal time; afterwards the server has dropped them (408 / closed)
and the caps answer 503 at once.  Loops are bounded, everything runs on 127.0.0.1.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.store.git import GitStore
from gitsync.transport.http import HttpTransport
from tests.hostile import live
from tests.hostile.test_auth import ALERT, message
from tests.peers import read_notes


class Trickler:
    """Connections from ``source`` that send a request a byte at a time, ``every`` seconds apart."""

    def __init__(self, port: int, source: str, count: int, *, phase: str, every: float = 0.5) -> None:
        self.port, self.source, self.count, self.phase, self.every = port, source, count, phase, every
        self.results: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._one, daemon=True) for _ in range(count)]

    def _one(self) -> None:
        body = message(1, ALERT, device="slow")
        data = live.request_bytes(body)
        head, _, rest = data.partition(b"\r\n\r\n")
        try:
            sock = socket.create_connection(
                ("127.0.0.1", self.port), timeout=60, source_address=(self.source, 0)
            )
        except OSError:
            self.results.append(-1)
            return
        with sock:
            if self.phase == "body":
                answered = self._send(sock, head + b"\r\n\r\n") and self._trickle(sock, rest)
            elif self.phase == "headers":
                answered = self._trickle(sock, head)
            else:
                answered = self._trickle(sock, b"")
            if not answered:
                self.results.append(-2)  # still hanging on when the test let go
                return
            try:
                reply = live.read_reply(sock, time.monotonic())
                self.results.append(reply.status)
            except OSError:
                self.results.append(0)

    def _trickle(self, sock: socket.socket, data: bytes) -> bool:
        """Send ``data`` slowly, then wait; whether the server answered or closed meanwhile."""
        i = 0
        while not self.stop.wait(self.every if i < len(data) else 0.05):
            if select.select([sock], [], [], 0)[0]:
                return True
            if i < len(data):
                if not self._send(sock, data[i : i + 1]):
                    return True
                i += 1
        return bool(select.select([sock], [], [], 0)[0])

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True

    def __enter__(self) -> Trickler:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _sync(tmp_path: Path, url: str, name: str) -> float:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.txt").write_bytes(f"note of {name}\n".encode())
    opts = ClientOptions(url=url, device_id=f"dev-{name}", name="srv")
    started = time.monotonic()
    sync_client(GitStore.open(folder), opts, HttpTransport(timeout=30))
    return time.monotonic() - started


@contextmanager
def _slow_crowd(port: int, *, per_kind: int) -> Iterator[list[Trickler]]:
    with ExitStack() as stack:
        crowd = [
            stack.enter_context(Trickler(port, "127.0.0.2", per_kind, phase="body")),
            stack.enter_context(Trickler(port, "127.0.0.3", per_kind, phase="headers")),
            stack.enter_context(Trickler(port, "127.0.0.4", per_kind, phase="idle")),
        ]
        time.sleep(1.0)  # all of them connected and hanging on
        yield crowd


def test_builtin_server_serves_while_slow_clients_hang_on(tmp_path: Path) -> None:
    args = ["--request-timeout", "4", "--idle-timeout", "3", "--max-connections-per-address", "8"]
    with live.live_server(tmp_path / "notes", args=args) as server:
        with _slow_crowd(server.port, per_kind=10) as crowd:
            took = _sync(tmp_path, server.url, "good")
            assert took < 5, took  # not waiting for any slow client
            # beyond 8 connections per address: refused at once, with a retry hint
            over = [t.results for t in crowd]
            time.sleep(6)  # past the request timeout: every slow one was answered 408 or closed
            assert all(len(r) == 10 for r in over), over
        body, headers, idle = (crowd[0].results, crowd[1].results, crowd[2].results)
        assert [r.count(503) for r in (body, headers, idle)] == [2, 2, 2], (body, headers, idle)
        assert body.count(408) == 8 and headers.count(408) == 8, (body, headers)
        assert idle.count(0) == 8, idle  # idle ones closed silently after the idle timeout
        assert read_notes(tmp_path / "notes")["good.txt"] == b"note of good\n"


def _from(port: int, source: str, data: bytes, timeout: float = 5.0) -> live.RawReply:
    """``data`` on a new connection from ``source`` (any 127.x address is this machine)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(data)
        return live.read_reply(sock, time.monotonic())


def test_builtin_server_caps_connections_in_all(tmp_path: Path) -> None:
    """Full (4 slots, 2 addresses trickling half a request on 2 each): a newcomer from another address
    takes the slot of the longest-waiting of them instead of a 503, and the next ones are served too;
    one of the addresses that hold the most gets 503 at once (it cannot shed anyone to get more)."""
    args = ["--max-connections", "4", "--idle-timeout", "10", "--request-timeout", "30"]
    alert = live.request_bytes(message(1, ALERT))
    with live.live_server(tmp_path / "notes", args=args) as server:
        held = []
        for source in ("127.0.1.1", "127.0.1.1", "127.0.1.2", "127.0.1.2"):
            sock = socket.create_connection(("127.0.0.1", server.port), source_address=(source, 0))
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            held.append(sock)
            time.sleep(0.05)
        try:
            time.sleep(0.3)
            refused = _from(server.port, "127.0.1.1", alert)
            assert refused.status == 503 and refused.headers.get("retry-after") and refused.seconds < 1
            for n in range(3):  # a newcomer sheds the oldest trickler of the fullest address if it must
                reply = _from(server.port, f"127.0.2.{n + 1}", alert)
                assert reply.status == 200 and reply.header_status() == 200, reply
            shed = []
            for sock in held:
                sock.settimeout(2)
                try:
                    shed.append(sock.recv(100) == b"")
                except TimeoutError:
                    shed.append(False)
            assert shed[0] and 1 <= sum(shed) < 4, shed  # the oldest first (then: slots newcomers freed)
        finally:
            for sock in held:
                sock.close()


@pytest.mark.skipif(not live.HAVE_GUNICORN, reason="gunicorn is not installed (test extra)")
def test_gunicorn_gthread_serves_while_slow_clients_hang_on(tmp_path: Path) -> None:
    """The documented line (4 workers, gthread, 8 threads): as many slow clients as workers (which
    would stall every sync worker) cannot stall it. Kept below one worker's threads: gunicorn hands
    connections to workers by chance, and more slow ones than 8 could land on one worker and hold a
    sync's request behind them (hence the README's advice of a buffering proxy or the built-in serve)."""
    with live.live_server(tmp_path / "notes", kind="gunicorn") as server:
        with _slow_crowd(server.port, per_kind=2):
            took = _sync(tmp_path, server.url, "good")
            assert took < 10, took
        assert read_notes(tmp_path / "notes")["good.txt"] == b"note of good\n"
        assert "Traceback" not in server.output()
