#!/usr/bin/env python3
"""Turns one GPU visit's measurements into the markdown tables of docs/gpu-benchmarks.md.

Inputs: bench.jsonl (strata_cuda_model_bench and hf_train_bench.py lines), analytics.json (the
app's FLOPs per token and roofline predictions, from prepare.py) and profile.jsonl (per-layer
profile rows of `strata-engine profile --json`). Prints:
  - training: tokens/s, achieved model TFLOP/s and MFU against the measured BF16 GEMM peak
    (model FLOPs per token from the analytics' convention), the roofline's predicted tokens/s,
    and Hugging Face NemotronH's tokens/s on the same GPU as a ratio;
  - FP8 against BF16 step time;
  - decode tokens/s against context for the hybrid and the attention+MoE model, one table per
    batch (fastest path of each figure, named), their ratio, and the roofline's predictions;
  - per block kind, the profile of one training or decode step (where the time goes).
Figures that were not measured print as "-". Usage: summarize.py BENCH.jsonl ANALYTICS.json
[PROFILE.jsonl ...] (one table per profile file, by block kind). Not a test; asserts nothing.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def read_lines(path: str) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.{digits}f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.{digits}f}k"
    return f"{value:.{digits}f}"


def stem(path: str) -> str:
    name = Path(path).name
    return name.split(".")[0]


def main() -> None:
    bench = read_lines(sys.argv[1])
    analytics = json.loads(Path(sys.argv[2]).read_text())["models"]
    profiles = sys.argv[3:]
    peak = next((r["tflops"] for r in bench if r.get("mode") == "peak"), None)
    print("## Training throughput (tokens/s, model FLOPs utilization)")
    print()
    print(f"Measured BF16 GEMM peak (torch.matmul 8192^3, bf16 in/out): {fmt(peak)} TFLOP/s." if peak else
          "BF16 GEMM peak: not measured.")
    print()
    print("| model | params | B x T | engine GEMM | engine step s | engine tokens/s | model TFLOP/s | MFU "
          "| roofline tokens/s | measured / roofline | engine peak GiB | HF NemotronH tokens/s | engine / HF |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    hf = {stem(r["config"]): r for r in bench if r.get("mode") == "hf_train"}
    step_by = {}
    for r in bench:
        if r.get("mode") != "train":
            continue
        name = stem(r["doc"])
        # a policy variant has its base model's FLOPs (the policy changes arithmetic, not the model)
        a = analytics.get(name) or analytics.get(name.split("-policy")[0].rsplit("-", 1)[0], {}) if r.get("policy") \
            else analytics.get(name, {})
        flops = a.get("training_flops_per_token")
        tflops = r["tokens_per_s"] * flops / 1e12 if flops else None
        mfu = tflops / peak if tflops and peak else None
        predicted = a.get("predicted_train_tokens_per_s")
        h = hf.get(name)
        micro = r.get("microbatches", 1)
        if micro == 1 and not r.get("head_chunk_rows") and not r.get("policy"):  # FP8 table: first plain run
            step_by.setdefault((name, r["gemm"]), r["step_s"])
        shape = f"{r['batch']} x {r['seq_len']}" + (f" (x{micro} accumulated)" if micro > 1 else "")
        if r.get("head_chunk_rows"):
            shape += f", head in {r['head_chunk_rows']}-row chunks"
        if r.get("policy"):
            shape += f", policy: {r['policy']}"
        tps = r["tokens_per_s"]
        mfu_text = f"{100 * mfu:.1f}%" if mfu else "-"
        vs_roofline = f"{tps / predicted:.2f}" if predicted else "-"
        hf_tps = fmt(h["tokens_per_s"]) if h else "-"
        vs_hf = f"{tps / h['tokens_per_s']:.2f}x" if h else "-"
        print(f"| {name} | {fmt(r['params'])} | {shape} | {r['gemm']} | {r['step_s']:.3f} "
              f"| {fmt(tps)} | {fmt(tflops)} | {mfu_text} | {fmt(predicted)} | {vs_roofline} "
              f"| {r['peak_bytes'] / 2**30:.1f} | {hf_tps} | {vs_hf} |")
    for name, h in hf.items():
        kernels = "yes" if h["mamba_fast_path"] else "no (PyTorch path)"
        print(f"\nHF {name}: {fmt(h['tokens_per_s'])} tokens/s, step {h['step_s']:.3f} s, peak memory "
              f"{h['peak_bytes'] / 2**30:.1f} GiB, Mamba-2 CUDA kernels: {kernels}, transformers {h['transformers']}, "
              f"torch {h['torch']}.")
    print()
    print("## FP8 (e4m3, per-tensor scaling) against BF16 GEMMs")
    print()
    print("| model | bf16 step s | fp8 step s | fp8 / bf16 |")
    print("|---|---|---|---|")
    for name in sorted({n for n, _ in step_by}):
        b, f = step_by.get((name, "bf16")), step_by.get((name, "fp8"))
        b_text = f"{b:.3f}" if b else "-"
        f_text = f"{f:.3f}" if f else "-"
        ratio_text = f"{f / b:.2f}" if b and f else "-"
        print(f"| {name} | {b_text} | {f_text} | {ratio_text} |")
    print_decode(bench, analytics)
    for path in profiles:
        print_profile(read_lines(path))


def print_decode(bench: list[dict], analytics: dict) -> None:
    """One table per decode batch: per model and context the fastest of the bench's paths (graph:
    CUDA graph replay, greedy: device argmax op by op, logits: logits download + host argmax), named
    beside each figure; roofline columns where analytics.json predicted that batch. Lines run with
    decode kernel switches set ("env") go to an A/B table against the defaults instead."""
    best: dict[tuple[int, str, int], dict] = {}
    variants: dict[tuple[int, str, int, str], dict] = {}  # A/B runs with kernel switches set
    for r in bench:
        if r.get("mode") != "decode":
            continue
        key = (r.get("batch", 8), stem(r["doc"]), r["context"])
        table = best if not r.get("env") else variants
        key = key if not r.get("env") else key + (r["env"],)
        if key not in table or r["tokens_per_s"] > table[key]["tokens_per_s"]:
            table[key] = r
    for batch in sorted({b for b, _, _ in best}):
        print()
        print(f"## Decode tokens/s against context (batch {batch}; KV cache sized for the context; "
              "fastest path of each figure in parentheses)")
        print()
        print("| context | hybrid tokens/s | attention+MoE tokens/s | hybrid / attention+MoE | roofline hybrid "
              "| roofline attention+MoE | roofline ratio |")
        print("|---|---|---|---|---|---|---|")

        def roofline(model: str, context: int) -> float | None:
            entry = analytics.get(model, {})
            by_batch = entry.get("decode_by_batch") or ({str(entry.get("batch")): entry.get("decode", {})})
            return by_batch.get(str(batch), {}).get(str(context), {}).get("tokens_per_s")

        for c in sorted({c for b, _, c in best if b == batch}):
            h, a = best.get((batch, "decode-hybrid", c)), best.get((batch, "decode-attention-moe", c))
            ph, pa = roofline("decode-hybrid", c), roofline("decode-attention-moe", c)
            ratio = f"{h['tokens_per_s'] / a['tokens_per_s']:.2f}x" if h and a else "-"
            predicted_ratio = f"{ph / pa:.2f}x" if ph and pa else "-"
            h_text = f"{fmt(h['tokens_per_s'])} ({h.get('path', '?')})" if h else "-"
            a_text = f"{fmt(a['tokens_per_s'])} ({a.get('path', '?')})" if a else "-"
            print(f"| {c} | {h_text} | {a_text} | {ratio} | {fmt(ph)} | {fmt(pa)} | {predicted_ratio} |")
    if variants:
        print()
        print("## Decode kernels A/B (tokens/s, fastest path; runs with kernel switches set against the defaults)")
        print()
        print("| model | batch | context | switches | with switches | defaults | defaults / switches |")
        print("|---|---|---|---|---|---|---|")
        for (batch, model, context, env), v in sorted(variants.items()):
            d = best.get((batch, model, context))
            gain = f"{d['tokens_per_s'] / v['tokens_per_s']:.2f}x" if d else "-"
            d_text = f"{fmt(d['tokens_per_s'])} ({d.get('path', '?')})" if d else "-"
            print(f"| {model} | {batch} | {context} | {env} | {fmt(v['tokens_per_s'])} ({v.get('path', '?')}) "
                  f"| {d_text} | {gain} |")


def print_profile(profile: list[dict]) -> None:
    """Per block kind: layers, mean forward/backward ms per layer, share of the step."""
    rows = [r for r in profile if r.get("op") == "block"]
    if not rows:
        return
    total = next((r for r in profile if r.get("op") == "total"), None)
    mode = rows[0].get("mode", "train")
    print()
    what = "one training step" if mode == "train" else f"one {mode} step"
    print(f"## Per-layer profile of {what} (batch {rows[0]['batch']}, context {rows[0]['context']})")
    print()
    print("| kind | layers | fwd ms / layer | bwd ms / layer | ms (all layers) | share of step | GEMM TFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    kinds: dict[str, list[dict]] = {}
    for r in rows:
        kinds.setdefault(r["kind"], []).append(r)
    step_ms = total["ms"] if total else None  # "ms" is one step (the mean over the timed steps)
    for kind, group in kinds.items():
        n = len(group)
        fwd = sum(r["fwd_ms"] for r in group)
        bwd = sum(r["bwd_ms"] for r in group)
        flops = sum(r["flops"] for r in group)
        rate = flops / ((fwd + bwd) / 1e3) / 1e12 if fwd + bwd > 0 else None
        share = f"{100 * (fwd + bwd) / step_ms:.1f}%" if step_ms else "-"
        print(f"| {kind} | {n} | {fwd / n:.3f} | {bwd / n:.3f} | {fwd + bwd:.2f} | {share} | {fmt(rate)} |")
    if total:
        print(f"\nStep {step_ms:.2f} ms, {fmt(total['tokens_per_s'])} tokens/s, peak memory "
              f"{total.get('bytes', 0) / 2**30:.1f} GiB.")

if __name__ == "__main__":
    main()
