#!/usr/bin/env python3
"""`npm run bench`: training throughput of the Strata engine against PyTorch on the same model.

What it does, in one run, with the same thread count for both sides:
  1. builds the native engine CLI and the GEMM bench in build/bench (CMake, Release, -j2);
  2. measures the machine's GEMM peak: a large fp32 torch.matmul (oneDNN/MKL) and the engine's own
     GEMM on a large square problem, and the engine's GEMM on the model's training shapes;
  3. trains the template (default tiny-hybrid) for --steps steps with `strata-engine train`
     (precision policy as the template says, and again with the policy forced to fp32), timing the
     steady-state steps from the engine's own step events;
  4. exports the same design with `strata export-hf` and trains transformers' NemotronHForCausalLM
     built from that config.json (fp32, AdamW, same batch size and sequence length, byte windows of
     the bundled corpus), timing the same steps with time.perf_counter;
  5. prints tokens/s of both, the ratio, and the engine's GEMM GFLOP/s against the measured peak.
     `--json FILE` also writes every number as JSON. With `--rounds N` the training runs of steps 3
     and 4 repeat N times, interleaved, and the report shows every round's ratios and the round with
     the median ratio (on a shared machine the load changes between runs; one run's ratio can be
     off by 1.5x).

Nothing here asserts on time: the numbers are for reading and for docs/cpu-benchmarks.md.
Not here: the engine's correctness tests (ctest, tests/python) or the training-quality tests
(tests/training).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / "build" / "bench"


def fail(message: str) -> None:
    print(f"train-bench: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd: list[str], env: dict[str, str] | None = None, capture: bool = True) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, text=True, capture_output=capture)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip().splitlines()[-5:] if capture else []
        fail(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}\n" + "\n".join(detail))
    return result.stdout if capture else ""


def build_engine(jobs: int) -> tuple[Path, Path]:
    """Configures and builds the engine CLI and the GEMM bench; returns their paths."""
    run(["cmake", "-S", ROOT / "engine" / "native", "-B", BUILD_DIR, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         "-DSTRATA_BUILD_TESTS=OFF", "-DSTRATA_BUILD_BENCH=ON"])
    run(["cmake", "--build", BUILD_DIR, "-j", str(jobs), "--target", "strata-engine", "strata_gemm_bench"])
    return BUILD_DIR / "strata-engine", BUILD_DIR / "strata_gemm_bench"


def load_template(name: str) -> dict:
    path = ROOT / "templates" / f"{name}.json"
    if not path.exists():
        fail(f"{path}: no such template (templates/*.json)")
    return json.loads(path.read_text())


def flat_blocks(stack: list[dict]) -> list[dict]:
    blocks: list[dict] = []
    for item in stack:
        if item.get("kind") == "repeat":
            for _ in range(item["count"]):
                blocks.extend(flat_blocks(item["blocks"]))
        else:
            blocks.append(item)
    return blocks


def training_gemm_shapes(doc: dict) -> list[tuple[str, int, int, int, int, int]]:
    """The fprop/dgrad/wgrad GEMM shapes (label, M, N, K, trans_a, trans_b) of the design's layers at
    the training batch (tokens = batch * seq_len), each distinct shape once."""
    model, training = doc["model"], doc["pipeline"]["training"]
    tokens = training["batch_size"] * training["seq_len"]
    d = model["d_model"]
    linears: list[tuple[str, int, int, int]] = []  # (role, rows, in, out)
    for block in flat_blocks(model["stack"]):
        kind = block["kind"]
        if kind == "mamba2":
            inner = block["heads"] * block["head_dim"]
            linears.append(("mamba.in_proj", tokens, d, 2 * inner + 2 * block["groups"] * block["d_state"] + block["heads"]))
            linears.append(("mamba.out_proj", tokens, inner, d))
        elif kind == "attention":
            hd = block["head_dim"]
            linears.append(("attention.qkv", tokens, d, (block["heads"] + 2 * block["kv_heads"]) * hd))
            linears.append(("attention.out", tokens, block["heads"] * hd, d))
        elif kind == "moe":
            routed_rows = tokens * block["top_k"] // block["experts"]
            linears.append(("moe.expert_fc1", routed_rows, d, block["expert_ffn"]))
            linears.append(("moe.expert_fc2", routed_rows, block["expert_ffn"], d))
            if block.get("shared_experts", 0):
                linears.append(("moe.shared_fc1", tokens, d, block["shared_ffn"]))
                linears.append(("moe.shared_fc2", tokens, block["shared_ffn"], d))
        elif kind == "mlp":
            linears.append(("mlp.fc1", tokens, d, block["ffn"]))
            linears.append(("mlp.fc2", tokens, block["ffn"], d))
    linears.append(("head", tokens, d, model["vocab_size"]))
    shapes, seen = [], set()
    for role, rows, fan_in, fan_out in linears:
        for label, m, n, k, ta, tb in ((f"{role} fprop", rows, fan_out, fan_in, 0, 1),
                                       (f"{role} dgrad", rows, fan_in, fan_out, 0, 0),
                                       (f"{role} wgrad", fan_out, fan_in, rows, 1, 0)):
            if (m, n, k, ta, tb) not in seen:
                seen.add((m, n, k, ta, tb))
                shapes.append((label, m, n, k, ta, tb))
    return shapes


def engine_gemm_rates(gemm_bench: Path, shapes, env) -> list[dict]:
    spec = ";".join(f"{label.replace(' ', '_')}:{m},{n},{k},{ta},{tb}" for label, m, n, k, ta, tb in shapes)
    out = run([gemm_bench, "5", "--best-only", "--json", "--shapes", spec], env=env)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def torch_peak_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def engine_train(engine: Path, doc: dict, steps: int, warmup: int, env: dict, work: Path, label: str) -> dict:
    """Trains `doc` with the native CLI; returns steady-state throughput from its step events."""
    doc = copy.deepcopy(doc)
    training = doc["pipeline"]["training"]
    training.update({"steps": steps, "eval_every": 0, "checkpoint_every": 0})
    doc_path = work / f"{label}.json"
    doc_path.write_text(json.dumps(doc))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run([engine, "train", doc_path, "--data", ROOT / "assets" / "corpus" / "train.txt", "--steps", str(steps),
               "--run-dir", work / f"run-{label}", "--json"], env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    step_events = [e for e in events if e.get("type") == "step"]
    if len(step_events) != steps:
        fail(f"engine ({label}): expected {steps} step events, got {len(step_events)}")
    timed = step_events[warmup:]
    seconds = [e["tokens"] / e["tokens_per_s"] for e in timed]
    tokens = sum(e["tokens"] for e in timed)
    return {
        "tokens_per_s": tokens / sum(seconds),
        "median_step_s": statistics.median(seconds),
        "cpu_s_total": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "first_loss": step_events[0]["loss"],
        "last_loss": step_events[-1]["loss"],
        "tokens_per_step": step_events[0]["tokens"],
    }


def engine_gemm_flops_per_step(engine: Path, doc_path: Path, batch: int, seq_len: int, env: dict) -> float:
    """GEMM FLOPs of one training step (forward + backward), from the engine's profile events."""
    out = run([engine, "profile", doc_path, "--mode", "train", "--context", str(seq_len), "--batch", str(batch), "--json"], env=env)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return float(sum(r.get("flops", 0) for r in rows if r.get("type") == "profile" and r.get("mode") == "train"))


