// The 16-point random Hadamard transform (RHT) of the NVFP4 training recipe:
// H = (1/4) * diag(signs) * Hadamard_16, with Hadamard_16 the Sylvester matrix
// (entry (i, j) = (-1)^popcount(i & j)) and one fixed vector of random signs. H is orthogonal
// (H^T H = I), so applying it to both inputs of the weight-gradient GEMM along the reduction axis
// leaves the product unchanged while spreading outliers across each group of 16 before FP4
// quantization.
//
// This file is the transform only (a readable CPU reference); quantization is in quant.h, which
// uses it when a QuantConfig asks for the Hadamard transform.
#pragma once

#include <array>
#include <cstdint>

namespace strata::quant {

inline constexpr int kHadamardSize = 16;

/** The fixed seed of the recipe's sign vector (any fixed choice is valid; this is ours). */
inline constexpr uint64_t kDefaultHadamardSeed = 0x5354524154413136ull;  // "STRATA16"

using HadamardSigns = std::array<float, kHadamardSize>;

/** Sixteen +-1 signs drawn from counter_random64(seed, i). */
HadamardSigns hadamard_signs(uint64_t seed = kDefaultHadamardSeed);

/** Which runs of a row-major [rows, cols] matrix an operation works on. */
enum class Axis : uint8_t {
  Row,     // consecutive elements within one row (the contiguous axis)
  Column,  // consecutive elements down one column (stride = cols)
};

/**
 * Applies H (or its inverse H^T when `inverse`) in place to every complete run of 16 elements along
 * `axis`; a trailing partial run (length not a multiple of 16) is left unchanged, which keeps the
 * whole operation orthogonal. Arithmetic is fp32 in a fixed butterfly order (the TS mirror in
 * engine/spec/precision-formats.ts follows the same order).
 */
void hadamard16_apply(float* data, int64_t rows, int64_t cols, Axis axis, const HadamardSigns& signs,
                      bool inverse = false);

}  // namespace strata::quant
