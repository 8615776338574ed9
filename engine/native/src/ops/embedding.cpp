// Checked entry points of the embedding gather / scatter-add, dispatched to the backend.
#include "embedding.h"

namespace strata {

void embedding_forward(Backend& backend, const EmbeddingFwd& a) {
  require_support(backend, OpKind::Embedding, "embedding_forward");
  const char* op = "embedding_forward";
  STRATA_CHECK(a.table.ndim == 2, op, ": table '", a.table.name, "' must be (V,D), got ", a.table.shape_string());
  const int64_t m = a.ids.numel(), d = a.table.size(1);
  check_shape(op, "ids", a.ids, {m});
  check_shape(op, "out", a.out, {m, d});
  backend.embedding_forward(a);
}

void embedding_backward(Backend& backend, const EmbeddingBwd& a) {
  require_support(backend, OpKind::Embedding, "embedding_backward");
  const char* op = "embedding_backward";
  STRATA_CHECK(a.dtable.ndim == 2, op, ": dtable must be (V,D), got ", a.dtable.shape_string());
  const int64_t m = a.ids.numel(), d = a.dtable.size(1);
  check_shape(op, "ids", a.ids, {m});
  check_shape(op, "dout", a.dout, {m, d});
  backend.embedding_backward(a);
}

}  // namespace strata
