// CUDA kernels of RMSNorm (with the fused residual add) and of Mamba-2's gated grouped RMSNorm,
// forward and backward. One block per row (or per row and group) does the reduction (holding the row
// in registers, float4 per thread, where the width allows; strided loops otherwise); weight
// gradients are column sums computed by a second kernel (one thread per column, rows in order), so
// they are deterministic and need no atomics. Formulas follow cpu/rmsnorm_cpu.cpp and
// cpu/gated_rmsnorm_cpu.cpp.
#include <cstdint>
#include <initializer_list>

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

// The same two kernels with the row held in registers: thread j owns elements 4j..4j+3 (float4 loads
// and stores), so every input is read once. Used when d is a multiple of 4 and at most 4096 and every
// tensor is 16-byte aligned; block = d / 4 rounded up to a warp. residual_out may alias x and dx may
// alias dy: each thread reads its four elements before writing them.
__device__ __forceinline__ float4 row4(const float* p, bool inside) {
  return inside ? *reinterpret_cast<const float4*>(p) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}
__global__ void rmsnorm_forward_vec_kernel(float* y, float* rstd_out, const float* x, const float* w,
                                           const float* residual, float* residual_out, int64_t d, float eps) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x, j = 4 * static_cast<int64_t>(threadIdx.x);
  const bool inside = j < d;
  float4 v = row4(x + row * d + j, inside);
  if (residual) {
    const float4 r = row4(residual + row * d + j, inside);
    v = make_float4(v.x + r.x, v.y + r.y, v.z + r.z, v.w + r.w);
    if (inside) *reinterpret_cast<float4*>(residual_out + row * d + j) = v;
  }
  double sum = static_cast<double>(v.x) * v.x;
  sum += static_cast<double>(v.y) * v.y;
  sum += static_cast<double>(v.z) * v.z;
  sum += static_cast<double>(v.w) * v.w;
  sum = block_sum(sum, shared);
  const float rstd = static_cast<float>(1.0 / sqrt(sum / d + eps));
  if (threadIdx.x == 0) rstd_out[row] = rstd;
  if (!inside) return;
  const float4 wv = *reinterpret_cast<const float4*>(w + j);
  *reinterpret_cast<float4*>(y + row * d + j) =
      make_float4(v.x * rstd * wv.x, v.y * rstd * wv.y, v.z * rstd * wv.z, v.w * rstd * wv.w);
}

__global__ void rmsnorm_backward_dx_vec_kernel(float* dx, const float* dy, const float* x, const float* w,
                                               const float* rstd, int64_t d, bool accumulate) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x, j = 4 * static_cast<int64_t>(threadIdx.x);
  const bool inside = j < d;
  const float r = rstd[row];
  const float4 x4 = row4(x + row * d + j, inside), g4 = row4(dy + row * d + j, inside), w4 = row4(w + j, inside);
  const float xv[4] = {x4.x, x4.y, x4.z, x4.w}, gv[4] = {g4.x, g4.y, g4.z, g4.w}, wv[4] = {w4.x, w4.y, w4.z, w4.w};
  double dot = 0.0;
  for (int l = 0; l < 4; ++l) dot += static_cast<double>(gv[l]) * wv[l] * xv[l] * r;
  dot = block_sum(dot, shared);
  if (!inside) return;
  const float mean_dot = static_cast<float>(dot / d);
  float out[4];
  const float4 old = accumulate ? *reinterpret_cast<const float4*>(dx + row * d + j) : make_float4(0, 0, 0, 0);
  const float prior[4] = {old.x, old.y, old.z, old.w};
  for (int l = 0; l < 4; ++l) {
    const float n = xv[l] * r;
    const float g = r * (gv[l] * wv[l] - n * mean_dot);
    out[l] = accumulate ? prior[l] + g : g;
  }
  *reinterpret_cast<float4*>(dx + row * d + j) = make_float4(out[0], out[1], out[2], out[3]);
}

struct RmsNormDwTerm {
  const float *dy, *x, *rstd;
  int64_t d;
  __device__ double operator()(int64_t i, int64_t j) const {
    return static_cast<double>(dy[i * d + j]) * x[i * d + j] * rstd[i];
  }
};

