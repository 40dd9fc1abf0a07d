"""The deployment of the README's "Running a server", taken from the README itself: the systemd
unit (checked with ``systemd-analyze verify`` and against ``serve --help``) and the nginx block
(run on 127.0.0.1 in front of ``serve --trusted-proxy``, a client syncing through it over HTTPS)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.helpers import write_notes
from tests.cli.helpers import cli
from tests.crash.harness import REPO_ROOT, child_env, free_port, gitsync_argv, wait_port
from tests.peers import read_notes
from tests.transport.certs import make_certs

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _block(lang: str, must: str) -> str:
    blocks = [textwrap_dedent(b) for b in re.findall(rf"```{lang}\n(.*?)```", README, re.S)]
    found = [b for b in blocks if must in b]
    assert len(found) == 1, f"one ```{lang} block with {must!r} in README.md"
    return found[0]


def textwrap_dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def test_systemd_unit_of_the_readme(tmp_path: Path) -> None:
    unit = _block("ini", "ExecStart=")
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M)
    assert exec_start is not None
    argv = shlex.split(exec_start.group(1))
    assert argv[0].endswith("/gitsync-notes") and argv[1] == "serve"
    help_text = cli("runner", "serve", "--help").out
    for opt in (a for a in argv if a.startswith("--")):
        assert opt in help_text, opt
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit's syntax is not checked")
    ours = shutil.which("gitsync-notes") or str(Path(sys.executable).parent / "gitsync-notes")
    local = unit.replace(argv[0], ours).replace("User=gitsync", "User=root").replace("Group=gitsync", "")
    path = tmp_path / "gitsync-notes.service"
    path.write_text(local)
    res = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (res.stdout + res.stderr).splitlines() if str(path) in ln]
    assert res.returncode == 0 and problems == [], res.stdout + res.stderr


def test_nginx_block_of_the_readme_in_front_of_serve(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    certs = make_certs(tmp_path / "certs")
    backend, front = free_port(), free_port()
    server = _block("nginx", "proxy_pass")
    server = server.replace("listen 443 ssl;", f"listen 127.0.0.1:{front} ssl;")
    server = server.replace("/etc/letsencrypt/live/notes.example.org/fullchain.pem", str(certs.good[0]))
    server = server.replace("/etc/letsencrypt/live/notes.example.org/privkey.pem", str(certs.good[1]))
    server = server.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{backend}")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n access_log {prefix}/access.log;\n client_body_temp_path {prefix}/body;\n"
        f" proxy_temp_path {prefix}/proxy;\n fastcgi_temp_path {prefix}/fcgi;\n"
        f" uwsgi_temp_path {prefix}/uwsgi;\n"
        f" scgi_temp_path {prefix}/scgi;\n{server}\n}}\n"
    )
    users = tmp_path / "users"
    res = cli("runner", "user", "add", users, "alice", "--password-stdin", input="pw of alice\n")
    assert res.code == 0, res.err
    root = tmp_path / "root"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            gitsync_argv("serve", str(root), "--per-user", "--users", str(users), "--listen", str(backend),
                         "--trusted-proxy", "127.0.0.1", "-v"),
            env=child_env(), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proxy = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_port(backend, None, timeout=30), log.read_text()
        assert wait_port(front, proxy, timeout=30), (prefix / "error.log").read_text()
        client = tmp_path / "client"
        write_notes(client, {"a.txt": b"through nginx\n"})
        url = f"https://127.0.0.1:{front}/notes"
        res = cli("script", "sync", client, "-r", url, "-u", "alice", "-i", "dev-ngx", "--ca-file", certs.ca,
                  env={"GITSYNC_PASSWORD": "pw of alice"})
        assert res.code == 0, res.err + log.read_text()
        write_notes(client, {"b.txt": b"second\n"})
        res = cli("script", "sync", client, env={"GITSYNC_PASSWORD": "pw of alice"})
        assert res.code == 0, res.err
        # the RespURIs stayed on https (the client refuses anything else) and on nginx's port
        assert read_notes(root / "alice") == {"a.txt": b"through nginx\n", "b.txt": b"second\n"}
        access = (prefix / "access.log").read_text()
        assert "/~alice/notes?sessionid=" in access, access
    finally:
        for proc in (proxy, serve):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
