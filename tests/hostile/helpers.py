"""Tools for the hostile-input tests: raw POSTs to the WSGI app, a scriptable client, file-system guards."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitsync.codec import XML_TYPE, decode, encode
from gitsync.errors import CodecError
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.events import Acknowledged, ChangesReceived, ItemResult, OutChange, SyncModeDecided
from gitsync.protocol.messages import Message, Status
from gitsync.sync.devinf import our_devinf
from gitsync.transport.inprocess import InProcessTransport

URL = "http://sync.test/notes"
App = Callable[..., Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer of the WSGI app."""

    status: int
    headers: dict[str, str]
    body: bytes

    def message(self) -> Message | None:
        """The SyncML answer, or None when the body is not SyncML."""
        if self.status != 200:
            return None
        try:
            return decode(self.body, self.headers.get("content-type"))[0]
        except CodecError:
            return None

    def header_status(self) -> int | None:
        """The code of the Status for the request's SyncHdr, if the answer has one."""
        msg = self.message()
        if msg is None:
            return None
        for cmd in msg.commands:
            if isinstance(cmd, Status) and cmd.cmd == "SyncHdr":
                return cmd.code
        return None

    def statuses(self) -> list[Status]:
        msg = self.message()
        return [c for c in msg.commands if isinstance(c, Status)] if msg is not None else []


def post(
    app: App,
    body: bytes,
    content_type: str | None = XML_TYPE,
    *,
    path: str = "/notes",
    query: str = "",
    cookie: str | None = None,
    content_length: str | None = None,
    remote_addr: str = "127.0.0.1",
    method: str = "POST",
) -> Reply:
    """One request straight into the WSGI app (what a socket would deliver)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
        "SERVER_NAME": "sync.test",
        "SERVER_PORT": "80",
        "HTTP_HOST": "sync.test",
        "REMOTE_ADDR": remote_addr,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    status: list[str] = []
    headers: list[tuple[str, str]] = []

    def start_response(st: str, hdrs: list[tuple[str, str]], exc_info: object = None) -> None:
        status.append(st)
        headers.extend(hdrs)

    data = b"".join(app(environ, start_response))
    return Reply(int(status[0].split()[0]), {k.lower(): v for k, v in headers}, data)


@dataclass
class ScriptedClient:
    """A real ClientSession whose changes (and, optionally, wire bytes) the test chooses."""

    app: App
    device: str = "evil-device"
    username: str | None = None
    password: str | None = None
    auth_type: str = "basic"
    session_no: int = 0
    anchor: str | None = None
    acks: list[tuple[OutChange, int]] = field(default_factory=list)
    received: list[Any] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)

    def sync(
        self,
        changes: Sequence[OutChange],
        *,
        mode: SyncMode | None = None,
        mutate: Callable[[int, bytes], bytes] | None = None,
    ) -> list[tuple[OutChange, int]]:
        """One session sending ``changes``; returns the server's status for each."""
        self.session_no += 1
        nxt = f"anchor-{self.session_no}"
        if mode is None:
            mode = SyncMode.TWO_WAY if self.anchor else SyncMode.SLOW
        session = ClientSession(
            ClientConfig(
                url=URL,
                device_id=self.device,
                devinf=our_devinf(self.device, server=False),
                mode=mode,
                last_anchor=self.anchor,
                next_anchor=nxt,
                session_id=str(self.session_no),
                username=self.username,
                password=self.password,
                auth_type=self.auth_type,
            )
        )
        transport = InProcessTransport(self.app)
        acks: list[tuple[OutChange, int]] = []
        msg: Message | None = session.start()
        while msg is not None:
            body = encode(msg, XML_TYPE)
            if mutate is not None:
                body = mutate(msg.header.msg_id, body)
            reply_body, media = transport.exchange(session.resp_uri or URL, body, XML_TYPE)
            reply = decode(reply_body, media)[0]
            self.replies.append(reply)
            for event in session.receive(reply):
                if isinstance(event, SyncModeDecided):
                    session.provide_changes(list(changes))
                elif isinstance(event, ChangesReceived):
                    self.received.extend(event.changes)
                    session.provide_results(
                        [
                            ItemResult(
                                code=201 if ch.kind is ChangeKind.ADD else 200,
                                luid=f"l-{hashlib.sha1(repr(ch.guid).encode()).hexdigest()[:12]}",
                            )
                            for ch in event.changes
                        ]
                    )
                elif isinstance(event, Acknowledged):
                    acks.extend(event.results)
            msg = session.next_message()
        self.anchor = nxt
        self.acks.extend(acks)
        return acks


