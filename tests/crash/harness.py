"""kill -9 trials: one gitsync client folder and one gitsync server folder, a sync killed at a seeded point.

A trial (see :func:`run_trial`):

1. a client folder syncs with a server folder (both real Git repositories), then both sides get seeded
   random, disjoint changes (adds, edits, deletes, renames, sub-folders, non-ASCII names), so the
   result of a correct sync is known exactly;
2. one side runs as a real ``gitsync-notes`` process with ``GITSYNC_CRASH_AT=<point>:<n>`` (see
   :mod:`gitsync.app.faults`) and dies by SIGKILL there, or is killed after a seeded delay;
3. the client syncs again (the server restarted on the same port when it was the one killed);
4. checks: both folders hold exactly the expected notes (nothing lost, nothing duplicated, nothing
   resurrected), ``git fsck`` is clean, nothing is left uncommitted, no journal ref or lock file is
   left, and one more sync finds nothing to do.

Used by tests/crash (a fast seeded subset) and benchmarks/soak_crash.py (100+ trials and a table).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.faults import APP_POINTS, ENV
from gitsync.app.server import SyncServer
from gitsync.store.git import CRASH_POINTS, STALE_GITSYNC_LOCK_SECONDS, GitStore
from gitsync.sync.report import SyncReport
from gitsync.transport.http import HttpTransport
from gitsync.transport.serve import make_http_server
from tests import helpers
from tests.helpers import LOCALHOST, free_port, serve_in_thread, wait_settled, write_notes

__all__ = [
    "CLIENT_POINTS",
    "SERVER_POINTS",
    "Outcome",
    "Trial",
    "check_repo",
    "plan_trials",
    "run_trial",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = LOCALHOST
DEVICE = "crash-dev"
PEER = "srv"
#: Messages the client sends in one gitsync <-> gitsync session (packages 1, 3, 5).
MESSAGES = 3
CLIENT_POINTS: tuple[tuple[str, int], ...] = (
    *((p, n) for p in ("client-send", "client-recv") for n in range(1, MESSAGES + 1)),
    ("client-finish", 1),
    *((p, 1) for p in CRASH_POINTS),
)
SERVER_POINTS: tuple[tuple[str, int], ...] = (
    *((p, n) for p in ("server-recv", "server-reply") for n in range(1, MESSAGES + 1)),
    ("server-finish", 1),
    *(("server-answered", n) for n in (1, 2)),  # after the changes we sent; after the commit
    *((p, 1) for p in CRASH_POINTS),
)
assert {p for p, _ in CLIENT_POINTS + SERVER_POINTS} <= set(APP_POINTS) | set(CRASH_POINTS)


@dataclass(frozen=True, slots=True)
class Trial:
    """Which side dies where: ``point`` is a crash point, or ``"delay"`` with ``nth`` milliseconds."""

    seed: int
    side: str  # "client" | "server"
    point: str
    nth: int

    @property
    def label(self) -> str:
        where = f"after {self.nth} ms" if self.point == "delay" else f"{self.point}:{self.nth}"
        return f"seed {self.seed} {self.side} {where}"


@dataclass(slots=True)
class Outcome:
    """What happened in a trial; ``problems`` empty means every check passed."""

    trial: Trial
    killed: bool = False
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: int = 0
    #: the kill hit a libgit2 ref transaction on refs/gitsync/*: its lock file blocks a sync for
    #: STALE_GITSYNC_LOCK_SECONDS (the store's documented grace), which the trial waited out
    waited_for_lock: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def plan_trials(count: int, seed: int = 0, *, delays: bool = False) -> list[Trial]:
    """``count`` trials: sides alternate, points cycle through every (point, n) in a seeded order."""
    rng = random.Random(seed)
    client, server = list(CLIENT_POINTS), list(SERVER_POINTS)
    rng.shuffle(client)
    rng.shuffle(server)
    trials: list[Trial] = []
    for i in range(count):
        side = "client" if i % 2 == 0 else "server"
        points = client if side == "client" else server
        if delays and i % 4 >= 2:
            # a client process needs ~250 ms to start; a server session takes ~100 ms once it listens
            delay = rng.randrange(150, 450) if side == "client" else rng.randrange(0, 120)
            trials.append(Trial(seed + i, side, "delay", delay))
        else:
            point, nth = points[(i // 2) % len(points)]
            trials.append(Trial(seed + i, side, point, nth))
    return trials


# ---------------------------------------------------------------------------------- notes


def read_notes(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (hidden ones too) except ``.git`` and the top-level ``.gitattributes``."""
    notes = helpers.read_notes(root, skip_hidden=False)
    notes.pop(".gitattributes", None)
    return notes


