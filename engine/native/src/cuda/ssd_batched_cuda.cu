// The SSD's chunk outputs (forward) and chunk gradients (backward, everything after the
// state-gradient pass) as batched matrix products on cuBLAS around one glue kernel each: the default
// when every chunk is full (T % L == 0) and L is 64 or 128. ssd_cuda.cu runs the chunk states and the
// state passes first, then calls ssd_forward_batched() / ssd_backward_batched(); other shapes (and
// STRATA_CUDA_SSD=blocks|grouped_v1|tiled) take the block kernels there. Not here: the chunk-state
// kernels, the state passes, the per-head parameter sums (ssd_param_grads_kernel in ssd_cuda.cu sums
// the partials the backward writes).
//
// Per (batch b, chunk c), for every head h of group g (formulas of cpu/ssd_cpu.cpp; cum = A *
// cumsum(dt) inside the chunk, decay(i, s) = exp(cum[i] - cum[s]) for s <= i, h0 the state entering
// the chunk, dh the gradient of the state leaving it):
//   forward:  y = D x + exp(cum) (C h0^T) + (CBraw * decay * dt[s]) x,     CBraw = C B^T (per group)
//   backward: DS = dy x^T, U = B dh^T, V = C h0^T, E = CBraw * decay (masked), M = DS * E,
//             FS = DS * decay * dt[s] (masked)
//             dx = D dy + exp(last - cum) dt U + (E dt[s])^T dy
//             dC = sum_h exp(cum) dy h0 + (sum_h FS) B     dB = sum_h exp(last - cum) dt x dh + (sum_h FS)^T C
// The products are pointer-array batched GEMMs on fp32 operands in place (TF32 tensor cores in the
// bf16 / fp8 GEMM modes, exact fp32 in fp32 mode). The head sums of dC and dB are one product each
// with K = (heads per group) x P over per-head scaled copies (dys, xs) and the group's stacked states
// (h0 of a group's heads are adjacent in chunk_states; dh are copied adjacent, dhg). The backward's
// glue kernel (blocks over (b, c, g) and a part of the group's heads, walking them in order) does all
// elementwise work: the row dot products, the masked L x L pass (E dt in place of DS, FS summed over
// the part's heads, row and column sums of M), the per-time scalars and the reverse scan of the decay
// gradient (the steps of ssd_chunk_backward_group_kernel). Deterministic: no atomics, fixed orders.
//
// Shape legend: B batch, T time, H heads, P head dim, N state size, G groups (H % G == 0),
//               L chunk length (here every chunk is full), BC = B * T / L chunks of the batch,
//               HC = BC * H head-chunks, GC = BC * G group-chunks, Q = H / G heads per group.
#include <cublas_v2.h>

#include <algorithm>

#include "ssd_common.cuh"

namespace strata {
namespace {

// ---- pointer arrays -------------------------------------------------------------------------------

// One pointer array of a batched product: entry i = base + i0 s0 + i1 s1 + i2 s2 + i3 s3 with
// i = ((i0 n1 + i1) n2 + i2) n3 + i3 (nested batch indices, e.g. (batch, chunk, group, head in group)).
struct PointerSpec {
  const float* base;
  int64_t offset;  // where the array starts in the pointer buffer (entries)
  int64_t count, n1, n2, n3, s0, s1, s2, s3;
};
constexpr int kMaxPointerSpecs = 24;
struct PointerSpecs {
  PointerSpec spec[kMaxPointerSpecs];
  int used;
};

__global__ void ssd_fill_pointers_kernel(PointerSpecs specs, float** out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (static_cast<int>(blockIdx.y) >= specs.used) return;
  const PointerSpec& sp = specs.spec[blockIdx.y];
  if (i >= sp.count) return;
  const int64_t i3 = i % sp.n3, i2 = (i / sp.n3) % sp.n2, i1 = (i / (sp.n3 * sp.n2)) % sp.n1;
  const int64_t i0 = i / (sp.n3 * sp.n2 * sp.n1);
  // (inputs are only read through their arrays)
  out[sp.offset + i] = const_cast<float*>(sp.base) + i0 * sp.s0 + i1 * sp.s1 + i2 * sp.s2 + i3 * sp.s3;
}

// The pointer arrays of one op's batched products, laid out one after another in `ptrs` (capacity
// entries), filled on the device by one launch.
class PointerArrays {
 public:
  PointerArrays(float** ptrs, int64_t capacity, const char* op) : ptrs_(ptrs), capacity_(capacity), op_(op) {}
  // entry i of `count`: base + i0 s0 + i1 s1 + i2 s2 + i3 s3, i = ((i0 n1 + i1) n2 + i2) n3 + i3
  float* const* add(const float* base, int64_t count, int64_t n1, int64_t n2, int64_t n3, int64_t s0, int64_t s1,
                    int64_t s2, int64_t s3) {
    STRATA_CHECK(specs_.used < kMaxPointerSpecs && next_ + count <= capacity_, op_,
                 ": the batched products' pointer arrays overflow their scratch");
    specs_.spec[specs_.used++] = {base, next_, count, n1, n2, n3, s0, s1, s2, s3};
    float* const* array = ptrs_ + next_;
    next_ += count;
    largest_ = std::max(largest_, count);
    return array;
  }
  // three nested indices (i0 n1 + i1) n2 + i2
  float* const* add(const float* base, int64_t count, int64_t n1, int64_t n2, int64_t s0, int64_t s1, int64_t s2) {
    return add(base, count, n1, n2, 1, s0, s1, s2, 0);
  }
  void fill(cudaStream_t stream) {
    if (specs_.used == 0 || largest_ == 0) return;
    ssd_fill_pointers_kernel<<<dim3(static_cast<unsigned>((largest_ + kThreads - 1) / kThreads),
                                    static_cast<unsigned>(specs_.used)),
                               kThreads, 0, stream>>>(specs_, ptrs_);
    check_launch(op_);
  }

