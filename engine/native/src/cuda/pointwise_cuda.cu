// CUDA kernels of the row- and element-wise op families: elementwise helpers (add, axpy, scale,
// strided copy, bias add and bias gradient),
// activations and their derivatives, token embedding (gather / atomic scatter-add), the fused
// log-softmax cross-entropy, the fused AdamW step and the sum of squares, and the list launches
// (many tensors per kernel: a model's AdamW step, gradient norm and gradient zeroing). Formulas match
// the CPU kernels (cpu/*_cpu.cpp); index validation happens on the GPU and raises the same messages.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "../ops/activation.h"
#include "../ops/adamw.h"
#include "../ops/cross_entropy.h"
#include "../ops/elementwise.h"
#include "../ops/embedding.h"
#include "cuda_common.cuh"

namespace strata {
namespace {

enum ErrorCode { kBadToken = 1, kBadTarget = 2 };

// Elementwise kernels over n elements: f.four(i) handles elements 4i..4i+3 through float4 loads and
// stores (used when every pointer is 16-byte aligned), f.one(i) a single element (the tail, or all of
// them otherwise); the four-lane form applies the same scalar formula per lane.
template <typename F>
__global__ void elementwise_kernel(int64_t n, bool vec, F f) {
  const int64_t n4 = vec ? n / 4 : 0;
  STRATA_GRID_STRIDE(i, n4) f.four(i);
  STRATA_GRID_STRIDE(i, n - 4 * n4) f.one(4 * n4 + i);
}
bool aligned16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}
template <typename F>
void launch_elementwise(int64_t n, bool vec, F f, cudaStream_t stream) {
  elementwise_kernel<<<grid_for(vec ? std::max<int64_t>(n / 4, 1) : n), kThreads, 0, stream>>>(n, vec, f);
}
__device__ __forceinline__ float4 load4(const float* p, int64_t i4) { return reinterpret_cast<const float4*>(p)[i4]; }
__device__ __forceinline__ void store4(float* p, int64_t i4, float4 v) { reinterpret_cast<float4*>(p)[i4] = v; }
template <typename Op>
__device__ __forceinline__ float4 lanes(float4 a, float4 b, Op op) {
  return make_float4(op(a.x, b.x), op(a.y, b.y), op(a.z, b.z), op(a.w, b.w));
}

struct AddOp {
  float* out;
  const float *a, *b;
  __device__ void one(int64_t i) const { out[i] = a[i] + b[i]; }
  __device__ void four(int64_t i) const {
    store4(out, i, lanes(load4(a, i), load4(b, i), [](float x, float y) { return x + y; }));
  }
};
struct AxpyOp {
  float* y;
  const float* x;
  float alpha;
  __device__ void one(int64_t i) const { y[i] += alpha * x[i]; }
  __device__ void four(int64_t i) const {
    const float s = alpha;
    store4(y, i, lanes(load4(y, i), load4(x, i), [s](float yv, float xv) { return yv + s * xv; }));
  }
};
struct ScaleOp {
  float* x;
  float factor;
  __device__ void one(int64_t i) const { x[i] *= factor; }
  __device__ void four(int64_t i) const {
    const float s = factor;
    const float4 v = load4(x, i);
    store4(x, i, lanes(v, v, [s](float a, float) { return a * s; }));
  }
};
// The strided copy's addressing as plain values (kernel arguments must be trivially copyable).
struct StridedCopyDev {
  float* dst;
  const float* src;
  int64_t rows, cols;
  int64_t dst_batch_stride, dst_row_stride, src_batch_stride, src_row_stride;
  bool accumulate;
  bool vec;  // float4 moves: both bases 16-byte aligned, cols and every stride a multiple of 4
};
// Work items are (batch, row, chunk of kCopyChunk columns), one per block in a grid-stride loop, so
// a single long row (a whole-tensor copy) spreads over the GPU as well as many short rows do.
constexpr int64_t kCopyChunk = 2048;
__global__ void copy_strided_kernel(StridedCopyDev a, int64_t total_rows, int64_t chunks_per_row) {
  const int64_t items = total_rows * chunks_per_row;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t br = item / chunks_per_row, c0 = (item % chunks_per_row) * kCopyChunk;
    const int64_t c1 = min(a.cols, c0 + kCopyChunk);
    const int64_t b = br / a.rows, r = br % a.rows;
    float* d = a.dst + b * a.dst_batch_stride + r * a.dst_row_stride;
    const float* src = a.src + b * a.src_batch_stride + r * a.src_row_stride;
    if (a.vec) {
      for (int64_t c = c0 + 4 * threadIdx.x; c < c1; c += 4 * blockDim.x) {
        float4 v = *reinterpret_cast<const float4*>(src + c);
        if (a.accumulate) {
          const float4 old = *reinterpret_cast<const float4*>(d + c);
          v = make_float4(old.x + v.x, old.y + v.y, old.z + v.z, old.w + v.w);
        }
        *reinterpret_cast<float4*>(d + c) = v;
      }
    } else if (a.accumulate) {
      for (int64_t c = c0 + threadIdx.x; c < c1; c += blockDim.x) d[c] += src[c];
    } else {
      for (int64_t c = c0 + threadIdx.x; c < c1; c += blockDim.x) d[c] = src[c];
    }
  }
}
__global__ void bias_add_kernel(float* y, const float* bias, int64_t o, int64_t n) {
  STRATA_GRID_STRIDE(i, n) y[i] += bias[i % o];
}
// Column sums: blockDim (32, 8); each block owns 32 columns, the 8 row lanes stride over rows.
__global__ void bias_grad_kernel(float* dbias, const float* dy, int64_t m, int64_t o) {
  __shared__ double partial[8][33];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  double sum = 0.0;
  if (j < o) {
    for (int64_t i = threadIdx.y; i < m; i += 8) sum += dy[i * o + j];
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && j < o) {
    double total = 0.0;
    for (int r = 0; r < 8; ++r) total += partial[r][threadIdx.x];
    dbias[j] += static_cast<float>(total);
  }
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
__device__ __forceinline__ float dev_gelu(float x) { return 0.5f * x * (1.0f + erff(x * kInvSqrt2)); }
__device__ __forceinline__ float dev_gelu_grad(float x) {
  return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
}

__device__ __forceinline__ float activation_value(ActivationKind kind, float v) {
  switch (kind) {
    case ActivationKind::Relu2: return v > 0.0f ? v * v : 0.0f;
    case ActivationKind::Gelu: return dev_gelu(v);
    case ActivationKind::Silu: return dev_silu(v);
    case ActivationKind::Softplus: return dev_softplus(v);
    case ActivationKind::Swiglu: break;
  }
  return v;
}
__device__ __forceinline__ float activation_slope(ActivationKind kind, float v) {
  switch (kind) {
    case ActivationKind::Relu2: return v > 0.0f ? 2.0f * v : 0.0f;
    case ActivationKind::Gelu: return dev_gelu_grad(v);
    case ActivationKind::Silu: return dev_silu_grad(v);
    case ActivationKind::Softplus: return dev_sigmoid(v);
    case ActivationKind::Swiglu: break;
  }
  return 0.0f;
}
struct ActivationFwdOp {
  ActivationKind kind;
  float* y;
  const float* x;
  __device__ void one(int64_t i) const { y[i] = activation_value(kind, x[i]); }
  __device__ void four(int64_t i) const {
    const ActivationKind k = kind;
    const float4 v = load4(x, i);
    store4(y, i, lanes(v, v, [k](float a, float) { return activation_value(k, a); }));
  }
};
struct ActivationBwdOp {
  ActivationKind kind;
  float* dx;
  const float *dy, *x;
  __device__ void one(int64_t i) const { dx[i] = dy[i] * activation_slope(kind, x[i]); }
  __device__ void four(int64_t i) const {
    const ActivationKind k = kind;
    store4(dx, i, lanes(load4(dy, i), load4(x, i), [k](float g, float v) { return g * activation_slope(k, v); }));
  }
};
__global__ void swiglu_forward_kernel(float* y, const float* x, int64_t m, int64_t f) {
  STRATA_GRID_STRIDE(i, m * f) {
    const int64_t row = i / f, j = i % f;
    const float* gate = x + row * 2 * f;
    y[i] = dev_silu(gate[j]) * gate[f + j];
  }
}
__global__ void swiglu_backward_kernel(float* dx, const float* dy, const float* x, int64_t m, int64_t f) {
  STRATA_GRID_STRIDE(i, m * f) {
    const int64_t row = i / f, j = i % f;
    const float* gate = x + row * 2 * f;
    const float g = dy[i];
    dx[row * 2 * f + j] = g * gate[f + j] * dev_silu_grad(gate[j]);
    dx[row * 2 * f + f + j] = g * dev_silu(gate[j]);
  }
}

__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table, int64_t m, int64_t v,
                                         int64_t d, DeviceErrorFlag* flag) {
  STRATA_GRID_STRIDE(i, m * d) {
    const int64_t row = i / d, col = i % d;
    const int32_t id = ids[row];
    if (id < 0 || id >= v) {
      if (col == 0) report_error(flag, kBadToken, row, id);
      continue;
    }
    out[i] = table[static_cast<int64_t>(id) * d + col];
  }
}
__global__ void embedding_backward_kernel(float* dtable, const int32_t* ids, const float* dout, int64_t m, int64_t v,
                                          int64_t d, DeviceErrorFlag* flag) {
  STRATA_GRID_STRIDE(i, m * d) {
    const int64_t row = i / d, col = i % d;
    const int32_t id = ids[row];
    if (id < 0 || id >= v) {
      if (col == 0) report_error(flag, kBadToken, row, id);
      continue;
    }
    atomicAdd(dtable + static_cast<int64_t>(id) * d + col, dout[i]);
  }
}