_FOLDERS = ("", "", "", "work/", "ideas/", "\u00fcber/", "work/deep/")
_WORDS = ("alpha", "beta", "gamma", "delta", "eins", "zwei", "caf\u00e9", "\u65e5\u8a18", "todo", "plan")


def _body(rng: random.Random, title: str) -> bytes:
    lines = [title] + [
        " ".join(rng.choices(_WORDS, k=rng.randrange(1, 8))) for _ in range(rng.randrange(0, 6))
    ]
    text = "\n".join(lines) + "\n"
    return text.encode("utf-8")


def seeded_changes(
    rng: random.Random,
) -> tuple[dict[str, bytes], dict[str, bytes | None], dict[str, bytes | None], dict[str, bytes]]:
    """Base notes, client changes, server changes (disjoint) and the notes a correct sync ends with."""
    names = rng.sample(range(100), rng.randrange(6, 14))
    base = {f"{rng.choice(_FOLDERS)}note {n:02d}.txt": _body(rng, f"note {n}") for n in names}
    paths = sorted(base)
    rng.shuffle(paths)
    cut = len(paths) // 2
    mine, theirs = paths[:cut], paths[cut:]
    client: dict[str, bytes | None] = {}
    server: dict[str, bytes | None] = {}
    for side, own, tag in ((client, mine, "c"), (server, theirs, "s")):
        for path in own:
            what = rng.choice(("keep", "edit", "edit", "delete", "rename" if tag == "c" else "edit"))
            if what == "edit":
                side[path] = base[path] + f"edited on {tag}\n".encode()
            elif what == "delete":
                side[path] = None
            elif what == "rename":
                side[path] = None
                side[f"renamed/{Path(path).name}"] = base[path]
        for i in range(rng.randrange(0, 4)):
            new = f"{rng.choice(_FOLDERS)}new {tag}{i}.txt"
            side[new] = _body(rng, f"new {tag}{i} seed {rng.random():.6f}")
    expected = dict(base)
    for side in (client, server):
        for path, data in side.items():
            if data is None:
                expected.pop(path, None)
            else:
                expected[path] = data
    return base, client, server, expected


