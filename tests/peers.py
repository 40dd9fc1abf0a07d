"""Real SyncML peers for interop tests: pysyncml 0.2.0 ``sync-notes`` and a SyncEvolution server.

Both peers live outside the repository, in the shared folder beside the clone (``../shared/peers``, see
its README.md; ``tests/shared.py`` finds it).  Tests reach them over HTTP on 127.0.0.1, and no process is
left behind: servers are context managers that always stop (and, for pysyncml, reap) what they started.

    launcher = peers.pysyncml_launcher()          # skips the test when there is no Python 2.7
    with peers.PysyncmlServer(tmp_path / "server") as server:
        res = peers.run_pysyncml_client(tmp_path / "client", url=server.url, devid="dev-1", check=True)

    with peers.SyncEvolutionServer(tmp_path / "sevo") as sevo:
        ...                                     # sevo.url, sevo.datastore_uri, sevo.notes_dir

Facts about the peers that tests must respect are in ``../shared/peers/README.md``; the harness only
enforces the ones that would otherwise hang a test (a password prompt on a closed stdin).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from tests.helpers import LOCALHOST, free_port, read_notes, shared_path, wait_settled  # noqa: F401  (older imports)

REPO_ROOT = Path(__file__).resolve().parent.parent

# The environment as it was when the test session started, before tests/conftest.py points HOME at a
# temporary folder: the pysyncml installer keeps its cache under the real ~/.cache.
_SESSION_ENV: dict[str, str] = dict(os.environ)

PYSYNCML_MODES = ("sync", "full", "pull", "push", "pull-over", "push-over")
PYSYNCML_POLICIES = ("error", "client-wins", "server-wins")

# First start of SyncEvolution may apt-get install its packages (about 15 s here, minutes on a cold mirror).
SEVO_START_TIMEOUT = 900.0
PYSYNCML_INSTALL_TIMEOUT = 1800.0


class PeerError(RuntimeError):
    """A peer could not be installed, started, run or stopped."""


#: The shared folder (tests/shared.py finds it); a missing peer fails loudly when used.
SHARED: Path = shared_path()


def _script(name: str) -> Path:
    path = SHARED / "peers" / name
    if not path.is_file():
        raise PeerError(f"{path} not found: set GITSYNC_SHARED to the shared folder (the one holding peers/)")
    return path


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _describe(cmd: Sequence[str], rc: int | None, stdout: str, stderr: str) -> str:
    return (
        f"$ {shlex.join(cmd)}\nexit status: {rc}\n"
        f"--- stdout (tail) ---\n{_tail(stdout)}\n--- stderr (tail) ---\n{_tail(stderr)}"
    )


def _describe_result(res: subprocess.CompletedProcess[str]) -> str:
    return _describe(res.args, res.returncode, res.stdout, res.stderr)


def _as_text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=0.5):
            return True
    except OSError:
        return False


_HAVE_PROC_NET = Path("/proc/self/net/tcp").is_file()


def _listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening TCP socket on ``port``.

    A bare connect cannot tell our server from whatever else holds the port.  Without Linux /proc this
    answers True and the connect check stands alone.
    """
    if not _HAVE_PROC_NET:
        return True
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
        tables = [Path(f"/proc/{pid}/net/{name}").read_text() for name in ("tcp", "tcp6")]
    except FileNotFoundError:
        return False  # the process is gone
    except PermissionError:
        return True
    owned = set()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            owned.add(link[len("socket:[") : -1])
    for table in tables:
        for row in table.splitlines()[1:]:
            fields = row.split()  # sl local_address rem_address st ... inode
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in owned:  # 0A = LISTEN
                return True
    return False


# ------------------------------------------------------------------------------------------ pysyncml

_launcher: Path | None = None
_launcher_skip: str | None = None
_launcher_error: str | None = None


