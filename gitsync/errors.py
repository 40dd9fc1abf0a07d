"""The one error tree of gitsync-notes.

Every exception the package raises on purpose derives from :class:`GitsyncError`::

    GitsyncError
    ├── UserError                 mixin: the CLI prints the message, no traceback
    ├── ConfigError (UserError)   bad option, bad git config, DIR missing or a file
    ├── ProtocolError             carries ``status_hint``: the SyncML status to answer with
    │   ├── LocalProtocolError    we were asked to do something the protocol forbids
    │   ├── RemoteProtocolError   the peer sent something we cannot accept
    │   │   └── CodecError        the body is not a SyncML document we can decode
    │   └── AuthError (UserError) the peer refused our credentials, or we refused theirs
    ├── FormatError               a note payload (SIF-N, vNote, text) cannot be read
    ├── StoreError                the Git store failed
    │   ├── RepositoryBusy (UserError)   another sync holds the lock
    │   └── RepositoryStateError (UserError)  detached HEAD, merge in progress, ...
    ├── TransportError (UserError)  the peer cannot be reached or answered garbage HTTP
    └── SafetyStop (UserError)    a guard (mass delete, empty peer) stopped the sync

    Interrupted (KeyboardInterrupt, outside the tree on purpose: ``except Exception`` must not
    swallow it)  SIGINT, SIGTERM or SIGHUP arrived; ``signum`` gives the exit status 128+n

Errors take keyword fields so callers can act on them without parsing text.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CodecError",
    "ConfigError",
    "FormatError",
    "GitsyncError",
    "Interrupted",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "RepositoryBusy",
    "RepositoryStateError",
    "SafetyStop",
    "StoreError",
    "TransportError",
    "UserError",
]


class GitsyncError(Exception):
    """Root of every error raised on purpose by gitsync.  ``hint``: what to try, where one helps;
    the CLI ends its one line with it: ``(is the server running? try: gitsync-notes sync --help)``."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class UserError(GitsyncError):
    """An error whose message is enough for the user: printed without a traceback."""


class ConfigError(UserError):
    """A bad option, configuration value or notes folder."""

    exit_code = 2


class ProtocolError(GitsyncError):
    """A SyncML protocol violation; ``status_hint`` is the status code to answer with."""

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class LocalProtocolError(ProtocolError):
    """We tried something the protocol (or the session state) does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot accept."""


class CodecError(RemoteProtocolError):
    """The body is not a SyncML document we can decode (bad XML/WBXML, too big, ...)."""


class AuthError(ProtocolError, UserError):
    hint = "check the user name (-u) and the password."

    """Credentials were refused (by the peer, or by us as a server)."""

    def __init__(self, message: str, *, status_hint: int = 401) -> None:
        super().__init__(message, status_hint=status_hint)


class FormatError(GitsyncError):
    """A note payload cannot be parsed in the format it claims to be."""


class StoreError(GitsyncError):
    """The Git store failed."""


class BranchSwitched(StoreError):
    """Another branch was checked out during a sync: nothing was committed."""


class RepositoryBusy(StoreError, UserError):
    """Another sync holds the repository lock."""


class RepositoryStateError(StoreError, UserError):
    """The repository is in a state where syncing would be unsafe (rebase, detached HEAD...)."""


class TransportError(UserError):
    """The peer could not be reached, or answered something that is not SyncML over HTTP."""


class SafetyStop(UserError):
    """A safety guard (mass delete, suddenly empty peer) stopped the sync before any change."""


class Interrupted(KeyboardInterrupt):
    """A signal asked us to stop (Ctrl-C, SIGTERM, SIGHUP): unwind like Ctrl-C, so an unfinished
    sync takes its "local changes" commit back, then exit with 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def what(self) -> str:
        """How the user would say it: "interrupted (SIGINT)", "terminated (SIGTERM)"..."""
        import signal

        word = {int(signal.SIGINT): "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}
        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        return f"{word.get(self.signum, 'stopped')} ({name})"