 private:
  PointerSpecs specs_{};
  float** ptrs_;
  int64_t capacity_, next_ = 0, largest_ = 0;
  const char* op_;
};

// ---- the chunk-state pre-pass ------------------------------------------------------------------------

// One block (kThreads) per head-chunk, numbered like the per-head kernels ((b * H + h) * chunks + c):
// the chunk's total decay exp(cum[last]) and the scaled copies the chunk-state products read,
//   xs[s] = exp(last - cum[s]) dt[s] x[s]   (forward: (B, chunks, H, L, P); backward: (GC, L, Q P))
//   dys[i] = exp(cum[i]) dy[i]              (backward only: (GC, L, Q P))
template <bool kBackward>
__global__ void ssd_chunk_scale_kernel(SsdDev l,
                                       float* decays,       // ((b * H + h) * chunks + c)
                                       const float* x,      // (B, T, H, P)
                                       const float* dy,     // (B, T, H, P) backward, else null
                                       const float* dt,     // (B, T, H)
                                       const float* a_log,  // (H)
                                       float* xs, float* dys) {
  extern __shared__ float shared[];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = kThreads / 32;
  const SsdChunk v = ssd_chunk_of_block(l);
  ssd_load_chunk_decay(l, v, dt, -expf(a_log[v.h]), dts, cum);
  const float last = cum[L - 1];
  if (threadIdx.x == 0) decays[blockIdx.x] = expf(last);
  const int64_t bc = v.b * l.chunks + v.c, q = l.hpg(), xy_stride = l.heads * l.p;
  const int64_t row = kBackward ? q * l.p : l.p;
  const int64_t at = kBackward ? (bc * l.groups + v.g) * L * row + (v.h % q) * l.p : (bc * l.heads + v.h) * L * l.p;
  const float* x_chunk = x + l.xi(v.b, v.t0, v.h);
  for (int64_t r = warp; r < L; r += warps) {
    const float w_r = expf(last - cum[r]) * dts[r];
    for (int64_t p = lane; p < l.p; p += 32) xs[at + r * row + p] = w_r * x_chunk[r * xy_stride + p];
    if (kBackward) {
      const float e_r = expf(cum[r]);
      const float* dy_chunk = dy + l.xi(v.b, v.t0, v.h);
      for (int64_t p = lane; p < l.p; p += 32) dys[at + r * row + p] = e_r * dy_chunk[r * xy_stride + p];
    }
  }
}

// ---- the glue kernel -------------------------------------------------------------------------------

// One block (kThreads) per (group-chunk gc = (b * chunks + c) * G + g, part of the group's heads):
// block gc * parts + part walks heads part * Q / parts .. (part + 1) * Q / parts - 1 in order. Thread
// (warp w, lane) owns rows i = w + 8 r and columns s = lane + 32 u of the L x L tiles, so FS summed
// over its heads accumulates in the thread's own elements of a shared L x L tile. Shared: 8 L floats of
// per-time values, 8 L column partials (one row per warp), the L x L FS sum: ssd_glue_shared_bytes.
template <int kL>
__global__ void __launch_bounds__(kThreads, 3)
    ssd_backward_glue_kernel(SsdDev l, SsdGrads gr,
                             const float* dy,            // (B, T, H, P)
                             const float* x,             // (B, T, H, P)
                             const float* dt_raw,        // (B, T, H)
                             const float* dt_bias,       // (H)
                             const float* a_log,         // (H)
                             const float* d,             // (H) or null
                             const float* dt,            // (B, T, H) softplus values of the forward
                             const float* chunk_states,  // (B, chunks, H, P, N) state entering each chunk
                             const float* state_grads,   // ((b * H + h) * chunks + c, P, N) leaving each chunk
                             const float* cbraw,         // (GC, L, L) C B^T
                             float* ds,                  // (HC, L, L) in: dy x^T; out: E dt[s] (masked)
                             const float* u_all,         // (HC, L, P) B dh^T
                             const float* v_all,         // (HC, L, P) C h0^T
                             float* fs_sum,              // (parts, GC, L, L) out: FS summed over the part's heads
                             float* dhg,                 // (GC, Q * P, N) out: the group's dh stacked
                             double* partials,           // ((b * H + h) * chunks + c, 3) out
                             int parts) {
  constexpr int kWarps = kThreads / 32, kRows = kL / kWarps, kCols = kL / 32;
  extern __shared__ float shared[];
  __shared__ double reduce[32];
  float* cum = shared;
  float* dts = shared + kL;
  float* ecum = shared + 2 * kL;   // exp(cum[i])
  float* wdt = shared + 3 * kL;    // exp(last - cum[s]) dt[s]
  float* vv = shared + 4 * kL;     // x[s] . U[s]
  float* inter = shared + 5 * kL;  // dy[i] . V[i]
  float* rsum = shared + 6 * kL;   // sum_s M[i, s] dt[s]
  float* dcum = shared + 7 * kL;
  float* colpart = shared + 8 * kL;  // [warp][s]
  float* fs_acc = shared + 16 * kL;  // [i][s], each element owned by one thread
  float* ddt = rsum;                 // ddt[i] replaces rsum[i] once dcum[i] is formed
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t gc = blockIdx.x / parts, part = blockIdx.x % parts, bc = gc / l.groups, g = gc % l.groups;
  const int64_t b = bc / l.chunks, c = bc % l.chunks, t0 = c * kL, q = l.hpg(), gc_count = gridDim.x / parts;
  const int64_t pn = l.p * l.n, xy_stride = l.heads * l.p;
  const float* cb_tile = cbraw + gc * kL * kL;
  float* fs_tile = fs_sum + (part * gc_count + gc) * kL * kL;
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int u = 0; u < kCols; ++u) fs_acc[(warp + kWarps * r) * kL + lane + 32 * u] = 0.0f;
  for (int64_t hh = part * (q / parts); hh < (part + 1) * (q / parts); ++hh) {
    const int64_t h = g * q + hh, hc = bc * l.heads + h, bhc = (b * l.heads + h) * l.chunks + c;
    const SsdChunk v{b, h, g, c, t0, kL};
    const float A = -expf(a_log[h]);
    const float D = d ? d[h] : 0.0f;
    const float* x_chunk = x + l.xi(b, t0, h);
    const float* dy_chunk = dy + l.xi(b, t0, h);
    float* dx_chunk = gr.dx + l.xi(b, t0, h);
    const float* U = u_all + hc * kL * l.p;
    const float* V = v_all + hc * kL * l.p;
    float* ds_tile = ds + hc * kL * kL;
    __syncthreads();  // the previous head's shared values are no longer read
    ssd_load_chunk_decay(l, v, dt, A, dts, cum);
    const float last = cum[kL - 1];
    for (int i = threadIdx.x; i < kL; i += kThreads) {
      ecum[i] = expf(cum[i]);
      wdt[i] = expf(last - cum[i]) * dts[i];
    }
    __syncthreads();
    // Rows over P (a warp per row, lanes along p): the row dot products and dx's first two terms.
    double dD_local = 0.0;
    for (int r = warp; r < kL; r += kWarps) {
      float xu = 0.0f, dyv = 0.0f, dyx = 0.0f;
      const float w_r = wdt[r];
      for (int64_t p = lane; p < l.p; p += 32) {
        const float xv = x_chunk[r * xy_stride + p], dv = dy_chunk[r * xy_stride + p];
        const float uv = U[r * l.p + p], vq = V[r * l.p + p];
        xu += xv * uv;
        dyv += dv * vq;
        dyx += dv * xv;
        dx_chunk[r * xy_stride + p] = D * dv + w_r * uv;
      }
      xu = warp_sum(xu);
      dyv = warp_sum(dyv);
      dyx = warp_sum(dyx);
      if (lane == 0) {
        vv[r] = xu;
        inter[r] = dyv;
        dD_local += dyx;
      }
    }
    // The masked L x L pass: E dt[s] replaces DS, FS adds to the head sum, M's row and column sums.
    float col[kCols];
#pragma unroll
    for (int u = 0; u < kCols; ++u) col[u] = 0.0f;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int i = warp + kWarps * r;
      const float ci = cum[i];
      float row = 0.0f;
      float dsv[kCols], cbv[kCols];
#pragma unroll
      for (int u = 0; u < kCols; ++u) {
        const int s = lane + 32 * u;
        dsv[u] = s <= i ? ds_tile[i * kL + s] : 0.0f;
        cbv[u] = s <= i ? cb_tile[i * kL + s] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kCols; ++u) {
        const int s = lane + 32 * u;
        float e_dt = 0.0f;
        if (s <= i) {
          const float decay = expf(ci - cum[s]), dt_s = dts[s];
          const float e = cbv[u] * decay, m = dsv[u] * e;
          e_dt = e * dt_s;
          fs_acc[i * kL + s] += dsv[u] * decay * dt_s;
          row += m * dt_s;
          col[u] += m;
        }
        ds_tile[i * kL + s] = e_dt;
      }
      row = warp_sum(row);
      if (lane == 0) rsum[i] = row;
    }
#pragma unroll
    for (int u = 0; u < kCols; ++u) colpart[warp * kL + lane + 32 * u] = col[u];
    __syncthreads();
    // Per-time scalars: the gradients of the cumulative decay and of dt.
    for (int i = threadIdx.x; i < kL; i += kThreads) {
      float colsum = 0.0f;
      for (int w = 0; w < kWarps; ++w) colsum += colpart[w * kL + i];
      const float w_i = expf(last - cum[i]);
      dcum[i] = ecum[i] * inter[i] + rsum[i] - colsum * dts[i] - wdt[i] * vv[i];
      ddt[i] = colsum + w_i * vv[i];
    }
    // dh . h0 (the decay gradient of the state the chunk passes on) and dh into the group's stack.
    const float* dh = state_grads + bhc * pn;
    const float* h0 = chunk_states + l.si(b, c, h);
    float* dh_stack = dhg + gc * q * pn + hh * pn;
    double hh_dot = 0.0;
    for (int64_t idx = threadIdx.x; idx < pn; idx += kThreads) {
      const float gv = dh[idx];
      hh_dot += static_cast<double>(gv) * h0[idx];
      dh_stack[idx] = gv;
    }
    hh_dot = block_sum(hh_dot, reduce);  // synchronizes: dcum and ddt are complete after this
    const double dD_total = block_sum(dD_local, reduce);
    // The decay's share of the dt gradient, the raw dt's gradient, the a_log and dt_bias parts.
    const SsdChunkScalarGrads scalars = ssd_chunk_dt_grads(l, v, A, expf(last), hh_dot, wdt, vv, dts, dcum, ddt,
                                                           dt_raw, dt_bias, gr.ddt_raw, reduce);
    if (threadIdx.x == 0) {
      partials[bhc * 3 + 0] = scalars.da_log;
      partials[bhc * 3 + 1] = scalars.dt_bias;
      partials[bhc * 3 + 2] = dD_total;
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int u = 0; u < kCols; ++u) {
      const int idx = (warp + kWarps * r) * kL + lane + 32 * u;
      fs_tile[idx] = fs_acc[idx];
    }
}

// The forward's glue: one block (kThreads) per head-chunk hc = (b * chunks + c) * H + h: coef (the
// masked CBraw * decay * dt[s], which the last product multiplies by x) and y's first two terms.
__global__ void ssd_forward_glue_kernel(SsdDev l,
                                        float* y,             // (B, T, H, P) out: D x + exp(cum) V
                                        const float* x,       // (B, T, H, P)
                                        const float* dt,      // (B, T, H)
                                        const float* a_log,   // (H)
                                        const float* d,       // (H) or null
                                        const float* cbraw,   // (GC, L, L) C B^T
                                        const float* v_all,   // (HC, L, P) C h0^T
                                        float* coef) {        // (HC, L, L) out
  extern __shared__ float shared[];
  const int64_t L = l.chunk;
  float* cum = shared;
  float* dts = shared + L;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = kThreads / 32;
  const int64_t hc = blockIdx.x, bc = hc / l.heads, h = hc % l.heads, g = h / l.hpg();
  const int64_t b = bc / l.chunks, c = bc % l.chunks, t0 = c * L, xy_stride = l.heads * l.p;
  const SsdChunk v{b, h, g, c, t0, L};
  ssd_load_chunk_decay(l, v, dt, -expf(a_log[h]), dts, cum);
  const float* cb_tile = cbraw + (bc * l.groups + g) * L * L;
  float* coef_tile = coef + hc * L * L;
  const float* V = v_all + hc * L * l.p;
  const float* x_chunk = x + l.xi(b, t0, h);
  float* y_chunk = y + l.xi(b, t0, h);
  const float D = d ? d[h] : 0.0f;
  for (int64_t i = warp; i < L; i += warps) {
    const float ci = cum[i], e_i = expf(ci);
    for (int64_t s = lane; s < L; s += 32) {
      coef_tile[i * L + s] = s <= i ? cb_tile[i * L + s] * expf(ci - cum[s]) * dts[s] : 0.0f;
    }
    for (int64_t p = lane; p < l.p; p += 32) y_chunk[i * xy_stride + p] = D * x_chunk[i * xy_stride + p] + e_i * V[i * l.p + p];
  }
}

// ---- batched products -------------------------------------------------------------------------------

cublasHandle_t blas_handle(CudaBackendState& s, const char* op) {
  if (!s.blas) {
    STRATA_CUBLAS_CHECK(cublasCreate(&s.blas), op);
    STRATA_CUBLAS_CHECK(cublasSetWorkspace(s.blas, s.lt_workspace, s.lt_workspace_bytes), op);
  }
  STRATA_CUBLAS_CHECK(cublasSetStream(s.blas, s.stream), op);
  return s.blas;
}

// Row-major C (m x n) = op(A) (m x k) op(B) (k x n) + beta C for `count` pointer triples, A stored
// (m x k) or, with ta, (k x m) (lda its row length); B likewise. cuBLAS is column-major, so it
// computes C^T = op(B)^T op(A)^T.
void batched_product(cublasHandle_t handle, cublasComputeType_t compute, bool ta, bool tb, int64_t m, int64_t n,
                     int64_t k, const float* const* a, int64_t lda, const float* const* b, int64_t ldb, float beta,
                     float* const* c, int64_t ldc, int64_t count, const char* op) {
  const float alpha = 1.0f;
  STRATA_CUBLAS_CHECK(
      cublasGemmBatchedEx(handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                          static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha,
                          reinterpret_cast<const void* const*>(b), CUDA_R_32F, static_cast<int>(ldb),
                          reinterpret_cast<const void* const*>(a), CUDA_R_32F, static_cast<int>(lda), &beta,
                          reinterpret_cast<void* const*>(c), CUDA_R_32F, static_cast<int>(ldc),
                          static_cast<int>(count), compute, CUBLAS_GEMM_DEFAULT),
      op);
}

int64_t round_up_64(int64_t v) { return (v + 63) / 64 * 64; }

std::size_t ssd_glue_shared_bytes(int64_t chunk) { return static_cast<std::size_t>((16 + chunk) * chunk) * sizeof(float); }

cublasComputeType_t product_type(bool exact_fp32) {
  return exact_fp32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
}

// The backward's scratch, the same buffers for both of its calls: slot 0 DS (HC L L); slot 1 U and V
// (HC L P each); slot 2 C B^T and the parts' FS sums (GC L L each); slot 3 dys, xs (GC L Q P each),
// dhg (GC Q P N), then the pointer arrays.
struct BackwardScratch {
  int parts;  // the glue kernel splits a group's heads over `parts` blocks, each with its own FS sum
  float *ds, *u_all, *v_all, *cbraw, *fs_sum, *dys, *xs, *dhg;
  float** ptrs;
  int64_t pointer_capacity;
};
BackwardScratch backward_scratch(CudaBackendState& s, const SsdDev& l, const char* op) {
  const int64_t L = l.chunk, bc_count = l.bsz * l.chunks, hc_count = bc_count * l.heads;
  const int64_t gc_count = bc_count * l.groups, q = l.heads / l.groups, ll = L * L, pn = l.p * l.n, qp = q * l.p;
  BackwardScratch r{};
  r.parts = q % 2 == 0 ? 2 : 1;
  r.ds = s.scratch_as<float>(0, hc_count * ll, op);
  r.u_all = s.scratch_as<float>(1, 2 * hc_count * L * l.p, op);
  r.v_all = r.u_all + hc_count * L * l.p;
  r.cbraw = s.scratch_as<float>(2, (1 + r.parts) * gc_count * ll, op);
  r.fs_sum = r.cbraw + gc_count * ll;
  const int64_t copies = round_up_64(gc_count * L * qp), stack = round_up_64(gc_count * q * pn);
  r.pointer_capacity = 10 * hc_count + (9 + r.parts) * gc_count;
  float* base3 = s.scratch_as<float>(3, 2 * copies + stack + 2 * r.pointer_capacity, op);  // a pointer: 2 floats
  r.dys = base3;
  r.xs = base3 + copies;
  r.dhg = base3 + 2 * copies;
  r.ptrs = reinterpret_cast<float**>(base3 + 2 * copies + stack);
  return r;
}

}  // namespace

