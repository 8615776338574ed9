// CTest executable for the GEMM precision hook (engine/native/src/ops/quant_gemm.h): per-operand
// recipe settings, fprop / dgrad / wgrad through the real gemm() + CPU backend against GEMMs on
// operands fake-quantized by hand (same seeds), fp32 master weights left untouched, the HYBRID FP8
// recipe, reproducible stochastic rounding, the inspection records and their event lines, and the
// weight cache (bit-identical to quantizing every time, invalidated by weight changes and new steps),
// and bf16 rounding inside the CPU GEMM (bit-identical to rounded copies).
// Tolerances: GEMM results are compared to a double-precision product of the same quantized
// operands, to 1e-5 relative (fp32 accumulation over K <= 64).
//
// Not here: the quantizers' numerics (quant_test.cpp).
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "ops/linear.h"
#include "ops/quant_gemm.h"

using namespace strata;
using namespace strata::quant;

namespace {

int g_failures = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                                  \
    }                                                                                \
  } while (0)

std::vector<float> test_data(int64_t n, uint64_t seed, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(counter_random32(seed, static_cast<uint64_t>(i))) / 4294967296.0;
    v[i] = static_cast<float>((u - 0.5) * 2.0 * scale);
  }
  return v;
}

std::vector<float> quantized(std::vector<float> v, int64_t rows, int64_t cols, const QuantConfig& config) {
  fake_quantize(v.data(), v.data(), rows, cols, config);
  return v;
}

/** max |got - want| / max |want| where want = op(A) op(B) in double. */
double gemm_error(const std::vector<float>& got, const std::vector<float>& a, bool trans_a, const std::vector<float>& b,
                  bool trans_b, int64_t m, int64_t n, int64_t k) {
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double want = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = trans_a ? a[p * m + i] : a[i * k + p];
        const double bv = trans_b ? b[j * k + p] : b[p * n + j];
        want += av * bv;
      }
      worst = std::max(worst, std::fabs(got[i * n + j] - want));
      scale = std::max(scale, std::fabs(want));
    }
  }
  return scale > 0 ? worst / scale : worst;
}

void test_operand_configs() {
  QuantConfig c = operand_config(Format::Nvfp4, GemmPass::Fprop, Operand::Weight, true);
  CHECK(c.layout == BlockLayout::Tile2d && c.rounding == Rounding::NearestEven && !c.hadamard);
  c = operand_config(Format::Nvfp4, GemmPass::Fprop, Operand::Activation, true);
  CHECK(c.layout == BlockLayout::AlongRow && c.rounding == Rounding::NearestEven);
  c = operand_config(Format::Nvfp4, GemmPass::Dgrad, Operand::Gradient, true);
  CHECK(c.rounding == Rounding::Stochastic && !c.hadamard);
  c = operand_config(Format::Nvfp4, GemmPass::Wgrad, Operand::Gradient, false);
  CHECK(c.layout == BlockLayout::AlongColumn && c.hadamard && c.rounding == Rounding::Stochastic);
  c = operand_config(Format::Nvfp4, GemmPass::Wgrad, Operand::Activation, false);
  CHECK(c.hadamard && c.rounding == Rounding::NearestEven);
  c = operand_config(Format::Mxfp8, GemmPass::Dgrad, Operand::Weight, false);
  CHECK(c.layout == BlockLayout::AlongColumn && c.mx_scale_rule == MxScaleRule::RoundUp);
  CHECK(operand_config(Format::Fp8E5M2, GemmPass::Dgrad, Operand::Weight, true).format == Format::Fp8E4M3);
  CHECK(operand_config(Format::Fp8E5M2, GemmPass::Wgrad, Operand::Activation, true).format == Format::Fp8E4M3);
  CHECK(operand_config(Format::Fp8E5M2, GemmPass::Wgrad, Operand::Gradient, true).format == Format::Fp8E5M2);
  CHECK(operand_config(Format::Fp8E5M2, GemmPass::Fprop, Operand::Weight, true).format == Format::Fp8E5M2);
}

