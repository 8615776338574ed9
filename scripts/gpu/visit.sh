#!/usr/bin/env bash
# One visit to the GPU machine (an H200 with nvcc, CMake and cuBLASLt, no Node): builds the native
# engine with the CUDA backend, checks it, times it, and leaves at most 8 files under $OUT:
#   env.txt            GPU, driver, toolkit, CMake versions
#   build.log          configure + build output
#   harness.log        the op harness on every backend (CPU and cuda:0; float64 references)
#   compare.log        CPU-vs-CUDA at training-sized shapes, GEMM fp32/bf16/fp8 per-dtype tolerances
#   train_compare.csv  loss per step: cpu, cuda_fp32, cuda_bf16 (same weights, same batches)
#   train.log          the training comparison summary, and the native CLI's train runs
#   bench.md           GEMM TFLOP/s (fp32, bf16, fp8 e4m3) and SSD / attention CPU-vs-GPU times
#   results.md         the summary table: every step's status and the headline numbers
# Usage (from the repository root): OUT=/some/dir scripts/gpu/visit.sh
# Every step has a time cap and the whole visit stays under 9 minutes; a failing step is recorded
# and the visit goes on. Exit status: 0 when build, harness, comparison and training all passed.
# This script installs nothing and needs no network.
set -uo pipefail

OUT="${OUT:?set OUT to the folder that receives the results}"
mkdir -p "$OUT"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${STRATA_GPU_BUILD_DIR:-/tmp/strata-gpu-build}"
started=$(date +%s)
deadline=$((started + ${STRATA_VISIT_SECONDS:-530}))
jobs=$(nproc 2>/dev/null || echo 8)
export OMP_NUM_THREADS="$jobs"

remaining() { echo $((deadline - $(date +%s))); }
# run_step NAME CAP LOG COMMAND...: runs with min(CAP, time left), appends to LOG, records status
declare -A status
run_step() {
  local name=$1 cap=$2 log=$3
  shift 3
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
  echo "git: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >"$OUT/env.txt" 2>&1

# ---- build ----------------------------------------------------------------------------------------
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
run_step configure 120 "$OUT/build.log" cmake -S "$root/engine/native" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON -DSTRATA_NATIVE_ARCH=ON ${nvcc_bin:+-DCMAKE_CUDA_COMPILER=$nvcc_bin} \
  "-DSTRATA_CUDA_GENCODE=-gencode=arch=compute_80,code=sm_80;-gencode=arch=compute_90a,code=[sm_90a,compute_90a]"
run_step build 330 "$OUT/build.log" cmake --build "$build" -j "$jobs"

# ---- correctness ------------------------------------------------------------------------------------
run_step harness 90 "$OUT/harness.log" "$build/strata_op_harness"
run_step compare 90 "$OUT/compare.log" "$build/strata_cuda_compare"
run_step train_compare 150 "$OUT/train.log" "$build/strata_cuda_train_compare" "$OUT/train_compare.csv"

# The native CLI on the same tiny corpus: CPU always; CUDA once the CLI accepts --backend cuda.
if [ -x "$build/strata-engine" ]; then
  work=$(mktemp -d)
  python3 - "$work" <<'PY' 2>>"$OUT/train.log"
import json, random, sys
work = sys.argv[1]
random.seed(5)
words = ["state", "space", "model", "mamba", "attention", "expert", "router", "token", "chunk", "scan"]
open(f"{work}/corpus.txt", "w").write(" ".join(random.choice(words) for _ in range(60000)))
doc = {"format": "strata", "version": 2, "model": {"name": "tiny-hybrid", "vocab_size": 260, "d_model": 128, "stack": [
  {"kind": "mamba2", "heads": 4, "head_dim": 32, "d_state": 32, "groups": 2, "conv_kernel": 4, "chunk": 32},
  {"kind": "attention", "heads": 4, "kv_heads": 2, "head_dim": 32, "rope": {"theta": 10000}},
  {"kind": "mamba2", "heads": 4, "head_dim": 32, "d_state": 32, "groups": 2, "conv_kernel": 4, "chunk": 32},
  {"kind": "mlp", "ffn": 256}]},
  "pipeline": {"tokenizer": {"kind": "byte"}, "training": {"steps": 20, "batch_size": 8, "seq_len": 128, "lr": 0.003,
  "warmup_steps": 2, "schedule": "constant"}}}
json.dump(doc, open(f"{work}/doc.json", "w"))
PY
  for backend in cpu cuda; do
    run_step "cli_train_$backend" 60 "$OUT/train.log" "$build/strata-engine" train "$work/doc.json" \
      --data "$work/corpus.txt" --steps 20 --backend "$backend" --run-dir "$work/run-$backend"
  done
  rm -rf "$work"
fi

# ---- timing -----------------------------------------------------------------------------------------
run_step bench 120 "$OUT/bench.md" "$build/strata_cuda_bench"

# ---- summary ----------------------------------------------------------------------------------------
{
  echo "# GPU visit results"
  echo
  echo "$(grep -m1 -i 'nvidia\|h200\|a100' "$OUT/env.txt" || echo 'GPU: see env.txt')"
  echo
  echo "| step | status |"
  echo "|---|---|"
  for name in configure build harness compare train_compare cli_train_cpu cli_train_cuda bench; do
    [ -n "${status[$name]:-}" ] && echo "| $name | ${status[$name]} |"
  done
  echo
  echo "## Op harness"
  grep -E "^backend|FAIL|checks," "$OUT/harness.log" 2>/dev/null | head -n 40
  echo
  echo "## CPU vs CUDA (training-sized shapes)"
  grep -E "^(ok|FAIL)" "$OUT/compare.log" 2>/dev/null | head -n 80
  echo
  echo "## Training comparison"
  grep -E "^(ok|FAIL)|speedup" "$OUT/train.log" 2>/dev/null
  echo
  echo "## Timing"
  grep -E "^\||GFLOP" "$OUT/bench.md" 2>/dev/null
  echo
  echo "visit took $(( $(date +%s) - started ))s"
} >"$OUT/results.md"

for name in build harness compare train_compare; do
  case "${status[$name]:-missing}" in ok*) ;; *) exit 1 ;; esac
done
exit 0