bool ssd_batched_fits(const SsdDev& l) {
  return (l.chunk == 64 || l.chunk == 128) && l.t_len % l.chunk == 0;
}

// Forward, before ssd_state_pass_kernel: the chunk decays and the state each chunk adds from a zero
// entering state, S = (exp(last - cum) dt x)^T B, written where the state leaving the chunk goes
// (chunk_states of the next chunk, or final_state after the last one: skipped without one).
void ssd_forward_batched_states(CudaBackendState& s, const SsdDev& l, const SsdFwd& a, float* decays, bool exact_fp32,
                                const char* op) {
  const int64_t L = l.chunk, nc = l.chunks, hc_count = l.bsz * nc * l.heads, q = l.heads / l.groups;
  const int64_t pn = l.p * l.n, lp = L * l.p, bc_row = l.groups * l.n, H = l.heads;
  float* xs = s.scratch_as<float>(1, hc_count * lp, op);  // (B, chunks, H, L, P)
  PointerArrays arrays(s.scratch_as<float*>(3, 3 * hc_count, op), 3 * hc_count, op);
  // chunks 0 .. chunks - 2 by (b, c, g, head in group): into chunk_states of chunk c + 1
  const int64_t inner = l.bsz * (nc - 1) * H;
  float* const* in_xs = arrays.add(xs, inner, nc - 1, l.groups, q, nc * H * lp, H * lp, q * lp, lp);
  float* const* in_b = arrays.add(a.b.data, inner, nc - 1, l.groups, q, nc * L * bc_row, L * bc_row, l.n, 0);
  float* const* in_s = arrays.add(a.chunk_states.data + H * pn, inner, nc - 1, l.groups, q, nc * H * pn, H * pn,
                                  q * pn, pn);
  // the last chunk by (b, g, head in group): into final_state
  const int64_t outer = a.final_state.defined() ? l.bsz * H : 0;
  float* const* last_xs = arrays.add(xs + (nc - 1) * H * lp, outer, l.groups, q, nc * H * lp, q * lp, lp);
  float* const* last_b = arrays.add(a.b.data + (nc - 1) * L * bc_row, outer, l.groups, q, nc * L * bc_row, l.n, 0);
  float* const* last_s = arrays.add(a.final_state.defined() ? a.final_state.data : nullptr, outer, l.groups, q, H * pn,
                                    q * pn, pn);
  cudaStream_t stream = s.stream;
  arrays.fill(stream);
  ssd_chunk_scale_kernel<false><<<static_cast<unsigned>(hc_count), kThreads, 2 * L * sizeof(float), stream>>>(
      l, decays, a.x.data, nullptr, a.dt.data, a.a_log.data, xs, nullptr);
  check_launch(op);
  cublasHandle_t handle = blas_handle(s, op);
  const cublasComputeType_t compute = product_type(exact_fp32);
  if (inner > 0) batched_product(handle, compute, true, false, l.p, l.n, L, in_xs, l.p, in_b, bc_row, 0.0f, in_s, l.n, inner, op);
  if (outer > 0) batched_product(handle, compute, true, false, l.p, l.n, L, last_xs, l.p, last_b, bc_row, 0.0f, last_s, l.n, outer, op);
}

