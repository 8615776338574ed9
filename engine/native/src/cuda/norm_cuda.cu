// CUDA kernels of RMSNorm (with the fused residual add) and of Mamba-2's gated grouped RMSNorm,
// forward and backward. One block per row (or per row and group) does the reduction; weight
// gradients are column sums computed by a second kernel (one thread per column, rows in order), so
// they are deterministic and need no atomics. Formulas follow cpu/rmsnorm_cpu.cpp and
// cpu/gated_rmsnorm_cpu.cpp.
#include "../ops/gated_rmsnorm.h"
#include "../ops/rmsnorm.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

__global__ void rmsnorm_forward_kernel(float* y, float* rstd_out, const float* x, const float* w, const float* residual,
                                       float* residual_out, int64_t d, float eps) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * d;
  const float* rr = residual ? residual + row * d : nullptr;
  float* sr = residual ? residual_out + row * d : nullptr;
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float v = xr[j];
    if (rr) {
      v += rr[j];
      sr[j] = v;  // residual_out may alias x: each element is read and written by the same thread
    }
    sum += static_cast<double>(v) * v;
  }
  sum = block_sum(sum, shared);
  const float rstd = static_cast<float>(1.0 / sqrt(sum / d + eps));
  if (threadIdx.x == 0) rstd_out[row] = rstd;
  const float* src = rr ? sr : xr;
  float* yr = y + row * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) yr[j] = src[j] * rstd * w[j];
}

__global__ void rmsnorm_backward_dx_kernel(float* dx, const float* dy, const float* x, const float* w, const float* rstd,
                                           int64_t d, bool accumulate) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * d;
  const float* dyr = dy + row * d;
  const float r = rstd[row];
  double dot = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dot += static_cast<double>(dyr[j]) * w[j] * xr[j] * r;
  dot = block_sum(dot, shared);
  const float mean_dot = static_cast<float>(dot / d);
  float* dxr = dx + row * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float n = xr[j] * r;
    const float g = r * (dyr[j] * w[j] - n * mean_dot);
    dxr[j] = accumulate ? dxr[j] + g : g;
  }
}

struct RmsNormDwTerm {
  const float *dy, *x, *rstd;
  int64_t d;
  __device__ double operator()(int64_t i, int64_t j) const {
    return static_cast<double>(dy[i * d + j]) * x[i * d + j] * rstd[i];
  }
};

// Gated grouped RMSNorm: block per (row, group).
__global__ void gated_rmsnorm_forward_kernel(float* out, float* rstd_out, const float* y, const float* z,
                                             const float* w, int64_t di, int64_t groups, bool norm_before_gate,
                                             float eps) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x / groups, g = blockIdx.x % groups, gs = di / groups;
  const int64_t off = row * di + g * gs;
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    const float v = norm_before_gate ? y[off + j] : y[off + j] * dev_silu(z[off + j]);
    sum += static_cast<double>(v) * v;
  }
  sum = block_sum(sum, shared);
  const float rstd = static_cast<float>(1.0 / sqrt(sum / gs + eps));
  if (threadIdx.x == 0) rstd_out[row * groups + g] = rstd;
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    const float zz = z[off + j];
    float v = norm_before_gate ? y[off + j] : y[off + j] * dev_silu(zz);
    v *= rstd * w[g * gs + j];
    if (norm_before_gate) v *= dev_silu(zz);
    out[off + j] = v;
  }
}

__device__ __forceinline__ void gated_terms(float yv, float zv, float rstd, float dout, bool norm_before_gate,
                                            float* normed, float* upstream) {
  const float s = dev_sigmoid(zv);
  const float pre = norm_before_gate ? yv : yv * zv * s;
  *normed = pre * rstd;
  *upstream = norm_before_gate ? dout * zv * s : dout;
}

