"""The README's method table from probe runs on several seeds: accuracy mean (min-max) per
method and budget, overall and for `needle` at 10%. Reads the summary.json files that
`benchmarks/probe_alloc_summary.py FOLDER` writes.

    python benchmarks/probe_table_md.py benchmarks/results/probe_v4_table benchmarks/results/probe_alloc
"""
import json
import sys

cells, seeds = {}, set()
for folder in sys.argv[1:]:
    data = json.load(open(f"{folder}/summary.json"))
    cells.update(data["cells"])
    seeds.add(tuple(data["seeds"]))
methods = dict.fromkeys(s.split("@")[0] for s in cells)
fmt = lambda c: f"{c[0]} ({c[1]}-{c[2]})" if c[1] != c[2] else f"{c[0]}"  # noqa: E731
print(f"seeds: {sorted(seeds)}")
print("| method | 100% | 50% | 25% | 10% | needle at 10% |")
print("|---|---|---|---|---|---|")
full = cells["full@100%"]["ALL"]
print(f"| full | {fmt(full)} | | | | |")
for m in methods:
    if m == "full":
        continue
    row = [fmt(cells[f"{m}@{b}"]["ALL"]) if f"{m}@{b}" in cells else "" for b in ("50%", "25%", "10%")]
    needle = cells.get(f"{m}@10%", {}).get("needle")
    print(f"| {m} | | {' | '.join(row)} | {fmt(needle) if needle else ''} |")