void test_linear_layer_under_nvfp4() {
  CpuBackend backend;
  const int64_t m = 32, in = 48, out = 40;
  std::vector<float> x = test_data(m * in, 1, 1.0f), w = test_data(out * in, 2, 0.1f), dy = test_data(m * out, 3, 0.01f);
  const std::vector<float> w_master = w;
  std::vector<float> y(m * out), dx(m * in), dw(out * in, 0.0f);
  const uint64_t seed = 99;
  GemmPrecision precision([](const GemmTag& tag) { return std::string(tag.role) == "mlp.fc1" ? Format::Nvfp4 : Format::Bf16; },
                          seed);
  precision.install();
  precision.begin_step(7, /*inspect=*/true);
  Tensor xt(x.data(), {m, in}, "x"), wt(w.data(), {out, in}, "w"), yt(y.data(), {m, out}, "y"), dyt(dy.data(), {m, out}, "dy");
  Tensor dxt(dx.data(), {m, in}, "dx"), dwt(dw.data(), {out, in}, "dw");
  linear_forward(backend, yt, xt, wt, Tensor(), "mlp.fc1", 3);
  linear_backward(backend, dxt, dwt, Tensor(), dyt, xt, wt, "mlp.fc1", 3);
  precision.uninstall();
  CHECK(std::memcmp(w.data(), w_master.data(), w.size() * 4) == 0);  // master weights untouched

  const GemmTag dgrad{GemmPass::Dgrad, "mlp.fc1", 3, 0}, wgrad{GemmPass::Wgrad, "mlp.fc1", 3, 0};
  // fprop: y = Q(x rows) Q(W 16x16)^T
  const auto qw = quantized(w, out, in, operand_config(Format::Nvfp4, GemmPass::Fprop, Operand::Weight, true));
  const auto qx = quantized(x, m, in, operand_config(Format::Nvfp4, GemmPass::Fprop, Operand::Activation, true));
  CHECK(gemm_error(y, qx, false, qw, true, m, out, in) < 1e-5);
  // dgrad: dx = Q_sr(dy rows) Q(W 16x16); the weight quantizes to the same values as in fprop
  QuantConfig dy_config = operand_config(Format::Nvfp4, GemmPass::Dgrad, Operand::Gradient, true);
  dy_config.seed = operand_seed(seed, 7, dgrad, Operand::Gradient);
  const auto qw_dgrad = quantized(w, out, in, operand_config(Format::Nvfp4, GemmPass::Dgrad, Operand::Weight, false));
  CHECK(std::memcmp(qw_dgrad.data(), qw.data(), qw.size() * 4) == 0);
  CHECK(gemm_error(dx, quantized(dy, m, out, dy_config), false, qw, false, m, in, out) < 1e-5);
  // wgrad: dW = (H^T Q_sr(H dy))^T (H^T Q(H x)) along the token axis
  QuantConfig g_config = operand_config(Format::Nvfp4, GemmPass::Wgrad, Operand::Gradient, false);
  g_config.seed = operand_seed(seed, 7, wgrad, Operand::Gradient);
  QuantConfig a_config = operand_config(Format::Nvfp4, GemmPass::Wgrad, Operand::Activation, false);
  a_config.seed = operand_seed(seed, 7, wgrad, Operand::Activation);
  CHECK(gemm_error(dw, quantized(dy, m, out, g_config), true, quantized(x, m, in, a_config), false, out, in, m) < 1e-5);
  // ...which is an unbiased, close estimate of the exact dW.
  CHECK(gemm_error(dw, dy, true, x, false, out, in, m) < 0.35);

  const std::vector<InspectionRecord> records = precision.take_inspections();
  CHECK(records.size() == 6);  // 3 passes x 2 operands
  for (const InspectionRecord& r : records) {
    CHECK(r.step == 7 && r.layer == 3 && r.role == "mlp.fc1" && r.gemms == 1 && r.format == Format::Nvfp4);
    CHECK(r.stats.rel_err() > 0 && r.stats.rel_err() < 0.3);
    const std::string line = inspection_event_json(r, 1.5);
    CHECK(line.rfind("{\"type\":\"precision\",\"t\":1.5,\"step\":7,\"layer\":3,\"role\":\"mlp.fc1\",\"pass\":\"", 0) == 0);
    CHECK(line.find("\"histogram\":[") != std::string::npos && line.back() == '}');
  }
  CHECK(precision.take_inspections().empty());
}

