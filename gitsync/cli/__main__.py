"""``python -m gitsync.cli`` runs the same command line as ``gitsync-notes``."""

from gitsync.cli import main

main(prog_name="gitsync-notes")
