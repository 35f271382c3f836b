"""The `count` counterfactual pairs in detail: per edit, originals right, edited right, both, and
whether wrong answers count too many or too few (pooled over seeds). Reads the pairs and answers
`benchmarks/probe_v4.py --work WORK` left there (``cf{seed}/pairs.json``, ``cf{seed}-{NAME}.jsonl``).

    python benchmarks/probe_count_edits.py --work WORK --names checkpoint,ckpt-v4c [--seeds 23,4711,9001]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

from vidsift.batch.results import ResultsFile
from vidsift.eval.runner import add_choice

OUT = Path(__file__).parent / "results" / "probe_v4" / "count_edits_analysis.json"


def count_edits(work: Path, name: str, seeds: list[int]) -> dict:
    tab: dict = defaultdict(Counter)
    for seed in seeds:
        pairs = json.loads((work / f"cf{seed}" / "pairs.json").read_text())["pairs"]
        said = {}
        for r in ResultsFile(work / f"cf{seed}-{name}.jsonl").latest().values():
            r, meta = add_choice(r), r.get("meta") or {}
            if r.get("pred") is not None:
                said[meta["qid"]] = meta["options"]["ABCDEFGHIJ".index(r["pred"])]
        for p in (p for p in pairs if p["family"] == "count"):
            orig = said.get(f"s{seed}-{Path(p['original_video']).stem}-count")
            new = said.get(f"s{seed}-{Path(p['video']).stem}-count")
            t = tab[p["edit"]]
            t["pairs"] += 1
            t["orig_right"] += orig == p["answer"]
            t["edit_right"] += new == p["expected"]
            t["both"] += orig == p["answer"] and new == p["expected"]
            t["same_as_orig"] += orig == new
            for kind, got, want in (("edit", new, p["expected"]), ("orig", orig, p["answer"])):
                if got is not None and got != want:
                    t[f"{kind}_over" if int(got) > int(want) else f"{kind}_under"] += 1
    return {edit: dict(t) for edit, t in tab.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--names", required=True, help="comma-separated model names (the jsonl files' suffixes)")
    ap.add_argument("--seeds", default="23,4711,9001")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = {"what": "count edits pooled over the seeds: originals right, edited right, both, and the direction "
                   "of wrong answers (over/under the right count); full tokens", "seeds": seeds,
           "models": {n: count_edits(Path(args.work), n, seeds) for n in args.names.split(",")}}
    OUT.write_text(json.dumps(out, indent=1))
    print(json.dumps(out["models"]))


if __name__ == "__main__":
    main()
