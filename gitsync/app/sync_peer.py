"""One client sync as ``gitsync-notes sync`` and the post-commit hook run it.

Resolve the request (:mod:`gitsync.app.options`), take over a ``sync-notes`` folder, hold the
repository lock around the driver, record the result for ``gitsync-notes status`` and remember the
settings that worked.  The caller prints: it gets data back (:class:`SyncOutcome`) and passes
``say`` for the one sentence that must be told before the sync starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitsync.app.options import PasswordPrompt, SyncRequest, resolve_client
from gitsync.errors import ConfigError, Interrupted, RemoteProtocolError
from gitsync.model import SyncMode

if TYPE_CHECKING:
    from gitsync.app.client import Progress
    from gitsync.app.safety import DryRun
    from gitsync.store.git import GitStore
    from gitsync.sync.report import SyncReport

__all__ = ["SyncOutcome", "sync_peer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What one client sync did (``report``), or would do (``dry_run``), with ``peer``."""

    peer: str
    report: SyncReport | None = None
    dry_run: DryRun | None = None
    would_take_over: bool = False  # dry run: the sync-notes state in .sync would be taken over first


def sync_peer(
    store: GitStore,
    req: SyncRequest,
    *,
    origin: str = "cli",
    ask_password: PasswordPrompt | None = None,
    progress_for: Callable[[str], Progress | None] = lambda peer: None,
    say: Callable[[str], None] = lambda text: None,
) -> SyncOutcome:
    """One sync of an opened store with the peer ``req`` names (or the remembered one).

    ``progress_for(peer)`` gives the callback told of items sent and received.  Raises the
    driver's errors (after recording them for ``gitsync-notes status``).
    """
    from gitsync.app import pysyncml_import

    resolved = resolve_client(store, req, origin=origin, ask_password=ask_password)
    opts, taken = resolved.options, resolved.taken
    if req.dry_run:
        from gitsync.app.safety import dry_run

        return SyncOutcome(opts.name, dry_run=dry_run(store, opts), would_take_over=resolved.take_over)
    if resolved.take_over:
        assert taken is not None
        say(pysyncml_import.take_over(store, taken, opts.name, opts.url))
    from gitsync.app.client import sync_client
    from gitsync.app.hook import record_result
    from gitsync.transport.http import HttpTransport

    ca_file = req.ca_file or store.config_get(f"gitsync.{opts.name}.cafile")
    transport = HttpTransport(timeout=req.timeout, ca_file=ca_file)
    try:
        with store.lock(wait=5.0):
            try:
                report = sync_client(store, opts, transport, progress=progress_for(opts.name))
            except (Exception, KeyboardInterrupt) as exc:  # a signal too: status must not say "ok"
                summary = exc.what if isinstance(exc, Interrupted) else str(exc) or type(exc).__name__
                record_result(store, opts.name, ok=False, summary=summary, origin=origin)
                if origin == "cli" and store.config_get("gitsync.remote") is None:
                    # a failed first sync: the retry without --remote goes to the same server
                    # (a wrong URL is dropped with `gitsync-notes peer forget DIR NAME`)
                    _remember(store, {k: v for k, v in resolved.remember.items() if k in _FIRST_TRY})
                _explain_slow_sync_failure(opts.mode, exc)
                raise
            unwritten = len(store.unwritten())  # notes that came in but could not be written here
            summary = report.outcome(opts.name) + (f"; {unwritten} note(s) not written into the folder"
                                                   if unwritten else "")
            record_result(store, opts.name, ok=not unwritten and not report.failed(), summary=summary,
                          origin=origin)
    finally:
        transport.close()
    _remember(store, resolved.remember)
    return SyncOutcome(opts.name, report=report)


#: What a failed first sync remembers: where it tried, and as which device.
_FIRST_TRY = ("gitsync.remote", "gitsync.peer", "gitsync.deviceid", "gitsync.username")


def _remember(store: GitStore, settings: dict[str, str | None]) -> None:
    """Save the settings that worked; the sync itself is done, so a failure here only warns."""
    for key, value in settings.items():
        if value is not None and value != store.config_get(key):
            try:
                store.config_set(key, value)
            except ConfigError as exc:
                logger.warning("the sync is complete, but its settings were not remembered: %s", exc)
                break


def _explain_slow_sync_failure(mode: SyncMode, exc: BaseException) -> None:
    """A server that fails a slow sync (HTTP 200, status 500): say why and what to do instead."""
    if mode is SyncMode.SLOW and isinstance(exc, RemoteProtocolError) and exc.status_hint == 500:
        raise RemoteProtocolError(
            f"{exc} during the slow sync (pysyncml servers fail one when a note name is on both "
            "sides): use --mode sync, pull-over or push-over instead",
            status_hint=500,
        ) from exc
