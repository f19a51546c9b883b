"""``python -m hpcfit`` runs the command line."""

from hpcfit.cli import main

main()
