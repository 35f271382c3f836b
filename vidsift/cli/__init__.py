"""The ``vidsift`` command line: one module per command, thin bodies over the library."""