// Log-sum-exp of a set of logits kept as (m, s): the running max and the sum of exp(x - m); an empty
// set is (-inf, 0). A NaN anywhere makes s NaN (and so the loss), as the CPU kernel does.
__device__ __forceinline__ void lse_merge(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2, s = s2;
  } else if (m2 > m) {
    s = s * expf(m - m2) + s2, m = m2;
  } else {
    s += s2 * expf(m2 - m);  // (m2 NaN: s becomes NaN)
  }
}
__device__ __forceinline__ void lse_add4(float& m, float& s, float4 v) {
  const float mx = fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w));  // (fmaxf drops NaNs: the sum below keeps them)
  if (mx == -INFINITY) {
    if (v.x != v.x || v.y != v.y || v.z != v.z || v.w != v.w) s = NAN;
    return;
  }
  lse_merge(m, s, mx, expf(v.x - mx) + expf(v.y - mx) + expf(v.z - mx) + expf(v.w - mx));
}

// One block (kThreads) per row, one pass over the logits: each thread keeps the log-sum-exp of its
// elements (float4 loads when `vec`: v % 4 == 0 and the logits 16-byte aligned), then the block merges
// them in a fixed order (warp shuffles, then warp 0 over the warps); loss = lse - logits[target].
__global__ void cross_entropy_forward_kernel(float* losses,          // (M)
                                             float* lse_out,         // (M)
                                             const float* logits,    // (M, V)
                                             const int32_t* targets, // (M)
                                             int64_t v, int32_t ignore_index, bool vec, DeviceErrorFlag* flag) {
  __shared__ float shared_m[32], shared_s[32];
  const int64_t row = blockIdx.x;
  const float* x = logits + row * v;
  float m = -INFINITY, s = 0.0f;
  if (vec) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll 4
    for (int64_t j = threadIdx.x; j < v / 4; j += blockDim.x) lse_add4(m, s, x4[j]);
  } else {
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) lse_merge(m, s, x[j], x[j] != x[j] ? NAN : 1.0f);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_down_sync(0xffffffffu, m, o), s2 = __shfl_down_sync(0xffffffffu, s, o);
    lse_merge(m, s, m2, s2);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) shared_m[warp] = m, shared_s[warp] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    float bm = -INFINITY, bs = 0.0f;
    for (int w = 0; w < warps; ++w) lse_merge(bm, bs, shared_m[w], shared_s[w]);
    const float lse = bm + logf(bs);
    lse_out[row] = lse;
    const int32_t t = targets[row];
    if (t == ignore_index) {
      losses[row] = 0.0f;
    } else if (t < 0 || t >= v) {
      report_error(flag, kBadTarget, row, t);
      losses[row] = 0.0f;
    } else {
      losses[row] = lse - x[t];
    }
  }
}
// One block (kThreads) per row: dlogits = (softmax - onehot(target)) * grad_scale, zeros for an
// ignored row; dlogits may alias logits. float4 loads and stores when `vec`.
__global__ void cross_entropy_backward_kernel(float* dlogits,          // (M, V)
                                              const float* logits,     // (M, V)
                                              const float* lse,        // (M)
                                              const int32_t* targets,  // (M)
                                              int64_t v, float grad_scale, int32_t ignore_index, bool vec,
                                              DeviceErrorFlag* flag) {
  const int64_t row = blockIdx.x;
  const int32_t t = targets[row];
  const float* x = logits + row * v;
  float* dx = dlogits + row * v;
  if (t != ignore_index && (t < 0 || t >= v)) {
    if (threadIdx.x == 0) report_error(flag, kBadTarget, row, t);
    return;
  }
  const bool ignored = t == ignore_index;
  const float l = lse[row];
  if (vec) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* d4 = reinterpret_cast<float4*>(dx);
#pragma unroll 4
    for (int64_t j = threadIdx.x; j < v / 4; j += blockDim.x) {
      float4 g = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (!ignored) {
        const float4 xv = x4[j];
        g = make_float4(expf(xv.x - l) * grad_scale, expf(xv.y - l) * grad_scale, expf(xv.z - l) * grad_scale,
                        expf(xv.w - l) * grad_scale);
        if (t / 4 == j) {
          const int k = t % 4;
          if (k == 0) g.x -= grad_scale;
          else if (k == 1) g.y -= grad_scale;
          else if (k == 2) g.z -= grad_scale;
          else g.w -= grad_scale;
        }
      }
      d4[j] = g;
    }
  } else {
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      float g = 0.0f;
      if (!ignored) {
        g = expf(x[j] - l) * grad_scale;
        if (j == t) g -= grad_scale;
      }
      dx[j] = g;
    }
  }
}

