"""``python -m vidsift`` runs the CLI."""

from .cli.app import main

main()
