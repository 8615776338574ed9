// Which backend a job runs on: pipeline.training.device ("cpu" | "cuda") or the CLI's --backend.
// "cuda" needs an engine built with the CUDA backend (STRATA_HAVE_CUDA) and a GPU; otherwise a
// clear error says which of the two is missing. On the GPU every GEMM runs in one mode for the
// whole run: STRATA_CUDA_GEMM when set (fp32 | bf16 | fp8), else BF16 inputs with fp32
// accumulation and fp32 master weights; the document's per-layer precision formats are applied by
// the host quantize-dequantize hook on the CPU only (a "log" warning says so on the GPU).
// This is not a scheduler or a multi-GPU placement.
#pragma once

#include <string>

#include "core/backend.h"
#include "events.h"
#include "model/precision_hook.h"

namespace strata::train {

/** The backend for `device`; `where` names the field or flag in errors. Never returns null. */
Backend& select_backend(const std::string& device, const std::string& where);

/** "bf16" etc. for a CUDA backend, "fp32" for the CPU (whose GEMMs are fp32 plus the policy's hook). */
std::string gemm_mode_name(const Backend& backend);

/** Logs (info) how a device backend carries out the policy's formats (ops/quant_gemm.h). */
void note_device_precision(const Backend& backend, const model::PrecisionHook& precision, EventSink& events);

}  // namespace strata::train