// After ssd_state_pass_kernel (chunk_states holds the state entering every chunk): y.
void ssd_forward_batched(CudaBackendState& s, const SsdDev& l, const SsdFwd& a, bool exact_fp32, const char* op) {
  const int64_t L = l.chunk, bc_count = l.bsz * l.chunks, hc_count = bc_count * l.heads;
  const int64_t gc_count = bc_count * l.groups, q = l.heads / l.groups, ll = L * L, pn = l.p * l.n;
  const int64_t bc_row = l.groups * l.n, xy_row = l.heads * l.p;
  // scratch: slot 0 V (HC L P); slot 2 C B^T (GC L L) then coef (HC L L); slot 3 the pointer arrays
  float* v_all = s.scratch_as<float>(0, hc_count * L * l.p, op);
  float* cbraw = s.scratch_as<float>(2, gc_count * ll + hc_count * ll, op);
  float* coef = cbraw + gc_count * ll;
  const int64_t capacity = 3 * gc_count + 6 * hc_count;
  PointerArrays arrays(s.scratch_as<float*>(3, capacity, op), capacity, op);
  float* const* gc_c = arrays.add(a.c.data, gc_count, l.groups, 1, L * bc_row, l.n, 0);
  float* const* gc_b = arrays.add(a.b.data, gc_count, l.groups, 1, L * bc_row, l.n, 0);
  float* const* gc_cb = arrays.add(cbraw, gc_count, 1, 1, ll, 0, 0);
  float* const* hc_c = arrays.add(a.c.data, hc_count, l.groups, q, L * bc_row, l.n, 0);
  float* const* hc_h0 = arrays.add(a.chunk_states.data, hc_count, 1, 1, pn, 0, 0);
  float* const* hc_v = arrays.add(v_all, hc_count, 1, 1, L * l.p, 0, 0);
  float* const* hc_coef = arrays.add(coef, hc_count, 1, 1, ll, 0, 0);
  float* const* hc_x = arrays.add(a.x.data, hc_count, l.heads, 1, L * xy_row, l.p, 0);
  float* const* hc_y = arrays.add(a.y.data, hc_count, l.heads, 1, L * xy_row, l.p, 0);
  cudaStream_t stream = s.stream;
  arrays.fill(stream);
  cublasHandle_t handle = blas_handle(s, op);
  const cublasComputeType_t compute = product_type(exact_fp32);
  batched_product(handle, compute, false, true, L, L, l.n, gc_c, bc_row, gc_b, bc_row, 0.0f, gc_cb, L, gc_count, op);
  batched_product(handle, compute, false, true, L, l.p, l.n, hc_c, bc_row, hc_h0, l.n, 0.0f, hc_v, l.p, hc_count, op);
  op_phase(s, op, "batched products 1");
  ssd_forward_glue_kernel<<<static_cast<unsigned>(hc_count), kThreads, 2 * L * sizeof(float), stream>>>(
      l, a.y.data, a.x.data, a.dt.data, a.a_log.data, a.d.defined() ? a.d.data : nullptr, cbraw, v_all, coef);
  check_launch(op);
  op_phase(s, op, "glue");
  batched_product(handle, compute, false, false, L, l.p, L, hc_coef, L, hc_x, xy_row, 1.0f, hc_y, xy_row, hc_count, op);
}

