// CUDA kernels of the quantize op family (CudaBackend::fake_quantize, ops/quant.h FakeQuantizeArgs;
// see quant_cuda.h): bf16 rounding, the finite amax reduction, one thread per scaling block applying
// the rules of quant_cuda_rules.cuh, and the 16-point random Hadamard transform around nvfp4.
#include "../ops/quant_hadamard.h"
#include "cuda_common.cuh"
#include "quant_cuda.h"
#include "quant_cuda_rules.cuh"

namespace strata {
namespace {

using namespace cuda_quant;


__global__ void bf16_kernel(const float* in, float* out, int64_t n) {
  STRATA_GRID_STRIDE(i, n) out[i] = bf16_element(in[i]);
}

__global__ void finite_amax_kernel(const float* in, int64_t n, unsigned int* out) {
  __shared__ float shared[32];
  float local = 0.0f;
  STRATA_GRID_STRIDE(i, n) {
    const float v = in[i];
    if (isfinite(v)) local = fmaxf(local, fabsf(v));
  }
  const float block = block_max(local, shared);
  if (threadIdx.x == 0) atomicMax(out, __float_as_uint(block));
}

__global__ void fp8_tensor_kernel(const float* in, float* out, QuantLaunch q, const unsigned int* amax_bits) {
  const float amax = __uint_as_float(*amax_bits);
  STRATA_GRID_STRIDE(i, q.rows * q.cols) out[i] = fp8_tensor_element(in[i], q, amax, i);
}

// One thread per block.
__global__ void mxfp8_kernel(const float* in, float* out, QuantLaunch q, bool round_up_rule) {
  const int64_t blocks = ((q.rows + q.block_rows - 1) / q.block_rows) * q.grid_cols;
  STRATA_GRID_STRIDE(b, blocks) mxfp8_block(in, out, q, round_up_rule, b);
}

__global__ void nvfp4_kernel(const float* in, float* out, QuantLaunch q, const unsigned int* amax_bits) {
  const float amax = __uint_as_float(*amax_bits);
  const int64_t blocks = ((q.rows + q.block_rows - 1) / q.block_rows) * q.grid_cols;
  STRATA_GRID_STRIDE(b, blocks) nvfp4_block(in, out, q, amax, b);
}

// The 16-point random Hadamard transform of ops/quant_hadamard.cpp, run for run in the same fp32
// operation order (bit-identical): one thread per run of 16 elements along a row (`along_row`) or down
// a column; trailing elements that fill no whole run stay as they are.
struct HadamardSignsDev {
  float s[quant::kHadamardSize];
};
__global__ void hadamard16_kernel(float* data, int64_t rows, int64_t cols, bool along_row, HadamardSignsDev signs,
                                  bool inverse) {
  constexpr int kRun = quant::kHadamardSize;
  const int64_t runs_per_line = along_row ? cols / kRun : cols;
  const int64_t runs = along_row ? rows * runs_per_line : (rows / kRun) * cols;
  STRATA_GRID_STRIDE(run, runs) {
    const int64_t first = along_row ? (run / runs_per_line) * cols + (run % runs_per_line) * kRun
                                    : (run / cols) * kRun * cols + run % cols;
    const int64_t stride = along_row ? 1 : cols;
    float v[kRun];
#pragma unroll
    for (int i = 0; i < kRun; ++i) v[i] = data[first + i * stride];
    if (inverse) {
#pragma unroll
      for (int i = 0; i < kRun; ++i) v[i] *= signs.s[i];
    }
#pragma unroll
    for (int half = 1; half < kRun; half *= 2) {
#pragma unroll
      for (int start = 0; start < kRun; start += 2 * half) {
#pragma unroll
        for (int i = start; i < start + half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = __fadd_rn(a, b);
          v[i + half] = __fsub_rn(a, b);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kRun; ++i) v[i] = inverse ? __fmul_rn(v[i], 0.25f) : __fmul_rn(__fmul_rn(v[i], signs.s[i]), 0.25f);
#pragma unroll
    for (int i = 0; i < kRun; ++i) data[first + i * stride] = v[i];
  }
}

void launch_hadamard(float* data, int64_t rows, int64_t cols, quant::BlockLayout layout, uint64_t seed, bool inverse,
                     cudaStream_t stream) {
  const quant::HadamardSigns host = quant::hadamard_signs(seed);
  HadamardSignsDev signs{};
  for (int i = 0; i < quant::kHadamardSize; ++i) signs.s[i] = host[static_cast<size_t>(i)];
  const bool along_row = layout != quant::BlockLayout::AlongColumn;
  const int64_t runs = along_row ? rows * (cols / quant::kHadamardSize) : (rows / quant::kHadamardSize) * cols;
  if (runs == 0) return;
  hadamard16_kernel<<<grid_for(runs), kThreads, 0, stream>>>(data, rows, cols, along_row, signs, inverse);
}

}  // namespace

void CudaBackend::fake_quantize(const FakeQuantizeArgs& a) {
  using quant::BlockLayout;
  using quant::Format;
  const quant::QuantConfig& config = a.config;
  const std::string op = std::string("cuda fake_quantize ") + quant::format_name(config.format);
  // shapes and the configuration were checked by fake_quantize_tensor (ops/quant.cpp)
  const int64_t rows = a.rows, cols = a.cols, n = rows * cols;
  if (n == 0) return;
  CudaBackendState& s = *state_;
  cudaStream_t stream = s.stream;
  s.parameters.note_write(a.out, sizeof(float) * static_cast<std::size_t>(n));
  // The contiguous working copy is `out` itself: every kernel below reads and writes it in place.
  if (a.in != a.out) {
    STRATA_CUDA_CHECK(cudaMemcpy2DAsync(a.out, sizeof(float) * cols, a.in, sizeof(float) * a.ld, sizeof(float) * cols,
                                        rows, cudaMemcpyDeviceToDevice, stream),
                      op.c_str());
  }
  float* x = a.out;
  if (config.format == Format::Fp32) {
    finish_op(op.c_str(), a.label);
    return;
  }
  if (config.format == Format::Bf16) {
    bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, x, n);
    finish_op(op.c_str(), a.label);
    return;
  }
  if (config.hadamard) launch_hadamard(x, rows, cols, config.layout, config.hadamard_seed, false, stream);
  QuantLaunch q{rows, cols, 1, cols, 1, {}, config.rounding == quant::Rounding::Stochastic, config.seed};
  switch (config.format) {
    case Format::Fp8E4M3: q.element = element_spec(quant::ElementFormat::E4M3); break;
    case Format::Fp8E5M2: q.element = element_spec(quant::ElementFormat::E5M2); break;
    case Format::Mxfp8: q.element = element_spec(config.mx_element); break;
    default: q.element = element_spec(quant::ElementFormat::E2M1); break;
  }
  if (config.format == Format::Mxfp8 || config.format == Format::Nvfp4) {
    const int64_t size = config.format == Format::Mxfp8 ? quant::kMxfp8BlockSize : quant::kNvfp4BlockSize;
    q.block_rows = config.layout == BlockLayout::AlongRow ? 1 : size;
    q.block_cols = config.layout == BlockLayout::AlongColumn ? 1 : size;
    q.grid_cols = (cols + q.block_cols - 1) / q.block_cols;
  }
  const int64_t blocks = ((rows + q.block_rows - 1) / q.block_rows) * q.grid_cols;
  unsigned int* amax = reinterpret_cast<unsigned int*>(s.scratch_bytes(3, sizeof(unsigned int), op.c_str()));
  if (config.format != Format::Mxfp8) {
    STRATA_CUDA_CHECK(cudaMemsetAsync(amax, 0, sizeof(unsigned int), stream), op.c_str());
    finite_amax_kernel<<<std::min<unsigned>(grid_for(n), 1024), kThreads, 0, stream>>>(x, n, amax);
  }
  // In place: fp8 is safe because the amax pass has finished before the element pass starts (same
  // stream); block formats read and write only their own block.
  if (config.format == Format::Fp8E4M3 || config.format == Format::Fp8E5M2) {
    fp8_tensor_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, x, q, amax);
  } else if (config.format == Format::Mxfp8) {
    mxfp8_kernel<<<grid_for(blocks, 128), 128, 0, stream>>>(x, x, q, config.mx_scale_rule == quant::MxScaleRule::RoundUp);
  } else {
    nvfp4_kernel<<<grid_for(blocks, 128), 128, 0, stream>>>(x, x, q, amax);
  }
  if (config.hadamard) launch_hadamard(x, rows, cols, config.layout, config.hadamard_seed, true, stream);
  finish_op(op.c_str(), a.label);
}

void cuda_fake_quantize(CudaBackend& backend, const float* in, float* out, int64_t rows, int64_t cols,
                        const quant::QuantConfig& config) {
  FakeQuantizeArgs args;
  args.in = in, args.ld = cols, args.out = out, args.rows = rows, args.cols = cols, args.config = config;
  args.label = "cuda_fake_quantize";
  fake_quantize_tensor(backend, args);
  backend.synchronize();
}

}  // namespace strata
