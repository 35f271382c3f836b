"""At a 10% budget a query-aware plan (the shipped probe model's own P(yes), QuoTA) keeps the
star's frames more often than uniform sampling and names the star's colour more often: the needle
questions of the 24 held-out clips of evaluation seed 0, through the batch path `vidsift eval`
uses (split from `test_probe_model.py` so each file stays under 90 s on a loaded machine)."""

from __future__ import annotations

import pytest

from vidsift.probe import checkpoint_path

pytestmark = pytest.mark.timeout(120)


def test_query_aware_plan_beats_uniform_on_the_needle_at_10_percent(tmp_path):
    """At 10% of the visual tokens the query-aware plan keeps a star frame for (nearly) every
    question and names the star's colour at least twice as often as uniform sampling does
    (the floors the v3 checkpoint met, kept for the v4 one)."""
    from vidsift.batch.results import ResultsFile
    from vidsift.eval.runner import add_choice
    from vidsift.probe.evaluate import ensure_items, run_questions, settings, summarize

    root = tmp_path / "items"
    items = [i for i in ensure_items(root, seed=0, videos=24, stream_videos=0) if i.family == "needle"]
    chosen = [s for s in settings(["uniform", "mllm+topk"], (1.0, 0.1), ()) if s.fraction == 0.1]
    assert {s.name for s in chosen} == {"uniform@10%", "mllm+topk@10%"}
    out = tmp_path / "needle.jsonl"
    run_questions(items, root, {s.name: dict(s.overrides) for s in chosen}, model=str(checkpoint_path()), out=out)
    records = [add_choice(r) for r in ResultsFile(out).latest().values()]
    rows = {r["setting"]: r for r in summarize(records, chosen, items)}
    aware, uniform = rows["mllm+topk@10%"], rows["uniform@10%"]
    assert aware["n"] == uniform["n"] == 24
    assert aware["evidence_recall"]["needle"] >= 0.9 > uniform["evidence_recall"]["needle"]
    assert aware["per_family"]["needle"] >= max(2 * uniform["per_family"]["needle"], 0.25), (
        aware["per_family"], uniform["per_family"])
    assert aware["tokens_in_prompt_mean"] <= 0.1 * aware["tokens_full_mean"] + 1
