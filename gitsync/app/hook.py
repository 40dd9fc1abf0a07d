"""The post-commit hook: installing it (chained with the user's own), and the runner it starts.

The hook script does no syncing itself.  It starts ``gitsync-notes hook run DIR`` detached
(``setsid``, stdin from /dev/null, stdout and stderr appended to ``.git/gitsync-hook.log``) and
exits 0 at once, so ``git commit`` is never blocked, slowed or failed by it, even when the server
hangs or ``gitsync-notes`` is missing (a child that kept git's stdout would make a caller that
captures the output wait for the whole sync).

Coalescing ("never two syncs at once"): every hook run first appends one byte to
``.git/gitsync-run-again`` and then tries ``.git/gitsync-hook.lock`` without waiting (the script
does both before starting Python, when ``flock(1)`` exists).  If another hook run holds it, this
one exits: the holder compares the file's size before and after each round and runs again when
it grew.  The size only grows (it is truncated, under the locks, before a round), so a commit made
at any moment during a round is seen.  After letting go, the holder looks once more and goes
again if a hook run gave up meanwhile.  Each round also holds the repository lock
(``.git/gitsync.lock``, taken by every sync), waiting for a sync started by hand; such a sync
honours the counter too (for its own peer) and syncs again when a commit came in during it.

Commits made by the sync itself never fire the hook: pygit2 does not run hooks, and the runner
exports ``GITSYNC_ACTIVE=1``, which the script checks, for anything it may start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from gitsync.atomic import atomic_write
from gitsync.errors import ConfigError, RepositoryStateError

if TYPE_CHECKING:
    from gitsync.store.git import GitStore

__all__ = [
    "CHAINED_NAME",
    "HOOK_MARKER",
    "HOOK_NAME",
    "LOG_NAME",
    "RUN_AGAIN_NAME",
    "STATUS_NAME",
    "HookState",
    "InstallResult",
    "PeerResult",
    "RunOutcome",
    "Wait",
    "forget_result",
    "hook_script",
    "hook_state",
    "install",
    "load_results",
    "log_path",
    "record_result",
    "request_run",
    "run_again_generation",
    "run_coalesced",
    "trim_log",
    "uninstall",
    "wait_until_safe",
]

logger = logging.getLogger(__name__)

HOOK_NAME = "post-commit"
CHAINED_NAME = "post-commit.pre-gitsync"  # the user's own hook, renamed, run first by ours
HOOK_MARKER = "# gitsync-notes post-commit hook"
LOG_NAME = "gitsync-hook.log"
RUN_AGAIN_NAME = "gitsync-run-again"
HOOK_LOCK_NAME = "gitsync-hook.lock"  # held by the one hook run that syncs (see run_coalesced)
LOCK_WAIT = 300.0  # a hook round waits this long for the repository lock
STATUS_NAME = "gitsync-status"
LOG_KEEP = 256 * 1024  # the log is cut back to its last 256 KiB when it passes 1 MiB
LOG_LIMIT = 1024 * 1024
MAX_ROUNDS = 5  # passes per hook run; a commit after that starts its own run
DEFAULT_COMMAND = "gitsync-notes"
_COMMAND_LINE = 'cmd="${GITSYNC_NOTES:-gitsync-notes}"'

# The script shipped as hooks/post-commit.  `install` writes it with the command line pointing at
# the gitsync-notes that installed it (a git GUI may not have the user's PATH).
_SCRIPT = f"""#!/bin/sh
{HOOK_MARKER} (installed by `gitsync-notes hook install`).
# Starts a sync of this folder in the background and returns at once: it never blocks, slows or
# fails `git commit` (exit status 0 whatever happens).  Output: .git/{LOG_NAME}
# Remove it with `gitsync-notes hook uninstall DIR`; a hook that was here before is kept as
# {CHAINED_NAME} and run first.
hookdir=$(dirname "$0")
if [ -x "$hookdir/{CHAINED_NAME}" ]; then
    "$hookdir/{CHAINED_NAME}" "$@" || :
fi
[ -n "$GITSYNC_ACTIVE" ] && exit 0   # a commit made by a sync: nothing to do
gitdir=$(git rev-parse --absolute-git-dir 2>/dev/null) || exit 0
top=$(pwd)   # git runs post-commit at the top of the work tree
log="$gitdir/{LOG_NAME}"
{_COMMAND_LINE}
if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "$(date '+%Y-%m-%d %H:%M:%S') hook: $cmd not found: no sync started" >>"$log" 2>/dev/null
    exit 0