void test_hybrid_fp8_and_untouched_passes() {
  CpuBackend backend;
  const int64_t m = 16, in = 32, out = 24;
  std::vector<float> x = test_data(m * in, 4, 1.0f), w = test_data(out * in, 5, 0.1f), dy = test_data(m * out, 6, 1e-3f);
  std::vector<float> dx(m * in), dw(out * in, 0.0f);
  GemmPrecision precision([](const GemmTag&) { return Format::Fp8E5M2; }, 1);
  precision.install();
  precision.begin_step(0, /*inspect=*/true);
  Tensor xt(x.data(), {m, in}, "x"), wt(w.data(), {out, in}, "w"), dyt(dy.data(), {m, out}, "dy");
  Tensor dxt(dx.data(), {m, in}, "dx"), dwt(dw.data(), {out, in}, "dw");
  linear_backward(backend, dxt, dwt, Tensor(), dyt, xt, wt, "attention.o", 0);
  precision.uninstall();
  const auto e5 = [&](const std::vector<float>& v, int64_t r, int64_t c) {
    QuantConfig q;
    q.format = Format::Fp8E5M2;
    return quantized(v, r, c, q);
  };
  const auto e4 = [&](const std::vector<float>& v, int64_t r, int64_t c) {
    QuantConfig q;
    q.format = Format::Fp8E4M3;
    return quantized(v, r, c, q);
  };
  CHECK(gemm_error(dx, e5(dy, m, out), false, e4(w, out, in), false, m, in, out) < 1e-5);
  CHECK(gemm_error(dw, e5(dy, m, out), true, e4(x, m, in), false, out, in, m) < 1e-5);
  int e4m3_records = 0, e5m2_records = 0;
  for (const InspectionRecord& r : precision.take_inspections()) {
    e4m3_records += r.format == Format::Fp8E4M3;
    e5m2_records += r.format == Format::Fp8E5M2 && r.operand == Operand::Gradient;
  }
  CHECK(e4m3_records == 2 && e5m2_records == 2);

  // Untagged GEMMs and fp32 cells are never touched; without inspection no records are kept.
  GemmPrecision fp32_only([](const GemmTag&) { return Format::Fp32; }, 1);
  fp32_only.begin_step(1, true);
  GemmCall call = gemm_call(m, out, in, x.data(), false, w.data(), true, nullptr, 0.0f, GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0});
  fp32_only.transform(cpu_backend(), call);
  CHECK(call.a == x.data() && call.b == w.data());
  GemmPrecision nvfp4([](const GemmTag&) { return Format::Nvfp4; }, 1);
  nvfp4.begin_step(1, false);
  call.tag.pass = GemmPass::Other;
  nvfp4.transform(cpu_backend(), call);
  CHECK(call.a == x.data());
  call.tag.pass = GemmPass::Fprop;
  nvfp4.transform(cpu_backend(), call);
  CHECK(call.a != x.data() && call.lda == in);
  CHECK(nvfp4.take_inspections().empty());
}

