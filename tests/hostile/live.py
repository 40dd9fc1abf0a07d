"""A real server process (``gitsync-notes serve`` or gunicorn) and raw bytes over real sockets.

The attacks of issue 15 live in the HTTP server and between processes (a slow socket, two clients behind
one address, a worker that never saw the session), so these tests talk to a real server over 127.0.0.1
with bytes they write themselves.  Every process started here is stopped by its process group id.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitsync.codec import decode
from gitsync.errors import CodecError
from gitsync.protocol.messages import Message, Status
from tests.crash.harness import REPO_ROOT, child_env, gitsync_argv, wait_port
from tests.helpers import free_port

HOST = "127.0.0.1"
HAVE_GUNICORN = importlib.util.find_spec("gunicorn") is not None


@dataclass
class LiveServer:
    """A running server: its port, its process, and its log."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    kind: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/notes"

    def pids(self) -> list[int]:
        """The server process and its children (gunicorn's workers)."""
        out = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            children = []
        return out + [int(c) for c in children]

    def rss_kib(self) -> int:
        """Resident memory of the server and its workers now (VmRSS)."""
        return sum(_proc_status(pid, "VmRSS") for pid in self.pids())

    def peak_kib(self) -> int:
        """The highest resident memory any one of its processes had (VmHWM)."""
        return max(_proc_status(pid, "VmHWM") for pid in self.pids())

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _proc_status(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


@contextmanager
def live_server(
    folder: Path, *, kind: str = "serve", args: Sequence[str] = (), users: dict[str, str] | None = None,
    users_file: Path | None = None, per_user: bool = False, workers: int = 4, threads: int = 8,
    worker_class: str = "gthread", env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """``gitsync-notes serve`` (kind "serve") or ``gunicorn -w N -k gthread`` (kind "gunicorn").

    The one way tests start a server process: ``users`` (name → password, written to a file) or an
    existing ``users_file``; ``per_user`` for a repository per user under ``folder``; ``args`` go to
    ``serve`` or to gunicorn (a later gunicorn option overrides the defaults here).
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder.parent / f"{kind}-{port}.log"
    extra_env = dict(env or {})
    if users is not None:
        users_file = folder.parent / f"users-{port}"
        users_file.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
    users_args: list[str] = []
    if users_file is not None:
        users_args = ["--users", str(users_file)]
        extra_env["GITSYNC_USERS_FILE"] = str(users_file)
    if per_user:
        extra_env["GITSYNC_PER_USER"] = "1"
    if kind == "serve":
        mode_args = ["--per-user"] if per_user else []
        argv = gitsync_argv("serve", str(folder), "--listen", str(port), "-q", *mode_args, *users_args, *args)
    else:
        if not per_user:
            subprocess.run(["git", "init", "-q", str(folder)], check=True)
        argv = [
            sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{HOST}:{port}",
            "--worker-class", worker_class, "--threads", str(threads), "--timeout", "60",
            "--error-logfile", "-", *args, f"gitsync.app.wsgi:make_app({str(folder)!r})",
        ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=child_env(extra_env), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(proc, port, log, kind)
    try:
        assert wait_port(port, proc, timeout=30), server.output()
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass(frozen=True)
class RawReply:
    """What came back on the socket."""

    status: int  # 0: the connection closed without an answer
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the last byte sent to the end of the answer

    def message(self) -> Message | None:
        try:
            return decode(self.body, self.headers.get("content-type"))[0] if self.status == 200 else None
        except CodecError:
            return None

    def header_status(self) -> int | None:
        msg = self.message()
        if msg is None:
            return None
        return next((c.code for c in msg.commands if isinstance(c, Status) and c.cmd == "SyncHdr"), None)


def request_bytes(
    body: bytes, *, content_type: str | None = "application/vnd.syncml+xml", path: str = "/notes",
    headers: Sequence[tuple[str, str]] = (), length: int | None = None, method: str = "POST",
) -> bytes:
    """An HTTP/1.1 request as bytes (Content-Length = len(body) unless ``length``)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(port: int, data: bytes, *, timeout: float = 30.0, shut: bool = False) -> RawReply:
    """Send ``data`` on a new connection and read the whole answer (``shut``: half-close after)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        sent = time.monotonic()
        return read_reply(sock, sent)


def read_reply(sock: socket.socket, sent: float) -> RawReply:
    """Read one answer off ``sock`` (until Content-Length, or the peer closes)."""
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return RawReply(0, {}, buf, time.monotonic() - sent)
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        want = int(headers.get("content-length", "-1"))
        while want < 0 or len(rest) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    except (ConnectionResetError, BrokenPipeError):
        return RawReply(0, {}, buf, time.monotonic() - sent)
    return RawReply(status, headers, rest, time.monotonic() - sent)


def post(port: int, body: bytes, *, timeout: float = 30.0, **kw: object) -> RawReply:
    """One POST of ``body`` (keyword arguments as for :func:`request_bytes`)."""
    return exchange(port, request_bytes(body, **kw), timeout=timeout)  # type: ignore[arg-type]
