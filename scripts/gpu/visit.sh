#!/usr/bin/env bash
# One visit to the GPU machine (an H200 with nvcc, CMake, cuBLASLt, PyTorch and transformers, no
# Node): builds the native engine with the CUDA backend, checks it, times it against Hugging Face
# transformers on the same GPU, and packs these files into $OUT/visit.tgz (results.md also beside it):
#   env.txt            GPU, driver, toolkit, CMake, PyTorch and transformers versions
#   build.log          configure + build output
#   harness.log        the op harness on every backend (CPU and cuda:0; float64 references)
#   cli.log            the native CLI on the GPU: train (--backend cuda), generate, profile
#   bench.jsonl        one JSON object per measurement: engine training steps (bf16 / fp8 GEMMs),
#                      HF NemotronH training steps, the measured BF16 GEMM peak, decode vs context (batch 8 and 64)
#   profile*.jsonl     per-layer profile rows: training step of the ~125M / ~1B hybrid, decode at 16k
#   op_times.log       op-by-op GPU time of one ~1B training step (STRATA_CUDA_OP_TIMES=1)
#   op_times_fp8.log   the same with fp8 GEMMs
#   fp8_probe.log      cuBLASLt's fp8 GEMMs per scaling mode: scale layouts (exact check) and TFLOP/s
#   op_times_decode.log  the same for 8 eager decode steps at 16k (hybrid batch 8 / 64, attention+MoE batch 64)
#   compare.log        CPU-vs-CUDA at training-sized shapes and GPU quantization vs the CPU rules
#   train_compare.csv  tiny-model loss curves, CPU vs CUDA fp32/bf16/fp8 GEMMs (+ train.log)
#   bench.md           GEMM TFLOP/s per mode and SSD / attention CPU-vs-GPU times
#   results.md         the summary: every step's status and the benchmark table (summarize.py)
# Usage (repository root): OUT=/some/dir [STRATA_VISIT_STEPS=harness,engine_1b] scripts/gpu/visit.sh
# Inputs prepared on a machine with Node (python3 scripts/gpu/prepare.py): scripts/gpu/models/*.json
# (benchmark documents), models/analytics.json (FLOPs per token, roofline predictions) and
# models/hf/*.config.json. Steps run in priority order under one deadline (STRATA_VISIT_SECONDS,
# default 520 s); a failing step is recorded and the visit goes on; steps past the deadline are
# skipped and say so. Exit status 0 when build, harness and the CUDA CLI training run passed.
# This script installs nothing and needs no network.
set -uo pipefail

FINAL_OUT="${OUT:?set OUT to the folder that receives the results}"
# Everything is written under $FINAL_OUT/raw and packed into $FINAL_OUT/visit.tgz at the end (the
# device tool brings back at most 8 files); results.md is also copied beside the archive.
OUT="$FINAL_OUT/raw"
mkdir -p "$OUT"
# STRATA_VISIT_STEPS=a,b,c runs only the named steps (configure and build always run).
selected=",${STRATA_VISIT_STEPS:-},"
root="$(cd "$(dirname "$0")/../.." && pwd)"
gpu_dir="$root/scripts/gpu"
models="$gpu_dir/models"
build="${STRATA_GPU_BUILD_DIR:-/tmp/strata-gpu-build}"
started=$(date +%s)
deadline=$((started + ${STRATA_VISIT_SECONDS:-520}))
jobs=$(nproc 2>/dev/null || echo 8)
export OMP_NUM_THREADS="$jobs"