def export_hf(doc_path: Path, out_dir: Path) -> None:
    run(["node", ROOT / "engine" / "cli" / "bin.mjs", "export-hf", doc_path, "--out", out_dir, "--force"])


def torch_train(hf_dir: Path, doc: dict, steps: int, warmup: int, threads: int) -> dict:
    """Trains transformers' NemotronHForCausalLM (fp32) on byte windows of the corpus."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    training = doc["pipeline"]["training"]
    batch, seq_len = training["batch_size"], training["seq_len"]
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.train()
    vocab = model.config.vocab_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.get("lr", 3e-3), weight_decay=0.1, betas=(0.9, 0.95))
    warmup_steps = max(1, training.get("warmup_steps", 1))  # the engine's linear warm-up, so losses compare
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))
    corpus = np.frombuffer((ROOT / "assets" / "corpus" / "train.txt").read_bytes(), dtype=np.uint8)
    rng = np.random.default_rng(0)
    seconds, losses = [], []
    cpu_before = time.process_time()
    for _ in range(steps):
        starts = rng.integers(0, corpus.size - seq_len - 1, size=batch)
        window = torch.from_numpy(np.stack([corpus[s:s + seq_len + 1] for s in starts]).astype(np.int64))
        start = time.perf_counter()
        logits = model(input_ids=window[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), window[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        seconds.append(time.perf_counter() - start)
        losses.append(loss.item())
    timed = seconds[warmup:]
    return {
        "tokens_per_s": batch * seq_len * len(timed) / sum(timed),
        "median_step_s": statistics.median(timed),
        "cpu_s_total": time.process_time() - cpu_before,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "tokens_per_step": batch * seq_len,
    }


def report_engine(name: str, result: dict) -> None:
    print(f"  engine ({name}): {result['tokens_per_s']:.0f} tokens/s, median step {result['median_step_s']:.3f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", default="tiny-hybrid", help="template name under templates/")
    parser.add_argument("--steps", type=int, default=12, help="training steps per side (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="leading steps left out of the timing (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    parser.add_argument("--skip-build", action="store_true", help="use the binaries already in build/bench")
    parser.add_argument("--skip-fp32", action="store_true", help="do not also train the engine with an fp32 policy")
    parser.add_argument("--with-scalar", action="store_true",
                        help="also train the engine (as designed) on its scalar reference kernels (STRATA_CPU_SIMD=scalar)")
    parser.add_argument("--hf-dir", type=Path, help="an HF folder already exported from the template with `strata export-hf` "
                        "(for machines without Node); default: export it now")
    parser.add_argument("--jobs", type=int, default=2, help="parallel compile jobs for the engine build (default 2)")
    parser.add_argument("--omp-wait-policy", choices=["default", "passive", "active"], default="default",
                        help="OMP_WAIT_POLICY for both sides (default: leave the environment as it is). On a machine "
                             "shared with other work, spinning OpenMP threads (the default) can slow both sides badly")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the engine runs and PyTorch this many times, interleaved round by round, and "
                             "report the round with the median as-designed ratio plus every round's ratios: steadier on "
                             "a machine whose load changes (default 1)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        fail(f"--steps ({args.steps}) must exceed --warmup ({args.warmup})")
    if args.rounds < 1:
        fail("--rounds must be at least 1")

    if args.omp_wait_policy != "default":  # before torch is imported: its OpenMP runtime reads it once
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    doc = load_template(args.template)
    training = doc["pipeline"]["training"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    if args.skip_build:
        engine, gemm_bench = BUILD_DIR / "strata-engine", BUILD_DIR / "strata_gemm_bench"
        if not engine.exists() or not gemm_bench.exists():
            fail(f"--skip-build: {engine} or {gemm_bench} is missing; run without --skip-build")
    else:
        print(f"building the engine in {BUILD_DIR} ...", flush=True)
        engine, gemm_bench = build_engine(jobs=args.jobs)

    load = os.getloadavg()[0]
    print(f"template {args.template}: batch {training['batch_size']} x seq {training['seq_len']}, {args.steps} steps "
          f"({args.warmup} warm-up), {args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
          f"load average {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    if load > (os.cpu_count() or 1):
        print("note: the machine is busy (load average above the CPU count); the numbers below are noisy", flush=True)

    work = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    try:
        doc_path = work / "design.json"
        doc_path.write_text(json.dumps(doc))
        peak_torch = torch_peak_gflops(args.threads)
        square = engine_gemm_rates(gemm_bench, [("square_2048", 2048, 2048, 2048, 0, 0)], env)[0]["gflops"]
        shape_rates = engine_gemm_rates(gemm_bench, training_gemm_shapes(doc), env)
        flops_per_step = engine_gemm_flops_per_step(engine, doc_path, training["batch_size"], training["seq_len"], env)

        hf_dir = args.hf_dir
        if hf_dir is None:
            hf_dir = work / "hf"
            export_hf(doc_path, hf_dir)
        elif not (hf_dir / "config.json").exists():
            fail(f"--hf-dir {hf_dir}: no config.json there (make it with: strata export-hf {args.template} --out DIR)")
        rounds = []  # (engine runs, pytorch result) per round
        for round_index in range(args.rounds):
            if args.rounds > 1:
                print(f"round {round_index + 1} of {args.rounds}", flush=True)
            engine_runs = {"as designed": engine_train(engine, doc, args.steps, args.warmup, env, work, "designed")}
            report_engine("as designed", engine_runs["as designed"])
            if not args.skip_fp32:
                fp32 = copy.deepcopy(doc)
                fp32["model"]["precision"] = {"default": "fp32", "rules": []}
                engine_runs["fp32 policy"] = engine_train(engine, fp32, args.steps, args.warmup, env, work, "fp32")
                report_engine("fp32 policy", engine_runs["fp32 policy"])
            if args.with_scalar:
                scalar_env = {**env, "STRATA_CPU_SIMD": "scalar"}
                engine_runs["scalar kernels"] = engine_train(engine, doc, args.steps, args.warmup, scalar_env, work, "scalar")
                report_engine("scalar kernels", engine_runs["scalar kernels"])
            torch_result = torch_train(hf_dir, doc, args.steps, args.warmup, args.threads)
            print(f"  pytorch: {torch_result['tokens_per_s']:.0f} tokens/s, median step {torch_result['median_step_s']:.3f} s",
                  flush=True)
            rounds.append((engine_runs, torch_result))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def designed_ratio(item):
        runs, torch_run = item
        return runs["as designed"]["tokens_per_s"] / torch_run["tokens_per_s"]

    ordered = sorted(rounds, key=designed_ratio)
    engine_runs, torch_result = ordered[(len(ordered) - 1) // 2]  # the median round (lower median when even)
    if len(rounds) > 1:
        print("\nratios engine / pytorch per round (in the order run):")
        for index, (runs, torch_run) in enumerate(rounds):
            ratios = ", ".join(f"{name} {r['tokens_per_s'] / torch_run['tokens_per_s']:.2f}x" for name, r in runs.items())
            print(f"  round {index + 1}: {ratios} (pytorch {torch_run['tokens_per_s']:.0f} tokens/s)")
        print("the table below is the round with the median as-designed ratio")

    peak = max(peak_torch, square)
    precision = doc["model"].get("precision", {}).get("default", "fp32")
    print("\ntraining throughput (steady-state steps, wall clock)")
    print(f"  {'side':36s} {'tokens/s':>10s} {'step s':>8s} {'tok/CPU-s':>10s} {'loss first->last':>18s}")
    rows = [(f"engine ({name}{', ' + precision if name == 'as designed' else ''})", r) for name, r in engine_runs.items()]
    rows.append(("pytorch NemotronHForCausalLM (fp32)", torch_result))
    for name, r in rows:
        per_cpu = r["tokens_per_step"] * args.steps / r["cpu_s_total"] if r["cpu_s_total"] > 0 else float("nan")
        print(f"  {name:36s} {r['tokens_per_s']:10.0f} {r['median_step_s']:8.3f} {per_cpu:10.0f} "
              f"{r['first_loss']:8.3f} -> {r['last_loss']:.3f}")
    for name, r in engine_runs.items():
        print(f"  ratio engine ({name}) / pytorch: {r['tokens_per_s'] / torch_result['tokens_per_s']:.2f}x")

    designed = engine_runs["as designed"]
    achieved = flops_per_step * designed["tokens_per_s"] / designed["tokens_per_step"] / 1e9
    print("\nGEMM (fp32 GFLOP/s)")
    print(f"  machine peak, torch.matmul 2048^3 ({args.threads} threads): {peak_torch:8.1f}")
    print(f"  engine GEMM 2048^3:                           {square:8.1f}  ({square / peak:.0%} of peak)")
    shape_flops = [2.0 * r["m"] * r["n"] * r["k"] for r in shape_rates]
    mean_rate = sum(shape_flops) / sum(f / r["gflops"] for f, r in zip(shape_flops, shape_rates))
    print(f"  engine GEMM on the {len(shape_rates)} training shapes (FLOP-weighted): {mean_rate:6.1f}  ({mean_rate / peak:.0%} of peak)")
    for r in shape_rates:
        print(f"    {r['shape']:28s} {r['m']:5d}x{r['n']:<5d}x{r['k']:<5d} {r['gflops']:7.1f}")
    print(f"  GEMM FLOPs per training step: {flops_per_step / 1e9:.1f} G; achieved over the whole step "
          f"(as designed): {achieved:.1f} GFLOP/s ({achieved / peak:.0%} of peak)")

    if args.json:
        report = {"template": args.template, "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                  "load_average": load, "engine": engine_runs, "pytorch": torch_result,
                  "rounds": [{"engine": runs, "pytorch": torch_run} for runs, torch_run in rounds],
                  "peak_gflops_torch": peak_torch, "engine_gemm_square_gflops": square,
                  "engine_gemm_shapes": shape_rates, "engine_gemm_shapes_gflops": mean_rate, "gemm_flops_per_step": flops_per_step,
                  "achieved_step_gflops": achieved}
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