// Gated grouped RMSNorm: block per (row, group). z (and dz) rows are z_ld (dz_ld) elements apart.
__global__ void gated_rmsnorm_forward_kernel(float* out, float* rstd_out, const float* y, const float* z,
                                             const float* w, int64_t di, int64_t z_ld, int64_t groups,
                                             bool norm_before_gate, float eps) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x / groups, g = blockIdx.x % groups, gs = di / groups;
  const int64_t off = row * di + g * gs;
  const int64_t zoff = row * z_ld + g * gs;
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    const float v = norm_before_gate ? y[off + j] : y[off + j] * dev_silu(z[zoff + j]);
    sum += static_cast<double>(v) * v;
  }
  sum = block_sum(sum, shared);
  const float rstd = static_cast<float>(1.0 / sqrt(sum / gs + eps));
  if (threadIdx.x == 0) rstd_out[row * groups + g] = rstd;
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    const float zz = z[zoff + j];
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
                                              const float* w, const float* rstd_in, int64_t di, int64_t z_ld,
                                              int64_t dz_ld, int64_t groups, bool norm_before_gate) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x / groups, g = blockIdx.x % groups, gs = di / groups;
  const int64_t off = row * di + g * gs;
  const int64_t zoff = row * z_ld + g * gs, dzoff = row * dz_ld + g * gs;
  const float rstd = rstd_in[row * groups + g];
  double dot = 0.0;
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    float normed, upstream;
    gated_terms(y[off + j], z[zoff + j], rstd, dout[off + j], norm_before_gate, &normed, &upstream);
    dot += static_cast<double>(upstream) * w[g * gs + j] * normed;
  }
  dot = block_sum(dot, shared);
  const float mean_dot = static_cast<float>(dot / gs);
  for (int64_t j = threadIdx.x; j < gs; j += blockDim.x) {
    const float yv = y[off + j], zv = z[zoff + j], wv = w[g * gs + j];
    float normed, upstream;
    gated_terms(yv, zv, rstd, dout[off + j], norm_before_gate, &normed, &upstream);
    const float dpre = rstd * (upstream * wv - normed * mean_dot);
    if (norm_before_gate) {
      dy[off + j] = dpre;
      dz[dzoff + j] = dout[off + j] * normed * wv * dev_silu_grad(zv);
    } else {
      dy[off + j] = dpre * zv * dev_sigmoid(zv);
      dz[dzoff + j] = dpre * yv * dev_silu_grad(zv);
    }
  }
}

// The same two kernels with the group held in registers: thread j of the block owns elements 4j..4j+3
// of the (row, group) slice (float4 loads and stores), so y, z and dout are read once. Used when the
// group size and the z / dz row pitches are multiples of 4, the group size is at most 4096 and
// every tensor is 16-byte aligned; block = group size / 4 rounded up to a warp.
__global__ void gated_rmsnorm_forward_vec_kernel(float* out, float* rstd_out, const float* y, const float* z,
                                                 const float* w, int64_t di, int64_t z_ld, int64_t groups,
                                                 bool norm_before_gate, float eps) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x / groups, g = blockIdx.x % groups, gs = di / groups;
  const int64_t off = row * di + g * gs, j = 4 * static_cast<int64_t>(threadIdx.x);
  const bool inside = j < gs;
  const float4 y4 = row4(y + off + j, inside), z4 = row4(z + row * z_ld + g * gs + j, inside);
  const float yv[4] = {y4.x, y4.y, y4.z, y4.w}, zv[4] = {z4.x, z4.y, z4.z, z4.w};
  float pre[4];
  double sum = 0.0;
  for (int l = 0; l < 4; ++l) {
    pre[l] = norm_before_gate ? yv[l] : yv[l] * dev_silu(zv[l]);
    sum += static_cast<double>(pre[l]) * pre[l];
  }
  sum = block_sum(sum, shared);
  const float rstd = static_cast<float>(1.0 / sqrt(sum / gs + eps));
  if (threadIdx.x == 0) rstd_out[row * groups + g] = rstd;
  if (!inside) return;
  const float4 w4 = *reinterpret_cast<const float4*>(w + g * gs + j);
  const float wv[4] = {w4.x, w4.y, w4.z, w4.w};
  float o[4];
  for (int l = 0; l < 4; ++l) {
    o[l] = pre[l] * (rstd * wv[l]);
    if (norm_before_gate) o[l] *= dev_silu(zv[l]);
  }
  *reinterpret_cast<float4*>(out + off + j) = make_float4(o[0], o[1], o[2], o[3]);
}

