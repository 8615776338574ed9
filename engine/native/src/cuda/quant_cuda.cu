// CUDA kernels of the quantize-dequantize formats (see quant_cuda.h): bf16 rounding, the finite amax
// reduction, and one thread per scaling block applying the rules of quant_cuda_rules.cuh.
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

}  // namespace

bool cuda_fake_quantize_supports(const quant::QuantConfig& config) { return !config.hadamard; }

void cuda_fake_quantize(CudaBackend& backend, const float* in, float* out, int64_t rows, int64_t cols,
                        const quant::QuantConfig& config) {
  using quant::BlockLayout;
  using quant::Format;
  const std::string op = std::string("cuda fake_quantize ") + quant::format_name(config.format);
  STRATA_CHECK(rows >= 0 && cols >= 0, op, ": negative shape");
  STRATA_CHECK(!config.hadamard, op, ": the Hadamard transform runs on the CPU reference only");
  STRATA_CHECK(config.layout != BlockLayout::Tile2d || config.format == Format::Nvfp4, op,
               ": 16x16 tiles (Tile2d) exist only for nvfp4");
  const bool encoded = config.format != Format::Fp32 && config.format != Format::Bf16;
  STRATA_CHECK(config.rounding != quant::Rounding::Stochastic || encoded, op,
               ": stochastic rounding is defined for fp8, mxfp8 and nvfp4 elements only");
  STRATA_CHECK(config.format != Format::Mxfp8 || config.mx_element != quant::ElementFormat::E2M1, op,
               ": mxfp8 elements are e4m3 or e5m2");
  const int64_t n = rows * cols;
  if (n == 0) return;
  CudaBackendState& s = backend.state();
  cudaStream_t stream = s.stream;
  if (config.format == Format::Fp32) {
    if (in != out) STRATA_CUDA_CHECK(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDefault, stream), op.c_str());
    backend.synchronize();
    return;
  }
  if (config.format == Format::Bf16) {
    bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, out, n);
    check_launch(op.c_str());
    backend.synchronize();
    return;
  }
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
    finite_amax_kernel<<<std::min<unsigned>(grid_for(n), 1024), kThreads, 0, stream>>>(in, n, amax);
  }
  // Per-element work must not overwrite inputs other threads still read: in-place fp8 is safe only
  // because the amax pass has finished before the element pass starts (same stream); block formats
  // read and write only their own block.
  if (config.format == Format::Fp8E4M3 || config.format == Format::Fp8E5M2) {
    fp8_tensor_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, out, q, amax);
  } else if (config.format == Format::Mxfp8) {
    mxfp8_kernel<<<grid_for(blocks, 128), 128, 0, stream>>>(in, out, q,
                                                             config.mx_scale_rule == quant::MxScaleRule::RoundUp);
  } else {
    nvfp4_kernel<<<grid_for(blocks, 128), 128, 0, stream>>>(in, out, q, amax);
  }
  check_launch(op.c_str());
  backend.synchronize();
}

}  // namespace strata