void test_stochastic_rounding_reproducible() {
  const GemmTag tag{GemmPass::Dgrad, "mamba.out_proj", 2, 0};
  CHECK(operand_seed(5, 10, tag, Operand::Gradient) == operand_seed(5, 10, tag, Operand::Gradient));
  CHECK(operand_seed(5, 10, tag, Operand::Gradient) != operand_seed(5, 11, tag, Operand::Gradient));
  CHECK(operand_seed(5, 10, tag, Operand::Gradient) != operand_seed(6, 10, tag, Operand::Gradient));
  GemmTag other_layer = tag;
  other_layer.layer = 3;
  CHECK(operand_seed(5, 10, tag, Operand::Gradient) != operand_seed(5, 10, other_layer, Operand::Gradient));
  // The same step twice gives identical dgrad results; the next step differs.
  CpuBackend backend;
  const int64_t m = 16, in = 32, out = 32;
  std::vector<float> w = test_data(out * in, 7, 0.1f), dy = test_data(m * out, 8, 1e-2f);
  std::vector<float> first(m * in), again(m * in), next(m * in);
  GemmPrecision precision([](const GemmTag&) { return Format::Nvfp4; }, 5);
  precision.install();
  const auto run = [&](int64_t step, std::vector<float>& dx) {
    precision.begin_step(step, false);
    gemm(backend, gemm_call(m, in, out, dy.data(), false, w.data(), false, dx.data(), 0.0f, tag));
  };
  run(10, first);
  run(10, again);
  run(11, next);
  precision.uninstall();
  CHECK(std::memcmp(first.data(), again.data(), first.size() * 4) == 0);
  CHECK(std::memcmp(first.data(), next.data(), first.size() * 4) != 0);
}

// The weight cache: a cached run gives the same bits as an uncached one for every format, in fprop,
// dgrad and wgrad, over several micro-batches; a weight change followed by note_weights_changed()
// (what the optimizer does) or by begin_step() is seen at once. The weight is a strided view (a row
// of an expert block) so the cached copy's layout is exercised too.
void test_weight_cache_equals_uncached() {
  CpuBackend backend;
  const int64_t m = 24, in = 40, out = 36, ld = in + 8;
  std::vector<float> x = test_data(m * in, 11, 1.0f), storage = test_data(out * ld, 12, 0.1f), dy = test_data(m * out, 13, 0.01f);
  for (Format format : {Format::Bf16, Format::Fp8E4M3, Format::Fp8E5M2, Format::Mxfp8, Format::Nvfp4}) {
    const auto run = [&](GemmPrecision& precision, int64_t step, int micro_batches) {
      std::vector<float> results;
      precision.begin_step(step, false);
      for (int mb = 0; mb < micro_batches; ++mb) {
        std::vector<float> y(m * out), dx(m * in), dw(out * in, 0.0f);
        const GemmTag fprop{GemmPass::Fprop, "mlp.fc1", 0, 0}, dgrad{GemmPass::Dgrad, "mlp.fc1", 0, 0},
            wgrad{GemmPass::Wgrad, "mlp.fc1", 0, 0};
        GemmCall f = gemm_call(m, out, in, x.data(), false, storage.data(), true, y.data(), 0.0f, fprop);
        f.ldb = ld;
        gemm(backend, f);
        GemmCall d = gemm_call(m, in, out, dy.data(), false, storage.data(), false, dx.data(), 0.0f, dgrad);
        d.ldb = ld;
        gemm(backend, d);
        gemm(backend, gemm_call(out, in, m, dy.data(), true, x.data(), false, dw.data(), 1.0f, wgrad));
        for (const auto* v : {&y, &dx, &dw}) results.insert(results.end(), v->begin(), v->end());
      }
      return results;
    };
    const auto both = [&](int64_t step, int micro_batches, GemmPrecision& cached) {
      cached.install();
      const std::vector<float> with_cache = run(cached, step, micro_batches);
      cached.uninstall();
      GemmPrecision fresh([format](const GemmTag&) { return format; }, 3);
      fresh.set_weight_cache(false);
      fresh.set_fused_bf16(false);
      fresh.install();
      const std::vector<float> without = run(fresh, step, micro_batches);
      fresh.uninstall();
      return with_cache.size() == without.size() &&
             std::memcmp(with_cache.data(), without.data(), with_cache.size() * 4) == 0;
    };
    GemmPrecision cached([format](const GemmTag&) { return format; }, 3);
    cached.set_fused_bf16(false);  // bf16 through the cache too (by default the kernel rounds instead)
    CHECK(both(0, 3, cached));
    // The optimizer changes the weights: the next GEMMs of the same step must see the new values.
    for (float& v : storage) v *= 1.5f;
    quant::note_weights_changed();
    cached.install();
    std::vector<float> y(m * out);
    GemmCall f = gemm_call(m, out, in, x.data(), false, storage.data(), true, y.data(), 0.0f,
                           GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0});
    f.ldb = ld;
    gemm(backend, f);
    cached.uninstall();
    std::vector<float> w(out * in);
    for (int64_t r = 0; r < out; ++r) std::memcpy(w.data() + r * in, storage.data() + r * ld, in * 4);
    QuantConfig wc = operand_config(format, GemmPass::Fprop, Operand::Weight, true);
    QuantConfig xc = operand_config(format, GemmPass::Fprop, Operand::Activation, true);
    xc.seed = operand_seed(3, 0, GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0}, Operand::Activation);
    CHECK(gemm_error(y, quantized(x, m, in, xc), false, quantized(w, out, in, wc), true, m, out, in) < 1e-5);
    // A new step without note_weights_changed() (a writer that forgot it) still re-quantizes.
    for (float& v : storage) v *= -0.5f;
    CHECK(both(1, 2, cached));
  }
}

