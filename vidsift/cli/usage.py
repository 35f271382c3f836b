"""Usage lines that read naturally: ``vidsift ask [OPTIONS] VIDEO QUESTION``.

typer 0.29 writes a required argument as ``{VIDEO}`` in the usage line. click's own style is
``VIDEO`` (required), ``[VIDEO]`` (optional) and ``...`` when repeated; `plain_usage` restores it
through click's public per-parameter hook, ``Parameter.get_usage_pieces``.
"""

from __future__ import annotations

import typer.core


def _usage_pieces(self, ctx) -> list[str]:
    name = self.metavar or (self.name or "").upper()
    return [(name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")]


def plain_usage() -> None:
    """Make every typer argument write its usage piece as click does (idempotent)."""
    typer.core.TyperArgument.get_usage_pieces = _usage_pieces