remaining() { echo $((deadline - $(date +%s))); }
# run_step NAME CAP LOG COMMAND...: runs with min(CAP, time left), appends to LOG, records status
declare -A status
order=()
run_step() {
  local name=$1 cap=$2 log=$3
  shift 3
  order+=("$name")
  if [ "$selected" != ",," ] && [ "$name" != configure ] && [ "$name" != build ] && \
     [[ "$selected" != *",$name,"* ]]; then
    status[$name]="not selected"
    return 1
  fi
  local left
  left=$(remaining)
  if [ "$left" -lt 15 ]; then
    status[$name]="skipped (visit time used up)"
    echo "== $name: skipped, visit time used up" >>"$log"
    return 1
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo "== $name (cap ${cap}s): $*" >>"$log"
  local t0=$(date +%s)
  timeout --kill-after=5 "$cap" "$@" >>"$log" 2>&1
  local rc=$?
  local took=$(($(date +%s) - t0))
  if [ $rc -eq 0 ]; then status[$name]="ok (${took}s)"; else status[$name]="FAILED rc=$rc (${took}s)"; fi
  echo "== $name: rc=$rc in ${took}s" >>"$log"
  return $rc
}
# bench_step NAME CAP COMMAND...: like run_step, JSON lines to bench.jsonl, everything else to bench.log
bench_step() {
  local name=$1 cap=$2
  shift 2
  run_step "$name" "$cap" "$OUT/bench.log" bash -c \
    '"$@" | tee -a "$BENCH_LOG" | grep "^{" >>"$BENCH_JSONL"; exit "${PIPESTATUS[0]}"' _ "$@"
}
export BUILD="$build" MODELS="$models"
export BENCH_JSONL="$OUT/bench.jsonl" BENCH_LOG="$OUT/bench.log" PROFILE_JSONL="$OUT/profile.jsonl"

# ---- environment --------------------------------------------------------------------------------
nvcc_bin="$(command -v nvcc || true)"
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host cores: $jobs"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | head -n 3
  echo "nvcc: ${nvcc_bin:-missing}"
  [ -n "$nvcc_bin" ] && "$nvcc_bin" --version | tail -n 2
  cmake --version | head -n 1
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" 2>&1
  echo "git: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown) (a copied tree may carry stale git metadata)"
  # what identifies the files that ran: compare with the same command on a commit's checkout
  echo "source digest: $(cd "$root" && find engine/native scripts/gpu templates -type f | LC_ALL=C sort | \
    xargs sha256sum | sha256sum | cut -c1-16)"
} >"$OUT/env.txt" 2>&1

# ---- build ----------------------------------------------------------------------------------------
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
run_step configure 120 "$OUT/build.log" cmake -S "$root/engine/native" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON -DSTRATA_NATIVE_ARCH=ON ${nvcc_bin:+-DCMAKE_CUDA_COMPILER=$nvcc_bin} \
  "-DSTRATA_CUDA_GENCODE=-gencode=arch=compute_80,code=sm_80;-gencode=arch=compute_90a,code=[sm_90a,compute_90a]"
run_step build 300 "$OUT/build.log" cmake --build "$build" -j "$jobs"

# ---- correctness ------------------------------------------------------------------------------------
run_step harness 90 "$OUT/harness.log" "$build/strata_op_harness"
# CPU vs CUDA at training-sized shapes (multi-chunk SSD, long attention) before any timing
run_step compare 90 "$OUT/compare.log" "$build/strata_cuda_compare"
# The arena hands out unfilled memory for tensors whose first writer sets every element: poisoned with
# NaN, a CUDA training run must keep finite, CPU-tracking losses (a kernel that skips an element shows).
run_step train_compare_poison 90 "$OUT/train.log" env STRATA_ARENA_POISON=1 "$build/strata_cuda_train_compare" \
  "$OUT/train_compare_poison.csv"