// Backward, before ssd_state_grad_pass_kernel: the chunk decays, the scaled copies dys and xs (which
// the gradient products read later too) and each chunk's own contribution to the gradient of the
// state entering it, Q = dys^T C, at state_grads ((b * H + h) * chunks + c).
void ssd_backward_batched_states(CudaBackendState& s, const SsdDev& l, const SsdBwd& a, float* state_grads,
                                 float* decays, bool exact_fp32, const char* op) {
  const int64_t L = l.chunk, nc = l.chunks, hc_count = l.bsz * nc * l.heads, q = l.heads / l.groups;
  const int64_t pn = l.p * l.n, qp = q * l.p, bc_row = l.groups * l.n;
  const BackwardScratch r = backward_scratch(s, l, op);
  PointerArrays arrays(r.ptrs, r.pointer_capacity, op);
  // by (b, c, g, head in group)
  float* const* q_dys = arrays.add(r.dys, hc_count, nc, l.groups, q, nc * l.groups * L * qp, l.groups * L * qp,
                                   L * qp, l.p);
  float* const* q_c = arrays.add(a.c.data, hc_count, nc, l.groups, q, nc * L * bc_row, L * bc_row, l.n, 0);
  float* const* q_out = arrays.add(state_grads, hc_count, nc, l.groups, q, l.heads * nc * pn, pn, q * nc * pn, nc * pn);
  cudaStream_t stream = s.stream;
  arrays.fill(stream);
  ssd_chunk_scale_kernel<true><<<static_cast<unsigned>(hc_count), kThreads, 2 * L * sizeof(float), stream>>>(
      l, decays, a.x.data, a.dy.data, a.dt.data, a.a_log.data, r.xs, r.dys);
  check_launch(op);
  batched_product(blas_handle(s, op), product_type(exact_fp32), true, false, l.p, l.n, L, q_dys, qp, q_c, bc_row, 0.0f,
                  q_out, l.n, hc_count, op);
}

