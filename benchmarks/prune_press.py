"""TTFT, decode speed and KV bytes: full prompt vs pre-LLM plan vs + FastV vs + SnapKV + fp8 cache.

Builds the LLM of a published video-MLLM architecture with random weights from its config (no
download): by default the Qwen2-0.5B language model of ``llava-onevision-0.5b`` (24 layers,
hidden 896, 14 heads, 2 KV heads, vocab 152000), or ``--arch qwen2.5-vl-3b`` (36 layers, hidden
2048). The prompt is realistic in shape: a chat header, ``--frames`` frames of
``--tokens-per-frame`` visual embeddings (random, at the embedding table's scale) and a question.
Only the LLM runs (vision encoding is the same for every row except the plan row, which would
encode fewer frames: not counted here, see benchmarks/ttft.py).

Rows, all in one process so they compare as ratios:

  full        every frame's tokens
  plan        the pre-LLM plan keeps ``--plan`` of the visual tokens (uniform frames, original positions)
  plan+fastv  + FastV inside the LLM (``--prune``, default fastv:k=2,keep=0.5)
  plan+fastv+snapkv+fp8  + the decoding cache pressed (``--kv``, default snapkv:ratio=0.25+quantize:bits=8)

TTFT = prefill forward time (first token's logits), decode tokens/s over the remaining steps, KV
bytes really held after generation (quantized entries at their packed size), prefill FLOPs
estimated per layer from the rows each layer processed. Measured by the call's `CacheLayout`
(its `CallObserver`), the same one the pruners and presses are added to.

    python benchmarks/prune_press.py                     # ~2-5 min on 2 CPU cores (fp32)
    python benchmarks/prune_press.py --frames 32 --tokens-per-frame 196 --arch qwen2.5-vl-3b --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from types import SimpleNamespace

import torch

from vidsift.bench.machine import machine_info
from vidsift.pipeline import CacheLayout
from vidsift.pipeline.press import PRESSES
from vidsift.pipeline.prune import PRUNERS
from vidsift.pipeline.types import ModelInputs

# Published text configs (Hub config.json): llava-hf/llava-onevision-qwen2-0.5b-ov-hf, Qwen/Qwen2.5-VL-3B-Instruct
TEXT_CONFIGS = {
    "llava-onevision-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                                 num_key_value_heads=2, vocab_size=152000, tie_word_embeddings=True),
    "qwen2.5-vl-3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                          num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
}


def build_llm(arch: str, dtype: torch.dtype, attn: str, seed: int = 0) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(**TEXT_CONFIGS[arch], max_position_embeddings=32768, rope_theta=1_000_000.0,
                      rms_norm_eps=1e-6, attn_implementation=attn)
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = Qwen2ForCausalLM(cfg).eval()
    finally:
        torch.set_default_dtype(old)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = None
    return model


def make_prompt(model, *, frames: int, per_frame: int, keep_frames: list[int] | None, seed: int = 0) -> ModelInputs:
    """Chat header + visual tokens of the kept frames (original positions) + question, as embeddings."""
    g = torch.Generator().manual_seed(seed)
    emb = model.get_input_embeddings()
    head = torch.randint(1000, 50000, (14,), generator=g)
    tail = torch.randint(1000, 50000, (24,), generator=g)
    std = float(emb.weight[:1000].detach().float().std())
    visual = torch.randn(frames, per_frame, emb.weight.shape[1], generator=g) * std  # (F, T, D)
    keep = list(range(frames)) if keep_frames is None else keep_frames
    vis = visual[keep].flatten(0, 1).to(emb.weight.dtype)
    with torch.no_grad():
        embeds = torch.cat([emb(head), vis, emb(tail)])[None]  # (1, L, D)
    vis_pos = torch.cat([len(head) + i * per_frame + torch.arange(per_frame) for i in keep])
    full_len = len(head) + frames * per_frame
    pos = torch.cat([torch.arange(len(head)), vis_pos, full_len + torch.arange(len(tail))])[None]
    L = embeds.shape[1]
    mask = torch.zeros(1, L, dtype=torch.bool)
    mask[0, len(head):len(head) + len(vis)] = True
    kwargs = dict(inputs_embeds=embeds, attention_mask=torch.ones(1, L, dtype=torch.long), position_ids=pos)
    return ModelInputs(kwargs=kwargs, visual_mask=mask)


def measure(model, inputs: ModelInputs, members: list, *, new_tokens: int) -> dict:
    from transformers import DynamicCache

    adapter = SimpleNamespace(model=model, decoder_layers=model.model.layers)
    kwargs = dict(inputs.kwargs, past_key_values=DynamicCache(config=model.config))
    t0 = time.perf_counter()
    with contextlib.ExitStack() as st, torch.no_grad():
        layout = st.enter_context(CacheLayout(adapter, inputs))
        stats = layout.observe()
        for m in members:
            layout.add(m)
        model.generate(**kwargs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    stats["wall_s"] = time.perf_counter() - t0
    stats["prompt_len"] = int(inputs.visual_mask.shape[1])
    stats["visual_tokens"] = int(inputs.visual_mask.sum())
    return stats


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="llava-onevision-0.5b", choices=sorted(TEXT_CONFIGS))
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--tokens-per-frame", type=int, default=49, help="LLaVA-OneVision video: 7x7 after pooling")
    ap.add_argument("--plan", type=float, default=0.25, help="share of frames the pre-LLM plan keeps")
    ap.add_argument("--prune", default="fastv:k=2,keep=0.5")
    ap.add_argument("--kv", default="snapkv:ratio=0.25+quantize:bits=8")
    ap.add_argument("--new-tokens", type=int, default=12)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="float32 is vidsift's CPU default (bf16 matrix-vector products are slow on many CPUs)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per row; the best TTFT and decode speed are kept")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = list(os.getloadavg())
    dtype = getattr(torch, args.dtype)
    model = build_llm(args.arch, dtype, args.attn)
    n_keep = max(1, round(args.plan * args.frames))
    planned = sorted({round(i * (args.frames - 1) / max(n_keep - 1, 1)) for i in range(n_keep)})
    full = make_prompt(model, frames=args.frames, per_frame=args.tokens_per_frame, keep_frames=None)
    plan = make_prompt(model, frames=args.frames, per_frame=args.tokens_per_frame, keep_frames=planned)
    rows = [
        ("full", full, []),
        ("plan", plan, []),
        ("plan+fastv", plan, PRUNERS.build_many(args.prune)),
        ("plan+fastv+snapkv+fp8", plan, PRUNERS.build_many(args.prune) + PRESSES.build_many(args.kv)),
    ]
    warm = make_prompt(model, frames=2, per_frame=8, keep_frames=None)
    measure(model, warm, PRUNERS.build_many(args.prune) + PRESSES.build_many(args.kv), new_tokens=2)  # warm-up
    results = []
    per_row: dict[str, list] = {name: [] for name, _, _ in rows}
    for _ in range(max(1, args.repeat)):  # interleaved, so a busy spell on the machine hits every row
        for name, inputs, members in rows:
            per_row[name].append(measure(model, inputs, members, new_tokens=args.new_tokens))
            print(f"  {name:<24} done in {per_row[name][-1]['wall_s']:.1f} s", file=sys.stderr)
    for name, inputs, members in rows:
        runs = per_row[name]
        s = runs[-1]
        results.append({"config": name, "prompt_len": s["prompt_len"], "visual_tokens": s["visual_tokens"],
                        "ttft_s": min(r["prefill_forward_s"] for r in runs),  # the prefill forward: the first token
                        "ttft_s_median": statistics.median(r["prefill_forward_s"] for r in runs),
                        "ttft_s_each": [r["prefill_forward_s"] for r in runs],
                        "decode_tokens_per_s": max(r["decode_steps_per_s"] for r in runs),  # one token a step
                        "kv_bytes": s["kv_bytes"], "prefill_tflops": s["prefill_flops"] / 1e12,
                        "kv_len_layer0": s["kv_len_per_layer"][0], "kv_len_last": s["kv_len_per_layer"][-1],
                        "wall_s": s["wall_s"]})
    base = results[0]
    for r in results:  # the speed-up if time followed the prefill FLOPs (TTFT here is the prefill forward)
        r["flops_bound"] = base["prefill_tflops"] / r["prefill_tflops"]
        r["ttft_speedup"] = base["ttft_s"] / r["ttft_s"]
        r["ttft_speedup_median"] = base["ttft_s_median"] / r["ttft_s_median"]
        r["ttft_speedup_each"] = [b / x for b, x in zip(base["ttft_s_each"], r["ttft_s_each"])]
    print(f"\n{args.arch} LLM (random weights, {args.dtype}, {args.attn}), {args.frames} frames x "
          f"{args.tokens_per_frame} tokens, {args.new_tokens} new tokens, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    header = f"{'config':<24}{'prompt':>7}{'TTFT s':>9}{'x':>7}{'decode tok/s':>14}{'KV MB':>9}{'x':>7}{'TFLOPs':>8}"
    print(header)
    for r in results:
        print(f"{r['config']:<24}{r['prompt_len']:>7}{r['ttft_s']:>9.2f}{base['ttft_s'] / r['ttft_s']:>6.1f}x"
              f"{r['decode_tokens_per_s']:>14.2f}{r['kv_bytes'] / 2**20:>9.2f}{base['kv_bytes'] / r['kv_bytes']:>6.1f}x"
              f"{r['prefill_tflops']:>8.2f}")
    out = {"arch": args.arch, "dtype": args.dtype, "attn": args.attn, "frames": args.frames,
           "tokens_per_frame": args.tokens_per_frame, "new_tokens": args.new_tokens, "prune": args.prune,
           "kv": args.kv, "plan": args.plan, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "load_before": load_before, "machine": machine_info(), "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
