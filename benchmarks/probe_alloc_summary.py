"""Per setting and family: accuracy mean (min-max) over the seeds of a folder of probe runs
(``seedN.jsonl[.gz]``, as `vidsift eval --dataset probe --out` writes them), and the tokens the
vision tower encoded per token in the prompt (mean and max over the questions); writes summary.json there.

    python benchmarks/probe_alloc_summary.py [FOLDER]   (default benchmarks/results/probe_alloc)
"""
import collections, glob, gzip, json, sys
from vidsift.eval.extract import extract_choice
folder = sys.argv[1] if len(sys.argv) > 1 else 'benchmarks/results/probe_alloc'
acc = collections.defaultdict(list)
ratio = collections.defaultdict(list)  # setting -> tokens encoded / tokens in the prompt, per question
for f in sorted(glob.glob(f'{folder}/seed*.jsonl*')):
    seed = f.split('seed')[-1].split('.')[0]
    for line in (gzip.open(f, 'rt') if f.endswith('.gz') else open(f)):
        r = json.loads(line); m = r["meta"]
        ok = extract_choice(r["answer"] or "", m["options"]) == m["target"]
        acc[(m["setting"], m["task"], seed)].append(ok)
        acc[(m["setting"], "ALL", seed)].append(ok)
        st = r.get("stats") or {}
        if st.get("tokens_in_prompt"):
            ratio[m["setting"]].append(st["tokens_encoded"] / st["tokens_in_prompt"])
settings = sorted({k[0] for k in acc}, key=lambda s: (s.split('@')[0], -float(s.split('@')[1].rstrip('%'))))
seeds = sorted({k[2] for k in acc})
fams = ["ALL", "needle", "count", "order", "when", "global", "now"]
out = {}
for s in settings:
    row = {}
    for fam in fams:
        vals = [100 * sum(acc[(s, fam, sd)]) / len(acc[(s, fam, sd)]) for sd in seeds if acc.get((s, fam, sd))]
        if vals:
            row[fam] = (round(sum(vals) / len(vals)), round(min(vals)), round(max(vals)))
    if ratio[s]:
        row["encoded_per_kept"] = (round(sum(ratio[s]) / len(ratio[s]), 2), round(max(ratio[s]), 2))
    out[s] = row
    print(f"{s:28s}", "  ".join(f"{fam[:6]} {v[0]:3d} ({v[1]}-{v[2]})" for fam, v in row.items() if fam in fams),
          "  encoded/kept %.2f (max %.2f)" % row["encoded_per_kept"] if "encoded_per_kept" in row else "")
print("seeds", seeds)
json.dump({"seeds": seeds, "cells": out}, open(f'{folder}/summary.json', 'w'), indent=1)