// After ssd_state_grad_pass_kernel (state_grads holds the gradient of the state leaving every chunk):
// dx, dB, dC, ddt_raw and the per-head partials.
void ssd_backward_batched(CudaBackendState& s, const SsdDev& l, const SsdBwd& a, const SsdGrads& gr,
                          const float* state_grads, double* partials, bool exact_fp32, const char* op) {
  const int64_t L = l.chunk, bc_count = l.bsz * l.chunks, hc_count = bc_count * l.heads;
  const int64_t gc_count = bc_count * l.groups, q = l.heads / l.groups, ll = L * L, pn = l.p * l.n;
  const int64_t qp = q * l.p, bc_row = l.groups * l.n, xy_row = l.heads * l.p;
  const BackwardScratch r = backward_scratch(s, l, op);
  const int parts = r.parts;
  PointerArrays arrays(r.ptrs, r.pointer_capacity, op);
  // by group-chunk gc = (bc, g): C and B of the chunk, C B^T, FS sums, dC, dB, dys, xs, stacked h0 and dh
  float* const* gc_c = arrays.add(a.c.data, gc_count, l.groups, 1, L * bc_row, l.n, 0);
  float* const* gc_b = arrays.add(a.b.data, gc_count, l.groups, 1, L * bc_row, l.n, 0);
  float* const* gc_cb = arrays.add(r.cbraw, gc_count, 1, 1, ll, 0, 0);
  float* const* gc_fs = arrays.add(r.fs_sum, parts * gc_count, 1, 1, ll, 0, 0);  // part by part
  float* const* gc_dc = arrays.add(a.dc.data, gc_count, l.groups, 1, L * bc_row, l.n, 0);
  float* const* gc_db = arrays.add(a.db.data, gc_count, l.groups, 1, L * bc_row, l.n, 0);
  float* const* gc_dys = arrays.add(r.dys, gc_count, 1, 1, L * qp, 0, 0);
  float* const* gc_xs = arrays.add(r.xs, gc_count, 1, 1, L * qp, 0, 0);
  float* const* gc_h0 = arrays.add(a.chunk_states.data, gc_count, 1, 1, q * pn, 0, 0);
  float* const* gc_dh = arrays.add(r.dhg, gc_count, 1, 1, q * pn, 0, 0);
  // by head-chunk hc = (bc, h) = (bc, g, head in group)
  float* const* hc_dy = arrays.add(a.dy.data, hc_count, l.heads, 1, L * xy_row, l.p, 0);
  float* const* hc_x = arrays.add(a.x.data, hc_count, l.heads, 1, L * xy_row, l.p, 0);
  float* const* hc_dx = arrays.add(a.dx.data, hc_count, l.heads, 1, L * xy_row, l.p, 0);
  float* const* hc_ds = arrays.add(r.ds, hc_count, 1, 1, ll, 0, 0);
  float* const* hc_u = arrays.add(r.u_all, hc_count, 1, 1, L * l.p, 0, 0);
  float* const* hc_v = arrays.add(r.v_all, hc_count, 1, 1, L * l.p, 0, 0);
  float* const* hc_b = arrays.add(a.b.data, hc_count, l.groups, q, L * bc_row, l.n, 0);
  float* const* hc_c = arrays.add(a.c.data, hc_count, l.groups, q, L * bc_row, l.n, 0);
  float* const* hc_h0 = arrays.add(a.chunk_states.data, hc_count, 1, 1, pn, 0, 0);
  // dh of (b, h, c) lies at ((b * H + h) * chunks + c) * P N: hc = (b, c, h) in (B, chunks, H)
  float* const* hc_dh =
      arrays.add(state_grads, hc_count, l.chunks, l.heads, l.heads * l.chunks * pn, pn, l.chunks * pn);
  cudaStream_t stream = s.stream;
  arrays.fill(stream);

  cublasHandle_t handle = blas_handle(s, op);
  const cublasComputeType_t compute = product_type(exact_fp32);
  // before the glue kernel: C B^T (per group), dy x^T, B dh^T, C h0^T (per head)
  batched_product(handle, compute, false, true, L, L, l.n, gc_c, bc_row, gc_b, bc_row, 0.0f, gc_cb, L, gc_count, op);
  batched_product(handle, compute, false, true, L, L, l.p, hc_dy, xy_row, hc_x, xy_row, 0.0f, hc_ds, L, hc_count, op);
  batched_product(handle, compute, false, true, L, l.p, l.n, hc_b, bc_row, hc_dh, l.n, 0.0f, hc_u, l.p, hc_count, op);
  batched_product(handle, compute, false, true, L, l.p, l.n, hc_c, bc_row, hc_h0, l.n, 0.0f, hc_v, l.p, hc_count, op);
  op_phase(s, op, "batched products 1");

  const std::size_t shared = ssd_glue_shared_bytes(L);
  auto* const glue = L == 128 ? ssd_backward_glue_kernel<128> : ssd_backward_glue_kernel<64>;
  STRATA_CUDA_CHECK(cudaFuncSetAttribute(glue, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
                    op);
  glue<<<static_cast<unsigned>(gc_count * parts), kThreads, shared, stream>>>(
      l, gr, a.dy.data, a.x.data, a.dt_raw.data, a.dt_bias.data, a.a_log.data, a.d.defined() ? a.d.data : nullptr,
      a.dt.data, a.chunk_states.data, state_grads, r.cbraw, r.ds, r.u_all, r.v_all, r.fs_sum, r.dhg, partials, parts);
  check_launch(op);
  op_phase(s, op, "glue");

  // dx += (E dt)^T dy; dC = dys h0-stack + FS B; dB = xs dh-stack + FS^T C
  batched_product(handle, compute, true, false, L, l.p, L, hc_ds, L, hc_dy, xy_row, 1.0f, hc_dx, xy_row, hc_count, op);
  batched_product(handle, compute, false, false, L, l.n, qp, gc_dys, qp, gc_h0, l.n, 0.0f, gc_dc, bc_row, gc_count, op);
  for (int part = 0; part < parts; ++part) {
    batched_product(handle, compute, false, false, L, l.n, L, gc_fs + part * gc_count, L, gc_b, bc_row, 1.0f, gc_dc,
                    bc_row, gc_count, op);
  }
  batched_product(handle, compute, false, false, L, l.n, qp, gc_xs, qp, gc_dh, l.n, 0.0f, gc_db, bc_row, gc_count, op);
  for (int part = 0; part < parts; ++part) {
    batched_product(handle, compute, true, false, L, l.n, L, gc_fs + part * gc_count, L, gc_c, bc_row, 1.0f, gc_db,
                    bc_row, gc_count, op);
  }
  op_phase(s, op, "batched products 2");
}

}  // namespace strata