// BF16 rounding inside the GEMM kernel (GemmCall::a_bf16 / b_bf16) gives the same bits as the hook's
// rounded copies, for fprop / dgrad / wgrad with strided operands, edge tiles, several K blocks and
// both the single-threaded and the threaded kernel path.
void test_fused_bf16_equals_copies() {
  CpuBackend backend;
  for (const auto& [m, in, out] : {std::array<int64_t, 3>{13, 37, 29}, std::array<int64_t, 3>{301, 290, 200}}) {
    const int64_t ld = in + 3;
    std::vector<float> x = test_data(m * in, 21, 1.0f), storage = test_data(out * ld, 22, 0.1f), dy = test_data(m * out, 23, 0.01f);
    const auto run = [&](bool fused) {
      GemmPrecision precision([](const GemmTag&) { return Format::Bf16; }, 4);
      precision.set_fused_bf16(fused);
      precision.install();
      precision.begin_step(0, false);
      std::vector<float> y(m * out), dx(m * in), dw(out * in, 0.5f);
      GemmCall f = gemm_call(m, out, in, x.data(), false, storage.data(), true, y.data(), 0.0f, GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0});
      f.ldb = ld;
      gemm(backend, f);
      GemmCall d = gemm_call(m, in, out, dy.data(), false, storage.data(), false, dx.data(), 0.0f, GemmTag{GemmPass::Dgrad, "mlp.fc1", 0, 0});
      d.ldb = ld;
      gemm(backend, d);
      gemm(backend, gemm_call(out, in, m, dy.data(), true, x.data(), false, dw.data(), 1.0f, GemmTag{GemmPass::Wgrad, "mlp.fc1", 0, 0}));
      precision.uninstall();
      std::vector<float> all = y;
      all.insert(all.end(), dx.begin(), dx.end());
      all.insert(all.end(), dw.begin(), dw.end());
      return all;
    };
    const std::vector<float> fused = run(true), copied = run(false);
    CHECK(std::memcmp(fused.data(), copied.data(), fused.size() * 4) == 0);
    // ...and the rounding really happened: an fp32 GEMM differs.
    std::vector<float> y32(m * out);
    GemmCall f = gemm_call(m, out, in, x.data(), false, storage.data(), true, y32.data(), 0.0f, GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0});
    f.ldb = ld;
    gemm(backend, f);
    CHECK(std::memcmp(fused.data(), y32.data(), y32.size() * 4) != 0);
  }
}