__global__ void gated_rmsnorm_backward_vec_kernel(float* dy, float* dz, const float* dout, const float* y,
                                                  const float* z, const float* w, const float* rstd_in, int64_t di,
                                                  int64_t z_ld, int64_t dz_ld, int64_t groups, bool norm_before_gate) {
  __shared__ double shared[32];
  const int64_t row = blockIdx.x / groups, g = blockIdx.x % groups, gs = di / groups;
  const int64_t off = row * di + g * gs, j = 4 * static_cast<int64_t>(threadIdx.x);
  const bool inside = j < gs;
  const float rstd = rstd_in[row * groups + g];
  const float4 y4 = row4(y + off + j, inside), z4 = row4(z + row * z_ld + g * gs + j, inside);
  const float4 d4 = row4(dout + off + j, inside), w4 = row4(w + g * gs + j, inside);
  const float yv[4] = {y4.x, y4.y, y4.z, y4.w}, zv[4] = {z4.x, z4.y, z4.z, z4.w};
  const float dv[4] = {d4.x, d4.y, d4.z, d4.w}, wv[4] = {w4.x, w4.y, w4.z, w4.w};
  float normed[4], upstream[4];
  double dot = 0.0;
  for (int l = 0; l < 4; ++l) {
    gated_terms(yv[l], zv[l], rstd, dv[l], norm_before_gate, &normed[l], &upstream[l]);
    dot += static_cast<double>(upstream[l]) * wv[l] * normed[l];
  }
  dot = block_sum(dot, shared);
  if (!inside) return;
  const float mean_dot = static_cast<float>(dot / gs);
  float a[4], b[4];
  for (int l = 0; l < 4; ++l) {
    const float dpre = rstd * (upstream[l] * wv[l] - normed[l] * mean_dot);
    if (norm_before_gate) {
      a[l] = dpre;
      b[l] = dv[l] * normed[l] * wv[l] * dev_silu_grad(zv[l]);
    } else {
      a[l] = dpre * zv[l] * dev_sigmoid(zv[l]);
      b[l] = dpre * yv[l] * dev_silu_grad(zv[l]);
    }
  }
  *reinterpret_cast<float4*>(dy + off + j) = make_float4(a[0], a[1], a[2], a[3]);
  *reinterpret_cast<float4*>(dz + row * dz_ld + g * gs + j) = make_float4(b[0], b[1], b[2], b[3]);
}

struct GatedRmsNormDwTerm {
  const float *dout, *y, *z, *rstd;
  int64_t di, z_ld, groups, group_size;
  bool norm_before_gate;
  __device__ double operator()(int64_t i, int64_t j) const {
    float normed, upstream;
    gated_terms(y[i * di + j], z[i * z_ld + j], rstd[i * groups + j / group_size], dout[i * di + j], norm_before_gate,
                &normed, &upstream);
    return static_cast<double>(upstream) * normed;
  }
};

unsigned row_threads(int64_t width) { return width >= 1024 ? 512 : width >= 256 ? 256 : 128; }

// Threads of the register-held (vec) kernels for rows (or groups) of `width` elements, or 0 when
// they do not apply; absent tensors (nullptr) pass.
unsigned vec_threads(int64_t width, std::initializer_list<const float*> tensors) {
  if (width % 4 != 0 || width > 4096) return 0;
  for (const float* t : tensors)
    if (reinterpret_cast<uintptr_t>(t) % 16 != 0) return 0;
  return static_cast<unsigned>((width / 4 + 31) / 32 * 32);
}

}  // namespace