# A failed correctness step switches the newest paths of the failing op families back to their previous
# kernels for every later step (named in results.md), so the timings below are of correct code.
fallback=()
if [[ "${status[harness]:-}" == FAILED* || "${status[compare]:-}" == FAILED* || "${status[train_compare_poison]:-}" == FAILED* ]]; then
  failures=$(grep -hiE "FAIL|mismatch|nan" "$OUT/harness.log" "$OUT/compare.log" "$OUT/train.log" 2>/dev/null)
  grep -qi "ssd" <<<"$failures" && fallback+=(STRATA_CUDA_SSD=grouped_v1)
  grep -qi "decode" <<<"$failures" && fallback+=(STRATA_CUDA_DECODE_ATTN=group)
  grep -qi "expert\|moe" <<<"$failures" && fallback+=(STRATA_CUDA_MOE_GEMV=0)
  grep -qi "pack\|gemm" <<<"$failures" && fallback+=(STRATA_CUDA_WEIGHT_PACKS=0 STRATA_CUDA_GEMM_CLEAR_C=1)
  [[ "${status[train_compare_poison]:-}" == FAILED* ]] && fallback+=(STRATA_ARENA_ZERO=1)
  [ ${#fallback[@]} -eq 0 ] && fallback=(STRATA_CUDA_SSD=tiled STRATA_CUDA_DECODE_ATTN=group STRATA_CUDA_MOE_GEMV=0 \
    STRATA_CUDA_WEIGHT_PACKS=0 STRATA_CUDA_GEMM_CLEAR_C=1 STRATA_ARENA_ZERO=1)
  export "${fallback[@]}"
  echo "fallback switches: ${fallback[*]}" >>"$OUT/harness.log"
  run_step harness_fallback 90 "$OUT/harness.log" "$build/strata_op_harness"
  run_step compare_fallback 90 "$OUT/compare.log" "$build/strata_cuda_compare"
fi

# The native CLI on the GPU (the front door): a tiny hybrid on a byte corpus, then generate and profile.
work=$(mktemp -d)
python3 - "$work" <<'PY' 2>>"$OUT/cli.log"
import json, random, sys
work = sys.argv[1]
random.seed(5)
words = ["state", "space", "model", "mamba", "attention", "expert", "router", "token", "chunk", "scan"]
open(f"{work}/corpus.txt", "w").write(" ".join(random.choice(words) for _ in range(60000)))
doc = {"format": "strata", "version": 2, "model": {"name": "tiny-hybrid", "vocab_size": 260, "d_model": 128, "stack": [
  {"kind": "mamba2", "heads": 4, "head_dim": 32, "d_state": 32, "groups": 2, "conv_kernel": 4, "chunk": 32},
  {"kind": "moe", "experts": 8, "top_k": 2, "expert_ffn": 128, "router": {"type": "sigmoid", "expert_bias": True}},
  {"kind": "attention", "heads": 4, "kv_heads": 2, "head_dim": 32, "rope": {"theta": 10000}},
  {"kind": "mamba2", "heads": 4, "head_dim": 32, "d_state": 32, "groups": 2, "conv_kernel": 4, "chunk": 32},
  {"kind": "mlp", "ffn": 256}], "mtp": {"kind": "mtp", "depth": 1, "blocks": [{"kind": "mlp", "ffn": 256}]}},
  "pipeline": {"tokenizer": {"kind": "byte"}, "training": {"steps": 30, "batch_size": 8, "seq_len": 128, "lr": 0.003,
  "warmup_steps": 2, "schedule": "constant", "eval_every": 15}}}
json.dump(doc, open(f"{work}/doc.json", "w"))
# the same design under a Nemotron-3-style per-layer policy: nvfp4 by default, mxfp8 Mamba out_proj,
# fp8_e4m3 attention, bf16 router and last 15% of the stack
doc["model"]["precision"] = {"default": "nvfp4", "rules": [
  {"select": {"roles": ["mamba.out_proj"]}, "format": "mxfp8"},
  {"select": {"kinds": ["attention"]}, "format": "fp8_e4m3"},
  {"select": {"roles": ["moe.router"]}, "format": "bf16"},
  {"select": {"last_percent": 15}, "format": "bf16"}]}
json.dump(doc, open(f"{work}/doc-policy.json", "w"))
PY
run_step cli_train_cuda 90 "$OUT/cli.log" "$build/strata-engine" train "$work/doc.json" --data "$work/corpus.txt" \
  --backend cuda --run-dir "$work/run-cuda"
run_step cli_train_cpu 90 "$OUT/cli.log" "$build/strata-engine" train "$work/doc.json" --data "$work/corpus.txt" \
  --backend cpu --run-dir "$work/run-cpu"
run_step cli_generate_cuda 60 "$OUT/cli.log" bash -c '"$1" generate "$2/doc.json" --backend cuda \
  --checkpoint "$(ls -d "$2"/run-cuda/checkpoints/step_* | tail -n 1)" --prompt "state space " --max-new 40 \
  --speculative' _ "$build/strata-engine" "$work"
run_step cli_profile_cuda 60 "$OUT/cli.log" "$build/strata-engine" profile "$work/doc.json" --backend cuda \
  --mode train,prefill,decode --context 128,512 --batch 4
# The per-layer policy through the front door on the GPU: training with inspected steps (precision
# events from the device path), then speculative decoding (emulated formats inside CUDA graphs)
run_step cli_policy_cuda 120 "$OUT/cli.log" bash -c '"$1" train "$2/doc-policy.json" --data "$2/corpus.txt" \
  --backend cuda --run-dir "$2/run-policy" && echo "precision events: $(grep -c "\"type\":\"precision\"" \
  "$2"/run-policy/events.jsonl)" && "$1" generate "$2/doc-policy.json" --backend cuda --checkpoint \
  "$(ls -d "$2"/run-policy/checkpoints/step_* | tail -n 1)" --prompt "state space " --max-new 40 --speculative' \
  _ "$build/strata-engine" "$work"

# ---- benchmarks (priority order) ---------------------------------------------------------------------
bench_step hf_peak 60 python3 "$gpu_dir/hf_train_bench.py" --peak
bench_step engine_1b 180 "$build/strata_cuda_model_bench" train "$models/hybrid-1b.json" 4 2048 6 bf16,fp8
# the same ~1B step at a larger batch and with gradient accumulation (4 microbatches of B4 per optimizer
# step, the trainer's grad_accum): how much of the B4 step is per-step fixed cost (optimizer, packs)
bench_step engine_1b_b8 120 "$build/strata_cuda_model_bench" train "$models/hybrid-1b.json" 8 2048 5 bf16
bench_step engine_1b_accum4 120 "$build/strata_cuda_model_bench" train "$models/hybrid-1b.json" 4 2048 4 bf16 4
# The training head in row chunks (what a run whose logits pass 4 GiB takes; STRATA_HEAD_CHUNK_ROWS forces
# it): the ~1B step with 2048-row chunks, then the same model with Nemotron 3's 131k vocabulary (4 GiB of
# logits at B4 x 2048, still whole by default) whole and in 2048-row chunks: step time and peak memory
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["model"]["vocab_size"] = 131072
json.dump(d, open(sys.argv[2], "w"))' "$models/hybrid-1b.json" "$work/hybrid-1b-v131k.json" 2>>"$OUT/bench.log"
bench_step engine_1b_head_chunks 150 bash -c \
  'STRATA_HEAD_CHUNK_ROWS=2048 "$1" train "$2/hybrid-1b.json" 4 2048 6 bf16 &&
   "$1" train "$3/hybrid-1b-v131k.json" 4 2048 6 bf16 &&
   STRATA_HEAD_CHUNK_ROWS=2048 "$1" train "$3/hybrid-1b-v131k.json" 4 2048 6 bf16' \
  _ "$build/strata_cuda_model_bench" "$models" "$work"
# The ~1B step under per-layer precision policies, applied as the trainer applies them (bf16 and
# fp8_e4m3 cells natively, nvfp4 / mxfp8 / fp8_e5m2 quantize-dequantized on the GPU before bf16
# GEMMs): Nemotron 3 Nano's NVFP4 policy (templates/), fp8_e4m3 everywhere, mxfp8 everywhere
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
for name, policy in [("nemotron-policy", t["model"]["precision"]), ("fp8-policy", {"default": "fp8_e4m3", "rules": []}),
                     ("mxfp8-policy", {"default": "mxfp8", "rules": []})]:
    d["model"]["precision"] = policy
    json.dump(d, open(f"{sys.argv[3]}/hybrid-1b-{name}.json", "w"))' "$models/hybrid-1b.json" \
  "$root/templates/nemotron-3-nano-30b-a3b.json" "$work" 2>>"$OUT/bench.log"
bench_step engine_1b_policy 150 env STRATA_BENCH_POLICY=1 bash -c \
  'for p in nemotron-policy fp8-policy mxfp8-policy; do "$1" train "$2/hybrid-1b-$p.json" 4 2048 6 bf16 || exit 1; done' \
  _ "$build/strata_cuda_model_bench" "$work"
bench_step hf_1b 120 python3 "$gpu_dir/hf_train_bench.py" "$models/hf/hybrid-1b.config.json" 4 2048 6
bench_step engine_125m 120 "$build/strata_cuda_model_bench" train "$models/hybrid-125m.json" 8 2048 8 bf16,fp8
bench_step hf_125m 90 python3 "$gpu_dir/hf_train_bench.py" "$models/hf/hybrid-125m.config.json" 8 2048 8
bench_step decode_hybrid 60 "$build/strata_cuda_model_bench" decode "$models/decode-hybrid.json" 8 20 1024,4096,16384,65536
bench_step decode_attention_moe 90 "$build/strata_cuda_model_bench" decode "$models/decode-attention-moe.json" 8 20 \
  1024,4096,16384,65536
# serving batch (the issue's comparison is at throughput batch sizes); the attention+MoE model's fp32
# KV cache at batch 64 and 16k is 64 x 16k x 4 KB x 6 layers = 26 GB
bench_step decode_hybrid_b64 90 "$build/strata_cuda_model_bench" decode "$models/decode-hybrid.json" 64 20 1024,4096,16384
bench_step decode_attention_moe_b64 120 "$build/strata_cuda_model_bench" decode "$models/decode-attention-moe.json" 64 \
  20 1024,4096,16384
# A/B of the decode kernels at 16k (the summary's A/B table): the previous attention decode (warp per
# query group) and expert GEMM (split-K tiles) paths
bench_step decode_ab_previous 90 env STRATA_CUDA_DECODE_ATTN=group STRATA_CUDA_MOE_GEMV=0 bash -c \
  '"$1" decode "$2/decode-hybrid.json" 8 20 16384 && "$1" decode "$2/decode-hybrid.json" 64 20 16384 &&
   "$1" decode "$2/decode-attention-moe.json" 8 20 16384' _ "$build/strata_cuda_model_bench" "$models"
# and the tiled attention decode for the attention+MoE model's groups of 4 too (default: groups of 5..8)
bench_step decode_ab_tile 60 env STRATA_CUDA_DECODE_ATTN=tile bash -c \
  '"$1" decode "$2/decode-attention-moe.json" 8 20 16384 && "$1" decode "$2/decode-attention-moe.json" 64 20 16384' \
  _ "$build/strata_cuda_model_bench" "$models"
run_step profile_1b 120 "$OUT/cli.log" bash -c \
  '"$@" --json | grep "\"type\":\"profile\"" >"${PROFILE_JSONL%.jsonl}-1b.jsonl"; exit "${PIPESTATUS[0]}"' _ \
  "$build/strata-engine" profile "$models/hybrid-1b.json" --backend cuda --mode train --context 2048 --batch 4
# Where the GPU time of one ~1B training step goes, op by op (STRATA_CUDA_OP_TIMES: table on stderr at exit)
run_step op_times_1b 120 "$OUT/op_times.log" env STRATA_CUDA_OP_TIMES=1 "$build/strata-engine" profile \
  "$models/hybrid-1b.json" --backend cuda --mode train --context 2048 --batch 4
# The same with fp8 GEMMs (where the fp8 step's extra time goes: amax passes, packs, staged output)
run_step op_times_1b_fp8 120 "$OUT/op_times_fp8.log" env STRATA_CUDA_OP_TIMES=1 STRATA_CUDA_GEMM=fp8 \
  "$build/strata-engine" profile "$models/hybrid-1b.json" --backend cuda --mode train --context 2048 --batch 4
# Where the GPU time of one decode step goes at 16k (hybrid at batch 8 and 64, attention+MoE at 64;
# the ops of the bench's eager greedy step over 8 timed steps from a zeroed cache, not the graph
# replay the decode table times; a profile would prefill B x 16k tokens for real)
run_step op_times_decode 120 "$OUT/op_times_decode.log" bash -c \
  'for spec in "decode-hybrid 8" "decode-hybrid 64" "decode-attention-moe 64"; do set -- $spec;
     echo "== $1 batch $2"; STRATA_CUDA_OP_TIMES=1 "$BUILD/strata_cuda_model_bench" decode "$MODELS/$1.json" "$2" 8 \
       16384 2>&1 | grep -v "gemm tune" | head -n 90; done'
run_step profile_decode 90 "$OUT/cli.log" bash -c \
  '"$@" --json | grep "\"type\":\"profile\"" >"${PROFILE_JSONL%.jsonl}-decode.jsonl"; exit "${PIPESTATUS[0]}"' _ \
  "$build/strata-engine" profile "$models/decode-hybrid.json" --backend cuda --mode decode --context 16384 --batch 8
run_step profile_125m 90 "$OUT/cli.log" bash -c \
  '"$@" --json | grep "\"type\":\"profile\"" >"$PROFILE_JSONL"; exit "${PIPESTATUS[0]}"' _ \
  "$build/strata-engine" profile "$models/hybrid-125m.json" --backend cuda --mode train --context 2048 --batch 8

# The ~1B step with this session's newer paths switched off (per-head SSD, zero-filled arena, first
# heuristic GEMM algorithm, no weight packs, C cleared before beta-0 GEMMs): A/B in ab.log, not bench.jsonl
run_step engine_1b_previous 90 "$OUT/ab.log" env STRATA_CUDA_SSD=tiled STRATA_ARENA_ZERO=1 STRATA_CUDA_GEMM_TUNE=0 \
  STRATA_CUDA_WEIGHT_PACKS=0 STRATA_CUDA_GEMM_CLEAR_C=1 "$build/strata_cuda_model_bench" train "$models/hybrid-1b.json" \
  4 2048 6 bf16

# The ~1B fp8 step with current scaling on every GEMM (an amax pass before each pack) instead of the
# mode's delayed scaling: A/B in ab.log
run_step engine_1b_fp8_current 60 "$OUT/ab.log" env STRATA_CUDA_FP8_SCALING=current "$build/strata_cuda_model_bench" \
  train "$models/hybrid-1b.json" 4 2048 6 fp8

# The ~1B step with the SSD backward's chunk gradients on the grouped block kernels (the default before
# the batched products of ssd_batched_cuda.cu): A/B in ab.log
run_step engine_1b_ssd_blocks 60 "$OUT/ab.log" env STRATA_CUDA_SSD=blocks "$build/strata_cuda_model_bench" train \
  "$models/hybrid-1b.json" 4 2048 6 bf16

# The ~1B step with the previous grouped SSD kernels (per-head FS terms, fp32 chunk states): A/B in ab.log
run_step engine_1b_ssd_v1 60 "$OUT/ab.log" env STRATA_CUDA_SSD=grouped_v1 "$build/strata_cuda_model_bench" train \
  "$models/hybrid-1b.json" 4 2048 6 bf16

# ---- further checks -----------------------------------------------------------------------------------
run_step train_compare 90 "$OUT/train.log" "$build/strata_cuda_train_compare" "$OUT/train_compare.csv"
run_step op_bench 60 "$OUT/bench.md" "$build/strata_cuda_bench"
# What cuBLASLt offers for fp8 GEMMs per scaling mode (per tensor, per row, 1 x 128 blocks): scale
# layouts checked exactly, TFLOP/s against bf16 at 8192^3 and the ~1B model's shapes
run_step fp8_probe 60 "$OUT/fp8_probe.log" "$build/strata_cuda_fp8_scaling_probe"

rm -rf "$work"

# ---- summary ----------------------------------------------------------------------------------------
{
  echo "# GPU visit results"
  echo
  echo "$(grep -m1 -i 'nvidia\|h200\|a100' "$OUT/env.txt" || echo 'GPU: see env.txt')"
  echo
  [ ${#fallback[@]} -gt 0 ] && echo "Correctness failures switched these paths back for the later steps: ${fallback[*]}" && echo
  echo "| step | status |"
  echo "|---|---|"
  for name in configure build "${order[@]}"; do
    [ -n "${status[$name]:-}" ] && echo "| $name | ${status[$name]} |"
  done | awk '!seen[$0]++'
  echo
  echo "## Op harness"
  grep -E "^backend|FAIL|checks," "$OUT/harness.log" 2>/dev/null | head -n 40
  echo
  python3 "$gpu_dir/summarize.py" "$OUT/bench.jsonl" "$models/analytics.json" "$OUT/profile-1b.jsonl" \
    "$OUT/profile.jsonl" "$OUT/profile-decode.jsonl" 2>&1
  echo
  echo "## Op-by-op GPU time of one ~1B training step (top rows)"
  grep -m 40 -E "ms|calls|share" "$OUT/op_times.log" 2>/dev/null | grep -v "^==" | head -n 40
  echo
  echo "## ~1B step with the previous paths (A/B)"
  grep "^{" "$OUT/ab.log" 2>/dev/null
  echo
  echo "## CLI on cuda"
  grep -E "^(train|generate|profile|eval|step|error|strata-engine)|acceptance|tok/s" "$OUT/cli.log" 2>/dev/null | tail -n 40
  echo
  echo "## CPU vs CUDA (training-sized shapes), training comparison"
  grep -E "^(ok|FAIL)|speedup" "$OUT/compare.log" "$OUT/train.log" 2>/dev/null | head -n 80
  echo
  echo "visit took $(( $(date +%s) - started ))s"
} >"$OUT/results.md"

cp "$OUT/results.md" "$FINAL_OUT/results.md"
tar czf "$FINAL_OUT/visit.tgz" -C "$OUT" .
rm -rf "$OUT"
for name in build harness cli_train_cuda; do
  case "${status[$name]:-missing}" in ok* | "not selected") ;; *) exit 1 ;; esac
done
exit 0
