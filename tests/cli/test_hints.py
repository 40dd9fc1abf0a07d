"""Errors end with what to try where that helps, in one style for every command (issue 18):
``gitsync-notes: WHAT (HINT try: gitsync-notes COMMAND --help)`` — usage errors and the others
alike; an error that already says what to do gets no extra hint.  Through the console script."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.cli.helpers import Result, cli, gitsync_server
from tests.helpers import LOCALHOST, free_port, write_notes

HOW = "script"


def _line(res: Result, code: int) -> str:
    assert res.code == code, (res.code, res.out, res.err)
    assert res.out == ""
    [line] = res.lines
    return line


def test_unreachable_server_ends_with_a_hint(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    url = f"http://{LOCALHOST}:{free_port()}/"
    assert _line(cli(HOW, "sync", client, "-r", url), 1) == (
        f"gitsync-notes: cannot reach {url}: connection refused "
        "(is the server running, and is the URL right? try: gitsync-notes sync --help)"
    )


def test_wrong_password_ends_with_a_hint(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with gitsync_server(tmp_path / "server", users={"alice": "right"}) as srv:
        res = cli(HOW, "sync", client, "-r", srv.url, "-u", "alice", "-p", "wrong")
    assert _line(res, 1) == (
        "gitsync-notes: the server rejected the credentials (status 401) "
        "(check the user name (-u) and the password. try: gitsync-notes sync --help)"
    )


def test_port_in_use_ends_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOCALHOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = cli(HOW, "serve", tmp_path / "srv", "--listen", str(port), "--host", LOCALHOST)
    assert _line(res, 2) == (
        f"gitsync-notes: cannot listen on {LOCALHOST}:{port}: Address already in use "
        "(is another server listening there? choose another --listen PORT. try: gitsync-notes serve --help)"
    )


def test_usage_errors_of_every_command_read_alike(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for args, words in (
        (("hook", "install", tmp_path / "no"), "does not exist (try: gitsync-notes hook install --help)"),
        (("status", plain), "is not a Git repository (try: gitsync-notes status --help)"),
        (("peer", "list", plain), "is not a Git repository (try: gitsync-notes peer list --help)"),
        (("sync", plain, "--timeout", "0"), "(try: gitsync-notes sync --help)"),
    ):
        line = _line(cli(HOW, *args), 2)
        assert line.startswith("gitsync-notes: ") and line.endswith(words), line
        assert "Invalid value" not in line and "Error:" not in line


def test_an_error_that_says_what_to_do_gets_no_extra_hint(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    line = _line(cli(HOW, "sync", client, "-r", f"http://{LOCALHOST}:9/", "-u", "alice"), 1)
    assert line == ("gitsync-notes: a password is needed for user 'alice' "
                    "(use --password or GITSYNC_PASSWORD)")
