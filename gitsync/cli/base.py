"""What every command shares: the ``main`` group, exit codes, logging set-up, error reporting.

The command modules attach themselves to ``main``; ``gitsync.cli`` imports them all.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from gitsync import __version__

if TYPE_CHECKING:
    from gitsync.store.git import GitStore

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_ERROR",
    "EXIT_ITEMS",
    "EXIT_OK",
    "EXIT_USAGE",
    "FOLDER_RULE",
    "POLICIES",
    "Folder",
    "Seconds",
    "create_folder",
    "fail",
    "main",
    "open_store",
    "run",
    "setup_logging",
    "usage_hint",
    "verbosity",
]

logger = logging.getLogger("gitsync")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CONFLICT = 0, 1, 2, 3
#: the sync was committed, but some items failed (unreadable, not applied, refused): see stderr
EXIT_ITEMS = 4
POLICIES = ("merge", "client-wins", "server-wins", "keep-both", "error")


# ---------------------------------------------------------------------- plumbing
def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr, force=True)


def fail(message: str, code: int = EXIT_ERROR, ctx: click.Context | None = None,
         hint: str | None = None) -> NoReturn:
    """One ``gitsync-notes: ...`` line on stderr, then exit ``code``.  A usage error (exit 2), and
    any error with a ``hint`` (what to try), ends with it and where to read about the command, in
    one style for every command: ``(is the server running? try: gitsync-notes sync --help)``."""
    if code == EXIT_USAGE or hint:
        where = usage_hint(ctx or click.get_current_context(silent=True))
        message = f"{message.rstrip('.')} ({hint + ' ' if hint else ''}{where})"
    click.echo(f"gitsync-notes: {message}", err=True)
    sys.exit(code)


def usage_hint(ctx: click.Context | None) -> str:
    """``try: gitsync-notes [COMMAND...] --help`` for the command being run (whatever the program
    was called, so a test through click's runner reads as a user would)."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["try: gitsync-notes", *names, "--help"])


def run(fn: Callable[[], int | None]) -> None:
    """Run a command body, turning our errors into one line and an exit code."""
    from gitsync.errors import GitsyncError, Interrupted

    try:
        code = fn()
    except GitsyncError as exc:
        fail(str(exc) or type(exc).__name__, getattr(exc, "exit_code", EXIT_ERROR), hint=exc.hint)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: exit 128 + n, as shells expect
        stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        fail(f"{stopped.what}; an unfinished sync changed nothing", 128 + stopped.signum)
    except BrokenPipeError:
        from gitsync.process import silence_broken_pipe

        silence_broken_pipe()
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_ERROR)
    sys.exit(code or EXIT_OK)


class Folder(click.Path):
    """A DIRECTORY argument; a missing one (when it must exist) or a file is a usage error in the
    words every command uses: ``notes folder X does not exist``."""

    def __init__(self, *, exists: bool = True) -> None:
        super().__init__(file_okay=True, dir_okay=True)
        self.must_exist = exists

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = Path(value)
        if self.must_exist and not path.exists():
            raise click.UsageError(f"notes folder {value} does not exist", ctx)
        if path.exists() and not path.is_dir():
            raise click.UsageError(f"notes folder {value} is not a folder", ctx)
        return super().convert(value, param, ctx)


class Seconds(click.ParamType[float]):
    """A duration option: a finite number of seconds above 0 (at most a day)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not 0 < seconds <= 86400:  # NaN fails this too
            self.fail(f"{value} is not a number of seconds above 0 and at most 86400", param, ctx)
        return seconds


def verbosity(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("-v", "--verbose", count=True, help="More output (repeat for debug output).")(f)
    return click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")(f)


def open_store(directory: str, *, create: bool = True, top_level: bool = False) -> GitStore:
    from gitsync.store.git import GitStore

    if "GITSYNC_CRASH_AT" in os.environ:  # kill tests: opening may already write (recovery)
        import gitsync.app.faults  # noqa: F401
    return GitStore.open(Path(directory), create=create, top_level=top_level)


#: The one rule for a missing DIRECTORY, for ``sync`` and ``serve`` (said in their --help).
FOLDER_RULE = (
    "A missing DIRECTORY is created (its parent must exist), unless it would be inside another "
    "Git repository; a sub-folder of a notes folder that synced before means that notes folder."
)


def create_folder(directory: str, *, mode: int = 0o777) -> None:
    """Create a missing notes folder by :data:`FOLDER_RULE`; refuse (ConfigError) before creating
    anything when its parent is missing or inside another Git repository."""
    from gitsync.errors import ConfigError
    from gitsync.store.git import GitStore

    folder = Path(directory)
    if folder.exists():
        return
    parent = folder.resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"notes folder {directory} does not exist, nor does its parent {parent}")
    outer = GitStore.enclosing_work_tree(parent)
    if outer is not None:
        raise ConfigError(
            f"notes folder {directory} does not exist, and would be inside the Git repository {outer}: "
            "use a folder outside it"
        )
    folder.mkdir(mode=mode)
    logger.info("created %s", folder)


# ---------------------------------------------------------------------- group
class _Main(click.Group):
    """The command group; a usage error is one ``gitsync-notes: ...`` line and exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.BadParameter as exc:  # our words, not click's "Invalid value for ..."
            what = exc.param.get_error_hint(exc.ctx) if exc.param is not None and exc.ctx else None
            kind = "option" if isinstance(exc.param, click.Option) else "argument"
            fail(f"{kind} {what}: {exc.message}" if what else exc.format_message(), EXIT_USAGE, exc.ctx)
        except click.UsageError as exc:
            fail(exc.format_message(), EXIT_USAGE, exc.ctx)
        except click.Abort:
            fail("aborted", EXIT_ERROR)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gitsync-notes")
def main() -> None:
    """Sync a folder of notes, kept in Git, with SyncML peers (client and server)."""