struct AdamWOp {
  float* param;
  const float* grad;
  float *m_state, *v_state;
  float lr, beta1, beta2, eps, weight_decay, grad_scale, bias1, bias2;
  __device__ void lane(float& p, float grad_value, float& m_value, float& v_value) const {
    const float g = grad_value * grad_scale;
    const float m = beta1 * m_value + (1.0f - beta1) * g;
    const float v = beta2 * v_value + (1.0f - beta2) * g * g;
    m_value = m;
    v_value = v;
    const float update = (m / bias1) / (sqrtf(v / bias2) + eps);
    p -= lr * (update + weight_decay * p);
  }
  __device__ void one(int64_t i) const { lane(param[i], grad[i], m_state[i], v_state[i]); }
  __device__ void four(int64_t i) const {
    float4 p = load4(param, i), m = load4(m_state, i), v = load4(v_state, i);
    const float4 g = load4(grad, i);
    lane(p.x, g.x, m.x, v.x);
    lane(p.y, g.y, m.y, v.y);
    lane(p.z, g.z, m.z, v.z);
    lane(p.w, g.w, m.w, v.w);
    store4(param, i, p);
    store4(m_state, i, m);
    store4(v_state, i, v);
  }
};

// List launches: up to kListTensors tensors per kernel, each cut into chunks of `chunk` elements
// (a multiple of 4), one block per chunk; first_block[i] is tensor i's first block (a prefix sum),
// so a block finds its tensor by a binary search. The list is passed by value as the kernel
// argument (under the 4 KB parameter limit): nothing is uploaded, and a recording captures it.
constexpr int kListTensors = 32;
template <typename Entry>
struct TensorList {
  Entry entries[kListTensors];
  int64_t first_block[kListTensors + 1];
  int64_t chunk;
  int count;
};
// The tensor of block b and the [begin, end) element range of its chunk.
template <typename Entry>
__device__ Entry list_chunk(const TensorList<Entry>& list, int64_t b, int64_t& begin, int64_t& end) {
  int lo = 0, hi = list.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (list.first_block[mid] <= b) lo = mid; else hi = mid - 1;
  }
  const Entry e = list.entries[lo];
  begin = (b - list.first_block[lo]) * list.chunk;
  end = min(e.n, begin + list.chunk);
  return e;
}
// f.four(i) over the float4 groups of [begin, end) when vec (begin is a multiple of 4), f.one(i)
// over the rest: the same split as elementwise_kernel, so each element gets the same arithmetic.
template <typename F>
__device__ void chunk_apply(const F& f, int64_t begin, int64_t end, bool vec) {
  const int64_t vec_end = vec ? begin + (end - begin) / 4 * 4 : begin;
  for (int64_t i4 = begin / 4 + threadIdx.x; i4 < vec_end / 4; i4 += blockDim.x) f.four(i4);
  for (int64_t i = vec_end + threadIdx.x; i < end; i += blockDim.x) f.one(i);
}
// Calls launch(list, blocks) for every kListTensors entries with n > 0 (in order).
template <typename Entry, typename Launch>
void launch_lists(const std::vector<Entry>& entries, int64_t chunk, Launch&& launch) {
  TensorList<Entry> list{};
  list.chunk = chunk;
  int64_t blocks = 0;
  auto flush = [&] {
    if (list.count == 0) return;
    list.first_block[list.count] = blocks;
    launch(list, blocks);
    list.count = 0;
    blocks = 0;
  };
  for (const Entry& e : entries) {
    if (e.n == 0) continue;
    list.entries[list.count] = e;
    list.first_block[list.count] = blocks;
    blocks += (e.n + chunk - 1) / chunk;
    if (++list.count == kListTensors) flush();
  }
  flush();
}

