// Held-out evaluation (see evaluate.h).
#include "evaluate.h"

#include <algorithm>
#include <cmath>

#include "model/tensor_util.h"

namespace strata::train {

json::Value EvalResult::to_json(bool with_positions) const {
  json::Value j = json::Value::object();
  j.set("loss", json::Value(loss));
  j.set("ppl", json::Value(ppl));
  j.set("bpb", bpb ? json::Value(*bpb) : json::Value());
  j.set("accuracy", accuracy ? json::Value(*accuracy) : json::Value());
  j.set("tokens", json::Value(tokens));
  j.set("batches", json::Value(batches));
  if (with_positions) {
    json::Value arr = json::Value::array();
    for (double v : nll_by_position) arr.push_back(json::Value(v));
    j.set("nll_by_position", arr);
  }
  return j;
}

EvalResult evaluate(model::Model& model, BatchStream& stream, int64_t batches) {
  stream.seek(0);
  const int64_t n = std::max<int64_t>(1, std::min(batches, stream.batches_per_pass()));
  const int64_t T = stream.time(), V = model.config().vocab_size;
  std::vector<double> pos_sum(static_cast<size_t>(T), 0.0);
  std::vector<int64_t> pos_count(static_cast<size_t>(T), 0);
  double loss_sum = 0;
  int64_t counted = 0, correct = 0;
  const bool masked = stream.data().has_mask();
  for (int64_t i = 0; i < n; i++) {
    model::Batch b = stream.next();
    Arena acts(model.backend());
    model::ForwardResult r = model.forward(acts, b, false, false);
    const int64_t M = b.batch * b.time;
    const std::vector<float> losses = model::download_values(model.backend(), r.token_losses);
    // Accuracy (masked data only) needs the logits on the host.
    const std::vector<float> logits = masked ? model::download_values(model.backend(), r.logits) : std::vector<float>();
    for (int64_t m = 0; m < M; m++) {
      if (r.targets[static_cast<size_t>(m)] == model::kIgnoreIndex) continue;
      const double l = losses[static_cast<size_t>(m)];
      loss_sum += l;
      counted++;
      pos_sum[static_cast<size_t>(m % T)] += l;
      pos_count[static_cast<size_t>(m % T)]++;
      if (!masked) continue;
      const float* row = logits.data() + m * V;
      if (static_cast<int32_t>(std::max_element(row, row + V) - row) == r.targets[static_cast<size_t>(m)]) correct++;
    }
  }
  EvalResult e;
  e.batches = n;
  e.tokens = counted;
  e.loss = counted > 0 ? loss_sum / static_cast<double>(counted) : 0.0;
  e.ppl = std::exp(e.loss);
  const double bytes_per_token = stream.data().bytes_per_token;
  if (bytes_per_token > 0) e.bpb = e.loss / std::log(2.0) / bytes_per_token;
  if (masked && counted > 0) e.accuracy = static_cast<double>(correct) / static_cast<double>(counted);
  for (int64_t t = 0; t < T; t++) {
    const int64_t c = pos_count[static_cast<size_t>(t)];
    e.nll_by_position.push_back(c > 0 ? pos_sum[static_cast<size_t>(t)] / static_cast<double>(c) : 0.0);
  }
  stream.seek(0);
  return e;
}

}  // namespace strata::train
