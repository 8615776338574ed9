#!/usr/bin/env bash
# Installs a compile-only CUDA toolkit from PyPI's nvidia-* wheels (nvcc, ptxas, cicc/NVVM, the
# CUDA C runtime headers, cudart, cuBLAS/cuBLASLt, CCCL) into one folder, so a CI machine without
# a GPU and without a system toolkit can compile and link Strata's CUDA backend.
# It prints the nvcc path on its last line (for CMAKE_CUDA_COMPILER). This script does not install
# a driver and nothing it installs can run a kernel; it does not touch the system site-packages.
#
# Usage: scripts/ci/install-cuda-wheels.sh [DIR]
#   DIR defaults to $STRATA_CUDA_WHEELS_DIR or ~/.cache/strata-cuda-wheels. Re-running is cheap:
#   an existing complete install is reused. STRATA_CUDA_WHEEL_VERSION picks the toolkit release
#   (default 13.2.86, the runtime torch pulls in here); cuBLAS and CCCL follow their own numbering.
set -euo pipefail

version="${STRATA_CUDA_WHEEL_VERSION:-13.2.86}"
cublas_version="${STRATA_CUBLAS_WHEEL_VERSION:-13.4.1.3}"
cccl_version="${STRATA_CCCL_WHEEL_VERSION:-13.3.5.0.6}"
prefix="${1:-${STRATA_CUDA_WHEELS_DIR:-$HOME/.cache/strata-cuda-wheels}}"
root="$prefix/nvidia/cu13"
stamp="$prefix/.strata-cuda-$version-$cublas_version-$cccl_version"

if [ ! -f "$stamp" ]; then
  mkdir -p "$prefix"
  python3 -m pip install -q --disable-pip-version-check --no-deps --upgrade --target "$prefix" \
    "nvidia-cuda-nvcc==$version" "nvidia-cuda-crt==$version" "nvidia-nvvm==$version" \
    "nvidia-cuda-runtime==$version" "nvidia-cublas==$cublas_version" "nvidia-cuda-cccl==$cccl_version"
  # The wheels ship only versioned shared objects; linkers look for the unversioned names.
  for lib in cudart cublas cublasLt; do
    target=$(cd "$root/lib" && ls "lib$lib.so."* 2>/dev/null | sort | head -n1 || true)
    if [ -z "$target" ]; then
      echo "install-cuda-wheels: lib$lib.so.* missing under $root/lib" >&2
      exit 1
    fi
    ln -sfn "$target" "$root/lib/lib$lib.so"
  done
  # CMake's toolkit discovery also accepts lib64/.
  [ -e "$root/lib64" ] || ln -sfn lib "$root/lib64"
  chmod +x "$root/bin/"* "$root/nvvm/bin/"* 2>/dev/null || true
  for tool in bin/nvcc bin/ptxas bin/fatbinary nvvm/bin/cicc include/crt/host_config.h include/cuda_runtime.h include/cublasLt.h; do
    if [ ! -e "$root/$tool" ]; then
      echo "install-cuda-wheels: $tool missing under $root after install" >&2
      exit 1
    fi
  done
  touch "$stamp"
fi

"$root/bin/nvcc" --version | tail -n 2 >&2
echo "$root/bin/nvcc"