struct AdamWEntry {
  float* param;
  const float* grad;
  float *m, *v;
  int64_t n;
  float weight_decay;
  bool vec;  // every pointer 16-byte aligned
};
// AdamW's shared hyperparameters of one list (AdamWOp without the pointers and weight decay).
struct AdamWShared {
  float lr, beta1, beta2, eps, grad_scale, bias1, bias2;
};
__global__ void adamw_list_kernel(const TensorList<AdamWEntry> list, AdamWShared h) {
  int64_t begin, end;
  const AdamWEntry e = list_chunk(list, blockIdx.x, begin, end);
  const AdamWOp op{e.param, e.grad, e.m, e.v, h.lr, h.beta1, h.beta2, h.eps, e.weight_decay, h.grad_scale,
                   h.bias1, h.bias2};
  chunk_apply(op, begin, end, e.vec);
}

struct SquaresEntry {
  const float* x;
  int64_t n;
  bool vec;
};
struct SquaresOp {
  const float* x;
  double* local;  // the thread's running sum
  __device__ void one(int64_t i) const { *local += static_cast<double>(x[i]) * x[i]; }
  __device__ void four(int64_t i) const {
    const float4 v = load4(x, i);
    *local += static_cast<double>(v.x) * v.x + static_cast<double>(v.y) * v.y + static_cast<double>(v.z) * v.z +
              static_cast<double>(v.w) * v.w;
  }
};
// *out += sum of x^2 over every listed tensor (double; one atomic add per block).
__global__ void sum_squares_list_kernel(const TensorList<SquaresEntry> list, double* out) {
  __shared__ double shared[32];
  int64_t begin, end;
  const SquaresEntry e = list_chunk(list, blockIdx.x, begin, end);
  double local = 0.0;
  chunk_apply(SquaresOp{e.x, &local}, begin, end, e.vec);
  local = block_sum(local, shared);
  if (threadIdx.x == 0) atomicAdd(out, local);
}

