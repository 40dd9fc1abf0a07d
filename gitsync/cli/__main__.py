"""``python -m gitsync.cli`` runs the same command line as ``gitsync-notes``."""

from gitsync.cli import main
from gitsync.process import catch_signals

catch_signals()
main(prog_name="gitsync-notes")