__global__ void gated_rmsnorm_backward_kernel(float* dy, float* dz, const float* dout, const float* y, const float* z,
                                              const float* w, const float* rstd_in, int64_t di, int64_t groups,
                                              bool norm_before_gate) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x / groups, g = blockIdx.x % groups, gs = di / groups;
  const int64_t off = row * di + g * gs;
  const float rstd = rstd_in[row * groups + g];
  double dot = 0.0;
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    float normed, upstream;
    gated_terms(y[off + j], z[off + j], rstd, dout[off + j], norm_before_gate, &normed, &upstream);
    dot += static_cast<double>(upstream) * w[g * gs + j] * normed;
  }
  dot = block_sum(dot, shared);
  const float mean_dot = static_cast<float>(dot / gs);
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    const float yv = y[off + j], zv = z[off + j], wv = w[g * gs + j];
    float normed, upstream;
    gated_terms(yv, zv, rstd, dout[off + j], norm_before_gate, &normed, &upstream);
    const float dpre = rstd * (upstream * wv - normed * mean_dot);
    if (norm_before_gate) {
      dy[off + j] = dpre;
      dz[off + j] = dout[off + j] * normed * wv * dev_silu_grad(zv);
    } else {
      dy[off + j] = dpre * zv * dev_sigmoid(zv);
      dz[off + j] = dpre * yv * dev_silu_grad(zv);
    }
  }
}

struct GatedRmsNormDwTerm {
  const float *dout, *y, *z, *rstd;
  int64_t di, groups, group_size;
  bool norm_before_gate;
  __device__ double operator()(int64_t i, int64_t j) const {
    float normed, upstream;
    gated_terms(y[i * di + j], z[i * di + j], rstd[i * groups + j / group_size], dout[i * di + j], norm_before_gate,
                &normed, &upstream);
    return static_cast<double>(upstream) * normed;
  }
};

unsigned row_threads(int64_t width) { return width >= 1024 ? 512 : width >= 256 ? 256 : 128; }

}  // namespace

void CudaBackend::rmsnorm_forward(const RmsNormFwd& a) {
  const int64_t m = a.x.rows(), d = a.x.cols();
  if (m == 0) return;
  const bool fused = a.residual.defined();
  rmsnorm_forward_kernel<<<static_cast<unsigned>(m), row_threads(d), 0, state_->stream>>>(
      a.y.data, a.rstd.data, a.x.data, a.w.data, fused ? a.residual.data : nullptr,
      fused ? a.residual_out.data : nullptr, d, a.eps);
  finish_op("cuda rmsnorm_forward", a.y.name.c_str());
}

void CudaBackend::rmsnorm_backward(const RmsNormBwd& a) {
  const int64_t m = a.x.rows(), d = a.x.cols();
  if (m == 0) return;
  // dw first: with accumulate = false dx may alias dy, which the dw sum still needs.
  if (a.dw.defined()) {
    accumulate_columns(*state_, m, d, RmsNormDwTerm{a.dy.data, a.x.data, a.rstd.data, d}, AddToVector{a.dw.data},
                       "cuda rmsnorm_backward");
    op_phase(*state_, "cuda rmsnorm_backward dw", a.dx.name.c_str());
  }
  rmsnorm_backward_dx_kernel<<<static_cast<unsigned>(m), row_threads(d), 0, state_->stream>>>(
      a.dx.data, a.dy.data, a.x.data, a.w.data, a.rstd.data, d, a.accumulate);
  finish_op("cuda rmsnorm_backward", a.dx.name.c_str());
}

void CudaBackend::gated_rmsnorm_forward(const GatedRmsNormFwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols();
  if (m == 0) return;
  gated_rmsnorm_forward_kernel<<<static_cast<unsigned>(m * a.groups), row_threads(di / a.groups), 0, state_->stream>>>(
      a.out.data, a.rstd.data, a.y.data, a.z.data, a.w.data, di, a.groups, a.norm_before_gate, a.eps);
  finish_op("cuda gated_rmsnorm_forward", a.out.name.c_str());
}

void CudaBackend::gated_rmsnorm_backward(const GatedRmsNormBwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols();
  if (m == 0) return;
  if (a.dw.defined()) {
    accumulate_columns(*state_, m, di,
                       GatedRmsNormDwTerm{a.dout.data, a.y.data, a.z.data, a.rstd.data, di, a.groups, di / a.groups,
                                          a.norm_before_gate},
                       AddToVector{a.dw.data}, "cuda gated_rmsnorm_backward");
    op_phase(*state_, "cuda gated_rmsnorm_backward dw", a.dy.name.c_str());
  }
  gated_rmsnorm_backward_kernel<<<static_cast<unsigned>(m * a.groups), row_threads(di / a.groups), 0,
                                  state_->stream>>>(a.dy.data, a.dz.data, a.dout.data, a.y.data, a.z.data, a.w.data,
                                                    a.rstd.data, di, a.groups, a.norm_before_gate);
  finish_op("cuda gated_rmsnorm_backward", a.dy.name.c_str());
}

}  // namespace strata
