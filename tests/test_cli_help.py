"""Help text a newcomer can read: booleans are flags (no ``<bool>``), presets are listed, lines
are not cut with "…" off a terminal, and no help points into the repository."""

from __future__ import annotations

import re

import pytest

from vidsift.cli.app import run
from vidsift.pipeline.presets import PRESETS


@pytest.mark.parametrize("command", [[], ["info"], ["plan"], ["ask"], ["stream"], ["bench"], ["batch"]])
def test_help_is_plain_and_complete(command, capsys):
    assert run([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text and "…" not in text and "╭" not in text
    assert not re.search(r"vidsift/\w+/", text), "help points to a repository path"
    if command == ["ask"]:
        assert re.search(r"^\s+--json\s+Print", text, re.M)  # a flag, takes no value
        for line in (line for line in text.splitlines() if "--preset" in line or "--budget" in line):
            assert all(name in line for name in PRESETS), line
        from vidsift.pipeline.press import PRESSES
        from vidsift.pipeline.prune import PRUNERS
        from vidsift.selectors import MERGERS

        for flag, registry in (("--merger", MERGERS), ("--prune", PRUNERS), ("--kv", PRESSES)):
            line = next(line for line in text.splitlines() if line.strip().startswith(flag))
            assert all(name in line for name in registry.names()), (flag, line)  # every member, new ones too


@pytest.mark.parametrize("command, usage", [
    (["ask"], "Usage: vidsift ask [OPTIONS] VIDEO QUESTION"),
    (["info"], "Usage: vidsift info [OPTIONS] VIDEO"),
    (["plan"], "Usage: vidsift plan [OPTIONS] VIDEO"),
    (["batch"], "Usage: vidsift batch [OPTIONS] MANIFEST"),
])
def test_usage_lines_name_arguments_plainly(command, usage, capsys):
    """Usage reads ``VIDEO``, not typer's ``{VIDEO}``, in help and in a usage error."""
    assert run([*command, "--help"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == usage
    assert run(command) == 2  # a missing argument: click's usage error repeats the usage line
    err = capsys.readouterr().err
    assert usage in err and "{" not in err, err