struct ZeroEntry {
  uint32_t* words;
  int64_t n;  // 4-byte words
  bool vec;   // 16-byte aligned
};
struct ZeroOp {
  uint32_t* words;
  __device__ void one(int64_t i) const { words[i] = 0u; }
  __device__ void four(int64_t i) const { reinterpret_cast<uint4*>(words)[i] = make_uint4(0u, 0u, 0u, 0u); }
};
__global__ void zero_list_kernel(const TensorList<ZeroEntry> list) {
  int64_t begin, end;
  const ZeroEntry e = list_chunk(list, blockIdx.x, begin, end);
  chunk_apply(ZeroOp{e.words}, begin, end, e.vec);
}

}  // namespace

void CudaBackend::add(const AddArgs& a) {
  const int64_t n = a.out.numel();
  if (n == 0) return;
  state_->parameters.note_write(a.out.data, sizeof(float) * static_cast<std::size_t>(n));  // weight packs (gemm_cuda.cu)
  launch_elementwise(n, aligned16({a.out.data, a.a.data, a.b.data}), AddOp{a.out.data, a.a.data, a.b.data},
                     state_->stream);
  finish_op("cuda add", a.out.name.c_str());
}
void CudaBackend::axpy(const AxpyArgs& a) {
  const int64_t n = a.y.numel();
  if (n == 0) return;
  state_->parameters.note_write(a.y.data, sizeof(float) * static_cast<std::size_t>(n));
  launch_elementwise(n, aligned16({a.y.data, a.x.data}), AxpyOp{a.y.data, a.x.data, a.alpha}, state_->stream);
  finish_op("cuda axpy", a.y.name.c_str());
}
void CudaBackend::scale(const ScaleArgs& a) {
  const int64_t n = a.x.numel();
  if (n == 0) return;
  state_->parameters.note_write(a.x.data, sizeof(float) * static_cast<std::size_t>(n));
  launch_elementwise(n, aligned16({a.x.data}), ScaleOp{a.x.data, a.factor}, state_->stream);
  finish_op("cuda scale", a.x.name.c_str());
}

