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
  const std::string mode = gemm_mode_name(backend);
  std::string others;
  for (const std::string& format : precision.formats()) {
    if (format != mode) others += (others.empty() ? "" : ", ") + format;
  }
  if (others.empty()) return;
  events.log("precision: " + std::string(backend.name()) + " runs every GEMM in " + mode +
                 " (STRATA_CUDA_GEMM selects fp32 | bf16 | fp8); the policy's other formats (" + others +
                 ") are emulated on the cpu device only",
             "warning");
}

}  // namespace strata::train
