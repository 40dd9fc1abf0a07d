"""Usage errors: every bad option or argument is one line ending with the command's --help hint,
exit 2, and nothing created or changed; a URL's user name and password are used, never stored."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.app.helpers import git, write_notes
from tests.cli.helpers import HOWS, Result, cli, gitsync_server, repo_snapshot

pytestmark = pytest.mark.parametrize("how", HOWS)


def _usage(res: Result, hint: str, *words: str) -> str:
    assert res.code == 2, (res.code, res.out, res.err)
    assert res.out == "" and "Traceback" not in res.err
    assert len(res.lines) == 1, res.err
    line = res.lines[0]
    expected = f"(try: gitsync-notes {hint + ' ' if hint else ''}--help)"
    assert line.startswith("gitsync-notes: ") and line.endswith(expected), line
    for word in words:
        assert word in line, (word, line)
    return line


BAD_SYNC_OPTIONS = [
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "-1"], "--timeout"),
    (["--timeout", "nan"], "--timeout"),
    (["--timeout", "soon"], "--timeout"),
    (["-r", "http://127.0.0.1:99999/"], "99999"),
    (["-r", "http://127.0.0.1:0/"], "port 0"),
    (["-r", "http://127.0.0.1:port/"], "port"),
    (["-r", "http:///notes"], "no host"),
    (["-r", "ftp://example.org/"], "http://"),
    (["-r", "http://exa mple.org/"], "spaces"),
    (["--max-msg-size", "10"], "--max-msg-size"),
    (["--mode", "sideways"], "--mode"),
    (["--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("args", "word"), BAD_SYNC_OPTIONS, ids=[" ".join(a) for a, _ in BAD_SYNC_OPTIONS])
def test_bad_sync_option(how: str, tmp_path: Path, args: list[str], word: str) -> None:
    folder = tmp_path / "notes"
    write_notes(folder, {"a.txt": b"a\n"})
    res = cli(how, "sync", folder, "-r", "http://127.0.0.1:9/", *args)
    _usage(res, "sync", word)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"]  # no repository was created


def test_bad_arguments_of_other_commands(how: str, tmp_path: Path) -> None:
    missing, file = tmp_path / "nope", tmp_path / "file.txt"
    file.write_bytes(b"x\n")
    for command, hint in ((["hook", "install"], "hook install"), (["hook", "uninstall"], "hook uninstall"),
                          (["status"], "status"), (["log"], "log")):
        _usage(cli(how, *command, missing), hint, f"notes folder {missing} does not exist")
        _usage(cli(how, *command, file), hint, f"notes folder {file} is not a folder")
    _usage(cli(how, "serve", file, "--listen", "0"), "serve", "is not a folder")
    _usage(cli(how, "serve", tmp_path, "--listen", "99999"), "serve", "--listen")
    _usage(cli(how, "log", tmp_path, "-n", "0"), "log", "--max-count")
    _usage(cli(how, "nonsense"), "", "nonsense")


def test_password_in_the_url_is_used_and_never_stored(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server", users={"alice": "s3cret-pw"}) as srv:
        url = srv.url.replace("http://", "http://alice:s3cret-pw@")
        res = cli(how, "sync", client, "-r", url, "-i", "dev-url")
        assert res.code == 0, res.err
        assert "s3cret-pw" not in res.out + res.err
        assert (tmp_path / "server" / "a.txt").read_bytes() == b"a\n"
        # the next sync uses the remembered URL and user name; the password is asked for again
        write_notes(client, {"b.txt": b"b\n"})
        res = cli(how, "sync", client, env={"GITSYNC_PASSWORD": "s3cret-pw"})
        assert res.code == 0, res.err
        assert (tmp_path / "server" / "b.txt").read_bytes() == b"b\n"
    everything = "".join(
        subprocess.run(["git", *args], cwd=client, capture_output=True, text=True, check=True).stdout
        for args in (["config", "--local", "--list"], ["for-each-ref"], ["log", "--all", "--format=%B"])
    )
    assert "s3cret-pw" not in everything
    assert "alice@" not in everything and "alice:" not in everything
    assert git(client, "config", "gitsync.username").strip() == "alice"
    assert git(client, "config", "gitsync.remote").strip() == srv.url


def test_user_in_the_url_and_another_username(how: str, tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    git(client, "init", "-q")
    before = repo_snapshot(client)
    res = cli(how, "sync", client, "-r", "http://alice:pw@127.0.0.1:9/", "-u", "bob")
    line = _usage(res, "sync", "'alice'", "'bob'")
    assert "pw" not in line
    assert repo_snapshot(client) == before
