"""The peer harness (tests/peers.py) proven against the real peers themselves, without our code."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.request
from pathlib import Path

import pygit2
import pytest

from tests import peers
from tests.helpers import free_port, read_notes, write_notes

pytestmark = pytest.mark.interop

NOTES = {
    "alpha.txt": b"Alpha note\nsecond line\n",
    "beta.txt": b"Beta note\n",
    "gamma.txt": b"Gamma: three lines\nof plain\nASCII text\n",
}


def _summary(res: subprocess.CompletedProcess[str]) -> str:
    return f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"


# ------------------------------------------------------------------------------------------ helpers


def test_read_notes_skips_state_folders_symlinks_and_hidden_files(tmp_path: Path) -> None:
    write_notes(tmp_path, {"a.txt": b"a", ".hidden": b"h"})
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_bytes(b"b")
    for state in (".git", ".sync"):
        (tmp_path / state).mkdir()
        (tmp_path / state / "x").write_bytes(b"state")
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")

    assert read_notes(tmp_path) == {"a.txt": b"a", "sub/b.txt": b"b"}
    assert read_notes(tmp_path, skip_hidden=False) == {
        "a.txt": b"a",
        ".hidden": b"h",
        "sub/b.txt": b"b",
    }


def test_normalise_text() -> None:
    assert peers.normalise_text(b"one\r\ntwo\r\n\r\n\n") == b"one\ntwo"
    assert peers.normalise_text(b"one\ntwo") == b"one\ntwo"
    assert peers.normalise_text(b"\r\n") == b""
    assert peers.normalise_text(b"keeps  trailing spaces  \n") == b"keeps  trailing spaces  "


def test_shared_folder_holds_the_peer_scripts() -> None:
    for script in ("install-pysyncml", "start-syncevolution-server", "stop-syncevolution-server"):
        assert os.access(peers.SHARED / "peers" / script, os.X_OK), script


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_git_config_is_hermetic(hermetic_git_env: Path, tmp_path: Path) -> None:
    assert not [k for k in os.environ if k.startswith("GIT_") and k != "GIT_CONFIG_NOSYSTEM"]
    assert Path.home() == hermetic_git_env
    config = pygit2.Config.get_global_config()
    assert config["user.name"] == "Test"
    assert config["user.email"] == "test@example.invalid"
    repo = pygit2.init_repository(str(tmp_path / "repo"))
    assert repo.default_signature.name == "Test"
    assert repo.lookup_reference("HEAD").target == "refs/heads/main"  # init.defaultBranch


# ------------------------------------------------------------------------------------------ pysyncml


def test_pysyncml_client_server_round_trip(tmp_path: Path) -> None:
    client_dir, server_dir = tmp_path / "client", tmp_path / "server"
    write_notes(client_dir, NOTES)

    with peers.PysyncmlServer(server_dir) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/"
        first = peers.run_pysyncml_client(client_dir, url=server.url, devid="harness-client-1")
        assert first.returncode == 0, _summary(first) + "\nserver:\n" + server.output()
        assert read_notes(server_dir) == NOTES
        assert (client_dir / ".sync").is_dir()  # pysyncml's state, which read_notes leaves out

        (server_dir / "beta.txt").write_bytes(b"Beta note, edited on the server\n")
        second = peers.run_pysyncml_client(client_dir)  # URL and device id remembered in .sync
        assert second.returncode == 0, _summary(second) + "\nserver:\n" + server.output()

    expected = {**NOTES, "beta.txt": b"Beta note, edited on the server\n"}
    assert read_notes(client_dir) == expected
    assert read_notes(server_dir) == expected
    assert server.returncode is not None  # stopped and reaped
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)


def test_pysyncml_client_local_listing_does_not_contact_a_server(tmp_path: Path) -> None:
    folder = tmp_path / "client"
    write_notes(folder, {"one.txt": b"one\n"})
    url = f"http://127.0.0.1:{free_port()}/"  # nobody listens there
    res = peers.run_pysyncml_client(folder, url=url, devid="harness-local", local=True, timeout=60)
    assert res.returncode == 0, _summary(res)


def test_pysyncml_client_run_is_killed_at_timeout(tmp_path: Path) -> None:
    with pytest.raises(peers.PeerError, match="killed after"):
        peers.run_pysyncml_client(tmp_path / "c", url="http://127.0.0.1:9/", devid="t", timeout=0.01)


def test_pysyncml_client_check_reports_the_failure(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # connection refused
    with pytest.raises(peers.PeerError, match="pysyncml client failed"):
        peers.run_pysyncml_client(tmp_path / "c", url=url, devid="harness-refused", check=True)


def test_pysyncml_server_that_cannot_start_fails_with_its_output(tmp_path: Path) -> None:
    with peers.PysyncmlServer(tmp_path / "first") as first:
        server = peers.PysyncmlServer(tmp_path / "second", port=first.port)
        try:
            with pytest.raises(peers.PeerError, match="exited during start") as info:
                server.start()
        finally:
            server.stop()
        assert "Address already in use" in str(info.value)
        assert server.returncode is not None


# -------------------------------------------------------------------------------------- SyncEvolution


def test_syncevolution_server_starts_answers_and_stops(tmp_path: Path) -> None:
    sevo = peers.SyncEvolutionServer(tmp_path / "sevo")
    with sevo:
        assert sevo.url == f"http://127.0.0.1:{sevo.port}/syncevolution"
        assert sevo.datastore_uri == "memo"
        assert sevo.notes_dir == (tmp_path / "sevo" / "notes").resolve()
        assert sevo.notes_dir.is_dir()
        assert sevo.capture_dir is not None and sevo.capture_dir.is_dir()
        assert len(sevo.pids) == 3
        with urllib.request.urlopen(sevo.url, timeout=10) as reply:
            assert reply.status == 200
            assert b"SyncEvolution" in reply.read()
        pids = sevo.pids

    with pytest.raises(OSError):
        urllib.request.urlopen(sevo.url, timeout=2)
    for pid in pids:  # gone, or a zombie waiting for init (empty cmdline)
        try:
            assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"", pid
        except FileNotFoundError:
            pass
