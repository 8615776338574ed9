// CPU kernel of the quantize op family (ops/quant.h FakeQuantizeArgs): the strided input copied
// into the contiguous output, then quant::fake_quantize in place (the reference itself; OpenMP over
// blocks inside it). Not the quantizers (ops/quant.cpp) or the GEMM precision hook (ops/quant_gemm.cpp).
#include <cstring>

#include "../ops/quant.h"
#include "cpu_backend.h"

namespace strata {

void CpuBackend::fake_quantize(const FakeQuantizeArgs& a) {
  if (a.in != a.out) {
    for (int64_t r = 0; r < a.rows; ++r) std::memcpy(a.out + r * a.cols, a.in + r * a.ld, sizeof(float) * a.cols);
  }
  quant::fake_quantize(a.out, a.out, a.rows, a.cols, a.config);
}

}  // namespace strata
