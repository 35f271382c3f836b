"""Set-up as a new user meets it (issue 26, item 7): the README says how to put ``vidsift`` on the
PATH after set-up (``source .venv/bin/activate``, or the ``scripts/vidsift`` wrapper), and the
install prints a line as each step starts and ends instead of staying silent for minutes. The
install steps run against a stand-in ``python`` in a copy of the scripts (no download)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_set_up_says_how_to_reach_vidsift():
    setup = ROOT.joinpath("README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    assert "source .venv/bin/activate" in setup and "scripts/vidsift" in setup
    wrapper = ROOT / "scripts" / "vidsift"
    assert wrapper.stat().st_mode & stat.S_IXUSR and ".venv/bin/vidsift" in wrapper.read_text()


def test_install_prints_a_line_per_step(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "_venv.sh", tmp_path / "scripts" / "_venv.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "activate").write_text(f'export PATH="{bin_}:$PATH"\n')
    calls = tmp_path / "calls.txt"
    # a python that has no torch and whose pip installs succeed, noting each call
    (bin_ / "python").write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n[ "$1" = "-c" ] && exit 1\necho pip says a lot\nexit 0\n')
    (bin_ / "python").chmod(0o755)
    run = subprocess.run(["bash", "-c", "source scripts/_venv.sh test"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PATH": os.environ["PATH"]})
    assert run.returncode == 0, run.stderr
    lines = run.stderr.strip().splitlines()
    for step in ("upgrading pip", "installing torch", "installing vidsift[test]"):
        assert any(step in line and line.endswith("...") for line in lines), (step, lines)
        assert any(step in line and " done (" in line for line in lines), (step, lines)
    assert "pip says a lot" not in run.stderr and "pip says a lot" in (tmp_path / ".venv" / "install.log").read_text()
    assert "source .venv/bin/activate" in lines[-1]
    again = subprocess.run(["bash", "-c", "source scripts/_venv.sh test"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr == ""  # installed: nothing to do, nothing said