def sif(subject: str | bytes, body: str | bytes = "hostile body\n") -> bytes:
    """A SIF-N note with exactly this Subject and Body text (escaped only where XML needs it)."""

    def esc(value: str | bytes) -> bytes:
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        return raw.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")

    return (
        b"<note><SIFVersion>1.1</SIFVersion><Subject>"
        + esc(subject)
        + b"</Subject><Body>"
        + esc(body)
        + b"</Body></note>"
    )


def add(key: str, data: bytes, content_type: str = "text/x-s4j-sifn") -> OutChange:
    return OutChange(kind=ChangeKind.ADD, key=key, data=data, content_type=content_type, version="1.1")


# ---------------------------------------------------------------------------------- the file system


def _digest_tree(root: Path, *, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, str]:
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not skip(here / d)]
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            path = here / name
            if skip(path):
                continue
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = "symlink:" + os.readlink(path)
            else:
                out[rel] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


class FsGuard:
    """Snapshots what a server must never touch: everything beside its notes folder, and the parts of
    ``.git`` that are not object/ref storage (config, HEAD, hooks, info, the index's siblings)."""

    def __init__(self, outside: Path, notes: Path) -> None:
        self.outside, self.notes = outside.resolve(), notes.resolve()
        self.before_outside = self._outside()
        self.before_git = self._git_meta()

    def _outside(self) -> dict[str, str]:
        return _digest_tree(self.outside, skip=lambda p: p.resolve() == self.notes)

    def _git_meta(self) -> dict[str, str]:
        gitdir = self.notes / ".git"
        meta = {name: _digest_tree(gitdir / name) for name in ("hooks", "info")}
        flat = {f"{k}/{n}": v for k, tree in meta.items() for n, v in tree.items()}
        for name in ("config", "HEAD", "description"):
            path = gitdir / name
            flat[name] = hashlib.sha1(path.read_bytes()).hexdigest() if path.exists() else "-"
        return flat

    def problems(self) -> list[str]:
        """What changed where nothing may change, and any unsafe file in the notes folder or its commits."""
        out: list[str] = []
        if self._outside() != self.before_outside:
            out.append(
                f"files outside the notes folder changed: {_delta(self.before_outside, self._outside())}"
            )
        if self._git_meta() != self.before_git:
            out.append(f".git config/HEAD/hooks/info changed: {_delta(self.before_git, self._git_meta())}")
        for dirpath, dirnames, filenames in os.walk(self.notes):
            here = Path(dirpath)
            if here == self.notes:
                dirnames[:] = [d for d in dirnames if d != ".git"]
            for name in dirnames + filenames:
                path = here / name
                rel = path.relative_to(self.notes).as_posix()
                if path.is_symlink():
                    out.append(f"a symlink appeared: {rel}")
                if name.lower() == ".git" or any(ord(ch) < 32 for ch in name):
                    out.append(f"unsafe name in the notes folder: {rel!r}")
        listing = subprocess.run(
            ["git", "-C", str(self.notes), "ls-tree", "-r", "-z", "--name-only", "HEAD"],
            capture_output=True,
            check=False,
        ).stdout
        for raw in filter(None, listing.split(b"\0")):
            parts = raw.decode("utf-8", "surrogateescape").split("/")
            if any(p in ("", ".", "..") or p.lower() == ".git" or any(ord(c) < 32 for c in p) for p in parts):
                out.append(f"unsafe path committed: {raw!r}")
        return out


def _delta(before: dict[str, str], after: dict[str, str]) -> str:
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return ", ".join(keys[:10])
