// Backend selection for jobs (see device.h).
#include "device.h"

#include <cstdlib>
#include <stdexcept>

#ifdef STRATA_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace strata::train {

Backend& select_backend(const std::string& device, const std::string& where) {
  if (device == "cpu") return cpu_backend();
  if (device != "cuda") throw std::runtime_error(where + ": device must be cpu or cuda, got '" + device + "'");
#ifdef STRATA_HAVE_CUDA
  CudaBackend* cuda = cuda_backend_if_present();
  if (cuda == nullptr) {
    throw std::runtime_error(where + ": cuda was asked for, but no NVIDIA GPU is visible to this process (or "
                             "STRATA_CUDA_DISABLE=1); use cpu");
  }
  if (std::getenv("STRATA_CUDA_GEMM") == nullptr) cuda->set_gemm_mode(CudaGemmMode::Bf16);
  return *cuda;
#else
  throw std::runtime_error(where + ": cuda was asked for, but this engine was built without the CUDA backend "
                           "(configure engine/native with -DSTRATA_CUDA=ON and a CUDA toolkit); use cpu");
#endif
}

std::string gemm_mode_name(const Backend& backend) {
#ifdef STRATA_HAVE_CUDA
  if (const auto* cuda = dynamic_cast<const CudaBackend*>(&backend)) return cuda_gemm_mode_name(cuda->effective_gemm_mode());
#endif
  (void)backend;
  return "fp32";
}

void note_device_precision(const Backend& backend, const model::PrecisionHook& precision, EventSink& events) {
  if (backend.host_accessible() || !precision.active()) return;
  if (precision.device_mode_forced()) {
    events.log("precision: STRATA_CUDA_GEMM forces " + gemm_mode_name(backend) + " on " + backend.name() +
                   " for every GEMM; the document's precision policy is not applied on this run",
               "warning");
    return;
  }
  std::string native, emulated;
  for (const std::string& format : precision.formats()) {
    std::string& list = format == "fp32" || format == "bf16" || format == "fp8_e4m3" ? native : emulated;
    list += (list.empty() ? "" : ", ") + format;
  }
  const bool fp8 = native.find("fp8_e4m3") != std::string::npos;
  std::string text = "precision: " + std::string(backend.name()) + " applies the policy per GEMM: " + native +
                     (native.empty() ? "" : " in that arithmetic") +
                     (fp8 ? " (fp8_e4m3 on fp8 tensor cores, per-tensor scaling)" : "");
  if (!emulated.empty()) {
    text += std::string(native.empty() ? "" : "; ") + emulated +
            " quantize-dequantized on the device (the CPU rules, bit for bit) before a bf16 GEMM";
  }
  text += "; GEMMs outside the policy run in " + gemm_mode_name(backend) + " (STRATA_CUDA_GEMM)";
  events.log(text, "info");
}

}  // namespace strata::train
