#!/usr/bin/env bash
# CI check that every CUDA source of the native engine compiles and links on a machine without a
# GPU: installs nvcc/cudart/cuBLASLt from PyPI wheels (install-cuda-wheels.sh), configures a
# separate build folder with STRATA_CUDA=ON and builds the CUDA objects, the op harness (which then
# carries the CUDA backend) and the GPU tools. It runs the op harness, which must pass on the CPU
# backend and report no GPU without failing, and the host run of the GPU quantization rules
# (cuda_quant_rules: bit-exact against the CPU reference). It runs no kernel (there is no GPU here).
# Usage: scripts/ci/check-cuda-build.sh [BUILD_DIR]   (default build/cuda-check; -j2)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build/cuda-check}"
nvcc="$("$root/scripts/ci/install-cuda-wheels.sh" | tail -n 1)"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$root/engine/native" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON \
  -DCMAKE_CUDA_COMPILER="$nvcc" -DSTRATA_BUILD_BENCH=OFF >/dev/null
targets=(strata_cuda strata_op_harness strata_cuda_quant_rules_test)
for tool in strata_cuda_compare strata_cuda_bench strata_cuda_train_compare strata_cuda_model_bench; do
  grep -q "$tool" "$build/CMakeFiles/Makefile.cmake" "$build/build.ninja" 2>/dev/null && targets+=("$tool")
done
cmake --build "$build" -j 2 --target "${targets[@]}"
OMP_NUM_THREADS=2 "$build/strata_op_harness"
"$build/strata_cuda_quant_rules_test"
echo "check-cuda-build: CUDA backend compiled and linked (${targets[*]})"
