"""``python -m gitsync.cli`` runs the same command line as ``gitsync-notes``."""

from gitsync.__main__ import catch_signals
from gitsync.cli import main

catch_signals()
main(prog_name="gitsync-notes")
