"""`run_eval`: a dataset x settings (budgets, presets) through the batch engine, scored.

Each (question, setting) pair is one batch job with id ``<qid>@<setting>``; results append to
a JSONL file as they finish (with the extracted choice and correctness), so an interrupted
evaluation resumes where it stopped. Accuracy is reported per setting, overall and per task,
over the questions that were answered: failed jobs (missing video, decode error, bad option) are
counted and listed separately, never scored as wrong answers, and a setting (or task) whose every
job failed shows ``failed``, not 0%.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..batch import Job, ResultsFile, WorkerSpec, run_batch
from ..errors import ConfigError
from .extract import extract_choice
from .items import LETTERS, EvalItem
from .prompt import MCPrompt


@dataclass(frozen=True)
class EvalSetting:
    """One way of running the model: a name and the per-question overrides it sets."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


def parse_settings(budgets: Iterable[str] | None = None, presets: Iterable[str] | None = None) -> list[EvalSetting]:
    """``["100%", "25%"]`` budgets and preset names -> settings (default: the worker's budget)."""
    from ..pipeline.options import AskOptions

    budgets = [b.strip() for b in budgets or [] if b.strip()]
    presets = [p.strip() for p in presets or [] if p.strip()]
    for b in budgets:
        AskOptions.from_setting(budget=b)  # one-line error before any model work
    for p in presets:
        AskOptions.from_setting(preset=p)
    settings = [EvalSetting(f"budget={b}", {"budget": b}) for b in budgets]
    settings += [EvalSetting(f"preset={p}", {"preset": p}) for p in presets]
    if not settings:
        settings = [EvalSetting("default")]
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ConfigError(", ".join(names), "settings repeat")
    return settings


def make_jobs(items: list[EvalItem], settings: list[EvalSetting], *, prompt: MCPrompt | None = None) -> list[Job]:
    prompt = prompt or MCPrompt()
    jobs = []
    for setting in settings:
        for item in items:
            jobs.append(Job(id=f"{item.dataset}/{item.qid}@{setting.name}", video=item.video, question=prompt(item),
                            overrides=dict(setting.overrides),
                            meta={"dataset": item.dataset, "qid": item.qid, "task": item.task, "setting": setting.name,
                                  "options": item.options, "target": item.answer, "duration": item.duration}))
    return jobs


def add_choice(record: dict[str, Any]) -> dict[str, Any]:
    """Extract the chosen option of a finished job and mark it correct or not."""
    meta = record.get("meta") or {}
    choice = None if record.get("error") else extract_choice(record.get("answer"), meta.get("options", []))
    record["pred"] = None if choice is None else LETTERS[choice]
    record["correct"] = choice is not None and choice == meta.get("target")
    return record


@dataclass
class EvalReport:
    """Accuracy per setting: overall, per task and per duration (when the dataset has it)."""

    dataset: str
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "settings": self.rows}

    def table(self):
        from rich.table import Table
        from rich.text import Text  # cells and titles as Text: names print literally, never as markup

        table = Table(title=Text(f"{self.dataset} accuracy"))
        for col in ("setting", "n", "accuracy", "failed", "no answer", "mean s/question"):
            table.add_column(col, justify="right" if col != "setting" else "left")
        for row in self.rows:
            table.add_row(Text(row["setting"]), str(row["n"]), _percent(row["accuracy"]), str(row["failed"]),
                          str(row["unparsed"]), f"{row['mean_elapsed_s']:.2f}")
        tasks = Table(title="per task")
        tasks.add_column("task")
        for row in self.rows:
            tasks.add_column(Text(row["setting"]), justify="right")
        for task in sorted({t for row in self.rows for t in row["per_task"]}):
            tasks.add_row(Text(task), *[f"{_percent(r['per_task'][task]['accuracy'])} ({r['per_task'][task]['n']})"
                                  if task in r["per_task"] else "-" for r in self.rows])
        return table, tasks


def _accuracy(outcomes: list[Any]) -> float | None:
    """Share of correct answers among answered questions; None when none was answered."""
    return sum(bool(x) for x in outcomes) / len(outcomes) if outcomes else None


def _percent(accuracy: float | None) -> str:
    return "failed" if accuracy is None else f"{100 * accuracy:.1f}%"


def score(records: Iterable[dict[str, Any]], *, dataset: str, settings: list[EvalSetting]) -> EvalReport:
    by_setting: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_setting[(record.get("meta") or {}).get("setting", "default")].append(record)
    rows = []
    for setting in settings:
        recs = by_setting.get(setting.name, [])
        groups: dict[str, dict[str, list[bool]]] = {"per_task": defaultdict(list), "per_duration": defaultdict(list)}
        for r in recs:  # None: the job failed (not a wrong answer)
            outcome = None if r.get("error") else bool(r.get("correct"))
            groups["per_task"][r["meta"].get("task", "all")].append(outcome)
            if r["meta"].get("duration"):
                groups["per_duration"][str(r["meta"]["duration"])].append(outcome)
        n = len(recs)
        rows.append({
            "setting": setting.name, "overrides": setting.overrides, "n": n, "accuracy": _accuracy([r.get("correct") for r in recs if not r.get("error")]),
            "failed": sum(1 for r in recs if r.get("error")),
            "unparsed": sum(1 for r in recs if not r.get("error") and r.get("pred") is None),
            "mean_elapsed_s": sum(r.get("elapsed_s", 0.0) for r in recs) / n if n else 0.0,
            **{key: {k: {"n": len(v), "failed": v.count(None), "accuracy": _accuracy([x for x in v if x is not None])}
                     for k, v in sorted(g.items())} for key, g in groups.items()},
            "errors": sorted({r["error"] for r in recs if r.get("error")})[:10],
        })
    return EvalReport(dataset=dataset, rows=rows)


def run_eval(items: list[EvalItem], spec: WorkerSpec, *, engine: Any, out: str | Path,
             settings: list[EvalSetting] | None = None, prompt: MCPrompt | None = None,
             resume: bool = True, progress: bool = True) -> EvalReport:
    """Answer every item under every setting (resumably, into ``out``) and score the results."""
    if not items:
        raise ConfigError("dataset", "no questions to evaluate")
    settings = settings or [EvalSetting("default")]
    jobs = make_jobs(items, settings, prompt=prompt)
    run_batch(jobs, spec, engine=engine, out=out, resume=resume, progress=progress, transform=add_choice)
    latest = ResultsFile(out).latest()
    records = [add_choice(latest[j.id]) for j in jobs if j.id in latest]
    report = score(records, dataset=items[0].dataset, settings=settings)
    summary = Path(out).with_suffix(".summary.json")
    summary.write_text(json.dumps(report.to_dict(), indent=2))
    return report
