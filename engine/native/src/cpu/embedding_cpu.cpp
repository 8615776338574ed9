// CPU kernels of the token embedding: row gather (forward) and scatter-add (backward). Token ids
// out of range raise an error naming the position. The backward is sequential over tokens so
// repeated ids accumulate in a fixed order (deterministic).
#include <cstring>

#include "../ops/embedding.h"
#include "cpu_backend.h"

namespace strata {

void CpuBackend::embedding_forward(const EmbeddingFwd& a) {
  const int64_t m = a.ids.numel(), v = a.table.size(0), d = a.table.size(1);
  for (int64_t i = 0; i < m; ++i) {
    STRATA_CHECK(a.ids.data[i] >= 0 && a.ids.data[i] < v, "embedding_forward: token id ", a.ids.data[i],
                 " at position ", i, " is outside the vocabulary [0, ", v, ")");
  }
#pragma omp parallel for schedule(static) if (m * d > 65536)
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(a.out.data + i * d, a.table.data + static_cast<int64_t>(a.ids.data[i]) * d, sizeof(float) * d);
  }
}

void CpuBackend::embedding_backward(const EmbeddingBwd& a) {
  const int64_t m = a.ids.numel(), v = a.dtable.size(0), d = a.dtable.size(1);
  for (int64_t i = 0; i < m; ++i) {
    const int32_t id = a.ids.data[i];
    STRATA_CHECK(id >= 0 && id < v, "embedding_backward: token id ", id, " at position ", i,
                 " is outside the vocabulary [0, ", v, ")");
    float* row = a.dtable.data + static_cast<int64_t>(id) * d;
    const float* g = a.dout.data + i * d;
    for (int64_t j = 0; j < d; ++j) row[j] += g[j];
  }
}

}  // namespace strata
