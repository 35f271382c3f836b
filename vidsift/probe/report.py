"""Tables of a probe summary (`vidsift.probe.evaluate`): rich tables for the terminal and a
Markdown table for the README / notes."""

from __future__ import annotations

from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}"


def grid(summary: dict[str, Any], key: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Rows of method x budget accuracy (``key``: one family, else overall); presets (no budget
    of their own) get a ``preset`` column of their own, never a budget's column."""
    rows = summary["settings"]
    full = next(r for r in rows if r["method"] == "full")
    fracs = sorted({r["fraction"] for r in rows if r["fraction"] is not None}, reverse=True)
    acc = (lambda r: r["accuracy"]) if key is None else (lambda r: r["per_family"].get(key))  # noqa: E731
    presets = any(r["method"].startswith("preset:") for r in rows)
    header = ["method", *[f"{f:.0%}" for f in fracs], *(["preset"] if presets else [])]
    blank = [""] if presets else []
    out = [["full", *[_pct(acc(full)) if f == 1.0 else "" for f in fracs], *blank]]
    for method in dict.fromkeys(r["method"] for r in rows):
        if method == "full":
            continue
        mine = {r["fraction"]: r for r in rows if r["method"] == method}
        if method.startswith("preset:"):
            r = mine[None]
            share = r["tokens_in_prompt_mean"] / r["tokens_full_mean"] if r.get("tokens_full_mean") else None
            out.append([f"{method} ({_pct(share)}% tokens)", *[""] * len(fracs), _pct(acc(r))])
            continue
        out.append([method, *[_pct(acc(full)) if f == 1.0 else _pct(acc(mine[f])) if f in mine else "" for f in fracs], *blank])
    return header, out


FAMILY_METHODS = ("mllm+topk", "uniform")  # the per-family table's methods when they ran: best query-aware, naive


def family_columns(summary: dict[str, Any], most: int = 3) -> list[str]:
    """Settings of the per-family table, from what ran: ``full@100%``, then methods at the
    smallest budget that ran (`FAMILY_METHODS` first when they ran, else the first that did)."""
    rows = [r for r in summary["settings"] if r["fraction"] is not None and r["method"] != "full"]
    if not rows:
        return ["full@100%"]
    least = min(r["fraction"] for r in rows)
    at = [r["setting"] for r in rows if r["fraction"] == least]
    ranked = sorted(at, key=lambda s: (FAMILY_METHODS.index(s.split("@")[0]) if s.split("@")[0] in FAMILY_METHODS
                                       else len(FAMILY_METHODS)))
    return ["full@100%", *ranked[:most]]


def markdown(summary: dict[str, Any], key: str | None = None) -> str:
    header, rows = grid(summary, key)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def tables(summary: dict[str, Any]) -> list[Any]:
    from rich.table import Table

    out = []
    header, rows = grid(summary)
    t = Table(title=f"probe accuracy (%) by method and visual-token budget — {summary['items']} questions, seed {summary['seed']}")
    for h in header:
        t.add_column(h, justify="left" if h == "method" else "right")
    for r in rows:
        t.add_row(*r)
    out.append(t)
    columns = family_columns(summary)
    fams = Table(title="per family (%): " + " / ".join(["full tokens", *columns[1:], "chance"]))
    for h in ("family", "full", *columns[1:], "chance"):
        fams.add_column(h, justify="left" if h == "family" else "right")
    by_name = {r["setting"]: r for r in summary["settings"]}
    for fam in summary["families"]:
        fams.add_row(fam, *[_pct((by_name.get(s) or {}).get("per_family", {}).get(fam)) for s in columns],
                     _pct(summary["chance"].get(fam)))
    out.append(fams)
    if "relevance" in summary:
        rel = summary["relevance"]
        r = Table(title="relevance: the mllm (QuoTA) scorer's per-frame yes/no vs the evidence")
        for h in ("frames", "evidence frames", "accuracy", "AUC"):
            r.add_column(h, justify="right")
        r.add_row(str(rel["frames"]), str(rel["positives"]), _pct(rel["accuracy"]), f"{rel['auc']:.3f}" if rel["auc"] else "-")
        out.append(r)
    if "stream" in summary:
        s = Table(title="streams (StreamSession memory at a share of the stream's tokens)")
        for h in ("memory", "tokens held", "now", "recall", "star still in memory"):
            s.add_column(h, justify="right")
        for row in summary["stream"]:
            s.add_row(f"{row['fraction']:.0%}", f"{row['memory_tokens_mean']:.0f}", _pct(row.get("now")), _pct(row.get("recall")),
                      _pct(row.get("recall_evidence_in_memory")))
        out.append(s)
    return out
