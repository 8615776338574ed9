// GPU quantize-dequantize of float32 tensors in the precision formats of ops/quant.h (bf16, fp8
// e4m3 / e5m2 with per-tensor scaling, mxfp8 with 32-element E8M0 blocks under either scale rule,
// nvfp4 with 1x16 / 16x16 blocks, E4M3 block scales and an fp32 tensor scale), with nearest-even or
// stochastic rounding. The results are meant to equal quant::fake_quantize (the CPU reference) bit
// for bit; strata_cuda_compare checks that. Plain C++ header (no CUDA types).
// Not covered here: the 16-point Hadamard transform and the inspection statistics (use the CPU
// reference for those); cuda_fake_quantize raises for them.
#pragma once

#include <cstdint>

#include "../ops/quant.h"
#include "cuda_backend.h"

namespace strata {

// True when cuda_fake_quantize handles the configuration (everything but the Hadamard transform).
bool cuda_fake_quantize_supports(const quant::QuantConfig& config);

// out (rows x cols, row-major) = Q(in) on the backend's GPU; in and out may alias. Both pointers are
// backend memory. Raises for configurations quant::fake_quantize rejects and for the Hadamard
// transform.
void cuda_fake_quantize(CudaBackend& backend, const float* in, float* out, int64_t rows, int64_t cols,
                        const quant::QuantConfig& config);

}  // namespace strata
