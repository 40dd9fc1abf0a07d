"""Hostile and malformed input to the server's WSGI entry.

Every request gets an HTTP 4xx or a SyncML answer with an error status, the server keeps serving a
well-behaved client afterwards, and nothing is written outside the notes folder or into ``.git``
(config, HEAD, hooks, info), nor committed under an unsafe path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.codec import WBXML_TYPE, XML_TYPE, encode
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.events import OutChange
from gitsync.store.git import GitStore
from gitsync.transport.inprocess import InProcessTransport
from tests.helpers import read_notes
from tests.hostile.helpers import URL, App, FsGuard, ScriptedClient, add, post, sif

MAX_BODY = 256 * 1024


@dataclass
class Env:
    tmp: Path
    server_dir: Path
    server: SyncServer
    app: App
    guard: FsGuard
    canary: Path

    def good_sync(self, name: str = "good") -> dict[str, bytes]:
        """A well-behaved client syncs a note and gets everything: the server still serves."""
        folder = self.tmp / name
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.txt").write_bytes(f"from {name}\n".encode())
        store = GitStore.open(folder)
        sync_client(
            store, ClientOptions(url=URL, device_id=f"dev-{name}", name="srv"), InProcessTransport(self.app)
        )
        notes = read_notes(folder)
        assert notes.get(f"{name}.txt") == f"from {name}\n".encode()
        assert read_notes(self.server_dir).get(f"{name}.txt") == f"from {name}\n".encode()
        return notes

    def assert_safe(self) -> None:
        assert self.canary.read_bytes() == b"canary\n"
        assert self.guard.problems() == []


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    server_dir = tmp_path / "srv" / "notes"
    server_dir.mkdir(parents=True)
    (server_dir / "existing.txt").write_bytes(b"existing note\n")
    canary = tmp_path / "srv" / "outside.txt"
    canary.write_bytes(b"canary\n")
    store = GitStore.open(server_dir)
    server = SyncServer(store, ServerOptions(max_body=MAX_BODY))
    e = Env(tmp_path, server_dir, server, server.wsgi_app(), FsGuard(tmp_path / "srv", server_dir), canary)
    yield e
    e.assert_safe()


def first_message(device: str = "raw-dev") -> bytes:
    """A well-formed package 1 as our own client would send it."""
    from gitsync.protocol.client import ClientConfig, ClientSession
    from gitsync.sync.devinf import our_devinf

    session = ClientSession(
        ClientConfig(
            url=URL,
            device_id=device,
            devinf=our_devinf(device, server=False),
            mode=SyncMode.SLOW,
            next_anchor="n1",
        )
    )
    return encode(session.start(), XML_TYPE)


PKG1 = first_message()
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    b"<SyncML><SyncHdr><VerDTD>&d;</VerDTD></SyncHdr><SyncBody/></SyncML>"
)


def _sub(pattern: bytes, repl: bytes, body: bytes = PKG1) -> bytes:
    out, n = re.subn(pattern, repl, body, count=1)
    assert n == 1, pattern
    return out


RAW: dict[str, tuple[bytes, str | None]] = {
    "xxe-file": (
        b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<SyncML><SyncHdr><VerDTD>&x;</VerDTD></SyncHdr><SyncBody/></SyncML>",
        XML_TYPE,
    ),
    "xxe-in-real-message": (
        _sub(
            rb"<\?xml[^>]*\?>",
            b'<?xml version="1.0"?><!DOCTYPE SyncML [<!ENTITY x SYSTEM "file:///etc/hostname">]>',
        ),
        XML_TYPE,
    ),
    "xxe-parameter-entity": (
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><SyncML/>',
        XML_TYPE,
    ),
    "billion-laughs": (LAUGHS, XML_TYPE),
    "external-dtd": (
        b'<!DOCTYPE SyncML SYSTEM "http://127.0.0.1:9/syncml.dtd">' + PKG1[PKG1.index(b"<SyncML") :],
        XML_TYPE,
    ),
    "utf16-doctype": (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><SyncML/>'.encode("utf-16"),
        XML_TYPE,
    ),
    "deep-nesting-100": (b"<SyncML>" + b"<a>" * 100 + b"</a>" * 100 + b"</SyncML>", XML_TYPE),
    "deep-nesting-100k": (b"<SyncML>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</SyncML>", XML_TYPE),
    "deep-atomic": (
        _sub(rb"<SyncBody>", b"<SyncBody>" + b"<Atomic><CmdID>9</CmdID>" * 60).replace(
            b"</SyncBody>", b"</Atomic>" * 60 + b"</SyncBody>"
        ),
        XML_TYPE,
    ),
    "truncated-half": (PKG1[: len(PKG1) // 2], XML_TYPE),
    "truncated-one-byte": (PKG1[:-1], XML_TYPE),
    "truncated-wbxml": (b"\x02\xa4\x01\x6a\x00\x6d\x6c", WBXML_TYPE),
    "empty": (b"", XML_TYPE),
    "not-syncml-html": (b"<html><body>hi</body></html>", XML_TYPE),
    "not-xml-at-all": (b"\x00\xffGET / HTTP/1.1\r\n\r\n", None),
    "json": (b'{"SyncML": {}}', "application/json"),
    "wrong-namespace": (_sub(rb'xmlns="SYNCML:SYNCML1.2"', b'xmlns="urn:evil:not-syncml"'), XML_TYPE),
    "foreign-namespace-prefix": (
        _sub(rb"<SyncML[^>]*>", b'<e:SyncML xmlns:e="http://evil.example/">').replace(
            b"</SyncML>", b"</e:SyncML>"
        ),
        XML_TYPE,
    ),
    "no-synchdr": (re.sub(rb"<SyncHdr>.*</SyncHdr>", b"", PKG1, flags=re.S), XML_TYPE),
    "no-syncbody": (re.sub(rb"<SyncBody>.*</SyncBody>", b"", PKG1, flags=re.S), XML_TYPE),
    "no-sessionid": (_sub(rb"<SessionID>[^<]*</SessionID>", b""), XML_TYPE),
    "no-msgid": (_sub(rb"<MsgID>[^<]*</MsgID>", b""), XML_TYPE),
    "no-source": (re.sub(rb"<Source>.*?</Source>", b"", PKG1, count=1, flags=re.S), XML_TYPE),
    "no-target": (re.sub(rb"<Target>.*?</Target>", b"", PKG1, count=1, flags=re.S), XML_TYPE),
    "no-verdtd": (_sub(rb"<VerDTD>[^<]*</VerDTD>", b""), XML_TYPE),
    "verdtd-9": (_sub(rb"<VerDTD>[^<]*</VerDTD>", b"<VerDTD>9.9</VerDTD>"), XML_TYPE),
    "msgid-text": (_sub(rb"<MsgID>[^<]*</MsgID>", b"<MsgID>one</MsgID>"), XML_TYPE),
    "msgid-negative": (_sub(rb"<MsgID>[^<]*</MsgID>", b"<MsgID>-5</MsgID>"), XML_TYPE),
    "msgid-huge": (_sub(rb"<MsgID>[^<]*</MsgID>", b"<MsgID>" + b"9" * 400 + b"</MsgID>"), XML_TYPE),
    "sessionid-huge": (
        _sub(rb"<SessionID>[^<]*</SessionID>", b"<SessionID>" + b"x" * 5000 + b"</SessionID>"),
        XML_TYPE,
    ),
    "source-nul-ref": (_sub(rb"<LocURI>raw-dev</LocURI>", b"<LocURI>raw&#0;dev</LocURI>"), XML_TYPE),
    "source-traversal": (
        _sub(rb"<LocURI>raw-dev</LocURI>", b"<LocURI>../../../.git/refs/heads/main</LocURI>"),
        XML_TYPE,
    ),
    "source-control-chars": (
        _sub(rb"<LocURI>raw-dev</LocURI>", b"<LocURI>\x1b[31mred\x07</LocURI>"),
        XML_TYPE,
    ),
    "invalid-utf8": (_sub(rb"<LocURI>raw-dev</LocURI>", b"<LocURI>raw\xff\xfedev</LocURI>"), XML_TYPE),
    "unknown-commands": (
        _sub(
            rb"<SyncBody>",
            b"<SyncBody><Exec><CmdID>90</CmdID></Exec><Frobnicate><CmdID>91"
            b"</CmdID></Frobnicate><Search><CmdID>92</CmdID></Search>",
        ),
        XML_TYPE,
    ),
    "command-without-cmdid": (
        _sub(rb"<SyncBody>", b"<SyncBody><Add><Item><Data>x</Data></Item></Add>"),
        XML_TYPE,
    ),
    "alert-unknown-code": (_sub(rb"<Data>201</Data>", b"<Data>999</Data>"), XML_TYPE),
    "alert-wrong-store": (_sub(rb"<LocURI>notes</LocURI>", b"<LocURI>../../etc</LocURI>"), XML_TYPE),
    "sync-before-alert": (
        _sub(
            rb"<SyncBody>",
            b"<SyncBody><Sync><CmdID>50</CmdID><Target><LocURI>notes</LocURI>"
            b"</Target><Add><CmdID>51</CmdID><Item><Source><LocURI>x</LocURI></Source><Data>"
            b"boo</Data></Item></Add></Sync>",
        ),
        XML_TYPE,
    ),
    "b64-garbage": (
        _sub(
            rb"<SyncBody>",
            b"<SyncBody><Put><CmdID>60</CmdID><Meta><Format xmlns='syncml:metinf'>"
            b"b64</Format></Meta><Item><Data>!!!not base64!!!</Data></Item></Put>",
        ),
        XML_TYPE,
    ),
    "wbxml-garbage": (b"\x03\x01\x6a\x00" + bytes(range(256)) * 4, WBXML_TYPE),
}


def _acceptable(reply_status: int, header_status: int | None) -> bool:
    return 400 <= reply_status < 500 or (reply_status == 200 and header_status is not None)


@pytest.mark.parametrize("name", sorted(RAW))
def test_raw_hostile_request(env: Env, name: str) -> None:
    body, ctype = RAW[name]
    reply = post(env.app, body, ctype)
    assert reply.status != 500, reply.body[:300]
    assert _acceptable(reply.status, reply.header_status()), (reply.status, reply.body[:300])
    if name.startswith(("xxe", "billion", "external", "utf16")):
        assert reply.status == 400
        assert b"root:" not in reply.body and b"haha" not in reply.body
    env.good_sync()


@pytest.mark.parametrize("length", ["999999999999", str(MAX_BODY + 1)])
def test_oversize_body_is_413_before_reading(env: Env, length: str) -> None:
    reply = post(env.app, b"<SyncML/>", content_length=length)
    assert reply.status == 413
    env.good_sync()


def test_body_without_length_is_411_without_reading(env: Env) -> None:
    reply = post(env.app, PKG1 + b" " * MAX_BODY, content_length="")
    assert reply.status == 411  # reading to the end would wait for a client that may never close
    env.good_sync()


def test_bad_content_length_and_methods(env: Env) -> None:
    assert post(env.app, PKG1, content_length="12abc").status == 400
    assert post(env.app, PKG1 + b" " * (2 * MAX_BODY), content_length="-5").status == 400  # no unbounded read
    assert post(env.app, b"", method="PUT").status == 405
    assert post(env.app, b"", method="GET").status == 200
    env.good_sync()


# ---------------------------------------------------------------------------------- items

HOSTILE_NAMES: dict[str, str | bytes] = {
    "dotdot": "../escaped.txt",
    "dotdot-deep": "a/../../../../outside.txt",
    "dotdot-only": "..",
    "dot": ".",
    "absolute": "/etc/passwd-gitsync",
    "absolute-windows": "C:\\Windows\\evil.txt",
    "backslash-dotdot": "..\\..\\outside.txt",
    "git-config": ".git/config",
    "git-hook": ".git/hooks/post-commit",
    "git-upper": ".GIT/HEAD",
    "git-nested": "sub/.git/config",
    "git-file": ".git",
    "gitattributes": ".gitattributes",
    "gitmodules": ".gitmodules",
    "nul": "before\x00after.txt",
    "control": "bell\x07esc\x1b[2J.txt",
    "newline": "two\nlines.txt",
    "invalid-utf8": b"caf\xe9 \xff\xfe.txt",
    "empty": "",
    "spaces": "   ",
    "slashes": "////",
    "long": "x" * 5000 + ".txt",
    "url-encoded": "%2e%2e/%2e%2e/outside.txt",
    "unicode-dots": "\u2024\u2024/outside.txt",
    "trailing-dot-space": "evil. . .",
    "reserved-windows": "CON",
}


def test_hostile_note_names_and_subjects(env: Env) -> None:
    client = ScriptedClient(env.app)
    changes = [add(f"k-{key}", sif(name, f"body of {key}\n")) for key, name in sorted(HOSTILE_NAMES.items())]
    # a SIF whose Subject is itself invalid UTF-8 / holds a NUL, and text/plain notes named by their text
    changes.append(
        add(
            "k-raw-sif",
            b"<note><SIFVersion>1.1</SIFVersion><Subject>\xff\xfe/../x</Subject><Body>raw</Body></note>",
        )
    )
    changes.append(add("k-text-dotdot", b"../../outside.txt\nbody\n", "text/plain"))
    changes.append(add("k-text-git", b".git/hooks/pre-commit\n#!/bin/sh\nrm -rf /\n", "text/plain"))
    changes.append(add("k-text-nul", b"\x00\x01\x02\n", "text/plain"))
    changes.append(add("k-text-binary", bytes(range(256)), "text/plain"))
    acks = client.sync(changes)
    assert len(acks) == len(changes)
    codes = {change.key: code for change, code in acks}
    assert all(100 <= c < 600 for c in codes.values()), codes
    notes = read_notes(env.server_dir, skip_hidden=False)
    assert notes.pop("existing.txt") == b"existing note\n"
    assert notes.pop(".gitattributes") == b"* -text\n"
    # every accepted note landed inside the folder under a safe name, and its text survived
    accepted = [k for k, c in codes.items() if c < 300]
    assert len(accepted) >= len(HOSTILE_NAMES)  # names are made safe, the notes are not refused
    bodies = b"".join(notes.values())
    for key in HOSTILE_NAMES:
        if codes[f"k-{key}"] < 300:
            assert f"body of {key}".encode() in bodies
    assert not (env.server_dir.parent / "escaped.txt").exists()
    env.assert_safe()
    env.good_sync()


def test_unknown_replace_and_repeated_delete(env: Env) -> None:
    client = ScriptedClient(env.app)
    client.sync([add("k1", sif("one.txt", "one\n")), add("k2", sif("two.txt", "two\n"))])
    assert read_notes(env.server_dir).get("one.txt") == b"one\n"
    # a Replace for an item the server never heard of, twice the same Delete, a Delete of nothing
    changes = [
        OutChange(
            kind=ChangeKind.MODIFY,
            key="no-such-luid",
            data=sif("ghost.txt", "ghost\n"),
            content_type="text/x-s4j-sifn",
            version="1.1",
        ),
        OutChange(kind=ChangeKind.DELETE, key="k1"),
        OutChange(kind=ChangeKind.DELETE, key="k1"),
        OutChange(kind=ChangeKind.DELETE, key="never-existed"),
    ]
    acks = client.sync(changes)
    codes = [code for _, code in acks]
    assert len(codes) == 4
    assert codes[0] in (200, 201)  # an unknown Replace is taken as an Add (OMA DS 1.2 §6.5)
    assert codes[1] == 200
    assert codes[2] in (200, 211)  # the second Delete finds nothing
    assert codes[3] in (211, 404)
    notes = read_notes(env.server_dir)
    assert (
        "one.txt" not in notes and notes.get("two.txt") == b"two\n" and notes.get("ghost.txt") == b"ghost\n"
    )
    # the same Delete in a later session is harmless too
    acks = client.sync([OutChange(kind=ChangeKind.DELETE, key="k1")])
    assert [c for _, c in acks] in ([200], [211])
    assert read_notes(env.server_dir).get("two.txt") == b"two\n"
    env.good_sync()


def test_wrong_msgid_and_sessionid_mid_session(env: Env) -> None:
    """A session whose later messages lie about MsgID/SessionID/Source ends cleanly; nothing is applied."""
    lies = (rb"<MsgID>\d+</MsgID>", rb"<SessionID>\d+</SessionID>", rb"<LocURI>evil-device</LocURI>")
    for n, lie in enumerate(lies):
        client = ScriptedClient(env.app, device="evil-device")
        replacement = {
            rb"<MsgID>\d+</MsgID>": b"<MsgID>77</MsgID>",
            rb"<SessionID>\d+</SessionID>": b"<SessionID>999</SessionID>",
            rb"<LocURI>evil-device</LocURI>": b"<LocURI>other-device</LocURI>",
        }[lie]

        def mutate(msg_id: int, body: bytes, lie: bytes = lie, replacement: bytes = replacement) -> bytes:
            return re.sub(lie, replacement, body, count=1) if msg_id >= 2 else body

        try:
            client.sync([add(f"lie-{n}", sif(f"lie{n}.txt", "lie\n"))], mutate=mutate)
        except Exception as exc:  # the client gives up: fine, as long as it is our error type
            from gitsync.errors import GitsyncError

            assert isinstance(exc, GitsyncError), repr(exc)
        notes = read_notes(env.server_dir)
        if n > 0:  # another session / device: the change must not land
            assert f"lie{n}.txt" not in notes
    env.good_sync()


HOSTILE_DEVICES = (
    "../../../.git/refs/heads/main",
    "a..b",
    "x.lock",
    "refs/heads/main",
    "@{-1}",
    "HEAD",
    "-",
    ".",
    "\u202eevil",
    "dev" * 200,
    "a/b/c",
    "~^:?*[\\",
    "device-journal",
    "journal/x",
)


def test_hostile_device_ids(env: Env) -> None:
    for n, device in enumerate(HOSTILE_DEVICES):
        client = ScriptedClient(env.app, device=device)
        acks = client.sync([add(f"d{n}", sif(f"from device {n}.txt", f"device {n}\n"))])
        assert [code for _, code in acks] == [201], device
    notes = read_notes(env.server_dir)
    for n in range(len(HOSTILE_DEVICES)):
        assert notes.get(f"from device {n}.txt") == f"device {n}\n".encode()
    import subprocess

    refs = subprocess.run(
        ["git", "-C", str(env.server_dir), "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "refs/heads/main" in refs
    assert all(r == "refs/heads/main" or r.startswith("refs/gitsync/") for r in refs), refs
    assert not [r for r in refs if r.startswith("refs/gitsync/journal")]
    assert (
        subprocess.run(
            ["git", "-C", str(env.server_dir), "symbolic-ref", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        == "refs/heads/main"
    )
    env.good_sync()


def test_very_deep_nesting_under_the_default_size_limit(tmp_path: Path) -> None:
    """Within the default 16 MiB limit, a 1,000,000-deep document is refused by the parser, not by a crash."""
    folder = tmp_path / "notes"
    folder.mkdir()
    app = SyncServer(GitStore.open(folder)).wsgi_app()
    depth = 1_000_000
    reply = post(app, b"<SyncML>" + b"<a>" * depth + b"</a>" * depth + b"</SyncML>")
    assert reply.status == 400