void CudaBackend::rmsnorm_forward(const RmsNormFwd& a) {
  const int64_t m = a.x.rows(), d = a.x.cols();
  if (m == 0) return;
  const bool fused = a.residual.defined();
  float* residual_out = fused ? a.residual_out.data : nullptr;
  const float* residual = fused ? a.residual.data : nullptr;
  if (const unsigned threads = vec_threads(d, {a.y.data, a.x.data, a.w.data, residual, residual_out})) {
    rmsnorm_forward_vec_kernel<<<static_cast<unsigned>(m), threads, 0, state_->stream>>>(
        a.y.data, a.rstd.data, a.x.data, a.w.data, residual, residual_out, d, a.eps);
  } else {
    rmsnorm_forward_kernel<<<static_cast<unsigned>(m), row_threads(d), 0, state_->stream>>>(
        a.y.data, a.rstd.data, a.x.data, a.w.data, residual, residual_out, d, a.eps);
  }
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
  if (const unsigned threads = vec_threads(d, {a.dx.data, a.dy.data, a.x.data, a.w.data})) {
    rmsnorm_backward_dx_vec_kernel<<<static_cast<unsigned>(m), threads, 0, state_->stream>>>(
        a.dx.data, a.dy.data, a.x.data, a.w.data, a.rstd.data, d, a.accumulate);
  } else {
    rmsnorm_backward_dx_kernel<<<static_cast<unsigned>(m), row_threads(d), 0, state_->stream>>>(
        a.dx.data, a.dy.data, a.x.data, a.w.data, a.rstd.data, d, a.accumulate);
  }
  finish_op("cuda rmsnorm_backward", a.dx.name.c_str());
}

void CudaBackend::gated_rmsnorm_forward(const GatedRmsNormFwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols();
  if (m == 0) return;
  const unsigned blocks = static_cast<unsigned>(m * a.groups);
  const unsigned threads =
      a.z_ld % 4 == 0 ? vec_threads(di / a.groups, {a.out.data, a.y.data, a.z.data, a.w.data}) : 0;
  if (threads) {
    gated_rmsnorm_forward_vec_kernel<<<blocks, threads, 0, state_->stream>>>(
        a.out.data, a.rstd.data, a.y.data, a.z.data, a.w.data, di, a.z_ld, a.groups, a.norm_before_gate, a.eps);
  } else {
    gated_rmsnorm_forward_kernel<<<blocks, row_threads(di / a.groups), 0, state_->stream>>>(
        a.out.data, a.rstd.data, a.y.data, a.z.data, a.w.data, di, a.z_ld, a.groups, a.norm_before_gate, a.eps);
  }
  finish_op("cuda gated_rmsnorm_forward", a.out.name.c_str());
}

void CudaBackend::gated_rmsnorm_backward(const GatedRmsNormBwd& a) {
  const int64_t m = a.y.rows(), di = a.y.cols();
  if (m == 0) return;
  if (a.dw.defined()) {
    accumulate_columns(*state_, m, di,
                       GatedRmsNormDwTerm{a.dout.data, a.y.data, a.z.data, a.rstd.data, di, a.z_ld, a.groups,
                                          di / a.groups, a.norm_before_gate},
                       AddToVector{a.dw.data}, "cuda gated_rmsnorm_backward");
    op_phase(*state_, "cuda gated_rmsnorm_backward dw", a.dy.name.c_str());
  }
  const unsigned blocks = static_cast<unsigned>(m * a.groups);
  const unsigned threads =
      a.z_ld % 4 == 0 && a.dz_ld % 4 == 0
          ? vec_threads(di / a.groups, {a.dy.data, a.dz.data, a.dout.data, a.y.data, a.z.data, a.w.data})
          : 0;
  if (threads) {
    gated_rmsnorm_backward_vec_kernel<<<blocks, threads, 0, state_->stream>>>(
        a.dy.data, a.dz.data, a.dout.data, a.y.data, a.z.data, a.w.data, a.rstd.data, di, a.z_ld, a.dz_ld, a.groups,
        a.norm_before_gate);
  } else {
    gated_rmsnorm_backward_kernel<<<blocks, row_threads(di / a.groups), 0, state_->stream>>>(
        a.dy.data, a.dz.data, a.dout.data, a.y.data, a.z.data, a.w.data, a.rstd.data, di, a.z_ld, a.dz_ld, a.groups,
        a.norm_before_gate);
  }
  finish_op("cuda gated_rmsnorm_backward", a.dy.name.c_str());
}

}  // namespace strata
