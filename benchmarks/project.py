"""Project a measured `vidsift bench` report to more frames (e.g. 32 -> 128) on the same
model, for the runs too slow to measure on a small CPU. Clearly an estimate:

* tokens: full = frames x tokens per frame; each setting keeps the same fraction of tokens and
  plans the same fraction of frames as in the measured report;
* KV bytes: exact arithmetic, 2 (K, V) x layers x kv_heads x head_dim x bytes x cached tokens
  (checked against the measured report's kv_bytes);
* time: the FLOPs model (vidsift.bench.flops) per stage, converted with the seconds-per-FLOP
  measured for that stage in the report's own full run (vision encode, prefill), plus video
  decode/score/select/merge scaled linearly with the frame count.

    python benchmarks/project.py benchmarks/results/llava-onevision-0.5b-32f/bench.json --frames 128 \
        --out benchmarks/results/llava-onevision-0.5b-128f-projected.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("report")
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from transformers import AutoConfig, AutoModelForImageTextToText

    from vidsift.batch.worker import resolve_model
    from vidsift.bench.flops import FlopModel

    rep = json.loads(Path(args.report).read_text())
    path = resolve_model(rep["model"])
    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        fm = FlopModel.from_model(AutoModelForImageTextToText.from_config(config))
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    dtype_bytes = 2 if "bfloat16" in rep["environment"].get("dtype", "") or "float16" in rep["environment"].get("dtype", "") else 4
    kv_per_token = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * dtype_bytes

    rows = rep["rows"]
    full = rows[0]
    scale = args.frames / rep["frames"]
    tpf = full["tokens_full"] / rep["frames"]
    text_tokens = full["prompt_len"] - full["tokens_in_prompt"]
    vision_rate = full["time_s"]["encode"] / full["flops"]["vision"]
    prefill_rate = full["time_s"]["prefill"] / full["flops"]["prefill"]
    out_rows = []
    for r in rows:
        tokens = round(r["tokens_in_prompt"] / full["tokens_in_prompt"] * tpf * args.frames)
        frames_planned = max(1, round(r["frames_planned"] * scale))
        encoded = round(r["tokens_encoded"] / max(r["frames_planned"], 1) * frames_planned)
        prompt_len = tokens + text_tokens
        flops = fm.estimate(prompt_len=prompt_len, new_tokens=r["new_tokens"], tokens_encoded=encoded, frames_encoded=frames_planned)
        overhead = r["overhead_s"] * scale
        ttft = flops["vision"] * vision_rate + flops["prefill"] * prefill_rate + overhead + r["time_s"].get("build", 0.0)
        kv = kv_per_token * (prompt_len + r["new_tokens"] - 1)
        out_rows.append({"setting": r["setting"], "tokens_in_prompt": tokens, "frames_planned": frames_planned,
                         "tokens_encoded": encoded, "prompt_len": prompt_len, "kv_bytes": kv,
                         "kv_bytes_check_measured_%dframes" % rep["frames"]: {"formula": kv_per_token * (r["prompt_len"] + r["new_tokens"] - 1),
                                                                             "measured": r["kv_bytes"]},
                         "ttft_s_projected": ttft, "overhead_s_projected": overhead, "flops": flops})
    base = out_rows[0]
    for r in out_rows:
        r["ttft_speedup"] = base["ttft_s_projected"] / r["ttft_s_projected"]
        r["kv_ratio"] = r["kv_bytes"] / base["kv_bytes"]
        r["overhead_share"] = r["overhead_s_projected"] / r["ttft_s_projected"]
    result = {"projected_from": args.report, "model": rep["model"], "frames": args.frames, "measured_frames": rep["frames"],
              "kv_bytes_per_token": kv_per_token, "seconds_per_tflop": {"vision": vision_rate * 1e12, "prefill": prefill_rate * 1e12},
              "rows": out_rows}
    Path(args.out).write_text(json.dumps(result, indent=2))
    for r in out_rows:
        print(f"{r['setting']:>6} tokens {r['tokens_in_prompt']:>6} TTFT~{r['ttft_s_projected']:8.1f}s x{r['ttft_speedup']:5.1f} "
              f"KV {r['kv_bytes'] / 2**20:7.1f} MiB ({r['kv_ratio']:.1%}) overhead {r['overhead_share']:.1%}")


if __name__ == "__main__":
    main()