def pysyncml_launcher() -> Path:
    """Path of pysyncml's ``sync-notes`` launcher, installing it on first use (once per test session).

    Skips the calling test only when the installer says there is no Python 2.7 (exit status 3); any other
    failure raises PeerError, because a broken installation must fail the run, not hide it.
    """
    global _launcher, _launcher_skip, _launcher_error
    if _launcher is not None:
        return _launcher
    if _launcher_skip is not None:
        pytest.skip(_launcher_skip)
    if _launcher_error is not None:
        raise PeerError(_launcher_error)
    cmd = [str(_script("install-pysyncml"))]
    try:
        res = subprocess.run(
            cmd,
            env=_SESSION_ENV,  # the real HOME: the installation is cached in ~/.cache/pysyncml-peer
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PYSYNCML_INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired as ex:
        _launcher_error = "install-pysyncml timed out\n" + _describe(
            cmd, None, _as_text(ex.stdout), _as_text(ex.stderr)
        )
        raise PeerError(_launcher_error) from None
    if res.returncode == 3:
        _launcher_skip = f"no Python 2.7 for the pysyncml peer ({res.stderr.strip() or 'exit status 3'})"
        pytest.skip(_launcher_skip)
    lines = res.stdout.strip().splitlines()
    path = Path(lines[-1]) if res.returncode == 0 and lines else None
    if path is None or not (path.is_file() and os.access(path, os.X_OK)):
        _launcher_error = "install-pysyncml failed\n" + _describe_result(res)
        raise PeerError(_launcher_error)
    _launcher = path
    return path


def _pysyncml_env() -> dict[str, str]:
    """The test's environment without PYTHON* settings meant for Python 3 (they would reach Python 2.7)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _credential_args(username: str | None, password: str | None) -> list[str]:
    if username is None:
        if password is not None:
            raise ValueError("password without username")
        return []
    if password is None:
        # sync-notes would prompt for it (getpass / raw_input) and die on the closed stdin
        raise ValueError("sync-notes needs a password with a username (it would prompt for it)")
    return ["--username", username, "--password", password]


class PysyncmlServer:
    """``sync-notes --server --listen PORT DIR`` as a context manager.

    ``dir`` is created if missing (the server needs it).  Every file in it is a note and the server
    rescans the whole folder on every request, so tests may edit it between client sessions.  The server
    binds all interfaces (sync-notes has no bind option); tests reach it at ``.url`` on 127.0.0.1.
    Its stdout and stderr go to a log file: ``output()`` reads it, also after ``stop()``.
    """

    def __init__(
        self,
        dir: Path,
        *,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        policy: str | None = None,
        verbose: int = 0,
        extra: Sequence[str] = (),
        start_timeout: float = 20.0,
    ) -> None:
        if policy is not None and policy not in PYSYNCML_POLICIES:
            raise ValueError(f"policy must be one of {PYSYNCML_POLICIES}, not {policy!r}")
        self.dir = Path(dir).resolve()
        self._fixed_port = port
        self.port = port or 0
        self._options = _credential_args(username, password)
        if policy is not None:
            self._options += ["--policy", policy]
        self._options += ["-v"] * verbose
        self._options += list(extra)
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._output = ""

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/"

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def output(self) -> str:
        """What the server has written to stdout and stderr so far."""
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self._output = self.log_path.read_bytes().decode("utf-8", "replace")
        return self._output

    def command(self) -> list[str]:
        launcher = str(pysyncml_launcher())
        return [launcher, "--server", "--listen", str(self.port), *self._options, str(self.dir)]

    def start(self) -> Self:
        if self.process is not None and self.process.returncode is None:
            raise PeerError("server already started")
        self.dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(1, attempts + 1):
            self.port = self._fixed_port or free_port()
            try:
                self._spawn_and_wait()
                return self
            except BaseException:
                in_use = "Address already in use" in self.output()
                self.stop()
                if not in_use or attempt == attempts:
                    raise
        return self

    def _spawn_and_wait(self) -> None:
        cmd = self.command()
        fd, name = tempfile.mkstemp(prefix=f"pysyncml-server-{self.port}-", suffix=".log")
        self.log_path = Path(name)
        try:
            self.process = subprocess.Popen(
                cmd,
                cwd=self.dir,
                env=_pysyncml_env(),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # no terminal: Ctrl-C of pytest does not reach it, no tty prompts
            )
        finally:
            os.close(fd)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise PeerError(
                    "pysyncml server exited during start\n"
                    + _describe(cmd, self.process.returncode, "", self.output())
                )
            if _listens_on(self.process.pid, self.port) and _port_open(self.port):
                return
            if time.monotonic() > deadline:
                raise PeerError(
                    f"pysyncml server did not accept connections on {LOCALHOST}:{self.port} "
                    f"within {self.start_timeout:g} s\n" + _describe(cmd, None, "", self.output())
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (sync-notes ignores SIGINT), SIGKILL after 5 s; always reaps the process."""
        proc = self.process
        if proc is not None and proc.returncode is None:
            try:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            finally:
                proc.wait()
        if self.log_path is not None:
            self.output()
            with contextlib.suppress(OSError):
                self.log_path.unlink()
            self.log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_pysyncml_client(
    dir: Path,
    *,
    url: str | None = None,
    devid: str | None = None,
    mode: str | None = None,
    username: str | None = None,
    password: str | None = None,
    no_filename_sync: bool = False,
    local: bool = False,
    describe: bool = False,
    quiet: bool = False,
    verbose: int = 0,
    extra: Sequence[str] = (),
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Runs one ``sync-notes`` client session on ``dir`` (created if missing) and captures its output.

    ``url`` (``--remote``) and ``devid`` (``--id``) are needed on the first sync of a folder; later runs
    reuse what ``dir/.sync`` remembers.  Always pass ``devid`` on a first sync: the default id is derived
    from the MAC address and the current second, so two folders set up in one second collide.
    ``mode`` is one of PYSYNCML_MODES (default "sync").  ``local`` (-l) lists pending local changes and
    ``describe`` (-d) prints the configuration; neither contacts the server.  Non-ASCII note names or text
    crash this client (see the peers README).  A run past ``timeout`` is killed and raises PeerError;
    ``check=True`` raises PeerError with the output on a non-zero exit status.
    """
    if mode is not None and mode not in PYSYNCML_MODES:
        raise ValueError(f"mode must be one of {PYSYNCML_MODES}, not {mode!r}")
    dir = Path(dir).resolve()
    dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(pysyncml_launcher())]
    if url is not None:
        cmd += ["--remote", url]
    if devid is not None:
        cmd += ["--id", devid]
    if mode is not None:
        cmd += ["--mode", mode]
    cmd += _credential_args(username, password)
    if no_filename_sync:
        cmd.append("--no-filename-sync")
    if local:
        cmd.append("--local")
    if describe:
        cmd.append("--describe")
    if quiet:
        cmd.append("--quiet")
    cmd += ["-v"] * verbose
    cmd += [*extra, str(dir)]
    try:
        res = subprocess.run(
            cmd,
            cwd=dir,
            env=_pysyncml_env(),
            stdin=subprocess.DEVNULL,  # without --remote on an unconfigured folder it would prompt
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as ex:
        raise PeerError(
            f"pysyncml client killed after {timeout:g} s\n"
            + _describe(cmd, None, _as_text(ex.stdout), _as_text(ex.stderr))
        ) from None
    if check and res.returncode != 0:
        raise PeerError("pysyncml client failed\n" + _describe_result(res))
    return res


# --------------------------------------------------------------------------------------- SyncEvolution

_APT_FAILURE = re.compile(r"apt-get install .* failed")
_SEVO_LOCK = Path(tempfile.gettempdir()) / "gitsync-tests-syncevolution-start.lock"


@contextlib.contextmanager
def _start_lock() -> Iterator[None]:
    """Serialises start-syncevolution-server calls: two first starts would fight over the apt lock."""
    with open(_SEVO_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _parse_assignments(stdout: str) -> dict[str, str]:
    """The ``KEY=value`` / ``KEY="value"`` lines that start-syncevolution-server prints last."""
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"([A-Z_]+)=(.*)", line.strip())
        if m:
            raw = m.group(2)
            values[m.group(1)] = shlex.split(raw)[0] if raw.startswith('"') else raw
    return values


class SyncEvolutionServer:
    """SyncEvolution 2.0 SyncML server (start-/stop-syncevolution-server) as a context manager.

    All its state lives under ``base`` (created if missing; a later start on the same base reuses the
    notes and the registered devices).  After start: ``url`` (POST endpoint, ``http://127.0.0.1:PORT/
    syncevolution`` by default), ``datastore_uri`` (the ``<Target><LocURI>`` to alert, "memo"),
    ``notes_dir`` (one file per note named 0, 1, ...; CRLF line ends, compare with normalise_text),
    ``log_dir``, ``capture_dir`` (every message body, ``NNNN-in.xml`` / ``NNNN-out.xml`` + ``.meta``; None
    with ``capture=False``) and ``pids``.  The first start may apt-get install its packages, hence the long
    default ``start_timeout``; the test is skipped only if the script reports that they cannot be
    installed.  ``username``/``password`` make it require credentials (basic or MD5).  It runs one session
    at a time; an abandoned session blocks others for ``retry_duration`` seconds (default 30).
    """

    def __init__(
        self,
        base: Path,
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        datastore: str | None = None,
        url_path: str | None = None,
        retry_duration: int | None = None,
        debug: bool = False,
        capture: bool = True,
        start_timeout: float = SEVO_START_TIMEOUT,
    ) -> None:
        self.base = Path(base).resolve()
        self._fixed_port = port
        self.port = port or 0
        settings: dict[str, str | None] = {
            "SEVO_USERNAME": username,
            "SEVO_PASSWORD": password,
            "SEVO_DATASTORE": datastore,
            "SEVO_PATH": url_path,
            "SEVO_RETRY_DURATION": None if retry_duration is None else str(retry_duration),
            "SEVO_DEBUG": "1" if debug else None,
            "SEVO_CAPTURE": None if capture else "0",
        }
        self._settings = {k: v for k, v in settings.items() if v is not None}
        self.start_timeout = start_timeout
        self.url = ""
        self.datastore_uri = ""
        self.notes_dir = self.base / "notes"
        self.log_dir = self.base / "log"
        self.capture_dir: Path | None = None
        self.pids: tuple[int, ...] = ()
        self.start_output = ""
        self.start_seconds = 0.0
        self._running = False

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEVO_")}
        env.update(self._settings)
        return env

    def start(self) -> Self:
        if self._running:
            raise PeerError("SyncEvolution server already started")
        res = self._start_on_some_port()
        self._running = True  # processes exist from here on: stop() must run whatever happens next
        try:
            values = _parse_assignments(res.stdout)
            self.url = values["URL"]
            self.datastore_uri = values["DATASTORE_URI"]
            self.notes_dir = Path(values["NOTES_DIR"])
            self.log_dir = Path(values["LOG_DIR"])
            self.capture_dir = Path(values["CAPTURE_DIR"]) if values.get("CAPTURE_DIR") else None
            self.pids = tuple(int(p) for p in values["PIDS"].split())
        except (KeyError, ValueError) as ex:
            self.stop()
            raise PeerError(
                f"cannot parse the output of start-syncevolution-server ({ex!r})\n" + _describe_result(res)
            ) from None
        return self

    def _start_on_some_port(self) -> subprocess.CompletedProcess[str]:
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(1, attempts + 1):
            self.port = self._fixed_port or free_port()
            with _start_lock():
                res = self._run_start_script()
            if res.returncode == 0:
                return res
            apt = _APT_FAILURE.search(res.stderr)
            if apt:
                pytest.skip(f"SyncEvolution packages cannot be installed here ({apt.group(0)})")
            if "already in use" not in res.stderr or attempt == attempts:
                break
        raise PeerError("start-syncevolution-server failed\n" + _describe_result(res))

    def _run_start_script(self) -> subprocess.CompletedProcess[str]:
        cmd = [str(_script("start-syncevolution-server")), str(self.base), str(self.port)]
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: a timeout kills the script and apt-get
        )
        try:
            out, err = proc.communicate(timeout=self.start_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            self._stop_script()  # daemons it started are in their own sessions
            raise PeerError(
                f"start-syncevolution-server did not finish within {self.start_timeout:g} s\n"
                + _describe(cmd, None, out, err)
            ) from None
        finally:
            self.start_seconds = time.monotonic() - t0
        self.start_output = out + err
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def _stop_script(self) -> subprocess.CompletedProcess[str]:
        cmd = [str(_script("stop-syncevolution-server")), str(self.base)]
        try:
            return subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=120,
            )
        except subprocess.TimeoutExpired as ex:
            raise PeerError(
                "stop-syncevolution-server hung\n" + _describe(cmd, None, "", _as_text(ex.stderr))
            ) from None

    def stop(self) -> None:
        """Stops the front end, syncevo-dbus-server and its private dbus-daemon; the data stays in base."""
        if not self._running:
            return
        self._running = False
        res = self._stop_script()
        if res.returncode != 0:
            raise PeerError("stop-syncevolution-server failed\n" + _describe_result(res))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


SEVO_CLIENT_MODES = (
    "two-way",
    "slow",
    "refresh-from-server",
    "refresh-from-client",
    "one-way-from-server",
    "one-way-from-client",
)


class SyncEvolutionClient:
    """The SyncEvolution 2.0 command-line client (start-/sync-/stop-syncevolution-client) for one state dir.

    ``configure()`` (re)writes its configuration (and installs its packages on first use; the test is
    skipped only if they cannot be installed); ``sync(mode)`` runs one session to completion;
    ``begin(mode)`` starts one in the background and ``stop()`` ends it (SIGTERM, as its script does).
    Its notes are files in ``notes_dir`` (received ones named 1, 2, ...; CRLF line ends: compare with
    ``normalise_text``).  Knobs are the start script's SEVO_CLIENT_* settings.
    """

    def __init__(
        self,
        state: Path,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        auth: str = "basic",
        wbxml: bool = True,
        syncml: str = "1.2",
        max_msg_size: int | None = None,
        loglevel: int | None = None,
        uri: str | None = None,
        device_id: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.state = Path(state).resolve()
        self.url = url
        settings: dict[str, str | None] = {
            "SEVO_CLIENT_USERNAME": username,
            "SEVO_CLIENT_PASSWORD": password,
            "SEVO_CLIENT_AUTH": auth,
            "SEVO_CLIENT_WBXML": "1" if wbxml else "0",
            "SEVO_CLIENT_SYNCML": syncml,
            "SEVO_CLIENT_MAXMSGSIZE": None if max_msg_size is None else str(max_msg_size),
            "SEVO_CLIENT_LOGLEVEL": None if loglevel is None else str(loglevel),
            "SEVO_CLIENT_URI": uri,
            "SEVO_CLIENT_DEVICE_ID": device_id,
        }
        self.settings = {k: v for k, v in settings.items() if v is not None}
        self.timeout = timeout
        self.notes_dir = self.state / "notes"
        self.device_id = ""
        self.process: subprocess.Popen[str] | None = None

    def _env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEVO_")}
        env.update(self.settings)
        env["SEVO_CLIENT_TIMEOUT"] = str(int(self.timeout))
        env.update(extra)
        return env

    def configure(self, **changes: str) -> Self:
        """Run start-syncevolution-client (again): ``changes`` are SEVO_CLIENT_* settings to change."""
        self.settings.update(changes)
        cmd = [str(_script("start-syncevolution-client")), str(self.state), self.url]
        with _start_lock():
            res = subprocess.run(cmd, env=self._env(), stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, errors="replace", timeout=SEVO_START_TIMEOUT)
        if res.returncode != 0:
            apt = _APT_FAILURE.search(res.stderr)
            if apt:
                pytest.skip(f"SyncEvolution packages cannot be installed here ({apt.group(0)})")
            raise PeerError("start-syncevolution-client failed\n" + _describe_result(res))
        values = _parse_assignments(res.stdout)
        self.notes_dir = Path(values["NOTES_DIR"])
        self.device_id = values["DEVICE_ID"]
        return self

    def sync(self, mode: str = "two-way", *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One session to completion; ``check`` raises PeerError on a non-zero exit status."""
        self.begin(mode)
        assert self.process is not None
        out, _ = self.process.communicate()
        res = subprocess.CompletedProcess(self.process.args, self.process.returncode, out, "")
        self.process = None
        if check and res.returncode != 0:
            raise PeerError("SyncEvolution client failed\n" + _describe_result(res))
        return res

    def begin(self, mode: str = "two-way") -> subprocess.Popen[str]:
        """Start a session in the background (``stop()`` or ``wait()`` ends it)."""
        if mode not in SEVO_CLIENT_MODES:
            raise ValueError(f"mode must be one of {SEVO_CLIENT_MODES}, not {mode!r}")
        cmd = [str(_script("sync-syncevolution-client")), str(self.state), mode]
        self.process = subprocess.Popen(cmd, env=self._env(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        errors="replace")
        return self.process

    def wait(self, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """The background session's result."""
        assert self.process is not None
        out, _ = self.process.communicate(timeout=timeout)
        res = subprocess.CompletedProcess(self.process.args, self.process.returncode, out, "")
        self.process = None
        return res

    def stop(self, *, reap: bool = True) -> None:
        """stop-syncevolution-client: ends a running session (SIGTERM, then SIGKILL); ``reap``: and
        waits for it (leave that to ``wait()`` when another thread waits already)."""
        subprocess.run([str(_script("stop-syncevolution-client")), str(self.state)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
        if reap and self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.communicate(timeout=10)
            if self.process.poll() is None:
                self.process.kill()
                self.process.communicate()
            self.process = None

    def kill(self, *, reap: bool = True) -> None:
        """SIGKILL the running session's syncevolution process (no chance to save anything); ``reap``
        as for ``stop``."""
        pid_file = self.state / "run" / "sync.pid"
        with contextlib.suppress(OSError, ValueError):
            parent = int(pid_file.read_text())
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == parent:  # a child of `timeout`: syncevolution itself
                        os.kill(int(stat.parent.name), signal.SIGKILL)
        if reap and self.process is not None:
            self.process.communicate(timeout=30)
            self.process = None

    def notes(self) -> dict[str, bytes]:
        """The client's notes, text normalised (CRLF, trailing line breaks)."""
        return normalise_notes(read_notes(self.notes_dir))

    def write(self, name: str, text: bytes) -> None:
        """Create or edit a note as a user of the device would (CRLF; a modification time it notices)."""
        path = self.notes_dir / name
        old = path.stat().st_mtime_ns if path.exists() else 0
        path.write_bytes(text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        stamp = max(path.stat().st_mtime_ns, old + 2_000_000_000)
        os.utime(path, ns=(stamp, stamp))

    def file_of(self, start: bytes) -> str:
        """The name of the one note whose text starts with ``start``."""
        names = [n for n, b in self.notes().items() if b.startswith(start)]
        if len(names) != 1:
            raise AssertionError(f"{len(names)} notes start with {start!r}: {names}")
        return names[0]


# ------------------------------------------------------------------------------------------- notes

def normalise_text(b: bytes) -> bytes:
    """CRLF to LF, then no trailing line ends or blank lines: compares note text across peers
    (SyncEvolution stores CRLF and adds a line break per round trip)."""
    return b.replace(b"\r\n", b"\n").rstrip(b"\n")


def normalise_notes(notes: Mapping[str, bytes]) -> dict[str, bytes]:
    """``normalise_text`` applied to every value of a ``read_notes`` result."""
    return {name: normalise_text(body) for name, body in notes.items()}


# ----------------------------------------------------------------------------- our own program
def gitsync_command() -> list[str]:
    """The installed console script (falls back to ``python -m gitsync.cli`` when not on PATH)."""
    import shutil
    import sys

    exe = shutil.which("gitsync-notes")
    return [exe] if exe else [sys.executable, "-m", "gitsync.cli"]


def run_gitsync(*args: str | os.PathLike[str], timeout: float = 120, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``gitsync-notes ARGS`` as a user would; raise PeerError on failure when ``check``."""
    cmd = [*gitsync_command(), *map(str, args)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                             stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"timed out: {shlex.join(cmd)}\n{_as_text(exc.stderr)}") from exc
    if check and res.returncode != 0:
        raise PeerError(_describe_result(res))
    return res


class GitsyncServer:
    """``gitsync-notes serve DIR`` on a free port of 127.0.0.1, stopped (SIGTERM) on exit."""

    def __init__(self, dir: Path, *, extra: Sequence[str] = ()) -> None:
        self.dir = dir
        self.extra = list(extra)
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the server

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/"

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def __enter__(self) -> Self:
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [*gitsync_command(), "serve", str(self.dir), "--listen", str(self.port), *self.extra]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                        text=True)
        deadline = time.monotonic() + 20
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise PeerError(f"gitsync-notes serve did not start:\n{self.output()}")
            time.sleep(0.05)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def unflatten(notes: Mapping[str, bytes]) -> dict[str, bytes]:
    """pysyncml keeps no sub-folders: gitsync sends ``a/b.txt`` to it as ``a%2Fb.txt``."""
    return {k.replace("%2F", "/").replace("%25", "%"): v for k, v in notes.items()}
