// Training under a precision policy: the hook that fake-quantizes (quantize-dequantize) both inputs
// of every tagged GEMM (fprop, dgrad, wgrad) with the format the resolved policy gives that
// (layer, role, pass), and collects per-layer, per-role inspection statistics on chosen steps.
// Master weights, gradients and optimizer state stay fp32: only the GEMM inputs are replaced by
// quantized copies, so the model's own tensors are never modified.
//
// Operands follow the linear-layer convention of ops/gemm.h:
//   fprop  y  = x  W^T   A = activation, B = weight
//   dgrad  dx = dy W     A = gradient,   B = weight
//   wgrad  dW = dy^T x   A = gradient,   B = activation
// Per operand (recipe facts: /work/shared/reference/formats.md):
//   - blocks (MXFP8 1x32, NVFP4 1x16) run along the GEMM's reduction axis of the stored matrix;
//   - NVFP4 weights use 16x16 tiles (fprop and dgrad see identical weight values);
//   - NVFP4 wgrad: the 16-point random Hadamard transform (one fixed sign vector) on both inputs;
//   - NVFP4 gradients round stochastically (counter-based, seeded per step / layer / role / pass /
//     operand, so runs are reproducible); everything else rounds to nearest even;
//   - fp8_e5m2 on dgrad / wgrad is TransformerEngine's HYBRID recipe (precision.ts): the gradient
//     operand in E5M2, the other operand in E4M3; on fprop both operands are E5M2;
//   - fp32 leaves the operand untouched; untagged GEMMs (GemmPass::Other) are never quantized.
// Host backends (the CPU): the hook copies and quantizes operands on the host and the GEMM runs in
// fp32. BF16 passes make no copy at all: the hook sets GemmCall::a_bf16 / b_bf16 and the CPU kernel
// rounds its packed panels (bit-identical to multiplying rounded copies); inspected steps still copy
// (they need statistics).
// Device backends (CUDA): fp32, bf16 and fp8_e4m3 cells set GemmCall::arithmetic and the device
// multiplies in that arithmetic itself (fp8_e4m3: per-tensor scaled e4m3 on fp8 tensor cores, the
// same quantization as quant.h); fp8_e5m2 (HYBRID), mxfp8 and nvfp4 operands are quantize-dequantized
// on the device by the quantize op (ops/quant.h FakeQuantizeArgs: bit-identical to the CPU rules,
// Hadamard and stochastic rounding included) into device buffers this object owns, and multiplied in
// bf16: exact for mxfp8 (power-of-two scales), one more rounding of at most 2^-9 relative for the
// per-tensor-scaled formats. On inspected steps the statistics come from a host copy of each operand
// (downloaded, quantized by the CPU reference): slower, and only on those steps; operands above
// kDeviceInspectElements (1M) values are sampled (evenly spaced groups of 32 whole rows, so blocks stay
// whole; per-tensor scales then come from the sample's amax), and their records count the sample.
// The two device operand buffers are reused GEMM after GEMM (stream order keeps each until its GEMM
// has read it), so device GEMMs must come from one host thread at a time, as the engine issues them.
// Weight cache: weights round to nearest even (no seed), so their quantized copy depends only on
// their values and the quantizer settings. The hook keeps one copy per (pointer, shape, settings)
// and reuses it (fprop and dgrad, micro-batches, eval) until the weights may have changed: every
// begin_step() and every note_weights_changed() (called by the optimizer step and by parameter
// creation and loading) invalidates it. Inspected steps bypass it (they need the statistics).
// Code that writes parameter values some other way must call note_weights_changed().
//
// Not here: which format a GEMM gets (the caller's FormatResolver, from the resolved policy), the
// quantizers themselves (quant.h), writing events (the training loop writes inspection_event_json).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "gemm.h"
#include "quant.h"

namespace strata::quant {

/** The format of one tagged GEMM pass (the policy's table cell); Fp32 means "leave as is". */
using FormatResolver = std::function<Format(const GemmTag& tag)>;

enum class Operand : uint8_t { Activation, Weight, Gradient };
const char* operand_name(Operand operand);

/** The quantizer settings the recipe uses for one operand of one pass (see the file header). */
QuantConfig operand_config(Format pass_format, GemmPass pass, Operand operand, bool reduction_along_rows);

/**
 * The stochastic-rounding seed of one operand of one tagged GEMM in optimizer step `step`: a hash of
 * (base, step, role, layer, MTP depth, pass, operand). Independent of call order and thread, so a
 * run is reproducible from its seed.
 */
uint64_t operand_seed(uint64_t base, int64_t step, const GemmTag& tag, Operand operand);

/** Statistics of one (layer, role, pass, operand) over every GEMM with that tag in an inspected step. */
struct InspectionRecord {
  int64_t step = 0;
  int layer = -1;     // main-stack layer, -1 for head / MTP
  std::string role;   // document tensor role ("mamba.out_proj", "head", "mtp", ...)
  GemmPass pass = GemmPass::Fprop;
  Operand operand = Operand::Activation;
  Format format = Format::Bf16;  // the operand's format (HYBRID: E4M3 or E5M2 per operand)
  int64_t gemms = 0;             // GEMM calls merged into this record
  QuantStats stats;
};

/**
 * One `precision` event line (no trailing newline):
 * {"type":"precision","t":T,"step":S,"layer":L,"role":R,"pass":P,"operand":O,"format":F,"amax":..,
 *  "rel_err":..,"snr_db":..|null,"underflow":share,"clipped":share,"scale_min":..,"scale_max":..,
 *  "scale_mean":..,"elements":N,"histogram":[..],"histogram_min_exp":-48,"histogram_zeros":Z}
 * `t` is seconds since the job started (the events contract).
 */
std::string inspection_event_json(const InspectionRecord& record, double t_seconds);

/**
 * Parameter values may have changed (optimizer step, load, new parameters): quantized weight copies
 * cached by every GemmPrecision are stale. Thread-safe; cheap (one atomic increment).
 */
void note_weights_changed();

/** Device backends: operands above this many values are sampled for inspection statistics. */
inline constexpr int64_t kDeviceInspectElements = int64_t{1} << 20;

class GemmPrecision {
 public:
  /** `seed` feeds stochastic rounding (combine it with the run seed for reproducible runs). */
  GemmPrecision(FormatResolver resolver, uint64_t seed);
  ~GemmPrecision();
  GemmPrecision(const GemmPrecision&) = delete;
  GemmPrecision& operator=(const GemmPrecision&) = delete;

