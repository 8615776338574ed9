#!/usr/bin/env python3
"""Training throughput of Hugging Face transformers' NemotronH (PyTorch) for the GPU visit.

Builds NemotronHForCausalLM from a config.json (written by `strata convert DOC --to hf` on a machine
with Node and carried to the GPU box), in bfloat16 on the GPU, and trains it with fused AdamW on
random token batches of the same batch size and sequence length the engine used. Timing: CUDA
events around each optimizer step after warm-up steps; prints one JSON line with the median step
time and tokens/s. `--peak` instead measures the GPU's dense BF16 GEMM rate with torch.matmul
(the denominator of MFU). transformers' NemotronH uses its PyTorch Mamba-2 path when mamba_ssm /
causal_conv1d are not installed; the JSON says which path ran.

Usage: hf_train_bench.py CONFIG.json B T STEPS   |   hf_train_bench.py --peak
Nothing here asserts on time. Not the engine's benchmark (strata_cuda_model_bench).
"""
from __future__ import annotations

import importlib.util
import json
import statistics
import sys


def measure_peak() -> None:
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    reps = 20
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000.0 / reps
    print(json.dumps({"mode": "peak", "gemm": "bf16", "n": n, "tflops": 2 * n**3 / seconds / 1e12,
                      "device": torch.cuda.get_device_name(0), "torch": torch.__version__}), flush=True)


def train(config_path: str, batch: int, seq_len: int, steps: int) -> None:
    import torch
    import transformers
    from transformers import NemotronHConfig, NemotronHForCausalLM

    with open(config_path) as f:
        fields = {k: v for k, v in json.load(f).items() if k not in ("architectures", "model_type")}
    # transformers versions differ in which of the two layer-layout fields they take (older ones
    # derive layers_block_type from hybrid_override_pattern and refuse it as an argument)
    attempts = [fields, {k: v for k, v in fields.items() if k != "layers_block_type"},
                {k: v for k, v in fields.items() if k != "hybrid_override_pattern"}]
    for attempt, kwargs in enumerate(attempts):
        try:
            config = NemotronHConfig(**kwargs)
            break
        except Exception as error:  # validation errors differ across versions (huggingface_hub wraps them)
            print(f"hf_train_bench: NemotronHConfig refused the config ({error}); retrying", file=sys.stderr)
            if attempt == len(attempts) - 1:
                raise
    torch.manual_seed(0)
    model = NemotronHForCausalLM(config).to(device="cuda", dtype=torch.bfloat16)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    # transformers takes the CUDA Mamba-2 kernels when both packages import, else its PyTorch path
    fast_path = all(importlib.util.find_spec(name) is not None for name in ("mamba_ssm", "causal_conv1d"))
    generator = torch.Generator(device="cuda").manual_seed(1)
    times, losses = [], []
    warmup = min(2, steps - 1)
    for step in range(steps):
        ids = torch.randint(0, config.vocab_size, (batch, seq_len), device="cuda", generator=generator)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = model(input_ids=ids, labels=ids)  # the model shifts the labels by one for the loss
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        end.record()
        torch.cuda.synchronize()
        if step >= warmup:
            times.append(start.elapsed_time(end) / 1000.0)
        losses.append(float(out.loss.detach()))
    step_s = statistics.median(times)
    print(json.dumps({
        "mode": "hf_train", "config": config_path, "batch": batch, "seq_len": seq_len, "steps_timed": len(times),
        "params": sum(p.numel() for p in model.parameters()), "step_s": step_s,
        "tokens_per_s": batch * seq_len / step_s, "first_loss": losses[0], "last_loss": losses[-1],
        "mamba_fast_path": fast_path, "peak_bytes": torch.cuda.max_memory_allocated(),
        "transformers": transformers.__version__, "torch": torch.__version__,
    }), flush=True)


def main() -> None:
    if sys.argv[1:] == ["--peak"]:
        measure_peak()
        return
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    train(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))


if __name__ == "__main__":
    main()
