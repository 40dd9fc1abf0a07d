"""``serve ROOT --users FILE --per-user``: each user syncs their own repository ROOT/<user>, under the
built-in server and under gunicorn; a user who sends another's device id, SessionID or session key,
or names another user in the path, gets nothing of theirs (raw HTTP requests)."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gitsync.codec import XML_TYPE, decode, encode
from gitsync.model import SyncMode
from gitsync.protocol.auth import basic_cred
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.passwords import hash_password, md5_secret
from gitsync.sync.devinf import our_devinf
from tests.app.helpers import write_notes
from tests.cli.helpers import cli, repo_snapshot
from tests.hostile.live import HAVE_GUNICORN, live_server, post
from tests.peers import read_notes

PW = {"alice": "alice pw", "bob": "bob: pw"}


def _users_file(tmp: Path) -> Path:
    users = tmp / "users"
    users.write_text("".join(f"{u}:{hash_password(p, cost=4)}:{md5_secret(u, p)}\n" for u, p in PW.items()))
    users.chmod(0o600)
    return users


@contextmanager
def _server(tmp: Path, kind: str) -> Iterator[tuple[int, Path]]:
    root = tmp / "root"
    users = _users_file(tmp)
    with live_server(root, kind=kind, users_file=users, per_user=True, workers=2, threads=4) as server:
        yield server.port, root
    assert "Traceback" not in server.output(), server.output()


def _sync_all(url: str, devices: dict[str, tuple[Path, str, list[str]]]) -> None:
    results: dict[str, object] = {}

    def one(dev: str, folder: Path, user: str, extra: list[str]) -> None:
        results[dev] = cli("script", "sync", folder, "-r", url, "-i", dev, "-u", user, *extra,
                           env={"GITSYNC_PASSWORD": PW[user]})

    threads = [threading.Thread(target=one, args=(d, *v)) for d, v in devices.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for dev, res in results.items():
        assert res.code == 0, (dev, res.err)  # type: ignore[attr-defined]
    assert len(results) == len(devices)


_GUNICORN = pytest.param("gunicorn", marks=[  # slow: 15 s; the default run has the built-in server
    pytest.mark.slow, pytest.mark.skipif(not HAVE_GUNICORN, reason="gunicorn is not installed (test extra)")
])


@pytest.mark.parametrize("kind", ["serve", _GUNICORN])
def test_two_users_two_devices_each_in_parallel(tmp_path: Path, kind: str) -> None:
    devices = {
        "alice-phone": (tmp_path / "a1", "alice", []),
        "alice-laptop": (tmp_path / "a2", "alice", ["--auth", "md5"]),
        "bob-phone": (tmp_path / "b1", "bob", ["--encoding", "wbxml"]),
        "bob-laptop": (tmp_path / "b2", "bob", []),
    }
    for dev, (folder, _, _) in devices.items():
        write_notes(folder, {f"{dev}.txt": f"written on {dev}\n".encode()})
    with _server(tmp_path, kind) as (port, root):
        url = f"http://127.0.0.1:{port}/notes"
        _sync_all(url, devices)
        _sync_all(url, devices)  # each device gets what its user's other device sent
        alice = {"alice-phone.txt": b"written on alice-phone\n",
                 "alice-laptop.txt": b"written on alice-laptop\n"}
        bob = {"bob-phone.txt": b"written on bob-phone\n", "bob-laptop.txt": b"written on bob-laptop\n"}
        for dev, (folder, user, _) in devices.items():
            assert read_notes(folder) == (alice if user == "alice" else bob), dev
        assert read_notes(root / "alice") == alice and read_notes(root / "bob") == bob
        assert sorted(os.listdir(root)) == [".gitsync-logins", "alice", "bob"]  # + the failed logins

        # alice, with her own password, sends bob's device id: she reaches her own repository only
        before = repo_snapshot(root / "bob")
        spy = tmp_path / "spy"
        spy.mkdir()
        res = cli("script", "sync", spy, "-r", url, "-i", "bob-phone", "-u", "alice",
                  env={"GITSYNC_PASSWORD": PW["alice"]})
        assert res.code == 0, res.err
        assert read_notes(spy) == alice
        assert repo_snapshot(root / "bob") == before
        # bob's phone goes on as before
        res = cli("script", "sync", tmp_path / "b1", env={"GITSYNC_PASSWORD": PW["bob"]})
        assert res.code == 0 and read_notes(tmp_path / "b1") == bob, res.err


def _client(device: str, user: str | None, session_id: str = "1") -> ClientSession:
    return ClientSession(ClientConfig(
        url="http://127.0.0.1/notes", device_id=device, devinf=our_devinf(device, server=False),
        mode=SyncMode.SLOW, last_anchor=None, next_anchor="a1", session_id=session_id,
        username=user, password=PW[user] if user else None, auth_type="basic",
    ))


def _with_cred(body: bytes, user: str | None) -> bytes:
    msg = decode(body, XML_TYPE)[0]
    cred = basic_cred(user, PW[user]) if user else None
    return encode(dataclasses.replace(msg, header=dataclasses.replace(msg.header, cred=cred)), XML_TYPE)


@pytest.mark.parametrize("stranger", [False, True])
def test_guessed_ids_and_paths_reach_nothing_of_another_user(tmp_path: Path, stranger: bool) -> None:
    secret = b"bob's secret note"
    with _server(tmp_path, "serve") as (port, root):
        bob_folder = tmp_path / "bob"
        write_notes(bob_folder, {"s.txt": secret + b"\n"})
        res = cli("script", "sync", bob_folder, "-r", f"http://127.0.0.1:{port}/notes", "-i", "bob-phone",
                  "-u", "bob", env={"GITSYNC_PASSWORD": PW["bob"]})
        assert res.code == 0, res.err
        before = repo_snapshot(root / "bob")

        # bob opens a session by hand: package 1 gets a RespURI that names him and a session key
        bob = _client("bob-phone", "bob", session_id="7")
        first = encode(bob.start(), XML_TYPE)
        reply = post(port, first, path="/notes")
        assert reply.header_status() == 212, reply.body[:500]
        msg = reply.message()
        assert msg is not None and msg.header.resp_uri is not None
        resp_uri = msg.header.resp_uri
        m = re.match(r"http://127\.0\.0\.1(?::\d+)?(/~bob/notes)\?sessionid=([0-9a-f]+)$", resp_uri)
        assert m, resp_uri
        bob_path, key = m.groups()
        bob.receive(msg)
        bob.provide_changes([])
        second = encode(bob.next_message(), XML_TYPE)  # bob's package 3: asks for the server's notes

        if stranger:  # no credentials, bob's SessionID and device id, a guessed key or none
            for what, path, codes in (
                ("guessed key", f"{bob_path}?sessionid={'0' * 32}", {401, 403, 407}),
                ("no key at all", "/notes", {401, 407}),
            ):
                r = post(port, _with_cred(second, None), path=path)
                assert r.status == 200 and r.header_status() in codes, (what, r.status, r.body[:300])
                assert secret not in r.body, what
        # bob's own session goes on with his key
        r = post(port, second, path=f"{bob_path}?sessionid={key}")
        assert r.status == 200 and secret in r.body
        # alice, with her own valid password: on bob's path and key bob's server knows only bob; with
        # bob's SessionID and device id and no key, she reaches her own repository
        for what, path, codes in (
            ("alice on bob's key", f"{bob_path}?sessionid={key}", {401, 403}),
            ("alice with bob's ids", "/notes", {200, 212, 401, 403, 407, 417}),
        ):
            r = post(port, _with_cred(second, "alice"), path=path)
            assert r.status == 200 and r.header_status() in codes, (what, r.status, r.body[:300])
            assert secret not in r.body and base64.b64encode(secret)[:12] not in r.body, what
        # a first message with a wrong password creates no repository
        shutil.rmtree(root / "alice", ignore_errors=True)
        r = post(port, _with_cred(first, None), path="/notes")  # no credentials: a challenge
        assert r.header_status() in (401, 407) and not (root / "alice").exists()
        msg1 = decode(first, XML_TYPE)[0]
        wrong_pw = dataclasses.replace(msg1.header, cred=basic_cred("alice", "no"))
        bad = dataclasses.replace(msg1, header=wrong_pw)
        r = post(port, encode(bad, XML_TYPE), path="/notes")
        assert r.header_status() == 401 and not (root / "alice").exists()
        r = post(port, first, path="/~alice/notes")
        assert r.status == 404 and not (root / "alice").exists()
        for path in ("/~carol/notes", "/~..%2F..%2Fetc/notes", "/~../notes"):
            r = post(port, first, path=path)
            assert r.status == 404 and secret not in r.body, path
        assert set(os.listdir(root)) <= {".gitsync-logins", "alice", "bob"}  # no repository for anyone else
        assert repo_snapshot(root / "bob") == before


def test_user_names_that_cannot_name_a_folder_are_refused(tmp_path: Path) -> None:
    users = tmp_path / "users"
    for bad in ("../x", ".git", "a/b", "Alice\nalice"):
        users.write_text("".join(f"{n}:pw\n" for n in bad.split("\n")))
        res = cli("runner", "serve", tmp_path / "root", "--per-user", "--users", users, "--listen", "0")
        assert res.code == 2 and len(res.lines) == 1, (bad, res.err)
    assert not (tmp_path / "root").exists()
