"""The ``vidsift`` command line: one module per command, thin bodies over the library."""

from .usage import plain_usage

plain_usage()  # VIDEO, not typer's {VIDEO}, in every usage line