// Device backends (the CPU presented as one): an inspected step records statistics from a host copy;
// operands above kDeviceInspectElements are sampled by whole 32-row groups, strided or not, and the
// record counts the sample. The fp8_e4m3 and bf16 cells set the GEMM's arithmetic instead of copying
// (and on an inspected step still record both operands).
class CpuAsDevice final : public CpuBackend {
 public:
  const char* name() const override { return "cpu-as-device"; }
  bool host_accessible() const override { return false; }
};

void test_device_inspection_samples_large_operands() {
  CpuAsDevice device;
  const int64_t m = 4096, k = 640, n = 64;  // A: 2.6M values (sampled), B: 41k (whole)
  for (const int64_t lda : {k, k + 8}) {
    std::vector<float> a = test_data(m * lda, 31, 1.0f), b = test_data(n * k, 32, 0.1f), c(m * n);
    GemmPrecision precision([](const GemmTag&) { return Format::Mxfp8; }, 4);
    precision.begin_step(3, true);
    GemmCall call = gemm_call(m, n, k, a.data(), false, b.data(), true, c.data(), 0.0f, GemmTag{GemmPass::Fprop, "mlp.fc1", 2, 0});
    call.lda = lda;
    precision.transform(device, call);
    CHECK(call.arithmetic == GemmArithmetic::Bf16 && call.lda == k);  // quantized into a device buffer
    const int64_t sample_groups = kDeviceInspectElements / (32 * k);
    int64_t activation_elements = -1, weight_elements = -1;
    for (const InspectionRecord& r : precision.take_inspections()) {
      if (r.operand == Operand::Activation) activation_elements = r.stats.elements;
      if (r.operand == Operand::Weight) weight_elements = r.stats.elements;
    }
    CHECK(activation_elements == sample_groups * 32 * k);
    CHECK(weight_elements == n * k);
  }
  GemmPrecision fp8([](const GemmTag&) { return Format::Fp8E4M3; }, 4);
  fp8.begin_step(0, false);
  std::vector<float> a = test_data(64 * 32, 33, 1.0f), b = test_data(16 * 32, 34, 1.0f), c(64 * 16);
  GemmCall call = gemm_call(64, 16, 32, a.data(), false, b.data(), true, c.data(), 0.0f, GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0});
  fp8.transform(device, call);
  CHECK(call.arithmetic == GemmArithmetic::Fp8E4M3 && call.a == a.data() && call.b == b.data());
  // a native cell on an inspected step: statistics of both operands, and still no copies
  GemmPrecision bf16([](const GemmTag&) { return Format::Bf16; }, 4);
  bf16.begin_step(1, true);
  call = gemm_call(64, 16, 32, a.data(), false, b.data(), true, c.data(), 0.0f, GemmTag{GemmPass::Fprop, "mlp.fc1", 0, 0});
  bf16.transform(device, call);
  CHECK(call.arithmetic == GemmArithmetic::Bf16 && call.a == a.data() && call.b == b.data());
  const std::vector<InspectionRecord> records = bf16.take_inspections();
  CHECK(records.size() == 2 && records[0].stats.elements + records[1].stats.elements == 64 * 32 + 16 * 32);
}

}  // namespace

int main() {
  const std::pair<const char*, std::function<void()>> tests[] = {
      {"operand configs", test_operand_configs},
      {"linear layer under nvfp4", test_linear_layer_under_nvfp4},
      {"hybrid fp8 and untouched passes", test_hybrid_fp8_and_untouched_passes},
      {"stochastic rounding reproducible", test_stochastic_rounding_reproducible},
      {"weight cache == uncached", test_weight_cache_equals_uncached},
      {"fused bf16 == rounded copies", test_fused_bf16_equals_copies},
      {"device inspection samples large operands", test_device_inspection_samples_large_operands},
  };
  for (const auto& [name, run] : tests) {
    const int before = g_failures;
    run();
    std::printf("%s %s\n", g_failures == before ? "ok  " : "FAIL", name);
  }
  std::printf("%d check(s) failed\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