void CudaBackend::copy_strided(const StridedCopyArgs& a) {
  const int64_t total_rows = a.batches * a.rows;
  if (total_rows * a.cols == 0) return;
  StridedCopyDev dev{a.dst.data + a.dst_offset, a.src.data + a.src_offset, a.rows, a.cols,
                     a.dst_batch_stride, a.dst_row_stride, a.src_batch_stride, a.src_row_stride, a.accumulate, false};
  dev.vec = aligned16({dev.dst, dev.src}) && (a.cols | a.dst_batch_stride | a.dst_row_stride | a.src_batch_stride |
                                              a.src_row_stride) % 4 == 0;
  const int64_t lanes = dev.vec ? a.cols / 4 : a.cols;  // threads a row chunk can use
  const int threads = lanes >= 256 ? 256 : lanes >= 128 ? 128 : 64;
  const int64_t chunks_per_row = (a.cols + kCopyChunk - 1) / kCopyChunk;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(total_rows * chunks_per_row, 1 << 20));
  state_->parameters.note_write(a.dst.data, sizeof(float) * static_cast<std::size_t>(a.dst.numel()));
  copy_strided_kernel<<<blocks, threads, 0, state_->stream>>>(dev, total_rows, chunks_per_row);
  finish_op("cuda copy_strided", a.dst.name.c_str());
}
void CudaBackend::bias_add(const BiasAddArgs& a) {
  const int64_t n = a.y.numel(), o = a.y.cols();
  if (n == 0) return;
  state_->parameters.note_write(a.y.data, sizeof(float) * static_cast<std::size_t>(n));
  bias_add_kernel<<<grid_for(n), kThreads, 0, state_->stream>>>(a.y.data, a.bias.data, o, n);
  finish_op("cuda bias_add", a.y.name.c_str());
}
void CudaBackend::bias_grad(const BiasGradArgs& a) {
  const int64_t m = a.dy.rows(), o = a.dy.cols();
  if (m * o == 0) return;
  bias_grad_kernel<<<static_cast<unsigned>((o + 31) / 32), dim3(32, 8), 0, state_->stream>>>(a.dbias.data, a.dy.data,
                                                                                            m, o);
  finish_op("cuda bias_grad", a.dy.name.c_str());
}

