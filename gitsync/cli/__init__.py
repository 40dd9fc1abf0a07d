"""The ``gitsync-notes`` command line: parse, call the app layer, print. Only ``gitsync.cli`` prints.

Heavy modules (pygit2, lxml, requests) are imported inside the commands so that
``gitsync-notes --help`` stays fast.  The shared plumbing is in ``gitsync.cli.base``; importing
the command modules here attaches them to ``main``.
"""

from gitsync.cli import hook, log, peer, serve, sync, user  # noqa: F401  (each registers its commands)
from gitsync.cli.base import EXIT_CONFLICT, EXIT_ERROR, EXIT_OK, EXIT_USAGE, POLICIES, main

__all__ = ["EXIT_CONFLICT", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "POLICIES", "main"]