fi
# count this commit first, then leave it to a sync that is already running (it runs again)
printf . >>"$gitdir/{RUN_AGAIN_NAME}" 2>/dev/null
if command -v flock >/dev/null 2>&1 && ! flock -n "$gitdir/{HOOK_LOCK_NAME}" true 2>/dev/null; then
    exit 0
fi
# what git exports to hooks must not reach the sync (GIT_DIR, GIT_INDEX_FILE... would redirect it)
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX GIT_AUTHOR_DATE GIT_COMMITTER_DATE \\
    GIT_EDITOR GIT_EXEC_PATH GIT_CONFIG_PARAMETERS GIT_REFLOG_ACTION GIT_OBJECT_DIRECTORY \\
    GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_COMMON_DIR GIT_NAMESPACE GIT_QUARANTINE_PATH
GITSYNC_ACTIVE=1
export GITSYNC_ACTIVE
if command -v setsid >/dev/null 2>&1; then
    setsid "$cmd" hook run "$top" </dev/null >>"$log" 2>&1 &
else
    "$cmd" hook run "$top" </dev/null >>"$log" 2>&1 &
fi
exit 0
"""


def hook_script(command: str = DEFAULT_COMMAND) -> str:
    """The hook script, starting ``command`` (the shipped hooks/post-commit for the default)."""
    if command == DEFAULT_COMMAND:
        return _SCRIPT
    quoted = "'" + command.replace("'", "'\\''") + "'"
    return _SCRIPT.replace(_COMMAND_LINE, f'cmd="${{GITSYNC_NOTES:-}}"; [ -n "$cmd" ] || cmd={quoted}')


# ---------------------------------------------------------------------- install / uninstall
class HookState(Enum):
    """What is at ``.git/hooks/post-commit``."""

    ABSENT = "not installed"
    OURS = "installed"
    FOREIGN = "another post-commit hook (not gitsync's)"


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What ``install``/``uninstall`` did, for the CLI to tell."""

    path: Path
    chained: Path | None  # the user's hook that ours runs first (or that was put back)
    message: str


def _hooks_dir(store: GitStore) -> Path:
    custom = store.config_get("core.hooksPath")
    if custom:
        raise ConfigError(
            f"core.hooksPath is set ({custom}): hooks are managed there, so gitsync-notes does not "
            f"install into {store.git_dir / 'hooks'}. Add this line to that folder's post-commit "
            f"hook instead:  gitsync-notes hook run \"$(pwd)\" </dev/null >/dev/null 2>&1 &"
        )
    return store.git_dir / "hooks"


def _is_ours(path: Path) -> bool:
    try:
        head = path.read_bytes()[:400]
    except OSError:
        return False
    return HOOK_MARKER.encode() in head


def hook_state(store: GitStore) -> HookState:
    """Whether our hook is installed (a custom core.hooksPath counts as not installed)."""
    if store.config_get("core.hooksPath"):
        return HookState.ABSENT
    path = store.git_dir / "hooks" / HOOK_NAME
    if not os.path.lexists(path):
        return HookState.ABSENT
    return HookState.OURS if _is_ours(path) else HookState.FOREIGN