void CudaBackend::activation_forward(const ActivationFwd& a) {
  const int64_t m = a.y.rows(), f = a.y.cols();
  if (m * f == 0) return;
  if (a.kind == ActivationKind::Swiglu) {
    swiglu_forward_kernel<<<grid_for(m * f), kThreads, 0, state_->stream>>>(a.y.data, a.x.data, m, f);
  } else {
    launch_elementwise(m * f, aligned16({a.y.data, a.x.data}), ActivationFwdOp{a.kind, a.y.data, a.x.data},
                       state_->stream);
  }
  finish_op("cuda activation_forward", a.y.name.c_str());
}
void CudaBackend::activation_backward(const ActivationBwd& a) {
  const int64_t m = a.dy.rows(), f = a.dy.cols();
  if (m * f == 0) return;
  if (a.kind == ActivationKind::Swiglu) {
    swiglu_backward_kernel<<<grid_for(m * f), kThreads, 0, state_->stream>>>(a.dx.data, a.dy.data, a.x.data, m, f);
  } else {
    launch_elementwise(m * f, aligned16({a.dx.data, a.dy.data, a.x.data}),
                       ActivationBwdOp{a.kind, a.dx.data, a.dy.data, a.x.data}, state_->stream);
  }
  finish_op("cuda activation_backward", a.dx.name.c_str());
}

namespace {
// The report of a validating kernel (token / target range), raised at the stream's next wait.
DeviceErrorReporter range_report(const char* op, std::string ignore_text, int64_t limit) {
  return [op, ignore_text, limit](const DeviceErrorFlag& flag) {
    if (flag.code == kBadToken) {
      throw Error(detail::concat(op, ": token id ", flag.value, " at position ", flag.index,
                                 " is outside the vocabulary [0, ", limit, ")"));
    }
    throw Error(detail::concat(op, ": target ", flag.value, " at row ", flag.index, " is outside the vocabulary [0, ",
                               limit, ") and is not the ignore index ", ignore_text));
  };
}
}  // namespace

void CudaBackend::embedding_forward(const EmbeddingFwd& a) {
  const int64_t m = a.ids.numel(), v = a.table.size(0), d = a.table.size(1);
  if (m * d == 0) return;
  DeviceErrorFlag* record = state_->error_record(range_report("embedding_forward", "", v), "embedding_forward");
  embedding_forward_kernel<<<grid_for(m * d), kThreads, 0, state_->stream>>>(a.out.data, a.ids.data, a.table.data, m,
                                                                             v, d, record);
  finish_op("embedding_forward");
}
void CudaBackend::embedding_backward(const EmbeddingBwd& a) {
  const int64_t m = a.ids.numel(), v = a.dtable.size(0), d = a.dtable.size(1);
  if (m * d == 0) return;
  DeviceErrorFlag* record = state_->error_record(range_report("embedding_backward", "", v), "embedding_backward");
  embedding_backward_kernel<<<grid_for(m * d), kThreads, 0, state_->stream>>>(a.dtable.data, a.ids.data, a.dout.data,
                                                                              m, v, d, record);
  finish_op("embedding_backward");
}

void CudaBackend::cross_entropy_forward(const CrossEntropyFwd& a) {
  const int64_t m = a.logits.rows(), v = a.logits.cols();
  if (m == 0) return;
  DeviceErrorFlag* record = state_->error_record(
      range_report("cross_entropy_forward", std::to_string(a.ignore_index), v), "cross_entropy_forward");
  const bool vec = v % 4 == 0 && reinterpret_cast<uintptr_t>(a.logits.data) % 16 == 0;
  cross_entropy_forward_kernel<<<static_cast<unsigned>(m), kThreads, 0, state_->stream>>>(
      a.losses.data, a.lse.data, a.logits.data, a.targets.data, v, a.ignore_index, vec, record);
  finish_op("cross_entropy_forward");
}
void CudaBackend::cross_entropy_backward(const CrossEntropyBwd& a) {
  const int64_t m = a.logits.rows(), v = a.logits.cols();
  if (m * v == 0) return;
  DeviceErrorFlag* record = state_->error_record(
      range_report("cross_entropy_backward", std::to_string(a.ignore_index), v), "cross_entropy_backward");
  const bool vec = v % 4 == 0 && reinterpret_cast<uintptr_t>(a.logits.data) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(a.dlogits.data) % 16 == 0;
  cross_entropy_backward_kernel<<<static_cast<unsigned>(m), kThreads, 0, state_->stream>>>(
      a.dlogits.data, a.logits.data, a.lse.data, a.targets.data, v, a.grad_scale, a.ignore_index, vec, record);
  finish_op("cross_entropy_backward");
}