  /** Installs this object as the process-wide GEMM input transform (removed by the destructor). */
  void install();
  void uninstall();

  /** Starts optimizer step `step`; with `inspect`, statistics of every quantized operand are kept. */
  void begin_step(int64_t step, bool inspect);
  /** The records of the inspected step(s) since the last call, ordered by layer, role, pass, operand. */
  std::vector<InspectionRecord> take_inspections();

  /** The transform itself (what install() registers); public for tests. */
  void transform(Backend& backend, GemmCall& call);

  /** Turns the weight cache (see the file header) on (the default) or off; for tests. */
  void set_weight_cache(bool enabled);
  /** Turns bf16 rounding inside the GEMM kernel (see the file header) on (the default) or off; for tests. */
  void set_fused_bf16(bool enabled);

 private:
  using Key = std::tuple<int, std::string, int, int>;  // layer, role, pass, operand
  // stored weight, rows, cols, ld, format, layout, MX element, MX scale rule
  using WeightKey = std::tuple<const float*, int64_t, int64_t, int64_t, int, int, int, int>;
  struct CachedWeight {
    uint64_t epoch = 0;            // cache_epoch_ when filled
    uint64_t weights_version = 0;  // note_weights_changed() count when filled
    std::vector<float> values;     // (rows, cols), contiguous
  };
  /** Both operands of a tagged GEMM: which operand each is, their stored shapes, their quantizer settings. */
  struct OperandPlan {
    Operand operand_a, operand_b;
    int64_t a_rows, a_cols, b_rows, b_cols;  // stored: A (M,K) or (K,M) when trans_a; B (K,N) or (N,K) when trans_b
    QuantConfig config_a, config_b;
  };
  OperandPlan plan_operands(const GemmCall& call, Format format) const;
  static WeightKey weight_key(const float* data, int64_t rows, int64_t cols, int64_t ld, const QuantConfig& config);
  const float* quantize_operand(const float* data, int64_t rows, int64_t cols, int64_t ld, const QuantConfig& config,
                                const GemmTag& tag, Operand operand, std::vector<float>& buffer);
  const float* cached_weight(const float* data, int64_t rows, int64_t cols, int64_t ld, const QuantConfig& config,
                             const GemmTag& tag);
  // ---- device backends (see the file header) ----
  struct DeviceBuffer {
    float* data = nullptr;
    int64_t floats = 0;
  };
  void device_transform(Backend& backend, GemmCall& call, Format format);
  float* device_buffer(Backend& backend, DeviceBuffer& buffer, int64_t floats);
  const float* device_quantize(Backend& backend, DeviceBuffer& buffer, const float* data, int64_t rows, int64_t cols,
                               int64_t ld, const QuantConfig& config, const GemmTag& tag);
  /** Inspected steps: the operand's statistics from a downloaded copy quantized by the CPU reference. */
  void record_device_statistics(Backend& backend, const float* data, int64_t rows, int64_t cols, int64_t ld,
                                const QuantConfig& config, const GemmTag& tag, Operand operand);
  void release_device_buffers();

  FormatResolver resolver_;
  uint64_t seed_;
  int64_t step_ = 0;
  bool inspect_ = false;
  bool installed_ = false;
  std::mutex records_mutex_;
  std::map<Key, InspectionRecord> records_;
  bool weight_cache_ = true;
  bool fused_bf16_ = true;
  uint64_t cache_epoch_ = 0;  // bumped by begin_step
  std::mutex cache_mutex_;
  std::map<WeightKey, CachedWeight> weight_cache_entries_;
  std::mutex device_mutex_;
  Backend* device_ = nullptr;  // the device backend the buffers below live on
  DeviceBuffer device_operands_[2];
  struct DeviceWeight {
    uint64_t epoch = 0, weights_version = 0;
    DeviceBuffer buffer;
  };
  std::map<WeightKey, DeviceWeight> device_weights_;
};

}  // namespace strata::quant