def _write_executable(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"), mode=0o755)


def install(store: GitStore, command: str = DEFAULT_COMMAND) -> InstallResult:
    """Install the post-commit hook; an existing foreign hook is kept and run first.

    Refuses (``ConfigError``, nothing changed) when keeping the existing hook is impossible:
    ``post-commit.pre-gitsync`` is taken by another file, or hooks live in ``core.hooksPath``.
    Installing again only refreshes our script.
    """
    hooks = _hooks_dir(store)
    hooks.mkdir(parents=True, exist_ok=True)
    path, chained = hooks / HOOK_NAME, hooks / CHAINED_NAME
    script = hook_script(command)
    if os.path.lexists(path) and not _is_ours(path):
        if os.path.lexists(chained):
            raise ConfigError(
                f"{path} is another program's hook and {chained} exists too: installing would lose "
                f"one of them. Merge them into one file (or remove {chained}) and run this again."
            )
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a hook script: nothing was changed")
        os.rename(path, chained)  # a symlink stays a symlink: its target is not touched
        _write_executable(path, script)
        return InstallResult(
            path, chained, f"installed {path}; the previous hook now runs first, from {chained}"
        )
    refreshed = os.path.lexists(path)
    _write_executable(path, script)
    keep = chained if os.path.lexists(chained) else None
    verb = "updated" if refreshed else "installed"
    return InstallResult(path, keep, f"{verb} {path}" + (f" (it runs {chained} first)" if keep else ""))


def uninstall(store: GitStore) -> InstallResult:
    """Remove our hook and put a chained hook back; a foreign hook is left alone (ConfigError)."""
    hooks = _hooks_dir(store)
    path, chained = hooks / HOOK_NAME, hooks / CHAINED_NAME
    if not os.path.lexists(path):
        return InstallResult(path, None, f"no post-commit hook in {hooks}: nothing to remove")
    if not _is_ours(path):
        raise ConfigError(f"{path} is not gitsync's hook: it was left alone")
    if os.path.lexists(chained):
        os.replace(chained, path)
        return InstallResult(path, path, f"removed gitsync's hook; your previous hook is back at {path}")
    path.unlink()
    return InstallResult(path, None, f"removed {path}")


# ---------------------------------------------------------------------- coalescing runner
def _flag(store: GitStore) -> Path:
    return store.git_dir / RUN_AGAIN_NAME


def request_run(store: GitStore) -> None:
    """Record that a commit wants a sync (one byte appended: the size is a generation count)."""
    with open(_flag(store), "ab") as fh:
        fh.write(b".")


def run_again_generation(store: GitStore) -> int:
    """The run-again counter: it grows whenever a hook run asked for a sync."""
    try:
        return _flag(store).stat().st_size
    except FileNotFoundError:
        return 0


def _reset_generation(store: GitStore) -> None:
    """Empty the counter; only under the repository lock, right before a pass."""
    flag = _flag(store)
    with contextlib.suppress(FileNotFoundError):
        if flag.stat().st_size > 0:
            os.truncate(flag, 0)


class RunOutcome(Enum):
    """How a hook run ended."""

    DONE = "done"
    BUSY = "another sync is running; it will run again for this commit"


def _try_flock(path: Path) -> int | None:
    """An fd holding an exclusive ``flock`` on ``path``, or None if another holder has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def run_coalesced(
    store: GitStore, one_round: Callable[[], None], *, max_rounds: int = MAX_ROUNDS, wait: float = LOCK_WAIT
) -> tuple[RunOutcome, int]:
    """Run ``one_round`` until no commit came in meanwhile, as the only hook run of the repository.

    The hook runs coalesce on ``.git/gitsync-hook.lock`` (only hook runs take it, and each honours
    the run-again counter); each round holds the repository lock, waiting up to ``wait`` seconds
    for whatever else holds it (a sync started by hand, ``gitsync-notes status``...), so two syncs
    never run at once.  Returns the outcome and the number of rounds run (0: another hook run
    is syncing and will go again for this commit).
    """
    request_run(store)
    rounds = 0
    while True:
        fd = _try_flock(store.git_dir / HOOK_LOCK_NAME)
        if fd is None:
            return (RunOutcome.BUSY if rounds == 0 else RunOutcome.DONE), rounds
        try:
            while True:
                with store.lock(wait=wait):
                    _reset_generation(store)
                    one_round()
                rounds += 1
                if run_again_generation(store) == 0 or rounds >= max_rounds:
                    break
                logger.info("a commit came in during the sync: syncing again")
        finally:
            os.close(fd)  # releases the flock
        # a hook run that found us busy just before we let go gave up: look once more
        if run_again_generation(store) == 0 or rounds >= max_rounds:
            return RunOutcome.DONE, rounds


def sync_running(store: GitStore) -> bool:
    """Whether a hook run or any other gitsync process holds a lock of the repository right now."""
    for name in (HOOK_LOCK_NAME, "gitsync.lock"):
        fd = _try_flock(store.git_dir / name)
        if fd is None:
            return True
        os.close(fd)
    return False


# ---------------------------------------------------------------------- waiting out a rebase
WAIT_NAME = "gitsync-wait.lock"
WAIT_SECONDS = 600.0  # how long a hook run waits for a rebase/merge/cherry-pick to end


class Wait(Enum):
    """How waiting for a syncable repository ended."""

    SAFE = "safe"
    OTHER_WAITER = "another hook run is already waiting for the Git operation to end"
    GAVE_UP = "gave up waiting"


def wait_until_safe(
    store: GitStore, *, timeout: float = WAIT_SECONDS, poll: float = 0.5
) -> tuple[Wait, str]:
    """Wait until a sync may run (no rebase, merge, detached HEAD...), as one waiter per repository.

    git fires post-commit for every commit a rebase replays, while the rebase is still going on:
    syncing then would only fail, and nothing fires again when it ends.  So the first hook run
    waits (holding ``.git/gitsync-wait.lock``) and syncs afterwards; the others leave at once.
    Returns how it ended and the last reason the repository was not syncable.
    """
    try:
        store.check_safe_state()
        return Wait.SAFE, ""
    except RepositoryStateError as exc:
        reason = str(exc)
    fd = os.open(store.git_dir / WAIT_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return Wait.OTHER_WAITER, reason
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(poll)
            try:
                store.check_safe_state()
                return Wait.SAFE, ""
            except RepositoryStateError as exc:
                reason = str(exc)
        return Wait.GAVE_UP, reason
    finally:
        os.close(fd)  # releases the flock


# ---------------------------------------------------------------------- log and last results
def log_path(store: GitStore) -> Path:
    """Where the hook's output goes."""
    return store.git_dir / LOG_NAME


def trim_log(store: GitStore) -> None:
    """Keep the hook log bounded: past ``LOG_LIMIT`` keep its last ``LOG_KEEP`` bytes."""
    path = log_path(store)
    try:
        if path.stat().st_size <= LOG_LIMIT:
            return
        with open(path, "rb") as fh:
            fh.seek(-LOG_KEEP, os.SEEK_END)
            tail = fh.read()
        tail = tail[tail.find(b"\n") + 1 :]
        atomic_write(path, b"(older lines removed)\n" + tail)
    except OSError as exc:
        logger.debug("cannot trim %s: %s", path, exc)


@dataclass(frozen=True, slots=True)
class PeerResult:
    """The last sync attempt with one peer: when, whether it worked, and a one-line summary."""

    peer: str
    when: float
    ok: bool
    summary: str
    origin: str  # "hook" or "cli"


def _status_path(store: GitStore) -> Path:
    return store.git_dir / STATUS_NAME


def load_results(store: GitStore) -> dict[str, PeerResult]:
    """The last result of each peer (``.git/gitsync-status``: one tab-separated line per peer)."""
    out: dict[str, PeerResult] = {}
    try:
        text = _status_path(store).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split("\t", 4)
        if len(parts) != 5:
            continue
        peer, when, ok, origin, summary = parts
        with contextlib.suppress(ValueError):
            out[peer] = PeerResult(peer, float(when), ok == "ok", summary, origin)
    return out


def forget_result(store: GitStore, peer: str) -> bool:
    """Drop ``peer``'s last result (``gitsync-notes peer forget``); whether there was one."""
    results = load_results(store)
    if results.pop(peer, None) is None:
        return False
    lines = [
        f"{r.peer}\t{r.when:.3f}\t{'ok' if r.ok else 'failed'}\t{r.origin}\t{r.summary}\n"
        for r in sorted(results.values(), key=lambda r: r.peer)
    ]
    atomic_write(_status_path(store), "".join(lines).encode("utf-8"))
    return True


def record_result(store: GitStore, peer: str, *, ok: bool, summary: str, origin: str) -> None:
    """Remember the outcome of a sync with ``peer`` for ``gitsync-notes status``; never raises."""
    try:
        results = load_results(store)
        one_line = " ".join(summary.split())[:500]
        results[peer] = PeerResult(peer, time.time(), ok, one_line, origin)
        lines = [
            f"{r.peer}\t{r.when:.3f}\t{'ok' if r.ok else 'failed'}\t{r.origin}\t{r.summary}\n"
            for r in sorted(results.values(), key=lambda r: r.peer)
        ]
        atomic_write(_status_path(store), "".join(lines).encode("utf-8"))
    except OSError as exc:
        logger.warning("cannot record the sync result in %s: %s", _status_path(store), exc)

