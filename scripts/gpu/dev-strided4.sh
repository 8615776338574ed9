#!/usr/bin/env bash
# strided4's one GPU visit (deleted before landing): build the CUDA engine tools, op harness,
# CPU-vs-CUDA compare, poisoned-arena training compare and the ~1B op table.
set -uo pipefail
O="${OUT:?}"
B=/tmp/b-strided4
nvcc_bin="$(command -v nvcc || true)"
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
export OMP_NUM_THREADS=16
t0=$(date +%s)
cmake -S engine/native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON -DSTRATA_NATIVE_ARCH=ON \
  ${nvcc_bin:+-DCMAKE_CUDA_COMPILER=$nvcc_bin} -DSTRATA_BUILD_BENCH=OFF \
  "-DSTRATA_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a" >"$O/build.log" 2>&1 &&
  cmake --build $B -j16 --target strata_op_harness strata_cuda_compare strata_cuda_train_compare \
    strata-engine >>"$O/build.log" 2>&1 || { tail -n 60 "$O/build.log"; exit 1; }
echo "build $(($(date +%s) - t0)) s"
timeout 90 $B/strata_op_harness >"$O/harness.log" 2>&1
echo "harness rc=$?"; grep -E "^backend|FAIL|checks," "$O/harness.log" | head -n 30
timeout 90 $B/strata_cuda_compare >"$O/compare.log" 2>&1
echo "compare rc=$?"; grep -iE "fail|mismatch|nan" "$O/compare.log" | head -n 20; tail -n 3 "$O/compare.log"
timeout 90 env STRATA_ARENA_POISON=1 $B/strata_cuda_train_compare "$O/train_compare_poison.csv" >"$O/train.log" 2>&1
echo "train_compare (poison) rc=$?"; tail -n 8 "$O/train.log"
timeout 90 env STRATA_CUDA_OP_TIMES=1 $B/strata-engine profile scripts/gpu/models/hybrid-1b.json --backend cuda \
  --mode train --context 2048 --batch 4 >"$O/profile.log" 2>"$O/op_times.log"
echo "profile rc=$?"
grep -E "total" "$O/profile.log" "$O/op_times.log" | head -n 4
grep -E "copy_strided|conv1d|gated_rmsnorm|rmsnorm_backward|fill_zero" "$O/op_times.log"
awk '/copy_strided/ {s += $1; n += $2} END {print "copy_strided total", s, "ms in", n, "calls"}' "$O/op_times.log"
echo "total $(($(date +%s) - t0)) s"