# ---------------------------------------------------------------------------------- processes


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a gitsync child: ours (already scrubbed by the caller), importable repo."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def gitsync_argv(*args: str) -> list[str]:
    """``gitsync-notes ARGS`` run by this interpreter (no console-script shim in between)."""
    return [
        sys.executable,
        "-c",
        "import sys; from gitsync.cli import main; sys.argv[0] = 'gitsync-notes'; main()",
        *args,
    ]


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> bool:
    """Wait until something accepts on ``port``; False if ``proc`` died first or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


@contextmanager
def thread_server(root: Path, port: int) -> Iterator[str]:
    """A gitsync server for ``root`` in this process, on ``port`` of 127.0.0.1; stopped on exit."""
    server = SyncServer(GitStore.open(root))
    try:
        with serve_in_thread(make_http_server(server.wsgi_app(), HOST, port)):
            yield f"http://{HOST}:{port}/notes"
    finally:
        server.close()  # what the last session left for after its answer


def client_sync(root: Path, url: str, *, timeout: float = 20.0) -> SyncReport:
    """One in-process sync of the client folder (the same identity the CLI child uses)."""
    transport = HttpTransport(timeout=timeout)
    try:
        opts = ClientOptions(url=url, device_id=DEVICE, name=PEER)
        return sync_client(GitStore.open(root), opts, transport)
    finally:
        transport.close()


def _kill_after(proc: subprocess.Popen[bytes], delay_ms: int) -> threading.Timer:
    def kill() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)

    timer = threading.Timer(delay_ms / 1000.0, kill)
    timer.start()
    return timer


def _crash_env(trial: Trial) -> dict[str, str]:
    return {} if trial.point == "delay" else {ENV: f"{trial.point}:{trial.nth}"}


def _crash_client(trial: Trial, client: Path, url: str, out: Outcome) -> None:
    """The client as a real process, killed at the trial's point."""
    argv = gitsync_argv(
        "sync", str(client), "--remote", url, "--id", DEVICE, "--peer", PEER, "-q", "--timeout", "20"
    )
    proc = subprocess.Popen(
        argv,
        env=child_env(_crash_env(trial)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    timer = _kill_after(proc, trial.nth) if trial.point == "delay" else None
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.exit_code = proc.returncode
    out.killed = proc.returncode == -signal.SIGKILL
    if not out.killed and proc.returncode != 0:
        out.problems.append(f"client exited {proc.returncode}: {output.decode(errors='replace')[-2000:]}")


def _crash_server(trial: Trial, server: Path, client: Path, port: int, out: Outcome) -> None:
    """The server as a real process, killed at the trial's point while the client syncs with it."""
    argv = gitsync_argv("serve", str(server), "--listen", str(port))
    log = open(server.parent / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        argv,
        env=child_env(_crash_env(trial)),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    timer: threading.Timer | None = None
    try:
        if not wait_port(port, proc):
            out.problems.append("the server process did not start")
            return
        if trial.point == "delay":
            timer = _kill_after(proc, trial.nth)
        try:
            client_sync(client, f"http://{HOST}:{port}/notes", timeout=10)
        except Exception as exc:  # the server died under the client: any clean error is fine
            if not isinstance(exc, _EXPECTED_CLIENT_ERRORS):
                out.problems.append(f"client failed uncleanly: {exc!r}\n{traceback.format_exc()}")
        if trial.point != "delay":
            # a point that is not reached: the sync finished, stop the server normally
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    out.exit_code = proc.returncode
    out.killed = proc.returncode == -signal.SIGKILL


def _expected_client_errors() -> tuple[type[BaseException], ...]:
    from gitsync.errors import GitsyncError

    return (GitsyncError,)


_EXPECTED_CLIENT_ERRORS = _expected_client_errors()


# ---------------------------------------------------------------------------------- checks


def check_repo(root: Path, label: str, *, committed: bool = True, allow: tuple[str, ...] = ()) -> list[str]:
    """fsck clean, nothing uncommitted (if ``committed``), no journal ref, no lock file left behind."""
    wait_settled(root)
    problems: list[str] = []
    env = child_env()
    fsck = subprocess.run(
        ["git", "-C", str(root), "fsck", "--full", "--no-dangling"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    bad = [
        ln
        for ln in (fsck.stdout + fsck.stderr).splitlines()
        if ln and not ln.startswith(("Checking", "notice"))
    ]
    if fsck.returncode != 0 or bad:
        problems.append(f"{label}: git fsck: {fsck.returncode} {bad[:5]}")
    status = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    ).stdout
    if committed and status.strip():
        problems.append(f"{label}: uncommitted files after the sync: {status.strip()[:300]}")
    refs = subprocess.run(
        ["git", "-C", str(root), "for-each-ref", "refs/gitsync/journal"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    ).stdout
    if refs.strip():
        problems.append(f"{label}: journal ref left: {refs.strip()}")
    locks = sorted(
        str(p.relative_to(root / ".git"))
        for p in (root / ".git").rglob("*.lock")
        if p.name != "gitsync.lock" and str(p.relative_to(root / ".git")) not in allow
    )
    if locks:
        problems.append(f"{label}: lock files left: {locks}")
    return problems


def _diff(label: str, got: Mapping[str, bytes], want: Mapping[str, bytes]) -> list[str]:
    if got == want:
        return []
    lost = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(p for p in set(got) & set(want) if got[p] != want[p])
    return [f"{label}: lost {lost} extra {extra} different {changed}"]


# ---------------------------------------------------------------------------------- a trial


def _own_ref_locks(root: Path) -> list[Path]:
    return sorted((root / ".git" / "refs" / "gitsync").rglob("*.lock"))


def _recover_and_check(
    client: Path, server: Path, url: str, expected: Mapping[str, bytes], out: Outcome
) -> None:
    try:
        client_sync(client, url)
    except Exception as exc:
        if not (_own_ref_locks(client) or _own_ref_locks(server)):
            out.problems.append(f"the sync after the crash failed: {exc!r}\n{traceback.format_exc()}")
            return
        out.waited_for_lock = True
        time.sleep(STALE_GITSYNC_LOCK_SECONDS + 0.2)
        try:
            client_sync(client, url)
        except Exception as exc2:
            out.problems.append(f"the sync after the lock's grace failed: {exc2!r}\n{traceback.format_exc()}")
            return
    out.problems += _diff("client", read_notes(client), expected)
    out.problems += _diff("server", read_notes(server), expected)
    # a CLI killed while remembering its settings leaves Git's config.lock: that must not stop a sync
    # ... and a ref transaction on refs/gitsync/* leaves its lock until a sync needs that ref again
    left = {
        root: tuple(str(p.relative_to(root / ".git")) for p in _own_ref_locks(root))
        for root in (client, server)
    }
    out.waited_for_lock |= any(left.values())
    out.problems += check_repo(client, "client", allow=("config.lock", *left[client]))
    out.problems += check_repo(server, "server", allow=left[server])
    report = client_sync(client, url)
    if report.local.total() or report.remote.total() or report.mode != "two-way":
        out.problems.append(f"the sync after that was not a no-op two-way sync: {report}")
    if (client / ".git" / "config.lock").exists():
        argv = gitsync_argv("sync", str(client), "--remote", url, "--id", DEVICE, "--peer", PEER, "-q")
        proc = subprocess.run(
            argv, env=child_env(), cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            out.problems.append(f"with a stale config.lock the CLI sync failed: {proc.stderr[-1000:]}")


def run_trial(trial: Trial, tmp: Path) -> Outcome:
    """Run one trial in the empty folder ``tmp``; never raises for a failed check (see ``problems``)."""
    started = time.monotonic()
    out = Outcome(trial)
    rng = random.Random(trial.seed)
    client, server = tmp / "client", tmp / "server"
    client.mkdir()
    server.mkdir()
    base, client_changes, server_changes, expected = seeded_changes(rng)
    out.notes = len(expected)
    port = free_port()
    try:
        write_notes(client, base)
        with thread_server(server, port) as url:
            client_sync(client, url)
            write_notes(client, client_changes)
            write_notes(server, server_changes)
            if trial.side == "client":
                # the same server (and its abandoned session) sees the retry
                _crash_client(trial, client, url, out)
                _recover_and_check(client, server, url, expected, out)
                return out
        _crash_server(trial, server, client, port, out)
        with thread_server(server, port) as url:
            _recover_and_check(client, server, url, expected, out)
    except Exception as exc:
        out.problems.append(f"trial error: {exc!r}\n{traceback.format_exc()}")
    finally:
        out.seconds = time.monotonic() - started
    return out
