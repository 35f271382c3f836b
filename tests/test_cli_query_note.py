"""The query is never silently ignored (issue 26, item 5): when the scorer cannot use it (the
default ``uniform``), ``plan --query`` and ``ask`` say so once on stderr; a scorer that reads it
(``mllm``, ``clip``, ``text``) gets no note."""

from __future__ import annotations

import pytest

from vidsift.cli.app import run
from vidsift.selectors import uses_query

NOTE = "note: --query is not used by the uniform scorer; try --scorer mllm"


def test_plan_says_once_that_the_uniform_scorer_ignores_the_query(tmp_video, capsys):
    assert run(["plan", tmp_video, "--query", "bike", "--json"]) == 0
    err = capsys.readouterr().err
    assert err.count(NOTE) == 1 and err.count("note:") == 1, err


def test_plan_without_a_query_has_no_note(tmp_video, capsys):
    assert run(["plan", tmp_video, "--json"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_ask_says_the_question_does_not_choose_the_frames(tmp_video, capsys):
    assert run(["ask", tmp_video, "What is moving?", "--model", "random:tiny-qwen2.5-vl", "--max-new-tokens", "1",
                "--max-frames", "4", "--json"]) == 0
    err = capsys.readouterr().err
    assert err.count("note: the question is not used by the uniform scorer; try --scorer mllm") == 1, err


@pytest.mark.parametrize("scorer, reads", [(None, False), ("uniform", False), ("mllm", True), ("clip:some/model", True),
                                           ("text", True)])
def test_scorers_say_whether_they_read_the_query(scorer, reads):
    assert uses_query(scorer) is reads
