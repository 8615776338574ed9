// GPU quantize-dequantize of float32 tensors in the precision formats of ops/quant.h (bf16, fp8
// e4m3 / e5m2 with per-tensor scaling, mxfp8 with 32-element E8M0 blocks under either scale rule,
// nvfp4 with 1x16 / 16x16 blocks, E4M3 block scales and an fp32 tensor scale), with nearest-even or
// stochastic rounding, and the 16-point random Hadamard transform around nvfp4. The results equal
// quant::fake_quantize (the CPU reference) bit for bit; the op harness (quantize family) and
// strata_cuda_compare check that. The op itself is CudaBackend::fake_quantize (ops/quant.h
// FakeQuantizeArgs); this header is the synchronous convenience the comparison tools use. Plain C++
// header (no CUDA types). Not covered: the inspection statistics (the CPU reference has them).
#pragma once

#include <cstdint>

#include "../ops/quant.h"
#include "cuda_backend.h"

namespace strata {

// out (rows x cols, row-major) = Q(in) on the backend's GPU, then waits for it; in and out may alias.
// Both pointers are backend memory. Raises for configurations quant::fake_quantize rejects.
void cuda_fake_quantize(CudaBackend& backend, const float* in, float* out, int64_t rows, int64_t cols,
                        const quant::QuantConfig& config);

}  // namespace strata
