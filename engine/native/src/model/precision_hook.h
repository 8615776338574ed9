// Applies the document's precision policy to training and inference GEMMs: a PrecisionHook
// resolves, for every tagged gemm() (layer, tensor role, pass), the format the policy gives it
// (config.h, last matching rule wins) and drives the precision engineer's GEMM hook
// (ops/quant_gemm.h: quantize-dequantize of both inputs per the NVFP4/MXFP8/FP8 recipe, with
// inspection statistics). It also renders the resolved table as a "precision" event.
// This is not the quantizer or the per-operand recipe (ops/quant*.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "io/json.h"
#include "ops/quant_gemm.h"

namespace strata::model {

class PrecisionHook {
 public:
  /**
   * Installs the GEMM input transform for `model` when any GEMM resolves to a non-fp32 format. On a
   * host backend (`host_tensors`) it quantizes operand copies on the host; on a device backend it
   * picks each GEMM's arithmetic and quantizes on the device (ops/quant_gemm.h), unless
   * STRATA_CUDA_GEMM forces the device's GEMM mode (device_mode_forced()).
   */
  PrecisionHook(const ModelConfig& model, uint64_t seed, bool host_tensors = true);
  ~PrecisionHook();
  PrecisionHook(const PrecisionHook&) = delete;
  PrecisionHook& operator=(const PrecisionHook&) = delete;

  /** Fills a "precision" event with the resolved table: per layer, role -> fprop/dgrad/wgrad formats. */
  json::Value table_event(json::Value event) const;
  /** Marks the start of optimizer step `step`; with `inspect`, quantization statistics are kept. */
  void begin_step(int64_t step, bool inspect);
  /** "precision" inspection events (one per layer/role/pass/operand) of the inspected steps. */
  std::vector<json::Value> take_inspection_events(double t_seconds);
  /** True when some GEMM resolves to a format other than fp32. */
  bool active() const { return active_; }
  /** A device backend whose GEMM mode STRATA_CUDA_GEMM forces: the policy is not applied on it. */
  bool device_mode_forced() const { return device_mode_forced_; }
  /** Every format some GEMM of the model resolves to ("bf16", "nvfp4", ...), sorted. */
  const std::vector<std::string>& formats() const { return formats_; }

 private:
  ModelConfig model_;
  bool host_tensors_ = true;
  bool active_ = false;
  bool device_mode_forced_ = false;
  std::vector<std::string> formats_;
  std::unique_ptr<quant::GemmPrecision> gemm_;
};

/** The tensor roles each block kind's GEMMs use (document TENSOR_ROLES). */
std::vector<std::string> roles_of(BlockKind kind, const BlockConfig& block);

}  // namespace strata::model