void CudaBackend::adamw_step(const AdamWStep& a) {
  const int64_t n = a.param.numel();
  if (n == 0) return;
  const float bias1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step)));
  const float bias2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step)));
  state_->parameters.note_update();  // the parameters change: weight packs made before are stale
  launch_elementwise(n, aligned16({a.param.data, a.grad.data, a.m.data, a.v.data}),
                     AdamWOp{a.param.data, a.grad.data, a.m.data, a.v.data, a.lr, a.beta1, a.beta2, a.eps,
                             a.weight_decay, a.grad_scale, bias1, bias2},
                     state_->stream);
  finish_op("cuda adamw_step");
}

// Steps with the same shared hyperparameters (all of them in a training step) go into list
// launches of kListTensors tensors; AdamWOp does the arithmetic in both paths.
void CudaBackend::adamw_steps(const std::vector<AdamWStep>& steps) {
  const char* op = "cuda adamw_steps";
  if (steps.empty()) return;
  state_->parameters.note_update();
  auto shared_of = [](const AdamWStep& a) {
    const double step = static_cast<double>(a.step);
    return AdamWShared{a.lr, a.beta1, a.beta2, a.eps, a.grad_scale,
                       1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta1), step)),
                       1.0f - static_cast<float>(std::pow(static_cast<double>(a.beta2), step))};
  };
  std::vector<AdamWEntry> group;
  AdamWShared shared = shared_of(steps.front());
  auto launch_group = [&] {
    launch_lists(group, 8192, [&](const TensorList<AdamWEntry>& list, int64_t blocks) {
      adamw_list_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, state_->stream>>>(list, shared);
      check_launch(op);
    });
    group.clear();
  };
  for (const AdamWStep& a : steps) {
    const AdamWShared h = shared_of(a);
    if (std::memcmp(&h, &shared, sizeof h) != 0) {
      launch_group();
      shared = h;
    }
    group.push_back(AdamWEntry{a.param.data, a.grad.data, a.m.data, a.v.data, a.param.numel(), a.weight_decay,
                               aligned16({a.param.data, a.grad.data, a.m.data, a.v.data})});
  }
  launch_group();
  finish_op(op);
}

void CudaBackend::sum_squares(const SumSquaresArgs& a) {
  const char* op = "cuda sum_squares";
  STRATA_CUDA_CHECK(cudaMemsetAsync(state_->reduce_slot, 0, sizeof(double), state_->stream), op);
  std::vector<SquaresEntry> entries;  // every tensor adds into the one slot: one download and wait for the list
  for (const Tensor& x : a.xs) entries.push_back(SquaresEntry{x.data, x.numel(), aligned16({x.data})});
  launch_lists(entries, 65536, [&](const TensorList<SquaresEntry>& list, int64_t blocks) {
    sum_squares_list_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, state_->stream>>>(list, state_->reduce_slot);
    check_launch(op);
  });
  op_phase(*state_, op, nullptr);
  STRATA_CUDA_CHECK(cudaMemcpyAsync(a.result, state_->reduce_slot, sizeof(double), cudaMemcpyDeviceToHost,
                                    state_->stream), op);
  state_->synchronize_and_report(op);
}

// Ranges of whole 4-byte words go into list launches; any other range is one cudaMemsetAsync.
void CudaBackend::fill_zero_ranges(const std::vector<std::pair<void*, std::size_t>>& ranges) {
  const char* op = "cuda fill_zero_ranges";
  std::vector<ZeroEntry> entries;
  for (const auto& [pointer, bytes] : ranges) {
    if (bytes == 0) continue;
    state_->parameters.note_write(pointer, bytes);
    if (reinterpret_cast<uintptr_t>(pointer) % 4 != 0 || bytes % 4 != 0) {
      STRATA_CUDA_CHECK(cudaMemsetAsync(pointer, 0, bytes, state_->stream), op);
      continue;
    }
    entries.push_back(ZeroEntry{static_cast<uint32_t*>(pointer), static_cast<int64_t>(bytes / 4), aligned16({pointer})});
  }
  launch_lists(entries, 16384, [&](const TensorList<ZeroEntry>& list, int64_t blocks) {
    zero_list_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, state_->stream>>>(list);
    check_launch(op);
  });
  finish_op(op);
}

}  // namespace strata
